"""The gateway over real HTTP against a running platform: statuses, messages and tenant isolation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.platform import Running, eventually, notice_state, record_errors
from wi.auth import token_id_of
from wi.auth.store import TokenStore
from wi.bus import Bus, tenant_inbox
from wi.contract import CostOffer, Evictability, Eviction, utc_now
from wi.contract.http import TenantHints
from wi.gateway import routes


@pytest.fixture
async def http(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.endpoints.http_url, timeout=30) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = reply.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def _rules(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["field"], e["rule"]) for e in body["errors"]]


async def test_401_without_or_with_a_bad_token(http: httpx.AsyncClient) -> None:
    body = _problem(await http.get("/v1/workloads/web/hints"), 401)
    assert _rules(body) == [("header:authorization", "missing")]
    body = _problem(await http.get("/v1/workloads/web/hints", headers=_bearer("wi_nope")), 401)
    assert _rules(body) == [("header:authorization", "invalid_token")]


async def test_a_revoked_token_stops_working(running: Running, http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/workloads/web/hints", headers=_bearer(running.acme))).status_code == 200
    assert running.platform.tokens is not None
    running.platform.tokens.revoke(token_id_of(running.acme))
    _problem(await http.get("/v1/workloads/web/hints", headers=_bearer(running.acme)), 401)


async def test_a_token_revoked_by_another_process_stops_working_within_the_cache_time(
    running: Running, http: httpx.AsyncClient
) -> None:
    """The gateway trusts a checked token for IDENTITY_CACHE_S without asking the database; a revocation
    by `wi tokens revoke` (another TokenStore on the same database) takes effect after that."""
    assert (await http.get("/v1/workloads/web/hints", headers=_bearer(running.acme))).status_code == 200
    assert running.platform.store is not None
    assert TokenStore(running.platform.store.engine).revoke(token_id_of(running.acme))
    statuses: list[int] = []

    async def refused() -> bool:
        answer = await http.get("/v1/workloads/web/hints", headers=_bearer(running.acme))
        statuses.append(answer.status_code)
        return statuses[-1] == 401

    async with asyncio.timeout(10):
        while not await refused():  # noqa: ASYNC110  # revocation arrives through the database
            await asyncio.sleep(0.2)
    assert set(statuses) <= {200, 401}


async def test_403_for_a_tenant_token_on_a_platform_route_and_the_other_way_round(
    running: Running, http: httpx.AsyncClient
) -> None:
    body = _problem(
        await http.get("/v1/platform/hints", params={"tenant": "acme"}, headers=_bearer(running.acme)), 403
    )
    assert _rules(body) == [("header:authorization", "platform_token_required")]
    body = _problem(await http.get("/v1/workloads/web/hints", headers=_bearer(running.operator)), 403)
    assert _rules(body) == [("header:authorization", "tenant_token_required")]


async def test_tenant_a_can_neither_write_nor_answer_for_tenant_b_over_http(
    running: Running, http: httpx.AsyncClient
) -> None:
    hint = {"kind": "priority", "level": "best_effort", "tenant": "globex"}
    body = _problem(await http.post("/v1/workloads/web/hints", json=hint, headers=_bearer(running.acme)), 403)
    assert _rules(body) == [("tenant", "other_tenant")]
    theirs = Eviction(
        tenant="globex",
        workload="web",
        instance="web-0",
        reason="spot",
        not_before=utc_now() + timedelta(minutes=5),
    )
    await running.bus.publish(theirs)
    await eventually(lambda: notice_state(running, theirs.notice_id))
    reply = await http.post(
        f"/v1/workloads/web/notices/{theirs.notice_id}/responses",
        json={"action": "ack"},
        headers=_bearer(running.acme),
    )
    assert _rules(_problem(reply, 403)) == [("notice_id", "other_workload")]
    # and what acme reads is only its own
    await http.post(
        "/v1/workloads/web/hints", json={"kind": "priority", "level": "high"}, headers=_bearer(running.globex)
    )
    view = (await http.get("/v1/workloads/web/hints", headers=_bearer(running.acme))).json()
    assert view["tenant"] == "acme" and view["workload_hints"] == []


async def test_404_for_an_unknown_notice(running: Running, http: httpx.AsyncClient) -> None:
    reply = await http.post(
        "/v1/workloads/web/notices/no-such-notice/responses",
        json={"action": "ack"},
        headers=_bearer(running.acme),
    )
    assert _rules(_problem(reply, 404)) == [("notice_id", "unknown_notice")]


async def test_409_after_the_deadline_and_for_a_contradiction(
    running: Running, http: httpx.AsyncClient
) -> None:
    past = Eviction(
        tenant="acme",
        workload="web",
        instance="web-0",
        reason="spot",
        not_before=utc_now() - timedelta(seconds=1),
    )
    offer = CostOffer(
        tenant="acme",
        workload="web",
        offer_id="o-1",
        discount_pct=30,
        expires_at=utc_now() + timedelta(minutes=5),
        commit=[Evictability(tenant="acme", workload="web", evictable=True)],
    )
    for notice in (past, offer):
        await running.bus.publish(notice)
        await eventually(lambda notice=notice: notice_state(running, notice.notice_id))
    late = await http.post(
        f"/v1/workloads/web/notices/{past.notice_id}/responses",
        json={"action": "ack"},
        headers=_bearer(running.acme),
    )
    body = _problem(late, 409)
    assert _rules(body) == [("action", "late")] and "deadline" in body["detail"]

    declined = await http.post(
        f"/v1/workloads/web/notices/{offer.notice_id}/responses",
        json={"action": "decline"},
        headers=_bearer(running.acme),
    )
    assert declined.status_code == 202 and declined.json()["state"] == "declined"
    await eventually(lambda: notice_state(running, offer.notice_id) == "declined")
    accept = await http.post(
        f"/v1/workloads/web/notices/{offer.notice_id}/responses",
        json={"action": "accept"},
        headers=_bearer(running.acme),
    )
    body = _problem(accept, 409)
    assert _rules(body) == [("action", "conflict")] and "declined" in body["detail"]


async def test_413_over_the_body_limit(running: Running, http: httpx.AsyncClient) -> None:
    huge = {"kind": "priority", "level": "high", "padding": "x" * 300_000}
    body = _problem(await http.post("/v1/workloads/web/hints", json=huge, headers=_bearer(running.acme)), 413)
    assert _rules(body) == [("$", "max_body_bytes")]


async def test_422_names_the_field_and_the_rule(running: Running, http: httpx.AsyncClient) -> None:
    bad = {
        "hints": [
            {"kind": "priority", "level": "high"},
            {"kind": "evictability", "evictable": True, "min_notice_s": -1},
        ]
    }
    body = _problem(await http.post("/v1/workloads/web/hints", json=bad, headers=_bearer(running.acme)), 422)
    assert _rules(body) == [("hints[1].min_notice_s", "greater_than_equal")]
    body = _problem(
        await http.get("/v1/workloads/web/notices", params={"wait": 999}, headers=_bearer(running.acme)), 422
    )
    assert _rules(body)[0] == ("query.wait", "less_than_equal")
    json_body = {**_bearer(running.acme), "content-type": "application/json"}
    body = _problem(await http.post("/v1/workloads/web/hints", content=b"{not json", headers=json_body), 400)
    assert _rules(body) == [("$", "json_invalid")]
    scale = "/v1/workloads/web/deployments/api"
    body = _problem(await http.patch(scale, json={"instances": -1}, headers=_bearer(running.acme)), 422)
    assert _rules(body) == [("instances", "greater_than_equal")]
    body = _problem(await http.patch(scale, json={"instances": "3"}, headers=_bearer(running.acme)), 422)
    assert _rules(body) == [("instances", "int_type")]
    ended = await http.delete(scale, params={"request_id": "bad id!"}, headers=_bearer(running.acme))
    assert _rules(_problem(ended, 422)) == [("query.request_id", "string_pattern_mismatch")]
    ended = await http.delete("/v1/workloads/web/deployments/API", headers=_bearer(running.acme))
    assert _rules(_problem(ended, 422)) == [("path.deployment", "string_pattern_mismatch")]


async def test_notices_by_long_poll_and_by_server_sent_events(
    running: Running, http: httpx.AsyncClient
) -> None:
    auth = _bearer(running.acme)
    empty = (await http.get("/v1/workloads/web/notices", headers=auth)).json()
    assert empty["notices"] == []
    eviction = Eviction(
        tenant="acme",
        workload="web",
        instance="web-0",
        reason="spot",
        not_before=utc_now() + timedelta(minutes=5),
    )

    async def publish_later() -> None:
        await asyncio.sleep(0.5)
        await running.bus.publish(eviction)

    publisher = asyncio.create_task(publish_later())
    page = (
        await http.get(
            "/v1/workloads/web/notices", params={"after": empty["next_cursor"], "wait": 20}, headers=auth
        )
    ).json()
    await publisher
    [delivered] = page["notices"]
    assert delivered["notice"]["notice_id"] == eviction.notice_id and delivered["state"] == "pending"
    assert delivered["deadline"] is not None

    async with http.stream("GET", "/v1/workloads/web/notices/stream", headers=auth) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        event: list[str] = []
        async for line in lines:
            if line.startswith(("id:", "event:", "data:")):
                event.append(line)
            if line.startswith("data:"):
                break
    assert event[0] == f"id: {delivered['cursor']}" and event[1] == "event: notice"
    assert eviction.notice_id in event[2]


async def test_platform_routes_publish_events_and_notices_and_read_hints(
    running: Running, http: httpx.AsyncClient
) -> None:
    operator = _bearer(running.operator)
    event = {
        "kind": "capacity_pressure",
        "cluster": "c1",
        "pool": "spot",
        "cores_needed": 8,
        "needed_within_s": 60,
    }
    assert (await http.post("/v1/platform/events", json=event, headers=operator)).status_code == 202
    notice = {
        "kind": "placement",
        "tenant": "acme",
        "workload": "web",
        "deployment": "d",
        "outcome": "rejected",
        "reason": "no capacity",
    }
    assert (await http.post("/v1/platform/notices", json=notice, headers=operator)).status_code == 202
    sent = await http.post(
        "/v1/workloads/web/hints", json={"kind": "priority", "level": "low"}, headers=_bearer(running.acme)
    )
    await http.get(
        "/v1/workloads/web/hints", params={"after_seq": sent.json()["seq"]}, headers=_bearer(running.acme)
    )
    hints = (
        await http.get("/v1/platform/hints", params={"tenant": "acme", "kind": "priority"}, headers=operator)
    ).json()
    assert [(w["workload"], w["workload_hints"][0]["level"]) for w in hints["workloads"]] == [("web", "low")]


async def test_a_tenants_hints_stream_out_page_by_page_every_workload_once_in_name_order(
    running: Running, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "TENANT_HINTS_PAGE", 2)
    names = [f"w{i}" for i in range(5)]
    for name in names:
        sent = await http.post(
            f"/v1/workloads/{name}/hints",
            json={"kind": "priority", "level": "low"},
            headers=_bearer(running.acme),
        )
    await http.get(
        "/v1/workloads/w4/hints", params={"after_seq": sent.json()["seq"]}, headers=_bearer(running.acme)
    )
    answer = await http.get(
        "/v1/platform/hints", params={"tenant": "acme"}, headers=_bearer(running.operator)
    )
    assert answer.headers["content-type"] == "application/json"
    body = TenantHints.model_validate_json(answer.content)
    assert (body.tenant, [view.workload for view in body.workloads]) == ("acme", names)
    empty = await http.get(
        "/v1/platform/hints", params={"tenant": "nobody"}, headers=_bearer(running.operator)
    )
    assert empty.json() == {"tenant": "nobody", "workloads": []}


async def test_operations_endpoints(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).json()["status"] == "ready"
    metrics = (await http.get("/metrics")).text
    assert 'wi_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    assert 'wi_stream_messages{stream="WI_HINTS"}' in metrics
    assert (await http.get("/openapi.json")).json()["info"]["title"] == "Workload Intelligence gateway"
    assert (await http.get("/docs")).status_code == 200


async def test_tenant_a_cannot_touch_tenant_b_over_nats(running: Running) -> None:
    acme = await Bus.connect(
        running.endpoints.nats_url, source="/tests", token=running.acme, inbox_prefix=tenant_inbox("acme")
    )
    violations = record_errors(acme)
    try:
        await acme.nc.publish("wi.v1.hints.globex.web.priority", b"{}")
        await acme.nc.subscribe("wi.v1.deliver.globex.web")
        await acme.nc.subscribe("wi.v1.notices.>")
        await acme.nc.publish("wi.v1.query.hints.globex.web", b"{}")
        await acme.nc.publish("$JS.API.STREAM.PURGE.WI_HINTS", b"")
        await acme.nc.flush()
        await asyncio.sleep(0.5)
        # its own subjects work
        own = await acme.publish(Evictability(tenant="acme", workload="web", evictable=True))
        assert own.seq > 0
    finally:
        await acme.close()
    text = " ".join(violations).lower()
    for refused in (
        'publish to "wi.v1.hints.globex.web.priority"',
        'subscription to "wi.v1.deliver.globex.web"',
        'subscription to "wi.v1.notices.>"',
        'publish to "wi.v1.query.hints.globex.web"',
        'publish to "$js.api.stream.purge.wi_hints"',
    ):
        assert refused in text, f"not refused: {refused}\n{violations}"


async def test_reading_on_from_the_open_notices_skips_those_already_answered(
    running: Running, http: httpx.AsyncClient
) -> None:
    auth = _bearer(running.acme)
    soon = utc_now() + timedelta(minutes=5)
    pending = Eviction(tenant="acme", workload="web", instance="web-0", reason="spot", not_before=soon)
    answered = Eviction(tenant="acme", workload="web", instance="web-1", reason="spot", not_before=soon)
    for notice in (pending, answered):
        await running.bus.publish(notice)
        await eventually(lambda notice=notice: notice_state(running, notice.notice_id))
    ack = await http.post(
        f"/v1/workloads/web/notices/{answered.notice_id}/responses", json={"action": "ack"}, headers=auth
    )
    assert ack.status_code == 202
    await eventually(lambda: notice_state(running, answered.notice_id) == "acked")
    first = (await http.get("/v1/workloads/web/notices", headers=auth)).json()
    assert [d["notice"]["notice_id"] for d in first["notices"]] == [pending.notice_id]
    later = (
        await http.get("/v1/workloads/web/notices", params={"after": first["next_cursor"]}, headers=auth)
    ).json()
    assert later["notices"] == [], "an answered notice came back after the open ones"


async def test_more_open_notices_than_a_page_all_come_page_by_page(
    running: Running, http: httpx.AsyncClient
) -> None:
    auth = _bearer(running.acme)
    soon = utc_now() + timedelta(minutes=5)
    notices = [
        Eviction(tenant="acme", workload="web", instance=f"web-{i}", reason="spot", not_before=soon)
        for i in range(130)
    ]
    await asyncio.gather(*(running.bus.publish(notice) for notice in notices))
    await eventually(lambda: all(notice_state(running, n.notice_id) for n in notices))
    read: list[str] = []
    params: dict[str, Any] = {}  # first the open notices, then on from the cursor
    while page := (await http.get("/v1/workloads/web/notices", params=params, headers=auth)).json():
        if not page["notices"]:
            break
        read += [d["notice"]["notice_id"] for d in page["notices"]]
        params = {"after": page["next_cursor"]}
    assert len(read) == len(set(read)) == len(notices)
    assert set(read) == {n.notice_id for n in notices}
