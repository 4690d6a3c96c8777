"""The SDK's errors.

WIError
├── TransportError      the platform could not be reached (the client retries these by itself)
├── AuthError           the token is missing, unknown or revoked (401, or NATS refused it)
├── ForbiddenError      the token may not do this: another tenant's data, a platform route (403)
├── NotFoundError       no such notice (404)
├── ConflictError       a response after the deadline, or contradicting an earlier one (409)
└── InvalidInputError   the input broke the contract; ``problems`` names each field and rule (413, 422)
"""

from __future__ import annotations

from wi.contract import Problem


class WIError(Exception):
    """Base of every error the SDK raises."""


class TransportError(WIError):
    """The platform could not be reached."""


class AuthError(WIError):
    """The token is missing, unknown or revoked."""


class ForbiddenError(WIError):
    """The token may not do this."""


class NotFoundError(WIError):
    """No such notice."""


class ConflictError(WIError):
    """A response after the deadline, or contradicting an earlier one."""


class InvalidInputError(WIError):
    """The input broke the contract."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []
