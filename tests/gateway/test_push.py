"""Notices are pushed to HTTP clients by the registry's verdicts: an idle long poll or event stream reads
the store once, not every 200 ms, and wakes when a notice is stored; responses are judged by the registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.platform import Running, eventually
from wi.bus import RECORDED_NOTICES
from wi.contract import Eviction, NoticesRecorded, Verdict, utc_now


@pytest.fixture
async def http(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.endpoints.http_url, timeout=30) as client:
        yield client


def _count_reads(running: Running) -> list[int]:
    """Counts the gateway's reads of a workload's notices (the store is the one the gateway uses)."""
    store = running.platform.store
    assert store is not None
    reads = [0]
    real: Callable[..., Any] = store.notices

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads[0] += 1
        return real(*args, **kwargs)

    store.notices = counted  # type: ignore[method-assign]
    return reads


def _eviction() -> Eviction:
    return Eviction(
        tenant="acme",
        workload="web",
        instance="web-0",
        reason="spot",
        not_before=utc_now() + timedelta(minutes=5),
    )


async def test_an_idle_long_poll_reads_once_and_wakes_when_a_notice_is_stored(
    running: Running, http: httpx.AsyncClient
) -> None:
    auth = {"Authorization": f"Bearer {running.acme}"}
    cursor = (await http.get("/v1/workloads/web/notices", headers=auth)).json()["next_cursor"]
    reads = _count_reads(running)
    poll = asyncio.create_task(
        http.get("/v1/workloads/web/notices", params={"after": cursor, "wait": 20}, headers=auth)
    )
    await asyncio.sleep(1.5)  # seven polls' worth of time, had it polled every 200 ms
    assert reads[0] == 1, f"an idle long poll read the store {reads[0]} times"
    notice = _eviction()
    await running.bus.publish(notice)
    page = (await asyncio.wait_for(poll, 20)).json()
    assert [d["notice"]["notice_id"] for d in page["notices"]] == [notice.notice_id]
    assert reads[0] == 2, "one read at the start, one when the registry's verdict woke it"


async def test_an_idle_event_stream_reads_once_and_sends_a_notice_when_it_is_stored(
    running: Running, http: httpx.AsyncClient
) -> None:
    auth = {"Authorization": f"Bearer {running.acme}"}
    reads = _count_reads(running)
    notice = _eviction()
    async with http.stream("GET", "/v1/workloads/web/notices/stream", headers=auth) as stream:
        lines = stream.aiter_lines()
        assert await anext(lines) == ": connected"
        await asyncio.sleep(1.5)
        assert reads[0] == 1, f"an idle event stream read the store {reads[0]} times"
        await running.bus.publish(notice)
        async with asyncio.timeout(20):
            async for line in lines:
                if line.startswith("data:"):
                    assert notice.notice_id in line
                    break
        # One read at the start, one when the registry's verdict woke it and, once the notice is sent,
        # at most one more that finds nothing new; then it is idle again (polling would read ~7 times).
        await asyncio.sleep(1.5)
        assert reads[0] in (2, 3), f"the event stream read the store {reads[0]} times"


async def test_the_registry_judges_a_response_and_the_gateway_answers_with_its_verdict(
    running: Running, http: httpx.AsyncClient
) -> None:
    auth = {"Authorization": f"Bearer {running.acme}"}
    notice = _eviction()
    verdicts: list[Verdict] = []
    recorded: list[NoticesRecorded] = []

    async def record(msg: Any) -> None:
        verdicts.append(Verdict.model_validate_json(msg.data))

    async def note(msg: Any) -> None:
        recorded.append(NoticesRecorded.model_validate_json(msg.data))

    await running.bus.nc.subscribe("wi.v1.verdicts.acme.web", cb=record)
    await running.bus.nc.subscribe(RECORDED_NOTICES, cb=note)
    await running.bus.publish(notice)
    await eventually(lambda: recorded)
    assert [n.notice_id for n in recorded[0].notices] == [notice.notice_id], "told once it is recorded"
    reply = await http.post(
        f"/v1/workloads/web/notices/{notice.notice_id}/responses", json={"action": "ack"}, headers=auth
    )
    assert reply.status_code == 202 and reply.json()["state"] == "acked" and reply.json()["judged"] is True
    reply = await http.post(
        f"/v1/workloads/web/notices/{notice.notice_id}/responses",
        json={"action": "defer", "until": utc_now().isoformat()},
        headers=auth,
    )
    assert reply.status_code == 422 and reply.json()["errors"][0]["rule"] == "not_allowed"
    await eventually(lambda: len(verdicts) >= 2)
    assert [(v.state, v.response, v.refused) for v in verdicts] == [
        ("acked", "ack", None),
        ("acked", "defer", "not_allowed"),
    ]
