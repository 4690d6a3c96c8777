"""What each NATS user may publish and subscribe to: a tenant only its own subjects."""

from __future__ import annotations

import json
from dataclasses import dataclass

from wi.bus.subjects import DELIVER_ROOT, QUERY_ROOT, SUBJECT_ROOTS, attach_subject, tenant_inbox
from wi.contract import Family

from .identity import TokenKind, nats_user
from .tables import ApiToken


@dataclass(frozen=True)
class NatsUser:
    """A user in the nats-server configuration."""

    user: str
    password_bcrypt: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False

    def config(self) -> str:
        """This user as an entry of nats-server's ``authorization.users`` list."""
        permissions = {
            "publish": {"allow": list(self.publish)},
            "subscribe": {"allow": list(self.subscribe)},
        }
        if self.allow_responses:
            permissions["allow_responses"] = True  # type: ignore[assignment]
        return json.dumps({"user": self.user, "password": self.password_bcrypt, "permissions": permissions})


EVERYTHING = (">",)


def tenant_permissions(tenant: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(publish, subscribe) of a tenant: its own hints, responses, deployments, queries and notices.

    Replies to what it was delivered (the acks of its notices) are allowed by allow_responses.
    """
    publish = (
        f"{SUBJECT_ROOTS[Family.HINT]}.{tenant}.>",
        f"{SUBJECT_ROOTS[Family.RESPONSE]}.{tenant}.>",
        f"{SUBJECT_ROOTS[Family.DEPLOYMENT]}.{tenant}.>",
        f"{QUERY_ROOT}.hints.{tenant}.>",
        attach_subject(tenant, "*"),
    )
    subscribe = (f"{tenant_inbox(tenant)}.>", f"{DELIVER_ROOT}.{tenant}.>")
    return publish, subscribe


def nats_users(tokens: list[ApiToken], platform_user: str, platform_password_bcrypt: str) -> list[NatsUser]:
    """The nats-server users: WI's own platform connection and one per active token."""
    users = [NatsUser(platform_user, platform_password_bcrypt, EVERYTHING, EVERYTHING)]
    for token in tokens:
        if token.kind == TokenKind.PLATFORM:
            users.append(NatsUser(nats_user(token.token_id), token.bcrypt, EVERYTHING, EVERYTHING))
        elif token.tenant is not None:
            publish, subscribe = tenant_permissions(token.tenant)
            users.append(
                NatsUser(nats_user(token.token_id), token.bcrypt, publish, subscribe, allow_responses=True)
            )
    return users
