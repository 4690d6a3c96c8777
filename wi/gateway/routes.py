"""The gateway's routes: tenants write hints, deployments and responses, read hints and notices and run
drills; the platform writes events and notices and reads any tenant's hints."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Annotated, Any, TypeVar

import nats.errors
import pydantic_core
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError

from wi.bus import Bus
from wi.contract import (
    MESSAGE_ID_PATTERN,
    SLUG_PATTERN,
    ClearHint,
    DeploymentEnd,
    DeploymentRequest,
    DeploymentScale,
    DrillReport,
    DrillRequest,
    Family,
    HintKind,
    HintsView,
    InvalidMessage,
    Message,
    Problem,
    ResponseBase,
    parse_message,
    problems_from,
    utc_now,
)
from wi.contract.http import (
    MAX_HINTS_PER_REQUEST,
    Accepted,
    NoticeDelivery,
    NoticePage,
    ResponseAccepted,
    ResponseRequest,
    ScaleRequest,
    TenantHints,
)
from wi.registry import (
    READ_YOUR_WRITES_WAIT_S,
    Progress,
    RegistryStore,
    StoredNotice,
    hints_view,
)

from .auth import PlatformCaller, TenantCaller
from .drills import DrillConflict, DrillDesk, RegistryBehind
from .openapi import DEPLOYMENT, DRILL, NOTICE, PLATFORM_EVENT, RESPONSE, SCALE, SET_HINTS, request_body
from .problems import ApiProblem, Unavailable, error_responses, invalid
from .verdicts import VerdictWatch, until

Workload = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=63, description="The workload.")]
SSE_KEEPALIVE_S = 15.0
NOTICES_PAGE = 100
"""The most notices one read of a workload's notices returns (a long poll's page, an SSE burst)."""
RESPONSE_JUDGED_WAIT_S = 5.0
"""How long a posted response waits for the registry's verdict before it is answered unjudged."""

tenant_router = APIRouter(prefix="/v1/workloads/{workload}", tags=["workloads"])
platform_router = APIRouter(prefix="/v1/platform", tags=["platform"])


def _bus(request: Request) -> Bus:
    bus: Bus = request.app.state.bus
    return bus


def _verdicts(request: Request) -> VerdictWatch:
    watch: VerdictWatch = request.app.state.verdicts
    return watch


def _store(request: Request) -> RegistryStore:
    store: RegistryStore = request.app.state.store
    return store


JSON_MEDIA_TYPE = "application/json"
PUBLISH_TIMEOUT_S = 5.0
"""How long a request waits for JetStream to store what it publishes before answering 503."""


async def _body(request: Request) -> bytes:
    """The request body, once its content type says JSON (415 otherwise)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise ApiProblem(
            415,
            "Unsupported media type",
            f"send the body as {JSON_MEDIA_TYPE}, not {media_type or 'no content type'}",
            [Problem("header:content-type", "media_type", f"must be {JSON_MEDIA_TYPE}")],
        )
    return await request.body()


def _parse(family: Family, body: bytes) -> Message:
    """A message of the family from JSON, with every broken rule in one 400 or 422."""
    try:
        return parse_message(family, body, received_at=utc_now())
    except InvalidMessage as exc:
        raise invalid(exc.problems) from None


T = TypeVar("T")
_ANY_JSON: TypeAdapter[Any] = TypeAdapter(Any)
_RESPONSE_REQUEST: TypeAdapter[ResponseRequest] = TypeAdapter(ResponseRequest)


def _validated(adapter: TypeAdapter[T], body: bytes) -> T:
    """Untrusted JSON through pydantic's depth-limited parser, strictly typed; 400 or 422 naming each rule."""
    try:
        return adapter.validate_json(body, strict=True)
    except ValidationError as exc:
        raise invalid(problems_from(exc)) from None


