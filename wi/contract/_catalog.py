"""The catalog of v1 message types, and parsing with errors that name the field and the rule."""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ._base import MAX_CLOCK_SKEW_S, Family, Message
from .deployments import DeploymentMessage
from .events import PlatformEvent
from .hints import Hint
from .notices import Notice
from .responses import Response
from .verdicts import Verdict

MAX_JSON_DEPTH = 200
"""How deeply JSON may nest (pydantic's parser refuses deeper input); v1 messages need fewer than 10."""

_FAMILY_UNIONS: dict[Family, Any] = {
    Family.HINT: Hint,
    Family.NOTICE: Notice,
    Family.RESPONSE: Response,
    Family.DEPLOYMENT: DeploymentMessage,
    Family.EVENT: PlatformEvent,
    Family.VERDICT: Verdict,
}


def _members(union: Any) -> list[type[Message]]:
    if isinstance(union, type):
        return [union]
    inner = typing.get_args(union)[0]  # Annotated[A | B, Field(...)] -> A | B
    return list(typing.get_args(inner))


MESSAGE_TYPES: dict[Family, dict[str, type[Message]]] = {
    family: {model.model_fields["kind"].default: model for model in _members(union)}
    for family, union in _FAMILY_UNIONS.items()
}
"""Every v1 message type, by family and kind."""

_ADAPTERS: dict[Family, TypeAdapter[Any]] = {
    family: TypeAdapter(union) for family, union in _FAMILY_UNIONS.items()
}
_TAGGED = frozenset(family for family, union in _FAMILY_UNIONS.items() if not isinstance(union, type))
"""Families of several kinds: pydantic puts the kind's tag first in each error's path."""


@dataclass(frozen=True)
class Problem:
    """One broken rule: the field (a dotted path, '$' for the whole message), the rule and a message."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.rule}]"


class InvalidMessage(ValueError):
    """A message broke the v1 contract; ``problems`` lists every broken rule."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


_TYPE_TAG = re.compile(r"[\[('\"]")
"""Marks a path part that names a union member's type (``list[...]``, ``literal['any']``), not a field."""
_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_]*): (.*)$", re.DOTALL)


def problems_from(error: ValidationError, family: Family | None = None) -> list[Problem]:
    """Turns a pydantic ValidationError into Problems with dotted field paths.

    Undecodable JSON is ``json_invalid`` (``json_too_deep`` past ``MAX_JSON_DEPTH``) on ``$``. Given the
    ``family`` whose union was validated, the kind's tag is dropped from each path and an unknown or
    missing kind is named as such.
    """
    problems = []
    for item in error.errors(include_url=False):
        rule, loc, message = item["type"], item["loc"], item["msg"]
        context = item.get("ctx", {})
        if rule == "json_invalid":
            cause = str(context.get("error", message))
            if "recursion limit" in cause:
                problems.append(
                    Problem("$", "json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels: {cause}")
                )
            else:
                problems.append(Problem("$", "json_invalid", f"not valid JSON: {cause}"))
            continue
        if family is not None:
            if rule == "union_tag_invalid":
                known = ", ".join(sorted(MESSAGE_TYPES[family]))
                tag = str(context.get("tag", ""))[:64]
                problems.append(
                    Problem("kind", "unknown_kind", f"a {family} kind is one of {known}; got {tag!r}")
                )
                continue
            if rule == "union_tag_not_found":
                problems.append(Problem("kind", "missing", "every message names its kind"))
                continue
            if family in _TAGGED and loc:
                loc = loc[1:]
        if rule in ("dict_type", "model_type") and not loc:
            problems.append(Problem("$", "object_type", "a message is a JSON object"))
            continue
        field = ".".join(str(part) for part in loc if not _TYPE_TAG.search(str(part))) or "$"
        named = _FIELD_PREFIX.match(message)
        if named and field == "$":  # a model-level rule names its field in its message
            field, message = named.group(1), named.group(2)
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append(Problem(field, rule, message))
    return problems


def parse_message(family: Family, data: bytes | str, *, received_at: datetime | None = None) -> Message:
    """Validates JSON as a message of the family; raises InvalidMessage naming every broken rule.

    Untrusted bytes are welcome: pydantic's own JSON parser refuses nesting deeper than
    ``MAX_JSON_DEPTH`` and invalid UTF-8, and types are strict (JSON's ``"120"`` is not an integer, nor
    ``"yes"`` or ``1`` a boolean), as the published JSON Schemas say. Given ``received_at`` (the
    platform's clock when the message arrived), an ``issued_at`` more than ``MAX_CLOCK_SKEW_S`` after it
    is refused, so no message can outrank every later one by claiming to come from the future.
    """
    try:
        message: Message = _ADAPTERS[family].validate_json(data, strict=True)
    except ValidationError as exc:
        raise InvalidMessage(problems_from(exc, family)) from None
    if received_at is not None:
        check_clock(message, received_at)
    return message


def check_clock(message: Message, received_at: datetime) -> None:
    """Raises InvalidMessage if the message was issued more than MAX_CLOCK_SKEW_S after ``received_at``."""
    latest = received_at + timedelta(seconds=MAX_CLOCK_SKEW_S)
    if message.issued_at > latest:
        raise InvalidMessage(
            [
                Problem(
                    "issued_at",
                    "clock_skew",
                    f"must not be later than the platform's clock plus {MAX_CLOCK_SKEW_S} s "
                    f"({latest:%Y-%m-%dT%H:%M:%SZ})",
                )
            ]
        )
