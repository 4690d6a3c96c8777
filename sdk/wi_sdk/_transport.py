"""The one seam between the client and the platform: a transport over NATS or over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from wi.contract import DeploymentRequest, HintBase, HintsView, NoticeBase, ResponseBase


@dataclass(frozen=True)
class Sent:
    """What a send stored: the messages' ids and the stream sequence of the last one."""

    ids: list[str]
    seq: int


@dataclass(frozen=True)
class Incoming:
    """A notice as it arrived; ``settle`` tells the transport it was handled (so it is not redelivered)."""

    notice: NoticeBase
    settle: Callable[[], Awaitable[None]]


class Transport(Protocol):
    """How a WorkloadClient talks to the platform. Implement it to add another way in (or a fake in tests)."""

    async def open(self) -> None:
        """Connects; raises AuthError or TransportError."""

    async def close(self) -> None:
        """Disconnects."""

    async def send_hints(self, hints: list[HintBase]) -> Sent:
        """Stores hints (and clears) on the bus."""

    async def send_deployment(self, request: DeploymentRequest) -> Sent:
        """Stores a deployment request on the bus."""

    async def respond(self, response: ResponseBase) -> None:
        """Stores a response to a notice."""

    async def hints(self, after_seq: int | None) -> HintsView:
        """The workload's effective hints, including every hint stored up to ``after_seq``."""

    def notices(self) -> AsyncIterator[Incoming]:
        """The workload's notices, starting with those that arrived while it was away; endless."""