def _as_tenant(item: Any, tenant: str, workload: str) -> bytes:
    """A tenant's message as JSON, with the tenant from the token and the workload from the path."""
    if not isinstance(item, dict):
        raise invalid([Problem("$", "object_type", "a message is a JSON object")])
    if item.get("tenant", tenant) != tenant:
        raise ApiProblem(
            403,
            "Forbidden",
            "the tenant comes from your token",
            [Problem("tenant", "other_tenant", f"you may write only tenant {tenant}")],
        )
    if item.get("workload", workload) != workload:
        raise invalid([Problem("workload", "path_mismatch", f"must be {workload} or absent")])
    return pydantic_core.to_json({**item, "tenant": tenant, "workload": workload})


def _under(path: str, problem: Problem) -> Problem:
    """A problem of one item of a batch, its field prefixed by the item's path (e.g. ``hints[2]``)."""
    field = path if problem.field == "$" else f"{path}.{problem.field}"
    return Problem(field, problem.rule, problem.message)


@contextlib.contextmanager
def _storing(bus: Bus) -> Iterator[None]:
    """Around publishing: 503 when NATS is down or JetStream does not store the message now."""
    if not bus.nc.is_connected:
        raise Unavailable("nats", "the gateway is not connected to NATS")
    try:
        yield
    except (TimeoutError, nats.errors.Error) as exc:
        raise Unavailable("nats", f"JetStream did not store the message ({type(exc).__name__})") from exc


async def _publish(bus: Bus, messages: list[Message], source: str) -> Accepted:
    """Publishes in order and waits until JetStream stored each; 503 when NATS cannot store them now."""
    seq = 0
    with _storing(bus):
        for message in messages:
            seq = (await bus.publish(message, source=source, timeout_s=PUBLISH_TIMEOUT_S)).seq
    return Accepted(ids=[m.message_id for m in messages], seq=seq)


def _source(tenant: str) -> str:
    return f"/gateway/tenants/{tenant}"


@tenant_router.post(
    "/hints",
    status_code=202,
    response_model=Accepted,
    summary="Set hints",
    description=(
        'One hint, or `{"hints": [...]}` with up to 100. Each is a v1 hint (schemas/v1/hint/) without '
        "tenant and workload, which come from the token and the path."
    ),
    openapi_extra=request_body(SET_HINTS),
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
)
async def set_hints(workload: Workload, caller: TenantCaller, request: Request) -> Accepted:
    assert caller.tenant is not None
    body = _validated(_ANY_JSON, await _body(request))
    batch = isinstance(body, dict) and set(body) == {"hints"}
    items = body["hints"] if batch else [body]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_HINTS_PER_REQUEST:
        raise invalid([Problem("hints", "length", f"give 1 to {MAX_HINTS_PER_REQUEST} hints")])
    hints: list[Message] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        try:
            hints.append(_parse(Family.HINT, _as_tenant(item, caller.tenant, workload)))
        except ApiProblem as exc:
            if batch:
                exc.errors = [_under(f"hints[{index}]", p) for p in exc.errors]
            if exc.status != 422:
                raise
            problems += exc.errors
    if problems:
        raise invalid(problems)
    return await _publish(_bus(request), hints, _source(caller.tenant))


