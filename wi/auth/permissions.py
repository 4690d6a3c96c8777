"""What a NATS connection may publish and subscribe to: a tenant only its own subjects, the platform all.

This is the one definition; the auth callout hands it to nats-server in each user JWT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wi.bus.subjects import (
    DELIVER_ROOT,
    QUERY_ROOT,
    SUBJECT_ROOTS,
    attach_subject,
    drill_report_subject,
    drill_start_subject,
    tenant_inbox,
)
from wi.contract import Family

from .identity import Identity


@dataclass(frozen=True)
class NatsPermissions:
    """Subjects a connection may publish and subscribe to; empty lists allow everything."""

    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()

    def jwt_claims(self) -> dict[str, Any]:
        """These permissions as the ``pub`` and ``sub`` claims of a NATS user JWT."""
        claims: dict[str, Any] = {}
        if self.publish:
            claims["pub"] = {"allow": list(self.publish)}
        if self.subscribe:
            claims["sub"] = {"allow": list(self.subscribe)}
        return claims


EVERYTHING = NatsPermissions()


def tenant_permissions(tenant: str) -> NatsPermissions:
    """A tenant's: publish its own hints, responses, deployments, queries, attach and drill requests;
    subscribe to its own inbox and notice deliveries."""
    return NatsPermissions(
        publish=(
            f"{SUBJECT_ROOTS[Family.HINT]}.{tenant}.>",
            f"{SUBJECT_ROOTS[Family.RESPONSE]}.{tenant}.>",
            f"{SUBJECT_ROOTS[Family.DEPLOYMENT]}.{tenant}.>",
            f"{QUERY_ROOT}.hints.{tenant}.>",
            attach_subject(tenant, "*"),
            drill_start_subject(tenant, "*"),
            drill_report_subject(tenant, "*"),
        ),
        subscribe=(f"{tenant_inbox(tenant)}.>", f"{DELIVER_ROOT}.{tenant}.>"),
    )


def permissions_for(identity: Identity) -> NatsPermissions:
    """What a token's connection may do: everything for the platform, its own subjects for a tenant."""
    if identity.is_platform:
        return EVERYTHING
    assert identity.tenant is not None
    return tenant_permissions(identity.tenant)
