"""Who is calling: the bearer token's identity, checked for the route's audience."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wi.auth import Identity
from wi.auth.store import TokenStore
from wi.contract import Problem

from .problems import ApiProblem

bearer = HTTPBearer(
    auto_error=False, description="A WI token: `wi tokens create --tenant T` or `--platform`."
)


async def identity(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Identity:
    """The caller's identity; 401 without a valid token."""
    if credentials is None:
        raise ApiProblem(
            401,
            "Unauthorized",
            "send Authorization: Bearer <token>",
            [Problem("header:authorization", "missing", "a bearer token is required")],
        )
    tokens: TokenStore = request.app.state.tokens
    found = tokens.recently_authenticated(credentials.credentials) or await asyncio.to_thread(
        tokens.authenticate, credentials.credentials
    )
    if found is None:
        raise ApiProblem(
            401,
            "Unauthorized",
            "the token is unknown, revoked or malformed",
            [Problem("header:authorization", "invalid_token", "unknown, revoked or malformed")],
        )
    return found


async def tenant(caller: Annotated[Identity, Depends(identity)]) -> Identity:
    """A tenant caller (the platform may act for any tenant on platform routes only)."""
    if caller.tenant is None:
        raise ApiProblem(
            403,
            "Forbidden",
            "tenant routes take a tenant token",
            [Problem("header:authorization", "tenant_token_required", "use a tenant token")],
        )
    return caller


async def platform(caller: Annotated[Identity, Depends(identity)]) -> Identity:
    """A platform caller; 403 for a tenant token."""
    if not caller.is_platform:
        raise ApiProblem(
            403,
            "Forbidden",
            "platform routes take a platform token",
            [Problem("header:authorization", "platform_token_required", "use a platform token")],
        )
    return caller


TenantCaller = Annotated[Identity, Depends(tenant)]
PlatformCaller = Annotated[Identity, Depends(platform)]
