"""The catalog of v1 message types, and parsing with errors that name the field and the rule."""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ._base import Family, Message
from .deployments import DeploymentRequest
from .events import PlatformEvent
from .hints import Hint
from .notices import Notice
from .responses import Response

_FAMILY_UNIONS: dict[Family, Any] = {
    Family.HINT: Hint,
    Family.NOTICE: Notice,
    Family.RESPONSE: Response,
    Family.DEPLOYMENT: DeploymentRequest,
    Family.EVENT: PlatformEvent,
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


def message_type(family: Family, kind: str) -> type[Message]:
    """The model for a family and kind; raises InvalidMessage naming the kinds that exist."""
    try:
        return MESSAGE_TYPES[family][kind]
    except KeyError:
        known = ", ".join(sorted(MESSAGE_TYPES[family]))
        problem = Problem("kind", "unknown_kind", f"a {family} kind is one of {known}; got {kind!r}")
        raise InvalidMessage([problem]) from None


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


_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_]*): (.*)$", re.DOTALL)


def problems_from(error: ValidationError) -> list[Problem]:
    """Turns a pydantic ValidationError into Problems with dotted field paths."""
    problems = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "$"
        message = item["msg"]
        named = _FIELD_PREFIX.match(message)
        if named and field == "$":  # a model-level rule names its field in its message
            field, message = named.group(1), named.group(2)
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append(Problem(field, item["type"], message))
    return problems


def parse_message(family: Family, data: bytes | str | dict[str, Any]) -> Message:
    """Validates JSON (or a decoded dict) as a message of the family; raises InvalidMessage."""
    if not isinstance(data, dict):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidMessage([Problem("$", "json_invalid", f"not valid JSON: {exc}")]) from None
        if not isinstance(data, dict):
            raise InvalidMessage([Problem("$", "object_type", "a message is a JSON object")])
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise InvalidMessage([Problem("kind", "missing", "every message names its kind")])
    model = message_type(family, kind)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(problems_from(exc)) from None
