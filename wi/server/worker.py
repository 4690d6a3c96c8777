"""A gateway worker process of ``wi up`` (``WI_HTTP_WORKERS`` > 1), run as ``python -m wi.server.worker``.

It serves HTTP on the listening socket it inherits, beside its sibling workers (the kernel spreads the
connections), with a NATS connection and a database pool of its own. It reads what ``GatewayWorkers``
writes to its standard input (a ``WorkerSpec``), writes ``ready`` to its standard output once it serves,
and drains on SIGTERM; SIGINT is left to ``wi up``, which stops its workers first, in order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

from wi.auth.store import TokenStore
from wi.bus import Bus
from wi.dashboard import DashboardFeed
from wi.database import create_db_engine
from wi.engine import load_fleet
from wi.gateway import create_app
from wi.gateway.health import ask_platform
from wi.registry import RegistryStore

from .event_loop import run_event_loop
from .http import HttpServer
from .settings import configure_logging
from .workers import READY, WorkerSpec


async def serve_worker(spec: WorkerSpec) -> None:
    """Serves the gateway until SIGTERM, then drains within the grace period."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    listening = socket.socket(fileno=spec.socket_fd)
    store = RegistryStore(create_db_engine(spec.database_url))
    bus = await Bus.connect(
        spec.nats_url,
        source="/wi/gateway",
        name=f"wi-gateway-{os.getpid()}",
        user=spec.nats_user,
        password=spec.nats_password,
        retry_refusals=spec.retry_refusals,
    )
    try:
        fleet = await asyncio.to_thread(load_fleet, spec.fleet)
        app = create_app(
            bus,
            store,
            TokenStore(store.engine),
            ask_platform(bus, spec.health_subject),
            spec.max_body_bytes,
            spec.long_poll_max_s,
            dashboard=DashboardFeed(bus, fleet, store),
        )
        http = HttpServer(app, listening, app.state.followers)
        await http.start()
        print(READY, flush=True)
        await stop.wait()
        await http.stop(spec.shutdown_grace_s)
    finally:
        await bus.close()
        store.close()


def main() -> None:
    """Reads the spec from standard input and serves."""
    spec = WorkerSpec.model_validate_json(sys.stdin.buffer.read())
    configure_logging(spec.log_level)
    run_event_loop(serve_worker(spec))


if __name__ == "__main__":
    main()
