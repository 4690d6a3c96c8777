"""The one seam between the client and the platform: a transport over NATS or over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from wi.contract import (
    DeploymentEnd,
    DeploymentRequest,
    DeploymentScale,
    DrillReport,
    DrillRequest,
    HintBase,
    HintsView,
    NoticeBase,
    ResponseBase,
)


@dataclass(frozen=True)
class Sent:
    """What a send stored: the messages' ids and the stream sequence of the last one."""

    ids: list[str]
    seq: int


class Transport(Protocol):
    """How a WorkloadClient talks to the platform. Implement it to add another way in (or a fake in tests)."""

    async def open(self) -> None:
        """Connects and checks the token: raises AuthError for a bad token, ForbiddenError for one of
        another tenant, TransportError when the platform cannot be reached."""

    async def close(self) -> None:
        """Disconnects; safe to call after a failed ``open`` and more than once."""

    async def send_hints(self, hints: list[HintBase]) -> Sent:
        """Stores hints (and clears) on the bus."""

    async def send_deployment(self, request: DeploymentRequest | DeploymentScale | DeploymentEnd) -> Sent:
        """Stores a deployment request, scale or end on the bus."""

    async def respond(self, response: ResponseBase) -> None:
        """Stores a response to a notice."""

    async def hints(self, after_seq: int | None) -> HintsView:
        """The workload's effective hints, including every hint stored up to ``after_seq``."""

    def notices(self) -> AsyncIterator[NoticeBase]:
        """The workload's notices: first the open ones (those that arrived while it was away), then each
        as it arrives; endless. A notice may come more than once (the client hands it over once)."""

    async def drill(self, request: DrillRequest) -> DrillReport:
        """Starts a drill on the workload (once per drill id); the report so far."""

    async def drill_report(self, drill_id: str) -> DrillReport:
        """A drill's report; NotFoundError for a drill the platform does not know."""
