"""The gateway's routes: tenants write hints, deployments and responses and read hints and notices; the
platform writes events and notices and reads any tenant's hints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from wi.bus import Bus
from wi.contract import (
    ClearHint,
    Family,
    HintKind,
    HintsView,
    InvalidMessage,
    Message,
    Problem,
    ResponseBase,
    parse_message,
    utc_now,
)
from wi.contract.http import (
    MAX_HINTS_PER_REQUEST,
    Accepted,
    NoticeDelivery,
    NoticePage,
    ResponseAccepted,
    ResponseRequest,
    TenantHints,
)
from wi.registry import (
    HINTS_CONSUMER,
    READ_YOUR_WRITES_WAIT_S,
    RegistryStore,
    ResponseRefused,
    StoredNotice,
    caught_up,
    hints_view,
    respond,
)

from .auth import PlatformCaller, TenantCaller
from .problems import ApiProblem, error_responses, invalid

Workload = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", max_length=63, description="The workload.")
]
NOTICE_POLL_S = 0.2
SSE_KEEPALIVE_S = 15.0

tenant_router = APIRouter(prefix="/v1/workloads/{workload}", tags=["workloads"])
platform_router = APIRouter(prefix="/v1/platform", tags=["platform"])


def _bus(request: Request) -> Bus:
    bus: Bus = request.app.state.bus
    return bus


def _store(request: Request) -> RegistryStore:
    store: RegistryStore = request.app.state.store
    return store


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise ApiProblem(
            422, "Invalid input", "the body is not JSON", [Problem("$", "json_invalid", str(exc))]
        ) from None


def _as_tenant(item: Any, tenant: str, workload: str, path: str) -> dict[str, Any]:
    """A tenant's message body with the tenant from the token and the workload from the path."""
    if not isinstance(item, dict):
        raise ApiProblem(
            422,
            "Invalid input",
            "a message is a JSON object",
            [Problem(path or "$", "object_type", "expected an object")],
        )
    if item.get("tenant", tenant) != tenant:
        raise ApiProblem(
            403,
            "Forbidden",
            "the tenant comes from your token",
            [Problem(f"{path}tenant", "other_tenant", f"you may write only tenant {tenant}")],
        )
    if item.get("workload", workload) != workload:
        raise ApiProblem(
            422,
            "Invalid input",
            "the workload comes from the path",
            [Problem(f"{path}workload", "path_mismatch", f"must be {workload} or absent")],
        )
    return {**item, "tenant": tenant, "workload": workload}


async def _publish(bus: Bus, messages: list[Message], source: str) -> Accepted:
    seq = 0
    for message in messages:
        seq = (await bus.publish(message, source=source)).seq
    return Accepted(ids=[m.message_id for m in messages], seq=seq)


def _source(tenant: str) -> str:
    return f"/gateway/tenants/{tenant}"


ANY_OBJECT = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
}


@tenant_router.post(
    "/hints",
    status_code=202,
    response_model=Accepted,
    summary="Set hints",
    description=(
        'One hint, or `{"hints": [...]}` with up to 100. Each is a v1 hint (schemas/v1/hint/) without '
        "tenant and workload, which come from the token and the path."
    ),
    openapi_extra=ANY_OBJECT,
    responses=error_responses(401, 403, 413, 422),
)
async def set_hints(workload: Workload, caller: TenantCaller, request: Request) -> Accepted:
    assert caller.tenant is not None
    body = await _json_body(request)
    batch = isinstance(body, dict) and set(body) == {"hints"}
    items = body["hints"] if batch else [body]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_HINTS_PER_REQUEST:
        raise ApiProblem(
            422,
            "Invalid input",
            "hints is a list of 1 to 100 hints",
            [Problem("hints", "length", f"give 1 to {MAX_HINTS_PER_REQUEST} hints")],
        )
    hints: list[Message] = []
    for index, item in enumerate(items):
        prefix = f"hints[{index}]." if batch else ""
        try:
            hints.append(parse_message(Family.HINT, _as_tenant(item, caller.tenant, workload, prefix)))
        except InvalidMessage as exc:
            raise invalid(exc, prefix) from None
    return await _publish(_bus(request), hints, _source(caller.tenant))


