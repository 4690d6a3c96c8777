"""Request-reply queries on the bus (core NATS, not JetStream): a workload reads back its hints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ._base import WHOLE_NUMBER, ContractModel, Slug
from .hints import Hint

MAX_SEQ = 2**63 - 1


class HintsQuery(ContractModel):
    """Asks the registry for a workload's effective hints."""

    kind: Literal["hints_query"] = "hints_query"
    after_seq: Annotated[int, Field(ge=0, le=MAX_SEQ), WHOLE_NUMBER] | None = None
    """Wait (up to a few seconds) until the registry has applied the hints stream up to this sequence,
    e.g. the one a publish returned, so the answer includes that hint."""


class HintsView(ContractModel):
    """A workload's effective hints: workload-wide, and the per-instance overrides."""

    kind: Literal["hints_view"] = "hints_view"
    tenant: Slug
    """The tenant."""
    workload: Slug
    """The workload."""
    workload_hints: Annotated[list[Hint], Field(max_length=64)]
    """The workload-wide hints in effect, one per kind."""
    instance_hints: Annotated[
        dict[Slug, Annotated[list[Hint], Field(max_length=64)]], Field(max_length=100_000)
    ]
    """Hints in effect for single instances, overriding the workload-wide ones of the same kind."""
    complete: bool = True
    """False if after_seq was asked for and not reached in time: the answer may lack the newest hints."""


class QueryProblem(ContractModel):
    """One broken rule in a query."""

    field: Annotated[str, Field(max_length=200)]
    """The field, as a dotted path ('$' for the whole query)."""
    rule: Annotated[str, Field(max_length=64)]
    """The rule broken."""
    message: Annotated[str, Field(max_length=2000)]
    """What is wrong, for people."""


class QueryError(ContractModel):
    """The reply to a query that cannot be answered."""

    kind: Literal["query_error"] = "query_error"
    problems: Annotated[list[QueryProblem], Field(max_length=100)]
    """What is wrong."""