@tenant_router.get(
    "/hints",
    response_model=HintsView,
    summary="Read effective hints",
    responses=error_responses(401, 403, 422, 503),
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
    progress: Progress = request.app.state.progress
    complete = after_seq is None or await progress.reached(Family.HINT, after_seq, READ_YOUR_WRITES_WAIT_S)
    effective = await asyncio.to_thread(_store(request).effective, caller.tenant, workload, utc_now())
    return hints_view(effective, complete)


@tenant_router.delete(
    "/hints/{kind}",
    status_code=202,
    response_model=Accepted,
    summary="Clear a hint",
    responses=error_responses(401, 403, 422, 503),
)
async def clear_hint(
    workload: Workload,
    kind: HintKind,
    caller: TenantCaller,
    request: Request,
    instance: Annotated[str | None, Query(pattern=SLUG_PATTERN, max_length=63)] = None,
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
    openapi_extra=request_body(DEPLOYMENT),
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
)
async def deploy(workload: Workload, caller: TenantCaller, request: Request) -> Accepted:
    assert caller.tenant is not None
    body = _validated(_ANY_JSON, await _body(request))
    if isinstance(body, dict):
        body.setdefault("kind", "deployment_request")
    message = _parse(Family.DEPLOYMENT, _as_tenant(body, caller.tenant, workload))
    if not isinstance(message, DeploymentRequest):
        raise invalid([Problem("kind", "literal_error", "this route takes a deployment_request")])
    return await _publish(_bus(request), [message], _source(caller.tenant))


DeploymentName = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=63, description="The deployment.")]
_SCALE_REQUEST: TypeAdapter[ScaleRequest] = TypeAdapter(ScaleRequest)


@tenant_router.patch(
    "/deployments/{deployment}",
    status_code=202,
    response_model=Accepted,
    summary="Scale a deployment",
    description="More instances are placed (a placement notice says where); the newest go first.",
    openapi_extra=request_body(SCALE),
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
)
async def scale(
    workload: Workload, deployment: DeploymentName, caller: TenantCaller, request: Request
) -> Accepted:
    assert caller.tenant is not None
    wanted = _validated(_SCALE_REQUEST, await _body(request))
    ids = {} if wanted.request_id is None else {"request_id": wanted.request_id}
    message = DeploymentScale(
        tenant=caller.tenant, workload=workload, deployment=deployment, instances=wanted.instances, **ids
    )
    return await _publish(_bus(request), [message], _source(caller.tenant))


@tenant_router.delete(
    "/deployments/{deployment}",
    status_code=202,
    response_model=Accepted,
    summary="End a deployment",
    description="Every instance it runs is released.",
    responses=error_responses(401, 403, 422, 503),
)
async def end_deployment(
    workload: Workload,
    deployment: DeploymentName,
    caller: TenantCaller,
    request: Request,
    request_id: Annotated[
        str | None,
        Query(
            pattern=MESSAGE_ID_PATTERN,
            max_length=128,
            description="An idempotency key; one is made if absent.",
        ),
    ] = None,
) -> Accepted:
    assert caller.tenant is not None
    ids = {} if request_id is None else {"request_id": request_id}
    message = DeploymentEnd(tenant=caller.tenant, workload=workload, deployment=deployment, **ids)
    return await _publish(_bus(request), [message], _source(caller.tenant))


