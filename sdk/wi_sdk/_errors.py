"""The SDK's errors.

WIError
├── TransportError      the platform could not be reached (the client retries these by itself)
├── AuthError           the token is missing, malformed, unknown or revoked (401, or NATS refused it)
├── ForbiddenError      the token may not do this: it is another tenant's than the client's, or it
│                       names another tenant's data, or it is a tenant token on a platform route (403)
├── NotFoundError       no such notice (404)
├── ConflictError       a response after the deadline, or contradicting an earlier one (409)
└── InvalidInputError   the input broke the contract; ``problems`` names each field and rule (413, 422)

The token is checked when the client connects (``async with WorkloadClient(...)``, i.e. ``__aenter__``),
the same way on both transports: a missing, malformed, unknown or revoked token raises ``AuthError``
there, and a token of another tenant than the client's ``tenant`` raises ``ForbiddenError`` there, over
NATS (its permissions refuse it the tenant's inbox) as over HTTP (the gateway answers for the token's
tenant). A platform token is refused on the gateway's tenant routes (``ForbiddenError``), while over
NATS it may act for any tenant.
"""

from __future__ import annotations

from wi.contract import Problem


class WIError(Exception):
    """Base of every error the SDK raises."""


class TransportError(WIError):
    """The platform could not be reached."""


class AuthError(WIError):
    """The token is missing, malformed, unknown or revoked."""


class ForbiddenError(WIError):
    """The token may not do this: it is another tenant's, or the data or route is not its own."""


class NotFoundError(WIError):
    """No such notice."""


class ConflictError(WIError):
    """A response after the deadline, or contradicting an earlier one."""


class InvalidInputError(WIError):
    """The input broke the contract."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []
