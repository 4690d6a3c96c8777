"""GCE's metadata server: ``maintenance-event`` and ``preempted``, with ``wait_for_change``, as
https://cloud.google.com/compute/docs/metadata/querying-metadata documents them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from wi.contract import MaintenanceType

from ._notices import InstanceNotices

FLAVOR_HEADER = "Metadata-Flavor"
MIGRATING = frozenset({MaintenanceType.LIVE_MIGRATION, MaintenanceType.FREEZE})
"""The maintenances the instance lives through (GCE migrates it); the others stop it."""


def etag(value: str) -> str:
    """The ETag of a value: equal values, equal tags."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def maintenance_event(notices: InstanceNotices) -> str:
    """NONE, or what the first maintenance not yet over does to the instance."""
    maintenances = notices.maintenances()
    if not maintenances:
        return "NONE"
    if maintenances[0].type in MIGRATING:
        return "MIGRATE_ON_HOST_MAINTENANCE"
    return "TERMINATE_ON_HOST_MAINTENANCE"


def preempted(notices: InstanceNotices) -> str:
    """TRUE from the moment the instance's eviction is known (its whole notice ahead), else FALSE."""
    return "FALSE" if notices.eviction() is None else "TRUE"


def gce_routes(notices: InstanceNotices) -> list[BaseRoute]:
    """The two values under ``/computeMetadata/v1/instance``."""

    def serving(read: Callable[[InstanceNotices], str]) -> Callable[[Request], Awaitable[Response]]:
        async def value(request: Request) -> Response:
            if request.headers.get(FLAVOR_HEADER) != "Google":
                return PlainTextResponse(f"Missing {FLAVOR_HEADER}:Google header.", status_code=403)
            params = request.query_params
            current = read(notices)
            if params.get("wait_for_change", "").lower() == "true":
                timeout = params.get("timeout_sec")
                if timeout is not None and not timeout.isdigit():
                    return PlainTextResponse("timeout_sec: a whole number of seconds", status_code=400)
                last = params.get("last_etag", etag(current))
                current = await _changed_from(notices, read, last, None if timeout is None else int(timeout))
            headers = {FLAVOR_HEADER: "Google", "ETag": etag(current)}
            return PlainTextResponse(current, headers=headers, media_type="application/text")

        return value

    return [
        Route("/computeMetadata/v1/instance/maintenance-event", serving(maintenance_event)),
        Route("/computeMetadata/v1/instance/preempted", serving(preempted)),
    ]


async def _changed_from(
    notices: InstanceNotices, read: Callable[[InstanceNotices], str], last_etag: str, timeout_s: int | None
) -> str:
    """The value once its ETag differs from ``last_etag``, or as it is after ``timeout_s`` seconds or when
    the agent stops."""
    loop = asyncio.get_running_loop()
    give_up = None if timeout_s is None else loop.time() + timeout_s
    while etag(current := read(notices)) == last_etag and not notices.closed:
        left = None if give_up is None else give_up - loop.time()
        if left is not None and left <= 0:
            break
        await notices.wait_for_change(left)
    return current
