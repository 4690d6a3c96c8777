"""Notice delivery over NATS: how a workload's raw NATS client gets every notice, including those sent
while it was away.

JetStream republishes each notice the moment it stores it, on ``wi.v1.deliver.<tenant>.<workload>.<kind>``
(core NATS, with the stream's CloudEvents headers plus JetStream's ``Nats-Subject``, ``Nats-Sequence`` and
``Nats-Time-Stamp``). What was published while no process of the workload listened is not there, so a
client first subscribes to its deliver subjects (in queue group ``wi-sdk``: the workload's processes share
its notices), then sends an ``AttachRequest`` on ``wi.v1.attach.<tenant>.<workload>``. The registry
replies with the workload's open notices (pending or deferred, in stream order), a page at a time: an
``AttachReply``; while its ``next_cursor`` is set, ask again with ``after`` set to it. A notice may come
both ways; its ``notice_id`` tells a repeat. Attach again after every reconnect. Neither reply carries a
``kind``: the fields tell them apart.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from ._base import ContractModel
from .notices import Notice

MAX_ERROR_CHARS = 2000
"""The longest ``AttachError.error``; the platform cuts its message to this."""
ATTACH_PAGE = 100
"""The most notices one ``AttachReply`` carries."""


class AttachRequest(ContractModel):
    """Asks for a workload's open notices; an empty body asks for the first page."""

    after: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    """The ``next_cursor`` of the previous reply; absent for the first page."""


class AttachReply(ContractModel):
    """A page of the workload's open notices, oldest first."""

    notices: Annotated[list[Notice], Field(max_length=ATTACH_PAGE)]
    """Open notices (pending or deferred) in stream order, after the request's ``after``."""
    next_cursor: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    """Where the next page starts (ask again with ``after`` set to it); null on the last page."""


class AttachError(ContractModel):
    """The open notices could not be read now (e.g. the registry is catching up); attach again later."""

    error: Annotated[str, Field(min_length=1, max_length=MAX_ERROR_CHARS)]
    """What went wrong, for people."""


ATTACH_ANSWER: TypeAdapter[AttachReply | AttachError] = TypeAdapter(AttachReply | AttachError)
"""Parses the reply to an attach request: ``ATTACH_ANSWER.validate_json(data)``."""
