"""Request-reply queries on the bus (core NATS, not JetStream): a workload reads back its hints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from ._base import WHOLE_NUMBER, ContractModel, Slug
from ._catalog import Problem
from .hints import Hint

MAX_SEQ = 2**63 - 1
MAX_PROBLEMS = 100
"""The most problems a ``QueryError`` lists."""
_FIELD_CHARS, _RULE_CHARS, _MESSAGE_CHARS = 200, 64, 2000


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

    field: Annotated[str, Field(max_length=_FIELD_CHARS)]
    """The field, as a dotted path ('$' for the whole query)."""
    rule: Annotated[str, Field(max_length=_RULE_CHARS)]
    """The rule broken."""
    message: Annotated[str, Field(max_length=_MESSAGE_CHARS)]
    """What is wrong, for people."""


class QueryError(ContractModel):
    """The reply to a query that cannot be answered."""

    kind: Literal["query_error"] = "query_error"
    problems: Annotated[list[QueryProblem], Field(max_length=MAX_PROBLEMS)]
    """What is wrong."""

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> QueryError:
        """The refusal naming these problems, cut to the contract's bounds however many and long they are
        (a query may carry any number of unknown fields with names of any length)."""
        return cls(
            problems=[
                QueryProblem(
                    field=p.field[:_FIELD_CHARS],
                    rule=p.rule[:_RULE_CHARS],
                    message=p.message[:_MESSAGE_CHARS],
                )
                for p in problems[:MAX_PROBLEMS]
            ]
        )
