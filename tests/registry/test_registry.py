"""The registry consuming a real nats-server into SQLite and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import text

from tests.bus.helpers import parked
from tests.samples import LATER, NOW
from wi.bus import DEADLETTER_REASON, RECORDED_HINTS, STREAMS, Bus, hints_query_subject
from wi.contract import (
    Accept,
    Ack,
    ClearHint,
    CostOffer,
    Decline,
    Evictability,
    Eviction,
    Family,
    HintsQuery,
    HintsRecorded,
    HintsView,
    LatencyTolerance,
    NoticeBase,
    Priority,
    QueryError,
    utc_now,
)
from wi.registry import NoticeState, Registry, RegistryStore
from wi.registry.service import HINTS_CONSUMER, NOTICES_CONSUMER, RESPONSES_CONSUMER
from wi.server import EmbeddedNatsServer

WHO = {"tenant": "acme", "workload": "web"}


@asynccontextmanager
async def running(bus: Bus, store: RegistryStore) -> AsyncIterator[Registry]:
    """A registry consuming in the background for the block's duration."""
    registry, stop = Registry(bus, store), asyncio.Event()
    await registry.start()
    task = asyncio.create_task(registry.run(stop))
    try:
        yield registry
    finally:
        stop.set()
        await task


async def query(bus: Bus, tenant: str, workload: str, after_seq: int | None = None) -> HintsView:
    """The workload's effective hints as a tenant reads them over the bus."""
    reply = await bus.nc.request(
        hints_query_subject(tenant, workload),
        HintsQuery(after_seq=after_seq).model_dump_json().encode(),
        timeout=10,
    )
    return HintsView.model_validate_json(reply.data)


async def settled(bus: Bus) -> None:
    """Waits until the registry's consumers have acknowledged everything in their streams."""
    for spec in (HINTS_CONSUMER, NOTICES_CONSUMER, RESPONSES_CONSUMER):
        for _ in range(500):
            info = await bus.js.consumer_info(spec.stream.name, spec.durable)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.02)
        else:
            raise TimeoutError(f"{spec.durable} did not settle")


def snapshot(store: RegistryStore, but: frozenset[str] = frozenset()) -> dict[str, list[Any]]:
    """Every row of every registry table (without the columns named in ``but``), in a stable order."""
    tables = {
        "hint_history": "tenant, hint_id",
        "current_hints": "tenant, workload, scope, kind",
        "notices": "notice_id",
        "responses": "tenant, response_id",
    }
    with store.engine.connect() as connection:
        return {
            table: [
                tuple(value for column, value in row._mapping.items() if column not in but)
                for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))
            ]
            for table, order in tables.items()
        }


RECORDING_TIMES = frozenset({"recorded_at"})
"""What a rebuild from the streams cannot restore: when the lost database recorded each notice."""


async def test_hints_sent_over_the_bus_are_read_back_effective(bus: Bus, store: RegistryStore) -> None:
    async with running(bus, store):
        await bus.publish(Priority(**WHO, level="low"))
        await bus.publish(Priority(**WHO, level="high"))
        await bus.publish(Priority(**WHO, level="best_effort", instance="canary"))
        await bus.publish(LatencyTolerance(**WHO, latency_class="strict", p99_ms=100))
        last = await bus.publish(ClearHint(**WHO, hint_kind="latency_tolerance"))
        view = await query(bus, "acme", "web", after_seq=last.seq)
    assert view.complete
    assert [(h.kind, h.level) for h in view.workload_hints] == [("priority", "high")]  # type: ignore[union-attr]
    assert [h.level for h in view.instance_hints["canary"]] == ["best_effort"]  # type: ignore[union-attr]


async def test_the_registry_tells_whose_hints_changed_once_a_batch(bus: Bus, store: RegistryStore) -> None:
    told: list[HintsRecorded] = []

    async def note(msg: Msg) -> None:
        told.append(HintsRecorded.model_validate_json(msg.data))

    listening = await bus.nc.subscribe(RECORDED_HINTS, cb=note)
    api = {**WHO, "workload": "api"}
    for hint in (Priority(**WHO, level="low"), Priority(**api, level="high"), Priority(**WHO, level="high")):
        await bus.publish(hint)
    async with running(bus, store):
        await settled(bus)
        await bus.nc.flush()
    await listening.unsubscribe()
    # Stored before the registry started, the three hints come in one batch: one message, each workload
    # once, in the order of its first hint.
    assert [[(w.tenant, w.workload) for w in message.workloads] for message in told] == [
        [("acme", "web"), ("acme", "api")]
    ]


async def test_a_query_that_breaks_the_contract_gets_the_broken_rule(bus: Bus, store: RegistryStore) -> None:
    async with running(bus, store):
        reply = await bus.nc.request(hints_query_subject("acme", "web"), b'{"after_seq": -1}', timeout=10)
    error = QueryError.model_validate_json(reply.data)
    assert [(p.field, p.rule) for p in error.problems] == [("after_seq", "greater_than_equal")]