def notice_delivery(stored: StoredNotice, now: datetime) -> NoticeDelivery:
    """A stored notice as it is read: with its state and deadline as of ``now`` and its cursor."""
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
    open, so it is in this answer or after the returned cursor, never skipped. A full page reads on from
    its last notice, so open notices beyond the page come next (with every notice after that cursor, as
    reading after a cursor always does, answered ones too).
    """
    store = _store(request)
    start = after if after is not None else await asyncio.to_thread(store.notice_cursor, tenant, workload)
    found = await asyncio.to_thread(
        store.notices, tenant, workload, after=after, open_only=after is None, limit=NOTICES_PAGE
    )
    if len(found) == NOTICES_PAGE:
        return found, found[-1].stream_seq
    return found, max([start, *(n.stream_seq for n in found)])


@tenant_router.get(
    "/notices",
    response_model=NoticePage,
    summary="Read notices (long poll)",
    description="Without `after`: the open notices (pending or deferred). With it: every notice "
    "after that cursor. `wait` holds the request until one arrives (the server may answer earlier, at "
    "the latest after its long-poll limit, 30 s by default).",
    responses=error_responses(401, 403, 422, 503),
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
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, request.app.state.long_poll_max_s)
    while True:
        changed = _verdicts(request).change(caller.tenant, workload)
        found, cursor = await _read_notices(request, caller.tenant, workload, after)
        if found or loop.time() >= deadline or stopping.is_set():
            break
        await until(changed, stopping, deadline - loop.time())
    now = utc_now()
    return NoticePage(notices=[notice_delivery(n, now) for n in found], next_cursor=cursor)


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
        yield ": connected\n\n"
        while not stopping.is_set() and not await request.is_disconnected():
            changed = _verdicts(request).change(tenant, workload)
            found, position = await _read_notices(request, tenant, workload, position)
            now = utc_now()
            for stored in found:
                data = notice_delivery(stored, now).model_dump_json()
                yield f"id: {stored.stream_seq}\nevent: notice\ndata: {data}\n\n"
            if not found:
                await until(changed, stopping, SSE_KEEPALIVE_S)
                if not changed.is_set():
                    yield ": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


_REFUSAL_STATUS = {"late": 409, "conflict": 409}


@tenant_router.post(
    "/notices/{notice_id}/responses",
    status_code=202,
    response_model=ResponseAccepted,
    summary="Respond to a notice",
    openapi_extra=request_body(RESPONSE),
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
async def respond_to_notice(
    workload: Workload,
    notice_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", max_length=128)],
    caller: TenantCaller,
    request: Request,
) -> ResponseAccepted:
    assert caller.tenant is not None
    answer = _validated(_RESPONSE_REQUEST, await _body(request))
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
    response = _parse(Family.RESPONSE, pydantic_core.to_json(body))
    assert isinstance(response, ResponseBase)
    with _verdicts(request).verdict_on(caller.tenant, response.response_id) as verdict:
        await _publish(_bus(request), [response], _source(caller.tenant))
        try:  # the registry alone judges: its verdict is the answer
            judged = await asyncio.wait_for(asyncio.shield(verdict), RESPONSE_JUDGED_WAIT_S)
        except TimeoutError:
            return ResponseAccepted(response_id=response.response_id, state=status.state, judged=False)
    if judged.refused is not None:
        code = _REFUSAL_STATUS.get(judged.refused, 422)
        raise ApiProblem(
            code,
            "Conflict" if code == 409 else "Invalid input",
            judged.reason or judged.refused,
            [Problem("action", judged.refused, (judged.reason or "").split(": ", 1)[-1] or judged.refused)],
        )
    assert judged.state is not None
    return ResponseAccepted(response_id=response.response_id, state=judged.state)


_DRILL_REQUEST: TypeAdapter[DrillRequest] = TypeAdapter(DrillRequest)
DrillId = Annotated[str, Path(pattern=MESSAGE_ID_PATTERN, max_length=128, description="The drill.")]


def _drills(request: Request) -> DrillDesk:
    desk: DrillDesk = request.app.state.drills
    return desk


@tenant_router.post(
    "/drills",
    status_code=202,
    response_model=DrillReport,
    response_model_exclude_none=True,
    summary="Start a drill",
    description="Sends a test notice (eviction, maintenance or power_event), marked `drill`, to this "
    "workload of the token's tenant: it answers as it would a real one, and no platform service acts on "
    "it. Answers with the report so far; read it on with GET. Posting the same `drill_id` again sends "
    "nothing more and answers with the report; 409 if that drill is another workload's.",
    openapi_extra=request_body(DRILL),
    responses=error_responses(400, 401, 403, 409, 413, 415, 422, 503),
)
async def start_drill(workload: Workload, caller: TenantCaller, request: Request) -> DrillReport:
    assert caller.tenant is not None
    wanted = _validated(_DRILL_REQUEST, await _body(request))
    with _storing(_bus(request)), _drilling():
        return await _drills(request).begin(caller.tenant, workload, wanted, timeout_s=PUBLISH_TIMEOUT_S)


@tenant_router.get(
    "/drills/{drill_id}",
    response_model=DrillReport,
    response_model_exclude_none=True,
    summary="Read a drill's report",
    description="When the registry recorded the notice (its delivery), how the workload answered (ack, "
    "defer or not at all) and how long before the deadline; `done` once it answered or the deadline "
    "passed. Read from the registry, so any gateway answers, across restarts. A drill not recorded yet is "
    "waited for (a few seconds) until the registry has every notice stored so far: 503 if it has not.",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def drill_report(
    workload: Workload, drill_id: DrillId, caller: TenantCaller, request: Request
) -> DrillReport:
    assert caller.tenant is not None
    with _drilling():
        found = await _drills(request).report(caller.tenant, workload, drill_id)
    if found is None:
        raise ApiProblem(
            404,
            "Not found",
            f"no drill {drill_id} of workload {workload} is known",
            [Problem("drill_id", "unknown_drill", "no such drill of this workload")],
        )
    return found


@contextlib.contextmanager
def _drilling() -> Iterator[None]:
    """Around a drill: 409 for a drill id taken by another workload, 503 while the registry catches up."""
    try:
        yield
    except DrillConflict as exc:
        raise ApiProblem(
            409, "Conflict", str(exc), [Problem("drill_id", "drill_conflict", "another workload's drill")]
        ) from exc
    except RegistryBehind as exc:
        raise Unavailable("registry", str(exc)) from exc


async def _publish_platform(request: Request, family: Family) -> Accepted:
    message = _parse(family, await _body(request))
    return await _publish(_bus(request), [message], "/gateway/platform")


@platform_router.post(
    "/events",
    status_code=202,
    response_model=Accepted,
    summary="Publish a platform event",
    description="A v1 platform event (schemas/v1/event/).",
    openapi_extra=request_body(PLATFORM_EVENT),
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
)
async def publish_event(caller: PlatformCaller, request: Request) -> Accepted:
    return await _publish_platform(request, Family.EVENT)


@platform_router.post(
    "/notices",
    status_code=202,
    response_model=Accepted,
    summary="Send a notice",
    description="A v1 notice (schemas/v1/notice/) to a tenant's workload.",
    openapi_extra=request_body(NOTICE),
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
)
async def send_notice(caller: PlatformCaller, request: Request) -> Accepted:
    return await _publish_platform(request, Family.NOTICE)


TENANT_HINTS_PAGE = 500
"""Workloads read from the database at a time while a tenant's hints stream out."""


