"""How NATS clients are being authorized right now: what ``/readyz`` reports as its ``auth`` check."""

from __future__ import annotations

from dataclasses import dataclass

from .callout import AuthCallout
from .system import SystemAccount

DEGRADED = "degraded"
"""The prefix of a check that works with a gap an operator should know of; still ready."""


@dataclass
class AuthStatus:
    """The parts that authorize NATS clients, and what is missing from them.

    ``callout`` is None where the cluster authorizes clients by itself; ``system`` is None where WI has
    no system-account credential to disconnect revoked tokens with; ``gap`` says what that means.
    """

    callout: AuthCallout | None = None
    system: SystemAccount | None = None
    gap: str | None = None

    def check(self) -> str:
        """``ok``; ``degraded: <gap>``; or what is down, when clients cannot be authorized as they should."""
        if self.callout is not None and not self.callout.live:
            return "down: the auth callout is not subscribed"
        if self.system is not None and not self.system.live:
            return "down: the system account connection is lost"
        return f"{DEGRADED}: {self.gap}" if self.gap else "ok"
