"""The bus against a real nats-server: CloudEvents headers, de-duplication, dead-lettering, draining."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime

import pytest
from nats.js.api import StorageType

from tests.bus.helpers import collect, consuming, parked
from tests.samples import samples
from wi.bus import (
    DEADLETTER_REASON,
    DEADLETTER_SUBJECT,
    STREAMS,
    Bus,
    ConsumerSpec,
    Delivery,
    Rejected,
    encode,
    subject_for,
)
from wi.contract import Evictability, Family, Message, Priority

HINTS = ConsumerSpec(Family.HINT, "test-hints")
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@pytest.mark.parametrize("family", list(Family))
async def test_every_message_type_round_trips_with_its_headers(bus: Bus, family: Family) -> None:
    sent = [m for m in samples() if m.family is family]
    for message in sent:
        await bus.publish(message)
    received = await collect(bus, ConsumerSpec(family, f"test-{family}"), len(sent))
    assert [d.message for d in received] == sent
    for delivery, message in zip(received, sent, strict=True):
        assert delivery.subject == subject_for(message)
        raw = await bus.js.get_msg(STREAMS[family].name, delivery.stream_seq)
        headers = raw.headers or {}
        assert headers["ce-specversion"] == "1.0"
        assert headers["ce-id"] == headers["Nats-Msg-Id"] == message.message_id
        assert headers["ce-type"] == f"wi.v1.{family}.{message.kind}"
        assert headers["ce-source"] == "/tests"
        assert datetime.fromisoformat(headers["ce-time"]) == message.issued_at
        assert headers["ce-subject"] == message.ce_subject
        assert headers["content-type"] == "application/json"
        assert TRACEPARENT.match(headers["traceparent"])


def test_subjects_follow_the_documented_tree() -> None:
    by_kind = {m.kind: subject_for(m) for m in samples()}
    assert by_kind["evictability"] == "wi.v1.hints.acme.trainer.evictability"
    assert by_kind["clear"] == "wi.v1.hints.acme.trainer.priority"
    assert by_kind["eviction"] == "wi.v1.notices.acme.trainer.eviction"
    assert by_kind["ack"] == "wi.v1.responses.acme.trainer"
    assert by_kind["deployment_request"] == "wi.v1.deployments.acme.trainer"
    assert by_kind["capacity_pressure"] == "wi.v1.events.capacity_pressure"


async def test_a_repeated_message_id_is_stored_once(bus: Bus) -> None:
    hint = Priority(tenant="acme", workload="web", level="high")
    first, again = await bus.publish(hint), await bus.publish(hint)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.seq == first.seq
    info = await bus.js.stream_info(STREAMS[Family.HINT].name)
    assert info.state.messages == 1


async def test_streams_are_created_idempotently(bus: Bus) -> None:
    await bus.publish(Priority(tenant="acme", workload="web", level="high"))
    await bus.ensure_streams()
    info = await bus.js.stream_info(STREAMS[Family.HINT].name)
    assert info.state.messages == 1
    assert info.config.storage == StorageType.FILE


async def _publish_tampered(bus: Bus, message: Message, **changes: object) -> None:
    headers, body = encode(message, "/tests")
    data = json.loads(body)
    data.update(changes)
    await bus.publish_raw(subject_for(message), json.dumps(data).encode(), headers)


async def test_an_invalid_message_is_parked_with_its_reason_and_the_next_is_applied(bus: Bus) -> None:
    await _publish_tampered(bus, Evictability(tenant="acme", workload="etl", evictable=True), min_notice_s=-5)
    valid = Evictability(tenant="acme", workload="etl", evictable=True, min_notice_s=60)
    await bus.publish(valid)
    received = await collect(bus, HINTS, 1)
    assert [d.message for d in received] == [valid]
    [dead] = await parked(bus, 1)
    headers = dead.headers or {}
    assert "min_notice_s" in headers[DEADLETTER_REASON]
    assert "greater_than_equal" in headers[DEADLETTER_REASON]
    assert headers[DEADLETTER_SUBJECT] == "wi.v1.hints.acme.etl.evictability"
    assert json.loads(dead.data or b"")["min_notice_s"] == -5, "the parked body is kept as it came"


async def test_a_body_for_another_tenant_than_its_subject_is_parked(bus: Bus) -> None:
    hint = Priority(tenant="victim", workload="web", level="best_effort")
    headers, body = encode(hint, "/tests")
    await bus.publish_raw("wi.v1.hints.intruder.web.priority", body, headers)
    async with consuming(bus, HINTS) as handled:
        [dead] = await parked(bus, 1)
    assert handled == []
    assert "subject_mismatch" in (dead.headers or {})[DEADLETTER_REASON]


async def test_a_message_without_cloudevents_headers_is_parked(bus: Bus) -> None:
    hint = Priority(tenant="acme", workload="web", level="low")
    await bus.js.publish(subject_for(hint), hint.model_dump_json().encode())
    async with consuming(bus, HINTS):
        [dead] = await parked(bus, 1)
    reason = (dead.headers or {})[DEADLETTER_REASON]
    assert "header:ce-id" in reason and "header:ce-type" in reason


async def test_a_mismatched_ce_type_is_parked(bus: Bus) -> None:
    hint = Priority(tenant="acme", workload="web", level="low")
    headers, body = encode(hint, "/tests")
    headers["ce-type"] = "wi.v1.hint.evictability"
    await bus.publish_raw(subject_for(hint), body, headers)
    async with consuming(bus, HINTS):
        [dead] = await parked(bus, 1)
    assert "header:ce-type" in (dead.headers or {})[DEADLETTER_REASON]


async def test_a_rejected_message_is_parked_at_once_and_others_flow(bus: Bus) -> None:
    doomed = Priority(tenant="acme", workload="doomed", level="low")
    fine = Priority(tenant="acme", workload="fine", level="low")
    await bus.publish(doomed)
    await bus.publish(fine)

    async def reject_doomed(delivery: Delivery) -> None:
        if delivery.message == doomed:
            raise Rejected("contradicts an earlier response")

    received = await collect(bus, HINTS, 1, reject_doomed)
    assert [d.message for d in received] == [fine]
    [dead] = await parked(bus, 1)
    assert "rejected: contradicts an earlier response" in (dead.headers or {})[DEADLETTER_REASON]


async def test_a_failing_handler_is_retried_then_parked(bus: Bus) -> None:
    flaky = Priority(tenant="acme", workload="flaky", level="low")
    broken = Priority(tenant="acme", workload="broken", level="low")
    await bus.publish(flaky)
    await bus.publish(broken)
    attempts: dict[str, int] = {}

    async def handler(delivery: Delivery) -> None:
        workload = delivery.message.workload  # type: ignore[attr-defined]
        attempts[workload] = attempts.get(workload, 0) + 1
        if workload == "broken" or attempts[workload] < 2:
            raise ConnectionError("database is down")

    spec = ConsumerSpec(Family.HINT, "test-hints", max_attempts=3)
    async with consuming(bus, spec, handler) as handled:
        [dead] = await parked(bus, 1)
    assert [d.message for d in handled] == [flaky]
    assert attempts["broken"] == 3
    assert "failed 3 times" in (dead.headers or {})[DEADLETTER_REASON]


async def test_a_stop_finishes_the_message_in_hand_and_releases_the_rest_of_the_batch(bus: Bus) -> None:
    hints = [
        Priority(tenant="acme", workload=f"w-{level}", level=level) for level in ("low", "normal", "high")
    ]
    for hint in hints:
        await bus.publish(hint)
    spec = ConsumerSpec(Family.HINT, "test-drain")
    stop = asyncio.Event()
    handled: list[Delivery] = []

    async def slow(delivery: Delivery) -> None:
        stop.set()  # asked to stop while the first of the batch is in hand
        await asyncio.sleep(0.05)
        handled.append(delivery)

    await asyncio.wait_for(bus.consume(spec, slow, stop), 10)
    assert [d.message for d in handled] == hints[:1], "the message in hand is finished, no more"
    rest = await collect(bus, spec, 2)
    assert [d.message for d in rest] == hints[1:], "the rest of the batch comes back at once, in order"
    assert all(d.attempt == 2 for d in rest)
    for _ in range(100):  # acks are asynchronous: give the server a moment to record the last one
        info = await bus.js.consumer_info(STREAMS[Family.HINT].name, "test-drain")
        if info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.05)
    assert (info.num_ack_pending, info.num_pending) == (0, 0)