@tenant_router.get(
    "/hints",
    response_model=HintsView,
    summary="Read effective hints",
    responses=error_responses(401, 403, 422),
)
async def get_hints(
    workload: Workload,
    caller: TenantCaller,
    request: Request,
    after_seq: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="Wait until the hint with this `seq` is applied.")
    ] = None,
) -> HintsView:
    assert caller.tenant is not None
    complete = after_seq is None or await caught_up(
        _bus(request), HINTS_CONSUMER, after_seq, READ_YOUR_WRITES_WAIT_S
    )
    effective = await asyncio.to_thread(_store(request).effective, caller.tenant, workload, utc_now())
    return hints_view(effective, complete)


@tenant_router.delete(
    "/hints/{kind}",
    status_code=202,
    response_model=Accepted,
    summary="Clear a hint",
    responses=error_responses(401, 403, 422),
)
async def clear_hint(
    workload: Workload,
    kind: HintKind,
    caller: TenantCaller,
    request: Request,
    instance: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", max_length=63)] = None,
) -> Accepted:
    assert caller.tenant is not None
    clear = ClearHint(tenant=caller.tenant, workload=workload, hint_kind=kind, instance=instance)
    return await _publish(_bus(request), [clear], _source(caller.tenant))


@tenant_router.post(
    "/deployments",
    status_code=202,
    response_model=Accepted,
    summary="Request a deployment",
    description="A v1 deployment_request (schemas/v1/deployment/) without tenant and workload.",
    openapi_extra=ANY_OBJECT,
    responses=error_responses(401, 403, 413, 422),
)
async def deploy(workload: Workload, caller: TenantCaller, request: Request) -> Accepted:
    assert caller.tenant is not None
    body = _as_tenant(await _json_body(request), caller.tenant, workload, "")
    body.setdefault("kind", "deployment_request")
    try:
        message = parse_message(Family.DEPLOYMENT, body)
    except InvalidMessage as exc:
        raise invalid(exc) from None
    return await _publish(_bus(request), [message], _source(caller.tenant))


def _delivery(stored: StoredNotice, now: datetime) -> NoticeDelivery:
    return NoticeDelivery(
        cursor=stored.stream_seq,
        state=stored.status.observed(stored.notice, now),
        deadline=stored.status.deadline(stored.notice),
        notice=stored.notice,
    )


async def _read_notices(
    request: Request, tenant: str, workload: str, after: int | None
) -> tuple[list[StoredNotice], int]:
    """Notices after the cursor or, without one, the open ones; and the cursor to read on from.

    Without a cursor, the newest notice's position is read first: a notice stored after that read is
    open, so it is in this answer or after the returned cursor, never skipped.
    """
    store = _store(request)
    start = after if after is not None else await asyncio.to_thread(store.notice_cursor, tenant, workload)
    found = await asyncio.to_thread(store.notices, tenant, workload, after=after, open_only=after is None)
    return found, max([start, *(n.stream_seq for n in found)])


@tenant_router.get(
    "/notices",
    response_model=NoticePage,
    summary="Read notices (long poll)",
    description="Without `after`: the open notices (pending or deferred). With it: every notice "
    "after that cursor. `wait` holds the request until one arrives (the server may answer earlier, at "
    "the latest after its long-poll limit, 30 s by default).",
    responses=error_responses(401, 403, 422),
)
async def get_notices(
    workload: Workload,
    caller: TenantCaller,
    request: Request,
    after: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="A cursor from an earlier page.")
    ] = None,
    wait: Annotated[float, Query(ge=0, le=60, description="Seconds to wait for a notice.")] = 0,
) -> NoticePage:
    assert caller.tenant is not None
    stopping: asyncio.Event = request.app.state.stopping
    deadline = asyncio.get_running_loop().time() + min(wait, request.app.state.long_poll_max_s)
    while True:
        found, cursor = await _read_notices(request, caller.tenant, workload, after)
        if found or asyncio.get_running_loop().time() >= deadline or stopping.is_set():
            break
        await asyncio.sleep(NOTICE_POLL_S)
    now = utc_now()
    return NoticePage(notices=[_delivery(n, now) for n in found], next_cursor=cursor)