@platform_router.get(
    "/hints",
    response_model=TenantHints,
    summary="Read a tenant's effective hints",
    description="Streamed as it is read, a page of workloads at a time, so memory stays flat for a "
    "tenant of any size.",
    responses=error_responses(401, 403, 422, 503),
)
async def tenant_hints(
    caller: PlatformCaller,
    request: Request,
    tenant: Annotated[str, Query(pattern=SLUG_PATTERN, max_length=63)],
    kind: HintKind | None = None,
) -> StreamingResponse:
    store, now = _store(request), utc_now()

    def page(after: str) -> tuple[list[bytes], str | None]:
        """A page of workloads' views as JSON, and the name to read on after (None: the last page)."""
        views = store.effective_for_tenant(tenant, kind, now, after, TENANT_HINTS_PAGE)
        more = views[-1].workload if len(views) == TENANT_HINTS_PAGE else None
        return [hints_view(v).model_dump_json().encode() for v in views], more

    first = await asyncio.to_thread(page, "")  # before answering: a database that is down is a 503

    async def body() -> AsyncIterator[bytes]:
        yield b'{"tenant":' + json.dumps(tenant).encode() + b',"workloads":['
        (views, after), separator = first, b""
        while True:
            for view in views:
                yield separator + view
                separator = b","
            if after is None:
                break
            views, after = await asyncio.to_thread(page, after)
        yield b"]}"

    return StreamingResponse(body(), media_type="application/json")
