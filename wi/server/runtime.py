"""``wi up``: the embedded nats-server (or a NATS cluster), the registry and HTTP, in one process."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy.engine import make_url

from wi.bus import Bus
from wi.registry import Registry, RegistryStore

from .http import HttpServer, create_app
from .nats_server import EmbeddedNatsServer
from .settings import Settings

log = logging.getLogger("wi.server")


@dataclass(frozen=True)
class Endpoints:
    """Where a running platform listens."""

    nats_url: str
    nats_embedded: bool
    http_url: str
    database_url: str
    data_dir: str

    def lines(self) -> list[str]:
        """The endpoints as lines for people."""
        nats = f"{self.nats_url} ({'embedded nats-server' if self.nats_embedded else 'external'})"
        return [
            f"NATS      {nats}",
            f"HTTP      {self.http_url}  (/healthz, /readyz, /docs)",
            f"database  {self.database_url}",
            f"data dir  {self.data_dir}",
        ]


class Platform:
    """The WI platform process. ``async with Platform(settings)`` starts it and stops it in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nats: EmbeddedNatsServer | None = None
        self.bus: Bus | None = None
        self.store: RegistryStore | None = None
        self.http: HttpServer | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> Endpoints:
        """Starts every part; on failure, stops what started and re-raises."""
        settings = self.settings
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            if settings.nats_url:
                nats_url = settings.nats_url
            else:
                self.nats = EmbeddedNatsServer(
                    settings.data_dir / "nats", host=settings.nats_host, port=settings.nats_port
                )
                self.nats.start()
                nats_url = self.nats.url
            self.bus = await Bus.connect(nats_url, source="/wi/platform", name="wi-platform")
            await self.bus.ensure_streams(settings.duplicate_window_s, settings.stream_replicas)
            self.store = await asyncio.to_thread(RegistryStore.open, settings.effective_database_url)
            registry = Registry(self.bus, self.store)
            await registry.start()
            self._tasks.append(asyncio.create_task(registry.run(self._stop), name="wi-registry"))
            self.http = HttpServer(create_app(self.bus, self.store), settings.http_host, settings.http_port)
            self.http.start()
        except BaseException:
            await self.stop()
            raise
        return Endpoints(
            nats_url=nats_url,
            nats_embedded=self.nats is not None,
            http_url=self.http.url,
            database_url=make_url(settings.effective_database_url).render_as_string(hide_password=True),
            data_dir=str(settings.data_dir.resolve()),
        )

    async def stop(self) -> None:
        """Drains and stops in reverse order of start: HTTP, consumers, the bus, the database, NATS."""
        self._stop.set()
        if self.http is not None:
            await self.http.stop()
            self.http = None
        for task in self._tasks:
            try:
                await task
            except Exception:
                log.exception("%s failed", task.get_name())
        self._tasks.clear()
        if self.bus is not None:
            await self.bus.close()
            self.bus = None
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.nats is not None:
            self.nats.stop()
            self.nats = None

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def wait(self, stop: asyncio.Event) -> asyncio.Task[None] | None:
        """Waits until ``stop`` is set or a background part ends; returns the part that ended, if any."""
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        return next((task for task in self._tasks if task in done), None)


async def serve(settings: Settings) -> int:
    """Runs the platform until SIGINT or SIGTERM, printing where it listens; returns an exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    platform = Platform(settings)
    endpoints = await platform.start()
    print("Workload Intelligence is up", flush=True)
    for line in endpoints.lines():
        print(f"  {line}", flush=True)
    crashed = await platform.wait(stop)
    print("stopping: draining consumers and connections", flush=True)
    await platform.stop()
    if crashed is not None:
        log.error("%s stopped unexpectedly", crashed.get_name())
        return 1
    print("stopped", flush=True)
    return 0