@tenant_router.get(
    "/notices/stream",
    summary="Stream notices (Server-Sent Events)",
    description="Each event: `id` the cursor, `event: notice`, `data` a NoticeDelivery. Resumes "
    "after `Last-Event-ID` (or `after`); without either, starts with the open notices.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(401, 403, 422)},
)
async def stream_notices(
    workload: Workload,
    caller: TenantCaller,
    request: Request,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> StreamingResponse:
    assert caller.tenant is not None
    tenant = caller.tenant
    last_event = request.headers.get("last-event-id", "")
    cursor = int(last_event) if last_event.isdigit() else after
    stopping: asyncio.Event = request.app.state.stopping

    async def events() -> AsyncIterator[str]:
        position = cursor
        quiet_since = asyncio.get_running_loop().time()
        yield ": connected\n\n"
        while not stopping.is_set() and not await request.is_disconnected():
            found, position = await _read_notices(request, tenant, workload, position)
            now = utc_now()
            for stored in found:
                data = _delivery(stored, now).model_dump_json()
                yield f"id: {stored.stream_seq}\nevent: notice\ndata: {data}\n\n"
            if found:
                quiet_since = asyncio.get_running_loop().time()
            elif asyncio.get_running_loop().time() - quiet_since > SSE_KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet_since = asyncio.get_running_loop().time()
            await asyncio.sleep(NOTICE_POLL_S)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


_REFUSAL_STATUS = {"late": 409, "conflict": 409}


@tenant_router.post(
    "/notices/{notice_id}/responses",
    status_code=202,
    response_model=ResponseAccepted,
    summary="Respond to a notice",
    responses=error_responses(401, 403, 404, 409, 413, 422),
)
async def respond_to_notice(
    workload: Workload,
    notice_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", max_length=128)],
    answer: ResponseRequest,
    caller: TenantCaller,
    request: Request,
) -> ResponseAccepted:
    assert caller.tenant is not None
    found = await asyncio.to_thread(_store(request).notice, notice_id)
    if found is None:
        raise ApiProblem(
            404,
            "Not found",
            f"no notice {notice_id}",
            [Problem("notice_id", "unknown_notice", "no such notice")],
        )
    notice, status = found
    if (notice.tenant, notice.workload) != (caller.tenant, workload):
        raise ApiProblem(
            403,
            "Forbidden",
            "the notice belongs to another workload",
            [Problem("notice_id", "other_workload", "not a notice of this workload")],
        )
    body = {
        "kind": answer.action.value,
        "tenant": caller.tenant,
        "workload": workload,
        "notice_id": notice_id,
        **answer.model_dump(exclude={"action"}, exclude_none=True),
    }
    try:
        response = parse_message(Family.RESPONSE, body)
    except InvalidMessage as exc:
        raise invalid(exc) from None
    assert isinstance(response, ResponseBase)
    try:
        new_status = respond(notice, status, response, utc_now())
    except ResponseRefused as exc:
        code = _REFUSAL_STATUS.get(exc.rule, 422)
        raise ApiProblem(
            code,
            "Conflict" if code == 409 else "Invalid input",
            str(exc),
            [Problem("action", exc.rule, str(exc).split(": ", 1)[-1])],
        ) from None
    await _bus(request).publish(response, source=_source(caller.tenant))
    return ResponseAccepted(response_id=response.message_id, state=new_status.state)


async def _publish_platform(request: Request, family: Family) -> Accepted:
    body = await _json_body(request)
    try:
        message = parse_message(family, body if isinstance(body, dict) else {"kind": None})
    except InvalidMessage as exc:
        raise invalid(exc) from None
    return await _publish(_bus(request), [message], "/gateway/platform")


@platform_router.post(
    "/events",
    status_code=202,
    response_model=Accepted,
    summary="Publish a platform event",
    description="A v1 platform event (schemas/v1/event/).",
    openapi_extra=ANY_OBJECT,
    responses=error_responses(401, 403, 413, 422),
)
async def publish_event(caller: PlatformCaller, request: Request) -> Accepted:
    return await _publish_platform(request, Family.EVENT)


@platform_router.post(
    "/notices",
    status_code=202,
    response_model=Accepted,
    summary="Send a notice",
    description="A v1 notice (schemas/v1/notice/) to a tenant's workload.",
    openapi_extra=ANY_OBJECT,
    responses=error_responses(401, 403, 413, 422),
)
async def send_notice(caller: PlatformCaller, request: Request) -> Accepted:
    return await _publish_platform(request, Family.NOTICE)


@platform_router.get(
    "/hints",
    response_model=TenantHints,
    summary="Read a tenant's effective hints",
    responses=error_responses(401, 403, 422),
)
async def tenant_hints(
    caller: PlatformCaller,
    request: Request,
    tenant: Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", max_length=63)],
    kind: HintKind | None = None,
) -> TenantHints:
    views = await asyncio.to_thread(_store(request).effective_for_tenant, tenant, kind, utc_now())
    return TenantHints(tenant=tenant, workloads=[hints_view(v) for v in views])
