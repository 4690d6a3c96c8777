"""AWS's instance metadata service (IMDSv2, IMDSv1 on request): Spot interruption notices and scheduled
maintenance events, as https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ documents them."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime
from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from wi.contract import Eviction, Maintenance, MaintenanceType

from ._notices import InstanceNotices, maintenance_ends_at

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TOKEN_TTL_S = 21600
"""Six hours, the longest TTL IMDSv2 grants."""

MAINTENANCE_CODES: dict[MaintenanceType, str] = {
    MaintenanceType.REBOOT: "system-reboot",
    MaintenanceType.REDEPLOY: "instance-stop",
    MaintenanceType.LIVE_MIGRATION: "system-maintenance",
    MaintenanceType.FREEZE: "system-maintenance",
}
"""The EC2 scheduled event code of each kind of WI maintenance (a redeploy moves the instance to another
host, as a stop and start does on EC2)."""


def spot_action(eviction: Eviction) -> Literal["stop", "terminate"]:
    """The Spot interruption action of an eviction: deallocate keeps the disks (stop), delete does not."""
    return "stop" if eviction.action == "deallocate" else "terminate"


def iso_time(moment: datetime) -> str:
    """A time as instance-action writes it, ``2026-11-23T12:00:00Z``: whole seconds, rounded down so that
    a workload reading it is never late."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def event_time(moment: datetime) -> str:
    """A time as scheduled maintenance events write it, ``23 Nov 2026 12:00:00 GMT``."""
    return f"{moment:%d %b %Y %H:%M:%S} GMT"


class Tokens:
    """IMDSv2 session tokens and when each expires."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}

    def issue(self, ttl_s: int) -> str:
        """A new token valid for ``ttl_s`` seconds."""
        now = time.monotonic()
        self._expiry = {token: end for token, end in self._expiry.items() if end > now}
        token = secrets.token_urlsafe(42)
        self._expiry[token] = now + ttl_s
        return token

    def valid(self, token: str) -> bool:
        """Whether a token was issued here and has not expired."""
        return self._expiry.get(token, 0.0) > time.monotonic()


def aws_routes(notices: InstanceNotices, imdsv1: bool) -> list[BaseRoute]:
    """The IMDS routes under ``/latest``; reads need a session token unless ``imdsv1``."""
    tokens = Tokens()

    async def put_token(request: Request) -> Response:
        if "X-Forwarded-For" in request.headers:  # as IMDS does: a token is never handed through a proxy
            return PlainTextResponse("Forbidden", status_code=403)
        ttl = request.headers.get(TOKEN_TTL_HEADER, "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TOKEN_TTL_S:
            return PlainTextResponse("Bad Request", status_code=400)
        return PlainTextResponse(tokens.issue(int(ttl)), headers={TOKEN_TTL_HEADER: ttl})

    def authorized(request: Request) -> bool:
        token = request.headers.get(TOKEN_HEADER)
        return imdsv1 if token is None else tokens.valid(token)

    def unauthorized() -> Response:
        return PlainTextResponse("Unauthorized", status_code=401)

    def not_found() -> Response:
        return PlainTextResponse("Not Found", status_code=404)

    async def instance_action(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        eviction = notices.eviction()
        if eviction is None:
            return not_found()
        return JSONResponse({"action": spot_action(eviction), "time": iso_time(eviction.not_before)})

    async def termination_time(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        eviction = notices.eviction()
        if eviction is None or spot_action(eviction) != "terminate":
            return not_found()
        return PlainTextResponse(iso_time(eviction.not_before))

    async def maintenance_scheduled(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return JSONResponse([_scheduled_event(m) for m in notices.maintenances()])

    return [
        Route("/latest/api/token", put_token, methods=["PUT"]),
        Route("/latest/meta-data/spot/instance-action", instance_action),
        Route("/latest/meta-data/spot/termination-time", termination_time),
        Route("/latest/meta-data/events/maintenance/scheduled", maintenance_scheduled),
    ]


def _scheduled_event(maintenance: Maintenance) -> dict[str, str]:
    digest = hashlib.sha256(maintenance.notice_id.encode()).hexdigest()
    return {
        "NotBefore": event_time(maintenance.not_before),
        "Code": MAINTENANCE_CODES[maintenance.type],
        "Description": f"scheduled {maintenance.type.value.replace('_', ' ')}",
        "EventId": f"instance-event-{digest[:17]}",
        "NotAfter": event_time(maintenance_ends_at(maintenance)),
        "State": "active",
    }
