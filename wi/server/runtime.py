"""``wi up``: the embedded nats-server (or a NATS cluster), the registry, the services and HTTP, in one
process (HTTP in worker processes of its own with ``WI_HTTP_WORKERS`` > 1)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import signal
import socket
from dataclasses import dataclass
from functools import partial
from types import TracebackType

from nats.aio.client import Client as NatsClient
from sqlalchemy.engine import make_url

from wi.auth import TokenKind
from wi.auth.callout import (
    CALLOUT_USER,
    DATA_ACCOUNT,
    PLATFORM_USER,
    SYSTEM_USER,
    AuthCallout,
    CalloutAccounts,
    platform_password,
)
from wi.auth.nats_jwt import account_keypair, new_account_seed, public_key
from wi.auth.status import AuthStatus
from wi.auth.store import TokenStore
from wi.auth.system import SystemAccount
from wi.bus import HEALTH_ROOT, Bus, Loop, Supervisor, close_nats, connect_nats
from wi.dashboard import DashboardFeed, dashboard_url
from wi.engine import DecisionLog, Fleet, ServiceContext, ServiceRunner, installed_services, load_fleet
from wi.gateway import create_app
from wi.gateway.health import HealthDesk, PlatformHealth
from wi.registry import Registry, RegistryStore

from .http import HttpServer, bind_http, bind_http_group, http_url
from .nats_server import EmbeddedNatsServer
from .settings import Settings
from .workers import GatewayWorkers, WorkerSpec

log = logging.getLogger("wi.server")

DEV_TENANT = "dev"
DEV_PLATFORM = "platform"
"""Whom ``wi up --dev``'s platform token is for, in ``Endpoints.dev_tokens``."""
REVOCATION_POLL_S = 1.0
"""How soon a revoked token's open NATS connections are closed (new ones are refused at once)."""
NO_CALLOUT_GAP = (
    "WI_NATS_AUTH_ISSUER_SEED is unset: WI does not authorize NATS clients; the cluster's own "
    "authorization applies"
)
NO_SYSTEM_GAP = (
    "WI_NATS_SYSTEM_USER is unset: a revoked token's open NATS connections stay open until they "
    "reconnect (new ones are refused at once)"
)


@dataclass(frozen=True)
class Credential:
    """A NATS user and password."""

    user: str
    password: str


