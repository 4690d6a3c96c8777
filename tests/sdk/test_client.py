"""The SDK over both transports against a running platform."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from wi_sdk import (
    AuthError,
    ConflictError,
    Evictability,
    ForbiddenError,
    HttpTransport,
    NatsTransport,
    Priority,
    Received,
    SyncWorkloadClient,
    TransportError,
    WorkloadClient,
)

from tests.platform import Running, eventually, notice_state
from wi.contract import Eviction, Maintenance, NoticeBase, NoticeState, Placement, utc_now

TRANSPORTS = ["nats", "http"]


def _url(running: Running, transport: str) -> str:
    return running.endpoints.nats_url if transport == "nats" else running.endpoints.http_url


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_hints_round_trip(running: Running, transport: str) -> None:
    async with WorkloadClient(
        tenant="acme", workload="etl", url=_url(running, transport), token=running.acme
    ) as client:
        ids = await client.hint(
            client.new(Priority, level="low"), client.new(Evictability, evictable=True, min_notice_s=120)
        )
        assert len(ids) == 2
        view = await client.hints()
        assert view.complete
        assert {h.kind for h in view.workload_hints} == {"priority", "evictability"}
        await client.clear_hint("priority")
        assert {h.kind for h in (await client.hints()).workload_hints} == {"evictability"}
        ids = [
            await client.deploy(deployment="train", instances=2, cores=8, memory_gb=32),
            await client.scale("train", 3),
            await client.end_deployment("train"),
        ]
        stored = [await running.bus.js.get_msg("WI_DEPLOYMENTS", seq) for seq in (1, 2, 3)]
        assert [(m.headers or {}).get("ce-type") for m in stored] == [
            "wi.v1.deployment.deployment_request",
            "wi.v1.deployment.deployment_scale",
            "wi.v1.deployment.deployment_end",
        ]
        assert [(m.headers or {}).get("ce-id") for m in stored] == ids


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_handler_acks_an_eviction_and_the_registry_records_it(
    running: Running, transport: str
) -> None:
    seen: list[Received[Eviction]] = []
    async with WorkloadClient(
        tenant="acme", workload="etl", url=_url(running, transport), token=running.acme
    ) as client:

        @client.on(Eviction)
        async def checkpoint(notice: Received[Eviction]) -> None:
            left = notice.time_left()
            assert left is not None and timedelta(0) < left <= timedelta(minutes=2)
            seen.append(notice)
            await notice.ack(reason="checkpointed")

        client.start()
        eviction = Eviction(
            tenant="acme",
            workload="etl",
            instance="etl-0",
            reason="spot capacity reclaimed",
            not_before=utc_now() + timedelta(minutes=2),
        )
        await running.bus.publish(eviction)
        await eventually(lambda: seen)
        await eventually(lambda: notice_state(running, eviction.notice_id) == NoticeState.ACKED)
    assert [n.notice.notice_id for n in seen] == [eviction.notice_id]


class CutAfterFirstNotice:
    """A transport whose stream of notices breaks after its first notice, once: the client connects
    again and is handed the open notices again, the first one included."""

    def __init__(self, inner: NatsTransport | HttpTransport) -> None:
        self.inner = inner
        self.cut = False
        self.delivered: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def notices(self) -> AsyncIterator[NoticeBase]:
        async for notice in self.inner.notices():
            self.delivered[notice.notice_id] += 1
            yield notice
            if not self.cut:
                self.cut = True
                raise TransportError("connection reset")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_notices_sent_while_offline_reach_each_handler_once_despite_repeats(
    running: Running, transport: str
) -> None:
    soon = utc_now() + timedelta(minutes=10)
    offline = [
        Eviction(tenant="acme", workload="etl", instance=f"etl-{i}", reason="spot", not_before=soon)
        for i in range(3)
    ] + [
        Placement(
            tenant="acme",
            workload="etl",
            deployment="train",
            outcome="deferred",
            start_at=soon,
            reason="capacity is tight",
        )
    ]
    for notice in offline:
        await running.bus.publish(notice)

    url = _url(running, transport)
    inner = (NatsTransport if transport == "nats" else HttpTransport)(url, "acme", "etl", running.acme)
    fake = CutAfterFirstNotice(inner)
    calls: dict[str, int] = {}
    async with WorkloadClient(tenant="acme", workload="etl", url=url, transport=fake) as client:

        async def count(notice: Received[Any]) -> None:
            calls[notice.notice.notice_id] = calls.get(notice.notice.notice_id, 0) + 1

        client.on(Eviction)(count)
        client.on(Placement)(count)
        client.start()
        await eventually(lambda: len(calls) == len(offline))
        await eventually(lambda: sum(fake.delivered.values()) > len(offline))  # repeats arrived
        await asyncio.sleep(0.5)
    assert calls == {n.notice_id: 1 for n in offline}
    assert max(fake.delivered.values()) >= 2, "no notice was delivered twice: nothing was tested"


async def test_a_failing_handler_leaves_the_notice_pending_and_the_client_running(running: Running) -> None:
    handled: list[str] = []
    async with WorkloadClient(
        tenant="acme", workload="web", url=running.endpoints.nats_url, token=running.acme
    ) as client:

        @client.on(Maintenance)
        async def broken(notice: Received[Maintenance]) -> None:
            raise RuntimeError("bug in the handler")

        @client.on(Eviction)
        async def fine(notice: Received[Eviction]) -> None:
            handled.append(notice.notice.notice_id)

        client.start()
        soon = utc_now() + timedelta(minutes=10)
        maintenance = Maintenance(
            tenant="acme",
            workload="web",
            instance="web-0",
            type="reboot",
            not_before=soon,
            expected_duration_s=60,
        )
        eviction = Eviction(tenant="acme", workload="web", instance="web-1", reason="spot", not_before=soon)
        await running.bus.publish(maintenance)
        await running.bus.publish(eviction)
        await eventually(lambda: handled == [eviction.notice_id])
    assert notice_state(running, maintenance.notice_id) == NoticeState.PENDING


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_answer_after_the_deadline_is_a_conflict(running: Running, transport: str) -> None:
    async with WorkloadClient(
        tenant="acme", workload="etl", url=_url(running, transport), token=running.acme
    ) as client:
        late = Eviction(
            tenant="acme",
            workload="etl",
            instance="etl-0",
            reason="spot",
            not_before=utc_now() - timedelta(seconds=1),
        )
        with pytest.raises(ConflictError, match="deadline"):
            await Received(client, late).ack()


@pytest.mark.parametrize("token", ["wi_0123456789ab_" + "x" * 43, "nonsense"], ids=["unknown", "malformed"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_bad_token_is_refused_at_connect(running: Running, transport: str, token: str) -> None:
    with pytest.raises(AuthError):
        async with WorkloadClient(tenant="acme", workload="etl", url=_url(running, transport), token=token):
            pass


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_token_of_another_tenant_is_forbidden_at_connect(running: Running, transport: str) -> None:
    client = WorkloadClient(tenant="globex", workload="etl", url=_url(running, transport), token=running.acme)
    with pytest.raises(ForbiddenError, match="not tenant globex's"):
        async with client:
            pass


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_sync_facade_for_scripts(running: Running, transport: str) -> None:
    def script() -> list[str]:
        with SyncWorkloadClient(
            tenant="acme", workload="script", url=_url(running, transport), token=running.acme
        ) as client:
            client.hint(client.new(Priority, level="high"))
            return [h.kind for h in client.hints().workload_hints]

    assert await asyncio.to_thread(script) == ["priority"]  # a script runs outside the platform's loop
