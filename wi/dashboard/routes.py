"""The dashboard's routes under ``/ui``: the page and its files (public: they hold no data) and what the
page reads with a platform token (a snapshot, the live updates as Server-Sent Events, a workload)."""

from __future__ import annotations

import asyncio
import json
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from wi.contract import SLUG_PATTERN, utc_now
from wi.gateway.auth import PlatformCaller
from wi.gateway.problems import ApiProblem
from wi.gateway.routes import notice_delivery
from wi.registry import RegistryStore, hints_view

from .feed import DashboardFeed

STATIC = Path(__file__).with_name("static")
FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
"""The page's files, by name, with their media types."""
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
KEEPALIVE_S = 15.0
OPEN_NOTICES_SHOWN = 100

dashboard_router = APIRouter(prefix="/ui", include_in_schema=False)
Slug = Annotated[str, PathParam(pattern=SLUG_PATTERN, max_length=63)]


def _feed(request: Request) -> DashboardFeed:
    feed: DashboardFeed = request.app.state.dashboard
    return feed


@dashboard_router.get("")
async def page() -> FileResponse:
    """The dashboard: it asks for a platform token (or takes one from the address's #token=...)."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@dashboard_router.get("/static/{name}")
async def static_file(name: str) -> FileResponse:
    """One of the page's files."""
    if name not in FILES:
        raise ApiProblem(404, "Not found", f"no file {name}", [])
    return FileResponse(STATIC / name, media_type=FILES[name], headers=PAGE_HEADERS)


@dashboard_router.get("/api/snapshot")
async def snapshot(caller: PlatformCaller, request: Request) -> JSONResponse:
    """The fleet, power domains, recent timeline and workloads, as of now."""
    return JSONResponse(_feed(request).snapshot())


@dashboard_router.get("/api/stream")
async def stream(caller: PlatformCaller, request: Request) -> StreamingResponse:
    """Server-Sent Events: first ``snapshot``, then an ``update`` for each change as the bus tells it."""
    feed = _feed(request)
    stopping: asyncio.Event = request.app.state.stopping

    async def events() -> AsyncIterator[str]:
        with feed.listen() as updates:
            yield f"event: snapshot\ndata: {json.dumps(feed.snapshot())}\n\n"
            stop = asyncio.ensure_future(stopping.wait())
            try:
                while True:
                    update = asyncio.ensure_future(updates.get())
                    await asyncio.wait({update, stop}, timeout=KEEPALIVE_S, return_when=FIRST_COMPLETED)
                    if not update.done():
                        update.cancel()
                        if stop.done():
                            return
                        yield ": keep-alive\n\n"
                    elif update.result() is None:
                        return
                    else:
                        yield f"event: update\ndata: {json.dumps(update.result())}\n\n"
            finally:
                stop.cancel()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@dashboard_router.get("/api/workloads/{tenant}/{workload}")
async def workload_detail(caller: PlatformCaller, request: Request, tenant: Slug, workload: Slug) -> Any:
    """A workload's effective hints and open notices."""
    store: RegistryStore = request.app.state.store
    now = utc_now()
    effective = await asyncio.to_thread(store.effective, tenant, workload, now)
    stored = await asyncio.to_thread(
        store.notices, tenant, workload, open_only=True, limit=OPEN_NOTICES_SHOWN
    )
    notices = [notice_delivery(s, now).model_dump(mode="json", exclude_none=True) for s in stored]
    return {"hints": hints_view(effective).model_dump(mode="json", exclude_none=True), "notices": notices}
