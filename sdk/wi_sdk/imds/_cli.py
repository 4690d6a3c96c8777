"""``wi imds`` (also ``wi-imds``): runs the agent until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .._errors import WIError
from ._agent import DEFAULT_HOST, DEFAULT_PORT, ImdsAgent


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, such as {DEFAULT_HOST}:{DEFAULT_PORT}")
    return host.strip("[]"), int(port)


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve one instance's WI notices as AWS's, Azure's and GCE's metadata services do.",
    )
    parser.add_argument("--tenant", required=True, help="the workload's tenant")
    parser.add_argument("-w", "--workload", required=True, help="the workload")
    parser.add_argument("--instance", required=True, help="the instance whose notices are served")
    parser.add_argument(
        "--url", default=os.environ.get("WI_URL"), help="nats://... or http://... of WI (WI_URL)"
    )
    parser.add_argument("--token", default=os.environ.get("WI_TOKEN"), help="the tenant's token (WI_TOKEN)")
    parser.add_argument(
        "--listen",
        type=_listen,
        default=(DEFAULT_HOST, DEFAULT_PORT),
        metavar="HOST:PORT",
        help=f"where to serve (default {DEFAULT_HOST}:{DEFAULT_PORT}; port 0 for any)",
    )
    parser.add_argument(
        "--imdsv1", action="store_true", help="also answer AWS reads without an IMDSv2 session token"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    host, port = args.listen
    agent = ImdsAgent(
        tenant=args.tenant,
        workload=args.workload,
        instance=args.instance,
        url=args.url,
        token=args.token,
        host=host,
        port=port,
        imdsv1=args.imdsv1,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with agent:
        print(f"serving {args.tenant}/{args.workload}/{args.instance} on {agent.url}", flush=True)
        await stop.wait()
    return 0


def main(argv: list[str] | None = None, prog: str = "wi-imds") -> int:
    """Runs the agent with command-line arguments; returns the exit code."""
    args = _parser(prog).parse_args(argv)
    if not args.url:
        print(f"{prog}: give --url or set WI_URL", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    try:
        return asyncio.run(_serve(args))
    except (WIError, OSError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
