"""A running platform (the same code as `wi up`) with tokens, for SDK and gateway tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wi.auth import TokenKind
from wi.server import Endpoints, Platform, Settings


async def eventually(predicate: Callable[[], object], timeout_s: float = 15.0) -> None:
    """Waits until ``predicate()`` is true; raises TimeoutError after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


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
    await asyncio.to_thread(platform.refresh_nats_users)
    try:
        yield running
    finally:
        await platform.stop()
