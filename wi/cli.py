"""The ``wi`` command: ``wi up``, ``wi demo``, ``wi schemas export``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

DEFAULT_SCHEMAS_DIR = Path("schemas")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wi", description="Workload Intelligence: hints in, notices out.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="run the platform: NATS (embedded unless WI_NATS_URL), registry, HTTP"
    )
    up.add_argument(
        "--data-dir", type=Path, help="state folder, kept across restarts (WI_DATA_DIR; default .wi)"
    )
    up.add_argument("--nats-url", help="use this NATS instead of the embedded server (WI_NATS_URL)")
    up.add_argument(
        "--nats-port", type=int, help="port of the embedded nats-server, 0 for any (WI_NATS_PORT)"
    )
    up.add_argument("--http-port", type=int, help="HTTP port, 0 for any (WI_HTTP_PORT; default 8080)")
    up.add_argument("--database-url", help="SQLAlchemy URL (WI_DATABASE_URL; default SQLite in the data dir)")
    up.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (WI_LOG_LEVEL)")

    demo = commands.add_parser(
        "demo", help="start the platform on embedded defaults and run a scripted workload"
    )
    demo.add_argument("--data-dir", type=Path, help="state folder (default: a fresh temporary folder)")

    schemas = commands.add_parser("schemas", help="the contract's JSON Schema and AsyncAPI documents")
    schemas_commands = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    export = schemas_commands.add_parser("export", help="write schemas/ from the models")
    export.add_argument(
        "--out", type=Path, default=DEFAULT_SCHEMAS_DIR, help="folder to write (default schemas)"
    )
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from wi.server import Settings

    flags = {
        "data_dir": args.data_dir,
        "nats_url": args.nats_url,
        "nats_port": args.nats_port,
        "http_port": args.http_port,
        "database_url": args.database_url,
        "log_level": args.log_level,
    }
    return Settings(**{key: value for key, value in flags.items() if value is not None})


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Runs the ``wi`` command; returns its exit code."""
    args = _parser().parse_args(argv)
    if args.command == "schemas":
        from wi.schema_export import export

        written = export(args.out)
        print(f"wrote {len(written)} files to {args.out}/")
        return 0
    if args.command == "up":
        from pydantic import ValidationError

        from wi.server import NatsServerError, serve

        try:
            settings = _settings(args)
        except ValidationError as exc:
            print(f"wi up: invalid configuration:\n{exc}", file=sys.stderr)
            return 2
        _configure_logging(settings.log_level)
        try:
            return asyncio.run(serve(settings))
        except (NatsServerError, OSError) as exc:
            print(f"wi up: {exc}", file=sys.stderr)
            return 1
    if args.command == "demo":
        from wi.demo import run_demo

        _configure_logging("ERROR")
        return asyncio.run(run_demo(args.data_dir))
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