async def test_notices_and_responses_travel_and_keep_state(bus: Bus, store: RegistryStore) -> None:
    soon = utc_now() + timedelta(minutes=5)
    eviction = Eviction(**WHO, instance="vm-1", not_before=soon, reason="spot reclaimed")
    offer = CostOffer(
        **WHO, offer_id="o-1", discount_pct=25, expires_at=soon, commit=[Evictability(**WHO, evictable=True)]
    )
    async with running(bus, store):
        await bus.publish(eviction)
        await bus.publish(offer)
        await bus.publish(Ack(**WHO, notice_id=eviction.notice_id))
        await bus.publish(Decline(**WHO, notice_id=offer.notice_id))
        await bus.publish(Accept(**WHO, notice_id=offer.notice_id))  # contradicts the decline
        [dead] = await parked(bus, 1)
        await settled(bus)
    assert "conflict" in (dead.headers or {})[DEADLETTER_REASON]
    assert store.notice(eviction.notice_id)[1].state is NoticeState.ACKED  # type: ignore[index]
    assert store.notice(offer.notice_id)[1].state is NoticeState.DECLINED  # type: ignore[index]


class SlowNotices(RegistryStore):
    """The real store, but notices take a while to apply, so responses overtake them in the registry."""

    def apply_notices(
        self, notices: Sequence[tuple[NoticeBase, int]], through: int | None = None, *, recorded_at: datetime
    ) -> list[bool]:
        time.sleep(0.3)
        return super().apply_notices(notices, through, recorded_at=recorded_at)


async def test_responses_keep_their_order_when_they_overtake_their_notice(
    bus: Bus, store: RegistryStore
) -> None:
    slow = SlowNotices(store.engine)
    offer = CostOffer(
        **WHO,
        offer_id="o-1",
        discount_pct=25,
        expires_at=utc_now() + timedelta(minutes=5),
        commit=[Evictability(**WHO, evictable=True)],
    )
    async with running(bus, slow):
        await bus.publish(offer)
        await bus.publish(Decline(**WHO, notice_id=offer.notice_id))
        await bus.publish(Accept(**WHO, notice_id=offer.notice_id))
        [dead] = await parked(bus, 1)
        await settled(bus)
    assert "accept to notice" in (dead.headers or {})[DEADLETTER_REASON]
    assert "conflict" in (dead.headers or {})[DEADLETTER_REASON]
    assert store.notice(offer.notice_id)[1].state is NoticeState.DECLINED  # type: ignore[index]


async def test_a_response_to_a_notice_that_does_not_exist_is_parked(bus: Bus, store: RegistryStore) -> None:
    async with running(bus, store):
        await bus.publish(Ack(**WHO, notice_id="no-such-notice"))
        [dead] = await parked(bus, 1)
    assert "notice_id: no notice no-such-notice is known" in (dead.headers or {})[DEADLETTER_REASON]


HISTORY = [
    Priority(**WHO, level="low", issued_at=NOW),
    Priority(**WHO, level="high", issued_at=NOW + timedelta(seconds=1)),
    Priority(**WHO, level="best_effort", instance="canary", issued_at=NOW, ttl_s=600),
    LatencyTolerance(**WHO, latency_class="strict", issued_at=NOW),
    ClearHint(**WHO, hint_kind="latency_tolerance", issued_at=NOW + timedelta(seconds=2)),
    Evictability(tenant="acme", workload="etl", evictable=True, min_notice_s=300, issued_at=NOW),
    Eviction(
        tenant="acme",
        workload="etl",
        notice_id="n-etl",
        instance="etl-0",
        not_before=LATER + timedelta(days=3650),
        reason="spot",
        issued_at=NOW,
    ),
    Ack(tenant="acme", workload="etl", notice_id="n-etl", response_id="r-etl", issued_at=NOW),
]


async def _publish_all(bus: Bus, messages: list[Any]) -> None:
    for message in messages:
        await bus.publish(message)


async def test_a_restarted_registry_and_lost_acks_leave_identical_state(
    bus: Bus, store: RegistryStore
) -> None:
    async with running(bus, store):
        await _publish_all(bus, HISTORY[:4])
        await settled(bus)
    async with running(bus, store):  # a restart: the durable consumers resume where they were
        await _publish_all(bus, HISTORY[4:])
        await settled(bus)
    before = snapshot(store)
    # A crash between the database commit and the ack: the server redelivers everything.
    for spec in (HINTS_CONSUMER, NOTICES_CONSUMER, RESPONSES_CONSUMER):
        await bus.js.delete_consumer(spec.stream.name, spec.durable)
    async with running(bus, store):
        await settled(bus)
    assert snapshot(store) == before
    assert before["hint_history"] and before["notices"] and before["responses"]


async def test_state_survives_a_nats_server_restart_and_rebuilds_from_the_file_store(
    nats_server: EmbeddedNatsServer, bus: Bus, store: RegistryStore, database_url: str
) -> None:
    async with running(bus, store):
        await _publish_all(bus, HISTORY[:5])
        await settled(bus)
        nats_server.stop()
        nats_server.start()  # same port and store; the clients reconnect
        await _publish_all(bus, HISTORY[5:])
        await settled(bus)
    before = snapshot(store, but=RECORDING_TIMES)
    info = await bus.js.stream_info(STREAMS[Family.HINT].name)
    assert info.state.messages == len([m for m in HISTORY if m.family is Family.HINT])

    # Rebuild a lost database from the streams: an empty database and fresh consumers replay them.
    with store.engine.begin() as connection:
        for table in [*before, "registry_watermarks"]:
            connection.execute(text(f"DELETE FROM {table}"))
    for spec in (HINTS_CONSUMER, NOTICES_CONSUMER, RESPONSES_CONSUMER):
        await bus.js.delete_consumer(spec.stream.name, spec.durable)
    async with running(bus, store):
        await settled(bus)
    assert snapshot(store, but=RECORDING_TIMES) == before
    rebuilt = store.notice_trail("n-etl")
    assert rebuilt is not None and rebuilt.recorded_at is not None, "the rebuild records the notice anew"
