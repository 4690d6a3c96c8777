"""The ``wi`` command: ``wi up``, ``wi demo``, ``wi tokens``, ``wi nats-issuer``, ``wi schemas export``,
``wi bench`` and ``wi simulate`` for operators; ``wi hint``, ``wi deployments``, ``wi notices`` and
``wi drill`` for people working with a workload through a gateway; ``wi imds`` (the SDK's
``wi_sdk.imds``) beside a workload's instance."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
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
    up.add_argument(
        "--http-workers",
        type=int,
        help="processes serving HTTP (WI_HTTP_WORKERS; default 1: wi up's own; production: one per core)",
    )
    up.add_argument("--database-url", help="SQLAlchemy URL (WI_DATABASE_URL; default SQLite in the data dir)")
    up.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (WI_LOG_LEVEL)")
    up.add_argument(
        "--services", help='platform services to run, comma-separated, "all" or "none" (WI_SERVICES)'
    )
    up.add_argument("--fleet", type=Path, help="the fleet file (WI_FLEET; default: the sample fleet)")
    up.add_argument(
        "--dev", action="store_true", help="create and print a tenant token (tenant dev) and a platform token"
    )

    tokens = commands.add_parser("tokens", help="create, list and revoke tenant and platform tokens")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="make a token and print it alone on stdout")
    audience = create.add_mutually_exclusive_group(required=True)
    audience.add_argument("--tenant", help="a token for this tenant's workloads")
    audience.add_argument(
        "--platform", action="store_true", help="a token for platform services and operators"
    )
    create.add_argument("--label", help="a note for `wi tokens list`")
    token_commands.add_parser("list", help="list tokens (never the tokens themselves)")
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    for command in token_commands.choices.values():
        command.add_argument(
            "--data-dir", type=Path, help="the data dir of `wi up` (WI_DATA_DIR; default .wi)"
        )
        command.add_argument("--database-url", help="its database instead (WI_DATABASE_URL)")

    commands.add_parser(
        "nats-issuer",
        help="make the key WI signs a cluster's auth callout answers with: prints WI_NATS_AUTH_ISSUER_SEED "
        "and its public key WI_NATS_AUTH_ISSUER (the cluster's auth_callout issuer) for an .env file",
    )

    demo = commands.add_parser(
        "demo", help="start the platform on embedded defaults and run a scripted workload"
    )
    demo.add_argument("--data-dir", type=Path, help="state folder (default: a fresh temporary folder)")

    services = commands.add_parser("services", help="the platform services installed")
    services.add_subparsers(dest="services_command", required=True, metavar="ACTION").add_parser(
        "list", help="name, class and what each consumes"
    )
    audit = commands.add_parser("audit", help="recent decisions of the platform services, with their reasons")
    audit.add_argument("--service", help="only this service")
    audit.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    audit.add_argument("--data-dir", type=Path, help="the data dir of `wi up` (WI_DATA_DIR; default .wi)")
    audit.add_argument("--database-url", help="its database instead (WI_DATABASE_URL)")

    hint = commands.add_parser("hint", help="set, clear and list a workload's hints through a gateway")
    hint_commands = hint.add_subparsers(dest="hint_command", required=True, metavar="ACTION")
    hint_set = hint_commands.add_parser("set", help="set a hint: wi hint set -w web priority level=high")
    hint_set.add_argument("kind", help="priority, evictability, latency_tolerance, ...")
    hint_set.add_argument("fields", nargs="*", metavar="FIELD=VALUE", help="the hint's fields (JSON values)")
    hint_set.add_argument("--instance", help="scope the hint to one instance")
    hint_set.add_argument("--ttl", type=int, help="seconds until the hint expires")
    hint_clear = hint_commands.add_parser("clear", help="remove the hint of one kind")
    hint_clear.add_argument("kind")
    hint_clear.add_argument("--instance", help="remove an instance's hint")
    hint_commands.add_parser("list", help="the effective hints")

    deployments = commands.add_parser(
        "deployments", help="ask for, scale and end deployments through a gateway"
    )
    deployment_commands = deployments.add_subparsers(
        dest="deployments_command", required=True, metavar="ACTION"
    )
    request = deployment_commands.add_parser(
        "request",
        help="ask for capacity: wi deployments request -w web api --instances 3 --cores 4 --memory-gb 16",
    )
    scale = deployment_commands.add_parser(
        "scale", help="run this many instances: more are placed, the newest go"
    )
    end = deployment_commands.add_parser("end", help="release every instance of the deployment")
    for command in (request, scale, end):
        command.add_argument("deployment", help="the deployment")
    request.add_argument("--instances", type=int, required=True, help="how many instances")
    request.add_argument("--cores", type=int, required=True, help="cores per instance")
    request.add_argument("--memory-gb", type=float, required=True, help="memory per instance, GB")
    request.add_argument("--gpus", type=int, default=0, help="GPUs per instance (default 0)")
    request.add_argument("--region", action="append", default=[], help="an allowed region (repeat for more)")
    scale.add_argument("instances", type=int, help="how many instances from now on")

    notices = commands.add_parser("notices", help="watch and answer a workload's notices through a gateway")
    notice_commands = notices.add_subparsers(dest="notices_command", required=True, metavar="ACTION")
    notice_commands.add_parser("watch", help="print notices as they arrive (Ctrl-C to stop)")
    respond = notice_commands.add_parser("respond", help="answer a notice")
    respond.add_argument("notice_id")
    respond.add_argument("action", choices=["ack", "accept", "decline", "defer"])
    respond.add_argument("--until", help="defer: the RFC 3339 time to wait until")
    respond.add_argument("--reason", help="why, for the platform's audit")
    drill = commands.add_parser(
        "drill", help="send your workload a test notice (a drill) and report how it answered"
    )
    drill.add_argument("--kind", choices=["eviction", "maintenance", "power_event"], default="eviction")
    drill.add_argument("--notice-s", type=int, default=120, help="the notice's lead time (default 120)")
    drill.add_argument(
        "--target", default="drill", help="the instance (or power domain) it names (default drill)"
    )
    drill.add_argument("--tenant", help="check that the token is this tenant's (the token decides)")
    drill.add_argument("--no-wait", action="store_true", help="print the report at once, do not wait")
    for command in (
        drill,
        *hint_commands.choices.values(),
        *deployment_commands.choices.values(),
        *notice_commands.choices.values(),
    ):
        command.add_argument("-w", "--workload", required=True, help="the workload")
        command.add_argument("--url", help="the gateway, e.g. http://127.0.0.1:8080 (WI_URL)")
        command.add_argument("--token", help="a tenant token (WI_TOKEN)")

    commands.add_parser(  # its arguments are wi_sdk.imds's own: main hands them over before parsing
        "imds",
        add_help=False,
        help="serve an instance's notices as AWS's, Azure's and GCE's metadata services do (wi imds --help)",
    )

    sim = commands.add_parser(
        "simulate", help="replay traces through the platform services' policies, without WI and with it"
    )
    sim.add_argument(
        "--scenario",
        default="default",
        help="default, small, silent, or a scenario JSON file (default: default)",
    )
    sim.add_argument("--out", type=Path, default=Path("simulation"), help="where summary.json and plots go")
    sim.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    sim.add_argument(
        "--scale", type=int, help="replay this many times the VMs (a synthetic trace fitted to it)"
    )
    sim.add_argument("--servers", type=int, help="the fleet's servers, instead of sizing it from the trace")
    sim.add_argument(
        "--no-ablations", action="store_true", help="skip the per-optimization runs (both arms only)"
    )

    bench = commands.add_parser(
        "bench", help="run the benchmarks against their raw baselines (from a checkout: bench/run.py)"
    )
    bench.add_argument("--quick", action="store_true", help="tiny sizes: check that each benchmark runs")
    bench.add_argument("--only", help="comma-separated benchmark names (hints, notices, gateway, ...)")

    schemas = commands.add_parser("schemas", help="the contract's JSON Schema and AsyncAPI documents")
    schemas_commands = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    export = schemas_commands.add_parser("export", help="write schemas/ from the models")
    export.add_argument(
        "--out", type=Path, default=DEFAULT_SCHEMAS_DIR, help="folder to write (default schemas)"
    )
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from wi.server import Settings

    names = (
        "data_dir",
        "nats_url",
        "nats_port",
        "http_port",
        "http_workers",
        "database_url",
        "log_level",
        "dev",
        "services",
        "fleet",
    )
    flags = {name: getattr(args, name, None) for name in names}
    flags["dev"] = flags["dev"] or None
    return Settings(**{key: value for key, value in flags.items() if value is not None})


def _tokens(args: argparse.Namespace) -> int:
    from wi.auth import TokenKind
    from wi.auth.store import TokenStore
    from wi.database import create_db_engine, migrate

    engine = create_db_engine(_settings(args).effective_database_url)
    try:
        migrate(engine)
        store = TokenStore(engine)
        if args.tokens_command == "create":
            kind = TokenKind.PLATFORM if args.platform else TokenKind.TENANT
            try:
                print(store.create(kind, args.tenant, args.label))
            except ValueError as exc:
                print(f"wi tokens create: {exc}", file=sys.stderr)
                return 2
        elif args.tokens_command == "list":
            print(f"{'TOKEN ID':<14}{'KIND':<10}{'TENANT':<20}{'CREATED':<34}{'STATE':<9}LABEL")
            for info in store.all_tokens():
                state = "revoked" if info.revoked else "active"
                tenant, label = info.tenant or "-", info.label or ""
                print(f"{info.token_id:<14}{info.kind:<10}{tenant:<20}{info.created_at:<34}{state:<9}{label}")
        elif not store.revoke(args.token_id):
            print(f"wi tokens revoke: no active token {args.token_id}", file=sys.stderr)
            return 1
        return 0
    finally:
        engine.dispose()


def _audit(args: argparse.Namespace) -> int:
    from wi.database import create_db_engine, migrate
    from wi.engine import DecisionLog

    engine = create_db_engine(_settings(args).effective_database_url)
    try:
        migrate(engine)
        for decision in reversed(DecisionLog(engine).recent(args.service, args.limit)):
            when = f"{decision.decided_at:%Y-%m-%d %H:%M:%S}" if decision.decided_at else "?"
            about = f"{decision.tenant}/{decision.workload}" if decision.tenant else "(operator)"
            print(f"{when}  {decision.service:<12} {decision.action:<11} {about}  {decision.summary}")
            for reason in decision.reasons:
                print(f"      {reason}")
        return 0
    finally:
        engine.dispose()


def _console(args: argparse.Namespace) -> int:
    from wi.console import Console

    console = Console(args.url, args.token)
    if args.command == "hint":
        if args.hint_command == "set":
            return console.hint_set(args.workload, args.kind, args.fields, args.instance, args.ttl)
        if args.hint_command == "clear":
            return console.hint_clear(args.workload, args.kind, args.instance)
        return console.hint_list(args.workload)
    if args.command == "deployments":
        if args.deployments_command == "request":
            return console.deployment_request(
                args.workload,
                args.deployment,
                args.instances,
                args.cores,
                args.memory_gb,
                args.gpus,
                args.region,
            )
        if args.deployments_command == "scale":
            return console.deployment_scale(args.workload, args.deployment, args.instances)
        return console.deployment_end(args.workload, args.deployment)
    if args.command == "drill":
        return console.drill(
            args.workload, args.tenant, args.kind, args.notice_s, args.target, not args.no_wait
        )
    if args.notices_command == "watch":
        return console.notices_watch(args.workload)
    return console.notices_respond(args.workload, args.notice_id, args.action, args.until, args.reason)


def _simulate(args: argparse.Namespace) -> int:
    import time
    from dataclasses import replace

    from wi.simulate import ScenarioError, TraceError, load_scenario, print_table, simulate, summary, write

    try:
        scenario = load_scenario(args.scenario)
        if args.scale:
            scenario = replace(scenario, scale=args.scale)
        if args.servers:
            scenario = replace(scenario, servers=args.servers)
        started = time.perf_counter()
        simulation = simulate(scenario, args.seed, ablations=not args.no_ablations, show_progress=True)
    except (ScenarioError, TraceError, FileNotFoundError) as exc:
        print(f"wi simulate: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    result = summary(simulation)
    print_table(result)
    written = write(simulation, result, args.out)
    print(f"simulated in {elapsed:.1f} s; wrote {', '.join(str(p) for p in written)}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    runner = Path(__file__).resolve().parents[1] / "bench" / "run.py"
    if not runner.is_file():
        print(
            "wi bench: the benchmarks live in a source checkout (bench/run.py), not in the package",
            file=sys.stderr,
        )
        return 2
    options = [*(["--quick"] if args.quick else []), *(["--only", args.only] if args.only else [])]
    return subprocess.run([sys.executable, str(runner), *options], check=False).returncode


def main(argv: list[str] | None = None) -> int:
    """Runs the ``wi`` command; returns its exit code."""
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["imds"]:
        from wi_sdk.imds import main as imds

        return imds(given[1:], prog="wi imds")
    args = _parser().parse_args(argv)
    if args.command == "schemas":
        from wi.schema_export import export

        written = export(args.out)
        print(f"wrote {len(written)} files to {args.out}/")
        return 0
    if args.command == "up":
        from pydantic import ValidationError

        from wi.server import NatsServerError, WorkerFailed, run_event_loop, serve
        from wi.telemetry import TelemetryError, configure_logging, configure_tracing

        try:
            settings = _settings(args)
        except ValidationError as exc:
            print(f"wi up: invalid configuration:\n{exc}", file=sys.stderr)
            return 2
        configure_logging(settings.log_level)
        try:
            configure_tracing()
            return run_event_loop(serve(settings))
        except (NatsServerError, OSError, TelemetryError, ValueError, WorkerFailed) as exc:
            print(f"wi up: {exc}", file=sys.stderr)
            return 1
    if args.command == "tokens":
        return _tokens(args)
    if args.command == "nats-issuer":
        from wi.auth.nats_jwt import account_keypair, new_account_seed, public_key

        seed = new_account_seed()
        print(f"WI_NATS_AUTH_ISSUER_SEED={seed}")
        print(f"WI_NATS_AUTH_ISSUER={public_key(account_keypair(seed))}")
        return 0
    if args.command == "services":
        from wi.engine import installed_services

        for name, service in installed_services().items():
            consumes = ", ".join(service.consumes)
            print(f"{name:<16} {service.__module__}.{service.__qualname__:<40} consumes {consumes}")
        return 0
    if args.command == "audit":
        return _audit(args)
    if args.command in ("hint", "deployments", "notices", "drill"):
        return _console(args)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "bench":
        return _bench(args)
    if args.command == "demo":
        from wi.demo import run_demo
        from wi.telemetry import configure_logging

        configure_logging("ERROR")
        return asyncio.run(run_demo(args.data_dir))
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
