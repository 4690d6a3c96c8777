"""Who a token speaks for, and the token format: no database needed, so workloads can use it too.

A token reads ``wi_<token_id>_<secret>``. On NATS it is the connection's token, or the password of the
user named by its id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PATTERN = re.compile(r"^wi_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class TokenKind(StrEnum):
    """Whom a token speaks for."""

    TENANT = "tenant"
    PLATFORM = "platform"


@dataclass(frozen=True)
class Identity:
    """Who presented a token."""

    token_id: str
    kind: TokenKind
    tenant: str | None

    @property
    def is_platform(self) -> bool:
        """Whether this is the platform (services, operators) rather than a tenant."""
        return self.kind is TokenKind.PLATFORM


def token_id_of(token: str) -> str:
    """The id part of a token (the NATS user it connects as); raises ValueError if it is not a WI token."""
    match = TOKEN_PATTERN.match(token)
    if match is None:
        raise ValueError("token: not a WI token (wi_<id>_<secret>)")
    return match.group(1)
