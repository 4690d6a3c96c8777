"""What /readyz and /metrics report of the platform process: its supervised loops and how NATS clients
are authorized.

A gateway in the platform's own process reads them directly; a gateway worker process
asks the platform process over core NATS (``HealthDesk`` answers, ``ask_platform`` asks), so that every
worker's /readyz says what the platform's does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import TypeAdapter, ValidationError

from wi.bus import Bus, LoopHealth, LoopState, reply
from wi.registry import FreshRead

ASK_TIMEOUT_S = 2.0
"""How long a gateway worker's /readyz waits for the platform process to say how it is."""
PLATFORM_CHECK = "platform process"
"""The /readyz check a gateway worker reports when the platform process did not say how it is."""


@dataclass(frozen=True)
class PlatformHealth:
    """The platform process's loops, its NATS authorization and its gateway workers; ``unreachable`` says
    why it did not answer (then the rest is unknown)."""

    loops: tuple[LoopHealth, ...] = ()
    """Its supervised consumer and watcher loops."""
    auth: str = "unknown"
    """``AuthStatus.check()``: ``ok``, ``degraded: ...`` or what is down."""
    workers: str | None = None
    """``GatewayWorkers.check()``: ``ok`` or how many serve; None when HTTP is served in-process."""
    unreachable: str | None = None
    """Why a gateway worker got no report from the platform process; None when it did."""

    def checks(self) -> dict[str, str]:
        """/readyz's checks of the platform process: ``ok``, or what is wrong."""
        if self.unreachable is not None:
            return {PLATFORM_CHECK: self.unreachable}
        checks = {
            f"loop {loop.name}": (
                "ok"
                if loop.state is LoopState.RUNNING
                else f"{loop.state} after {loop.restarts} restart(s): {loop.last_error}"
            )
            for loop in self.loops
        }
        checks["auth"] = self.auth
        if self.workers is not None:
            checks["gateway workers"] = self.workers
        return checks


HealthSource = Callable[[], Awaitable[PlatformHealth]]
"""Where a gateway learns the platform process's health, at each /readyz and /metrics."""

_HEALTH: TypeAdapter[PlatformHealth] = TypeAdapter(PlatformHealth)


def ask_platform(bus: Bus, subject: str) -> HealthSource:
    """The health of the platform process answering at ``subject``, asked over NATS: callers that ask at
    once share one request (an unauthenticated /readyz must not multiply work in the platform process)."""

    async def ask() -> PlatformHealth:
        try:
            answer = await bus.nc.request(subject, b"", timeout=ASK_TIMEOUT_S)
            return _HEALTH.validate_json(answer.data)
        except nats.errors.NoRespondersError:
            return PlatformHealth(unreachable="not answering: no platform process listens on NATS")
        except (nats.errors.Error, TimeoutError) as exc:
            return PlatformHealth(unreachable=f"no answer within {ASK_TIMEOUT_S:g} s: {type(exc).__name__}")
        except ValidationError as exc:
            return PlatformHealth(
                unreachable=f"an answer that is not a health report: {exc.error_count()} error(s)"
            )

    return FreshRead(ask)


@dataclass
class HealthDesk:
    """Answers the gateway workers' health requests at ``subject`` with ``source``'s report."""

    bus: Bus
    subject: str
    source: HealthSource
    _subscription: Subscription | None = field(default=None, init=False)

    async def start(self) -> None:
        """Subscribes; returns once the server has the subscription."""
        self._subscription = await self.bus.nc.subscribe(self.subject, cb=self._answer)
        await self.bus.nc.flush()

    async def stop(self) -> None:
        """Stops answering."""
        if self._subscription is not None and not self.bus.nc.is_closed:
            await self._subscription.unsubscribe()
        self._subscription = None

    async def _answer(self, msg: Msg) -> None:
        if msg.reply:
            await reply(msg, _HEALTH.dump_json(await self.source()))
