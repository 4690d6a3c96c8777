"""Tokens in the database: made, listed, revoked and checked. Platform side only.

The database keeps only a token's SHA-256, checked on HTTP requests and by the NATS auth callout.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from wi.contract import utc_now
from wi.contract._base import SLUG_PATTERN

from .identity import TOKEN_PATTERN, Identity, TokenKind
from .tables import ApiToken

_SLUG = re.compile(SLUG_PATTERN)


class InvalidToken(Exception):
    """A token that authorizes nothing; the message says why (never the token)."""


@dataclass(frozen=True)
class TokenInfo:
    """What ``wi tokens list`` shows of a token (never the token itself)."""

    token_id: str
    kind: TokenKind
    tenant: str | None
    label: str | None
    created_at: str
    revoked: bool


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tenant_problem(tenant: str) -> str | None:
    """Why ``tenant`` cannot name a tenant, or None if it can.

    Tenants become NATS subject tokens and permissions, so they are slugs like every other id.
    """
    if _SLUG.match(tenant):
        return None
    return f"tenant: {tenant!r} is not a slug (lowercase letters, digits and '-', at most 63, {SLUG_PATTERN})"


IDENTITY_CACHE_S = 1.0
"""How long a checked token is trusted without asking the database again: a token revoked by another
process (``wi tokens revoke``) is refused over HTTP and NATS within this time; one revoked here at once.
(Its open NATS connections are closed within ``REVOCATION_POLL_S`` of ``wi up``.)"""
IDENTITY_CACHE_SIZE = 10_000


class TokenStore:
    """Creates, lists, revokes and checks tokens."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._checked: dict[str, tuple[Identity, float]] = {}

    def create(self, kind: TokenKind, tenant: str | None = None, label: str | None = None) -> str:
        """Makes a token and returns it; this is the only time it is ever seen.

        Raises ValueError, naming the field and rule, for a tenant token without a slug tenant or a
        platform token with one.
        """
        if (kind is TokenKind.TENANT) != (tenant is not None):
            raise ValueError("tenant: a tenant token names its tenant; a platform token names none")
        if tenant is not None and (problem := tenant_problem(tenant)):
            raise ValueError(problem)
        token_id = secrets.token_hex(6)
        token = f"wi_{token_id}_{secrets.token_urlsafe(32)}"
        with Session(self.engine) as session:
            session.add(
                ApiToken(
                    token_id=token_id,
                    kind=kind,
                    tenant=tenant,
                    sha256=_sha256(token),
                    label=label,
                    created_at=utc_now(),
                )
            )
            session.commit()
        return token

    def revoke(self, token_id: str) -> bool:
        """Revokes a token; False if there is no such active token."""
        with Session(self.engine) as session:
            row = session.get(ApiToken, token_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = utc_now()
            session.add(row)
            session.commit()
        self._checked.clear()
        return True

    def all_tokens(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        with Session(self.engine) as session:
            rows = session.exec(select(ApiToken).order_by(col(ApiToken.created_at))).all()
        return [
            TokenInfo(
                r.token_id,
                TokenKind(r.kind),
                r.tenant,
                r.label,
                r.created_at.isoformat(),
                r.revoked_at is not None,
            )
            for r in rows
        ]

    def revoked_ids(self) -> set[str]:
        """The ids of every revoked token."""
        with Session(self.engine) as session:
            return set(
                session.exec(select(ApiToken.token_id).where(col(ApiToken.revoked_at).is_not(None))).all()
            )

    def broken_tenants(self) -> list[TokenInfo]:
        """Active tenant tokens whose tenant is not a slug (stored before the rule held): never authorized."""
        return [
            info
            for info in self.all_tokens()
            if not info.revoked and info.tenant is not None and tenant_problem(info.tenant)
        ]

    def check(self, token: str) -> Identity:
        """The identity behind a token; raises InvalidToken saying why it authorizes nothing.

        A token found valid is trusted for ``IDENTITY_CACHE_S`` without asking the database again (HTTP
        requests and NATS connections arrive by the thousand at once, e.g. after a restart).
        """
        if (known := self.recently_authenticated(token)) is not None:
            return known
        match = TOKEN_PATTERN.match(token)
        if match is None:
            raise InvalidToken("malformed token")
        with Session(self.engine) as session:
            row = session.get(ApiToken, match.group(1))
        if row is None or not hmac.compare_digest(row.sha256, _sha256(token)):
            raise InvalidToken(f"unknown token {match.group(1)}")
        if row.revoked_at is not None:
            raise InvalidToken(f"revoked token {row.token_id}")
        if row.tenant is not None and (problem := tenant_problem(row.tenant)):
            raise InvalidToken(f"token {row.token_id}: {problem}")
        identity = Identity(row.token_id, TokenKind(row.kind), row.tenant)
        if len(self._checked) >= IDENTITY_CACHE_SIZE:
            self._checked.clear()
        self._checked[token] = (identity, time.monotonic())
        return identity

    def authenticate(self, token: str) -> Identity | None:
        """The identity behind a token, or None if it is malformed, unknown, revoked or names no slug."""
        try:
            return self.check(token)
        except InvalidToken:
            return None

    def recently_authenticated(self, token: str) -> Identity | None:
        """The identity ``check`` found for this token less than ``IDENTITY_CACHE_S`` ago, without
        touching the database; None otherwise (then call ``check`` or ``authenticate``)."""
        found = self._checked.get(token)
        if found is None or time.monotonic() - found[1] > IDENTITY_CACHE_S:
            return None
        return found[0]
