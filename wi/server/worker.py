"""A gateway worker process of ``wi up`` (``WI_HTTP_WORKERS`` > 1), run as ``python -m wi.server.worker``.

It serves HTTP on the listening socket it inherits (one of a SO_REUSEPORT group: the kernel spreads new
connections among the workers), with a NATS connection and a database pool of its own. It reads a
``WorkerSpec`` from its standard input, writes ``ready`` to its standard output once uvicorn serves (its
prints go to standard error), drains on SIGTERM, which ``wi up`` sends when it stops, and ends with
``wi up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
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
from wi.telemetry import configure_logging, configure_tracing

from .children import die_with
from .event_loop import run_event_loop
from .http import HttpServer
from .workers import READY, STOP_MARGIN_S, WorkerSpec


async def serve_worker(spec: WorkerSpec, ready_fd: int) -> None:
    """Serves the gateway until SIGTERM, then drains within the spec's grace period."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
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
        gc.freeze()  # as wi up does (wi.server.runtime.serve): start-up's objects out of full collections
        os.write(ready_fd, READY)
        os.close(ready_fd)
        await stop.wait()
        await http.stop(max(spec.shutdown_grace_s - STOP_MARGIN_S, 0.5))
    finally:
        await bus.close()
        store.close()


def _close_inherited_fds(keep: int) -> None:
    """Closes every descriptor but the standard three and ``keep``: a worker faces the network and should
    hold nothing ``wi up`` was handed by whatever started it (uvloop's spawn passes them on)."""
    for fd in map(int, os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ()):
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def main() -> None:
    """Reads the spec from standard input and serves."""
    spec = WorkerSpec.model_validate_json(sys.stdin.buffer.read())
    die_with(spec.parent_pid)
    _close_inherited_fds(keep=spec.socket_fd)
    ready_fd = os.dup(1)
    os.dup2(2, 1)
    configure_logging(spec.log_level)
    configure_tracing()  # its provider flushes at exit
    run_event_loop(serve_worker(spec, ready_fd))


if __name__ == "__main__":
    main()
