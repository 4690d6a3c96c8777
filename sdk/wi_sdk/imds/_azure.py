"""Azure's Scheduled Events, as https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events
documents them; an approval (``StartRequests``) becomes WI's ack."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wi.contract import Eviction, Maintenance, MaintenanceType, utc_now

from .._errors import ConflictError, WIError
from ._notices import InstanceNotices

log = logging.getLogger("wi_sdk.imds")

API_VERSIONS = frozenset(
    {"2017-04-01", "2017-08-01", "2017-11-01", "2019-01-01", "2019-04-01", "2019-08-01", "2020-07-01"}
)
"""The Scheduled Events API versions Azure documents; every one gets the 2020-07-01 document."""

EVENT_TYPES: dict[MaintenanceType, str] = {
    MaintenanceType.REBOOT: "Reboot",
    MaintenanceType.REDEPLOY: "Redeploy",
    MaintenanceType.LIVE_MIGRATION: "Freeze",
    MaintenanceType.FREEZE: "Freeze",
}
"""The Scheduled Events type of each kind of WI maintenance (a live migration pauses the VM: a Freeze)."""

UNKNOWN_DURATION_S = -1
"""DurationInSeconds of a Preempt: the VM does not come back."""
EVENT_IDS = uuid.UUID("5f1b0c52-6a4e-4c8e-9d61-7d0f8f3b2a11")
"""The namespace of the GUIDs that name WI notices as Scheduled Events."""


def event_id(notice: Eviction | Maintenance) -> str:
    """The Scheduled Events id of a notice: a GUID derived from the notice id, stable across restarts."""
    return str(uuid.uuid5(EVENT_IDS, notice.notice_id))


def rfc1123(moment: datetime) -> str:
    """A time as NotBefore writes it, ``Mon, 23 Nov 2026 12:00:00 GMT`` (whole seconds, rounded down)."""
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def azure_routes(notices: InstanceNotices) -> list[BaseRoute]:
    """``/metadata/scheduledevents``: GET the document, POST ``StartRequests`` to approve events early."""

    def refused(request: Request) -> Response | None:
        if request.headers.get("Metadata", "").lower() != "true":
            return _error(400, "Bad request. Required metadata header not specified")
        version = request.query_params.get("api-version")
        if version is None:
            return _error(400, "Bad request. api-version was not specified in the request")
        if version not in API_VERSIONS:
            return _error(400, f"Bad request. api-version {version} is invalid")
        return None

    async def document(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        return JSONResponse({"DocumentIncarnation": notices.incarnation, "Events": _events(notices)})

    async def start_requests(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        try:
            body = json.loads(await request.body())
            wanted = [str(entry["EventId"]) for entry in body["StartRequests"]]
        except (ValueError, TypeError, KeyError):
            return _error(400, 'Bad request. Expected {"StartRequests": [{"EventId": "..."}]}')
        held: list[Eviction | Maintenance] = [*notices.evictions(), *notices.maintenances()]
        by_event = {event_id(notice): notice for notice in held}
        unknown = [wanted_id for wanted_id in wanted if wanted_id not in by_event]
        if unknown:
            return _error(400, f"Bad request. No scheduled event {', '.join(unknown)}")
        for wanted_id in wanted:
            notice = by_event[wanted_id]
            try:
                await notices.ack(notice.notice_id, "approved through Scheduled Events (StartRequests)")
            except ConflictError as exc:
                return _error(409, str(exc))
            except WIError as exc:
                log.warning("could not ack notice %s: %s", notice.notice_id, exc)
                return _error(503, f"WI did not take the approval: {exc}")
        return Response(status_code=200)

    return [
        Route("/metadata/scheduledevents", document, methods=["GET"]),
        Route("/metadata/scheduledevents", start_requests, methods=["POST"]),
    ]


def _events(notices: InstanceNotices) -> list[dict[str, Any]]:
    now = utc_now()
    events = [
        _event(
            eviction,
            notices,
            now,
            "Preempt",
            UNKNOWN_DURATION_S,
            f"The platform evicts this VM: {eviction.reason}",
        )
        for eviction in notices.evictions()
    ]
    events += [
        _event(
            maintenance,
            notices,
            now,
            EVENT_TYPES[maintenance.type],
            maintenance.expected_duration_s,
            f"Scheduled {maintenance.type.value.replace('_', ' ')} of the VM's host",
        )
        for maintenance in notices.maintenances(now)
    ]
    return events


def _event(
    notice: Eviction | Maintenance,
    notices: InstanceNotices,
    now: datetime,
    event_type: str,
    duration_s: int,
    description: str,
) -> dict[str, Any]:
    started = notices.started(notice, now)
    return {
        "EventId": event_id(notice),
        "EventStatus": "Started" if started else "Scheduled",
        "EventType": event_type,
        "ResourceType": "VirtualMachine",
        "Resources": [notices.instance],
        "NotBefore": "" if started else rfc1123(notice.not_before),
        "Description": description,
        "EventSource": "Platform",
        "DurationInSeconds": duration_s,
    }
