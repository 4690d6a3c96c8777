"""Tokens in the database: made, listed, revoked and checked. Platform side only.

The database keeps only a token's SHA-256 (checked on HTTP requests) and its bcrypt (handed to
nats-server, which checks it when the token is the NATS password of the user named by its id).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import bcrypt
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from wi.contract import utc_now

from .identity import TOKEN_PATTERN, Identity, TokenKind
from .tables import ApiToken


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


class TokenStore:
    """Creates, lists, revokes and checks tokens."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, kind: TokenKind, tenant: str | None = None, label: str | None = None) -> str:
        """Makes a token and returns it; this is the only time it is ever seen."""
        if (kind is TokenKind.TENANT) != (tenant is not None):
            raise ValueError("tenant: a tenant token names its tenant; a platform token names none")
        token_id = secrets.token_hex(6)
        token = f"wi_{token_id}_{secrets.token_urlsafe(32)}"
        hashed = bcrypt.hashpw(token.encode(), bcrypt.gensalt(rounds=10)).decode()
        with Session(self.engine) as session:
            session.add(
                ApiToken(
                    token_id=token_id,
                    kind=kind,
                    tenant=tenant,
                    sha256=_sha256(token),
                    bcrypt=hashed,
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

    def active(self) -> list[ApiToken]:
        """The tokens in force, with their hashes (for the NATS configuration)."""
        with Session(self.engine) as session:
            return list(session.exec(select(ApiToken).where(col(ApiToken.revoked_at).is_(None))).all())

    def version(self) -> tuple[int, int]:
        """Changes whenever a token is created or revoked: (tokens, revoked tokens)."""
        with Session(self.engine) as session:
            total = session.exec(select(func.count()).select_from(ApiToken)).one()
            revoked = session.exec(
                select(func.count()).select_from(ApiToken).where(col(ApiToken.revoked_at).is_not(None))
            ).one()
        return int(total), int(revoked)

    def authenticate(self, token: str) -> Identity | None:
        """The identity behind a token, or None if it is malformed, unknown or revoked."""
        match = TOKEN_PATTERN.match(token)
        if match is None:
            return None
        with Session(self.engine) as session:
            row = session.get(ApiToken, match.group(1))
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.sha256, _sha256(token)):
            return None
        return Identity(row.token_id, TokenKind(row.kind), row.tenant)