@dataclass(frozen=True)
class NatsAccess:
    """How WI reaches NATS: the URL and WI's credentials there.

    ``issuer_seed`` signs the auth callout's answers (None where the cluster authorizes by itself),
    ``callout`` is the callout's user and ``system`` a system-account user to disconnect revoked tokens.
    """

    url: str
    platform: Credential | None
    issuer_seed: str | None = None
    callout: Credential | None = None
    system: Credential | None = None

    @property
    def retry_refusals(self) -> bool:
        """Whether WI's own connections try a refusal again: WI's auth callout, just started, may answer
        late."""
        return self.issuer_seed is not None


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
        dashboard = dashboard_url(self.http_url, self.dev_tokens.get(DEV_PLATFORM))
        return [
            f"NATS      {nats}",
            f"HTTP      {self.http_url}  (/healthz, /readyz, /docs)",
            f"dashboard {dashboard}  (with a platform token)",
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
        self.http: HttpServer | GatewayWorkers | None = None
        self._listening: list[socket.socket] = []
        """The HTTP sockets: one, or one per gateway worker (kept here while a worker is replaced)."""
        self._health_desk: HealthDesk | None = None
        """Answers the gateway workers' health requests (``WI_HTTP_WORKERS`` > 1)."""
        self.auth = AuthStatus()
        """What /readyz reports of how NATS clients are authorized."""
        self._auth_connections: list[NatsClient] = []
        self.supervisor = Supervisor()
        """Runs the consumer loops and watchers, restarting any that fails; /readyz reports on them."""
        self._stop_services = asyncio.Event()
        self._stop_registry = asyncio.Event()
        self._registry: Registry | None = None
        self._loops: dict[asyncio.Event, list[asyncio.Task[None]]] = {
            self._stop_services: [],
            self._stop_registry: [],
        }
        """The supervised loops each shutdown phase stops."""

    async def start(self) -> Endpoints:
        """Starts every part; on failure, stops what started and re-raises."""
        settings = self.settings
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.store = await asyncio.to_thread(RegistryStore.open, settings.effective_database_url)
            self.tokens = TokenStore(self.store.engine)
            await asyncio.to_thread(self._report_broken_tenants)
            dev_tokens = await asyncio.to_thread(self._dev_tokens) if settings.dev else {}
            # On this (the main) thread: the child's parent-death signal is bound to the forking thread.
            access = self._start_nats()
            await self._start_auth(access)
            self.bus = await Bus.connect(
                access.url,
                source="/wi/platform",
                name="wi-platform",
                user=access.platform.user if access.platform else None,
                password=access.platform.password if access.platform else None,
                retry_refusals=access.retry_refusals,
            )
            await self.bus.ensure_streams(settings.duplicate_window_s, settings.stream_replicas)
            self._registry = Registry(self.bus, self.store)
            await self._registry.start()
            for name, loop in self._registry.loops().items():
                self._supervise(name, loop, self._stop_registry)
            fleet = await asyncio.to_thread(load_fleet, settings.effective_fleet)
            for runner in await asyncio.to_thread(self._service_runners, fleet):
                await runner.start()
                for name, loop in runner.loops().items():
                    self._supervise(name, loop, self._stop_services)
            if self.auth.system is not None:
                self._supervise(
                    "revocations", partial(self._follow_revocations, self.auth.system), self._stop_registry
                )
            if settings.http_workers == 1:
                self._listening = [bind_http(settings.http_host, settings.http_port)]
                await self._serve_http(self._listening[0], fleet)
            else:
                self._listening = bind_http_group(
                    settings.http_host, settings.http_port, settings.http_workers
                )
                await self._start_http_workers(self._listening, access)
        except BaseException:
            await self.stop()
            raise
        return Endpoints(
            nats_url=access.url,
            nats_embedded=self.nats is not None,
            http_url=http_url(self._listening[0]),
            database_url=make_url(settings.effective_database_url).render_as_string(hide_password=True),
            data_dir=str(settings.data_dir.resolve()),
            dev_tokens=dev_tokens,
        )

    async def _serve_http(self, listening: socket.socket, fleet: Fleet) -> None:
        """Serves the gateway in this process, its read-your-writes reads woken by the registry here."""
        assert self.bus is not None and self.store is not None and self.tokens is not None
        assert self._registry is not None
        app = create_app(
            self.bus,
            self.store,
            self.tokens,
            self.health,
            self.settings.http_max_body_bytes,
            self.settings.http_long_poll_max_s,
            self._registry.progress,
            DashboardFeed(self.bus, fleet, self.store),
        )
        self.http = HttpServer(app, listening, app.state.followers)
        await self.http.start()

    async def _start_http_workers(self, sockets: list[socket.socket], access: NatsAccess) -> None:
        """Starts a gateway worker process per socket, and answers their health requests from this
        process."""
        assert self.bus is not None
        settings = self.settings
        self._health_desk = HealthDesk(self.bus, f"{HEALTH_ROOT}.{secrets.token_hex(8)}", self.health)
        await self._health_desk.start()
        spec = WorkerSpec(
            nats_url=access.url,
            nats_user=access.platform.user if access.platform else None,
            nats_password=access.platform.password if access.platform else None,
            retry_refusals=access.retry_refusals,
            database_url=settings.effective_database_url,
            health_subject=self._health_desk.subject,
            fleet=settings.effective_fleet.resolve(),
            max_body_bytes=settings.http_max_body_bytes,
            long_poll_max_s=settings.http_long_poll_max_s,
            shutdown_grace_s=settings.shutdown_grace_s,
            log_level=settings.log_level,
        )
        self.http = GatewayWorkers(sockets, spec, settings.data_dir / "http-metrics")
        await self.http.start()

    async def health(self) -> PlatformHealth:
        """This process's loops, NATS authorization and gateway workers, for /readyz and /metrics."""
        workers = self.http.check() if isinstance(self.http, GatewayWorkers) else None
        return PlatformHealth(tuple(self.supervisor.health.values()), self.auth.check(), workers=workers)

    def _supervise(self, name: str, loop: Loop, phase: asyncio.Event) -> None:
        """Runs a loop under the supervisor until its shutdown phase comes."""
        self._loops[phase].append(self.supervisor.start(name, loop, phase))

    def _service_runners(self, fleet: Fleet) -> list[ServiceRunner]:
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
        context = ServiceContext(fleet, settings.placement_goal, settings.llm_perf_dir)
        decisions = DecisionLog(self.store.engine)
        progress = self._registry.progress if self._registry is not None else None
        return [
            ServiceRunner(installed[name](context), self.bus, self.store, decisions, progress=progress)
            for name in names
        ]

    def _start_nats(self) -> NatsAccess:
        """Starts the embedded nats-server, or picks the configured cluster; returns how to reach it.

        The embedded server's every client goes through WI's auth callout, with an issuer seed and
        passwords made for this run only.
        """
        settings = self.settings
        if settings.nats_url:
            return self._cluster_access()
        seed = new_account_seed()
        callout = Credential(CALLOUT_USER, secrets.token_urlsafe(32))
        system = Credential(SYSTEM_USER, secrets.token_urlsafe(32))
        self.nats = EmbeddedNatsServer(
            settings.data_dir / "nats",
            host=settings.nats_host,
            port=settings.nats_port,
            auth=CalloutAccounts(public_key(account_keypair(seed)), callout.password, system.password),
        )
        self.nats.start()
        return NatsAccess(
            self.nats.url, Credential(PLATFORM_USER, platform_password(seed)), seed, callout, system
        )

    def _cluster_access(self) -> NatsAccess:
        """How to reach the cluster of WI_NATS_URL, from the settings."""
        settings = self.settings
        assert settings.nats_url is not None
        password = settings.nats_password.get_secret_value() if settings.nats_password else ""
        own = Credential(settings.nats_user, password) if settings.nats_user else None
        if settings.nats_auth_issuer_seed is None:
            log.warning("%s", NO_CALLOUT_GAP)
            self.auth.gap = NO_CALLOUT_GAP
            return NatsAccess(settings.nats_url, own)
        seed = settings.nats_auth_issuer_seed.get_secret_value()
        system = None
        if settings.nats_system_user and settings.nats_system_password:
            system = Credential(settings.nats_system_user, settings.nats_system_password.get_secret_value())
        else:
            log.warning("%s", NO_SYSTEM_GAP)
            self.auth.gap = NO_SYSTEM_GAP
        return NatsAccess(
            settings.nats_url, Credential(PLATFORM_USER, platform_password(seed)), seed, own, system
        )

    async def _start_auth(self, access: NatsAccess) -> None:
        """Starts answering the auth callout and connects to the system account, where configured."""
        assert self.tokens is not None
        if access.issuer_seed is None or access.callout is None:
            return
        callout_nc = await connect_nats(
            access.url, name="wi-auth-callout", user=access.callout.user, password=access.callout.password
        )
        self._auth_connections.append(callout_nc)
        self.auth.callout = AuthCallout(self.tokens, access.issuer_seed)
        await self.auth.callout.start(callout_nc)
        if access.system is not None:
            system_nc = await connect_nats(
                access.url, name="wi-system", user=access.system.user, password=access.system.password
            )
            self._auth_connections.append(system_nc)
            self.auth.system = SystemAccount(system_nc)

    def _report_broken_tenants(self) -> None:
        assert self.tokens is not None
        for info in self.tokens.broken_tenants():
            log.warning(
                "token %s names tenant %r, which is not a slug: it is never authorized; revoke it",
                info.token_id,
                info.tenant,
            )

    async def _follow_revocations(self, system: SystemAccount, stop: asyncio.Event) -> None:
        """Closes the open NATS connections of every token revoked while WI runs, on every server."""
        assert self.tokens is not None
        seen = await asyncio.to_thread(self.tokens.revoked_ids)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REVOCATION_POLL_S)
            try:
                revoked = await asyncio.to_thread(self.tokens.revoked_ids)
                for token_id in sorted(revoked - seen):
                    closed = await system.disconnect(DATA_ACCOUNT, token_id)
                    log.info("token %s revoked: closed its %d NATS connection(s)", token_id, closed)
                    seen.add(token_id)
            except Exception:
                log.exception("could not close revoked tokens' NATS connections; will try again")

    def _dev_tokens(self) -> dict[str, str]:
        assert self.tokens is not None
        return {
            f"tenant {DEV_TENANT}": self.tokens.create(TokenKind.TENANT, DEV_TENANT, "wi up --dev"),
            DEV_PLATFORM: self.tokens.create(TokenKind.PLATFORM, None, "wi up --dev"),
        }

    async def stop(self) -> None:
        """Drains within the grace period, in order: HTTP, the services' consumers, the registry's, the bus,
        the auth callout, the database, NATS.

        The services stop taking input first (the message in hand finishes or goes back to the stream, the
        rest of their batch is released at once), then the registry does the same, so nothing acknowledged
        is lost and nothing handled is left unacknowledged. A part still busy when the grace period ends is
        cancelled; what it had not acknowledged is redelivered to the next process.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_grace_s
        if self.http is not None:
            try:
                await self.http.stop(max(deadline - loop.time(), 0.1))
            except Exception:
                log.exception("HTTP did not stop cleanly; stopping the rest")
            self.http = None
        for listening in self._listening:
            listening.close()
        self._listening = []
        if self._health_desk is not None:
            await self._health_desk.stop()
            self._health_desk = None
        for phase in (self._stop_services, self._stop_registry):
            phase.set()
            await self._drain(phase, deadline)
        if self._registry is not None:
            await self._registry.stop()
            self._registry = None
        if self.bus is not None:
            await self.bus.close()
            self.bus = None
        if self.auth.callout is not None:
            await self.auth.callout.stop()
        for connection in self._auth_connections:
            await close_nats(connection)
        self._auth_connections.clear()
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.nats is not None:
            self.nats.stop()
            self.nats = None
        log.info("stopped in %.1f s", self.settings.shutdown_grace_s - (deadline - loop.time()))

    async def _drain(self, phase: asyncio.Event, deadline: float) -> None:
        """Waits until the loops stopped by ``phase`` return, cancelling those still busy at ``deadline``."""
        tasks = self._loops[phase]
        if not tasks:
            return
        _, busy = await asyncio.wait(tasks, timeout=max(deadline - asyncio.get_running_loop().time(), 0))
        for task in busy:
            log.warning(
                "%s still busy after the grace period; cancelled (its input will be redelivered)",
                task.get_name(),
            )
            task.cancel()
        await asyncio.gather(*busy, return_exceptions=True)

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def serve(settings: Settings) -> int:
    """Runs the platform until SIGINT or SIGTERM, printing where it listens; returns an exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    platform = Platform(settings)
    endpoints = await platform.start()
    # What start-up made lives as long as the process: out of the collector's sight, a full collection
    # costs microseconds, not the 60 ms or more that stall every request and batch in flight.
    gc.freeze()
    print("Workload Intelligence is up", flush=True)
    for line in endpoints.lines():
        print(f"  {line}", flush=True)
    await stop.wait()
    print(
        f"stopping: draining consumers and connections (at most {settings.shutdown_grace_s:g} s)", flush=True
    )
    await platform.stop()
    print("stopped", flush=True)
    return 0
