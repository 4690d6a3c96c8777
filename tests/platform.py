"""A running platform (the same code as `wi up`) with tokens, for SDK and gateway tests."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from wi.auth import TokenKind
from wi.auth.tables import ApiToken
from wi.bus import Bus
from wi.contract import utc_now
from wi.server import Endpoints, Platform, Settings


async def eventually(predicate: Callable[[], object], timeout_s: float = 15.0) -> None:
    """Waits until ``predicate()`` is true; raises TimeoutError after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


async def eventually_async(predicate: Callable[[], Awaitable[object]], timeout_s: float = 15.0) -> None:
    """Waits until ``await predicate()`` is true; raises TimeoutError after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not await predicate():  # noqa: ASYNC110  # what is awaited lives in another process
            await asyncio.sleep(0.1)


def notice_state(running: Running, notice_id: str) -> str | None:
    """A notice's stored state in the platform's registry, or None if it is not recorded yet."""
    assert running.platform.store is not None
    found = running.platform.store.notice(notice_id)
    return None if found is None else found[1].state


@dataclass
class Running:
    """The platform, where it listens, and tokens for two tenants and the platform."""

    platform: Platform
    endpoints: Endpoints
    acme: str
    globex: str
    operator: str

    @property
    def bus(self):  # type: ignore[no-untyped-def]
        """The platform's own bus connection (full permissions)."""
        assert self.platform.bus is not None
        return self.platform.bus


@asynccontextmanager
async def start_platform(data_dir: Path, **settings: Any) -> AsyncIterator[Running]:
    """Starts a platform on free ports, yields it with fresh tokens, and stops it."""
    platform = Platform(Settings(data_dir=data_dir, nats_port=0, http_port=0, **settings))
    endpoints = await platform.start()
    assert platform.tokens is not None
    tokens = platform.tokens
    running = Running(
        platform,
        endpoints,
        acme=tokens.create(TokenKind.TENANT, "acme"),
        globex=tokens.create(TokenKind.TENANT, "globex"),
        operator=tokens.create(TokenKind.PLATFORM),
    )
    try:
        yield running
    finally:
        await platform.stop()


def store_token_directly(engine: Engine, tenant: str) -> str:
    """A tenant token written to the table as WI stored any tenant before tenants had to be slugs."""
    token_id = "0123456789ab"
    token = f"wi_{token_id}_{'s' * 43}"
    with Session(engine) as session:
        session.add(
            ApiToken(
                token_id=token_id,
                kind="tenant",
                tenant=tenant,
                sha256=hashlib.sha256(token.encode()).hexdigest(),
                created_at=utc_now(),
            )
        )
        session.commit()
    return token


def record_errors(bus: Bus) -> list[str]:
    """What the servers report to this connection from now on (refusals, permission violations)."""
    seen: list[str] = []

    async def collect(exc: Exception) -> None:
        seen.append(str(exc).lower())

    bus.nc._error_cb = collect  # type: ignore[attr-defined]
    return seen
