"""``wi up``: the embedded nats-server (or a NATS cluster), the registry and HTTP, in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from dataclasses import dataclass
from types import TracebackType

import bcrypt
from sqlalchemy.engine import make_url
from wi_services import ServiceContext, ServiceRunner, installed_services, load_fleet
from wi_services.fleet import SAMPLE_FLEET

from wi.audit import AuditStore
from wi.auth import TokenKind
from wi.auth.permissions import NatsUser, nats_users
from wi.auth.store import TokenStore
from wi.bus import Bus, NoticeDelivery
from wi.gateway import create_app
from wi.registry import Registry, RegistryStore

from .http import HttpServer
from .nats_server import EmbeddedNatsServer
from .settings import Settings

log = logging.getLogger("wi.server")

PLATFORM_NATS_USER = "wi-platform"
DEV_TENANT = "dev"
TOKEN_POLL_S = 1.0
"""How soon a created or revoked token takes effect on the embedded nats-server."""


@dataclass(frozen=True)
class Endpoints:
    """Where a running platform listens."""

    nats_url: str
    nats_embedded: bool
    http_url: str
    database_url: str
    data_dir: str
    dev_tokens: dict[str, str]

    def lines(self) -> list[str]:
        """The endpoints as lines for people."""
        nats = f"{self.nats_url} ({'embedded nats-server' if self.nats_embedded else 'external'})"
        return [
            f"NATS      {nats}",
            f"HTTP      {self.http_url}  (/healthz, /readyz, /docs)",
            f"database  {self.database_url}",
            f"data dir  {self.data_dir}",
            *(f"token     {whom}: {token}" for whom, token in self.dev_tokens.items()),
        ]


class Platform:
    """The WI platform process. ``async with Platform(settings)`` starts it and stops it in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nats: EmbeddedNatsServer | None = None
        self.bus: Bus | None = None
        self.store: RegistryStore | None = None
        self.tokens: TokenStore | None = None
        self.http: HttpServer | None = None
        self.delivery: NoticeDelivery | None = None
        self._platform_bcrypt = ""
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> Endpoints:
        """Starts every part; on failure, stops what started and re-raises."""
        settings = self.settings
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.store = await asyncio.to_thread(RegistryStore.open, settings.effective_database_url)
            self.tokens = TokenStore(self.store.engine)
            dev_tokens = await asyncio.to_thread(self._dev_tokens) if settings.dev else {}
            # On this (the main) thread: the child's parent-death signal is bound to the forking thread.
            nats_url, user, password = self._start_nats()
            self.bus = await Bus.connect(
                nats_url, source="/wi/platform", name="wi-platform", user=user, password=password
            )
            await self.bus.ensure_streams(settings.duplicate_window_s, settings.stream_replicas)
            registry = Registry(self.bus, self.store)
            await registry.start()
            self._tasks.append(asyncio.create_task(registry.run(self._stop), name="wi-registry"))
            self.delivery = NoticeDelivery(self.bus)
            await self.delivery.start()
            for runner in await asyncio.to_thread(self._service_runners):
                await runner.start()
                self._tasks.append(
                    asyncio.create_task(runner.run(self._stop), name=f"wi-svc-{runner.service.name}")
                )
            if self.nats is not None:
                self._tasks.append(asyncio.create_task(self._follow_tokens(), name="wi-token-watch"))
            app = create_app(
                self.bus, self.store, self.tokens, settings.http_max_body_bytes, settings.http_long_poll_max_s
            )
            self.http = HttpServer(app, settings.http_host, settings.http_port)
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
            dev_tokens=dev_tokens,
        )

    def _service_runners(self) -> list[ServiceRunner]:
        """The platform services the settings ask for, each in its runner."""
        settings = self.settings
        if settings.services == "none":
            return []
        installed = installed_services()
        names = (
            list(installed)
            if settings.services == "all"
            else [n.strip() for n in settings.services.split(",")]
        )
        unknown = [name for name in names if name not in installed]
        if unknown:
            raise ValueError(
                f"services: {', '.join(unknown)} not installed (installed: {', '.join(installed)})"
            )
        assert self.bus is not None and self.store is not None
        context = ServiceContext(
            load_fleet(settings.fleet or SAMPLE_FLEET), settings.placement_goal, settings.llm_perf_dir
        )
        audit = AuditStore(self.store.engine)
        return [ServiceRunner(installed[name](context), self.bus, self.store, audit) for name in names]

    def _start_nats(self) -> tuple[str, str | None, str | None]:
        """Starts the embedded nats-server, or picks the configured one; returns (url, user, password).

        The embedded server requires authentication: WI itself connects with a credential made for this
        run only, and every active token is a user with its permissions.
        """
        settings = self.settings
        if settings.nats_url:
            return settings.nats_url, settings.nats_user, settings.nats_password
        assert self.tokens is not None
        password = secrets.token_urlsafe(32)
        self._platform_bcrypt = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
        self.nats = EmbeddedNatsServer(
            settings.data_dir / "nats",
            host=settings.nats_host,
            port=settings.nats_port,
            users=self._nats_users(),
        )
        self.nats.start()
        return self.nats.url, PLATFORM_NATS_USER, password

    def _nats_users(self) -> list[NatsUser]:
        assert self.tokens is not None
        return nats_users(self.tokens.active(), PLATFORM_NATS_USER, self._platform_bcrypt)

    def refresh_nats_users(self) -> None:
        """Hands the embedded nats-server the current tokens now (the watcher does so within a second)."""
        if self.nats is not None:
            self.nats.reload(self._nats_users())

    async def _follow_tokens(self) -> None:
        """Reloads the embedded nats-server's users whenever a token is created or revoked."""
        assert self.tokens is not None and self.nats is not None
        seen = await asyncio.to_thread(self.tokens.version)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), TOKEN_POLL_S)
            try:
                version = await asyncio.to_thread(self.tokens.version)
                if version != seen:
                    await asyncio.to_thread(self.refresh_nats_users)
                    seen = version
            except Exception:
                log.exception("could not reload NATS users; will try again")

    def _dev_tokens(self) -> dict[str, str]:
        assert self.tokens is not None
        return {
            f"tenant {DEV_TENANT}": self.tokens.create(TokenKind.TENANT, DEV_TENANT, "wi up --dev"),
            "platform": self.tokens.create(TokenKind.PLATFORM, None, "wi up --dev"),
        }

    async def stop(self) -> None:
        """Drains and stops in reverse order of start: HTTP, consumers, the bus, the database, NATS."""
        self._stop.set()
        if self.http is not None:
            await self.http.stop()
            self.http = None
        if self.delivery is not None:
            await self.delivery.stop()
            self.delivery = None
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
