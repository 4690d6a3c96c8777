"""The registry's answers to requests (attach, hint queries) under a storm and against hostile requests."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from tests.registry.test_registry import WHO, query, running, settled
from wi.bus import Bus, attach_subject, hints_query_subject
from wi.contract import (
    ATTACH_PAGE,
    Ack,
    AttachReply,
    AttachRequest,
    Defer,
    Eviction,
    HintsQuery,
    HintsView,
    Priority,
    QueryError,
    utc_now,
)
from wi.registry import FreshRead, RegistryStore


async def test_ten_times_more_simultaneous_attaches_than_a_batch_cost_a_few_stream_reads(
    bus: Bus, store: RegistryStore
) -> None:
    soon = utc_now() + timedelta(minutes=5)
    noticed = 200
    evictions = [
        Eviction(tenant="acme", workload=f"w{i}", instance="vm", not_before=soon, reason="spot reclaimed")
        for i in range(noticed)
    ]
    async with running(bus, store):
        await asyncio.gather(*(bus.publish(eviction) for eviction in evictions))
        await settled(bus)
        stream_reads = 0
        read_stream = bus.js.stream_info

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal stream_reads
            stream_reads += 1
            return await read_stream(*args, **kwargs)

        bus.js.stream_info = counted  # type: ignore[method-assign]
        replies = await asyncio.gather(
            *(bus.nc.request(attach_subject("acme", f"w{i}"), b"", timeout=60) for i in range(5000))
        )
    pages = [AttachReply.model_validate_json(reply.data) for reply in replies]
    assert [[n.notice_id for n in page.notices] for page in pages[:noticed]] == [
        [e.notice_id] for e in evictions
    ]
    assert all(page.notices == [] and page.next_cursor is None for page in pages[noticed:])
    # a read per batch of at most 500 requests (each read started after its batch arrived), not one each
    assert stream_reads <= 20, stream_reads


async def test_attach_pages_only_open_notices_in_stream_order(bus: Bus, store: RegistryStore) -> None:
    soon = utc_now() + timedelta(minutes=5)
    evictions = [
        Eviction(**WHO, instance=f"vm-{i}", not_before=soon, reason="spot reclaimed")
        for i in range(ATTACH_PAGE + 20)
    ]
    async with running(bus, store):
        for eviction in evictions:
            await bus.publish(eviction)
        await bus.publish(Ack(**WHO, notice_id=evictions[0].notice_id))
        await bus.publish(Defer(**WHO, notice_id=evictions[1].notice_id, until=soon - timedelta(minutes=1)))
        await settled(bus)
        subject = attach_subject(*WHO.values())
        first = AttachReply.model_validate_json((await bus.nc.request(subject, b"", timeout=10)).data)
        assert first.next_cursor is not None
        body = AttachRequest(after=first.next_cursor).model_dump_json().encode()
        second = AttachReply.model_validate_json((await bus.nc.request(subject, body, timeout=10)).data)
    assert second.next_cursor is None
    pages = [n.notice_id for n in first.notices], [n.notice_id for n in second.notices]
    open_ones = [e.notice_id for e in evictions[1:]]  # the acked one is done; the deferred one is open
    assert pages == (open_ones[:ATTACH_PAGE], open_ones[ATTACH_PAGE:])


async def test_a_query_waiting_for_its_own_write_holds_up_no_other(bus: Bus, store: RegistryStore) -> None:
    async with running(bus, store):
        last = await bus.publish(Priority(**WHO, level="high"))
        await query(bus, "acme", "web", after_seq=last.seq)  # applied: the registry is up to date
        await bus.nc.publish(attach_subject("acme", "web"), b"")  # no reply subject: nothing to answer
        never_written = bus.nc.request(
            hints_query_subject("acme", "web"), HintsQuery(after_seq=10**12).model_dump_json().encode(), 10
        )
        waiting = asyncio.create_task(never_written)
        await asyncio.sleep(0.05)  # the waiting query reaches the registry first
        plain = await query(bus, "acme", "web")
        assert not waiting.done()  # still waiting for a write that will not come, yet the other was answered
        assert [h.level for h in plain.workload_hints] == ["high"]  # type: ignore[union-attr]
    late = HintsView.model_validate_json((await waiting).data)  # answered as the registry stopped
    assert not late.complete
    assert [h.level for h in late.workload_hints] == ["high"]  # type: ignore[union-attr]


async def test_a_query_that_overflows_the_refusals_bounds_holds_up_no_other_in_its_batch(
    bus: Bus, store: RegistryStore
) -> None:
    many_unknown = json.dumps({f"field{i}": 1 for i in range(150)}).encode()
    long_unknown = json.dumps({"x" * 300: 1}).encode()
    async with running(bus, store):
        await bus.publish(Priority(**WHO, level="high"))
        await settled(bus)
        subject = hints_query_subject(*WHO.values())
        answers = await asyncio.gather(
            bus.nc.request(subject, many_unknown, timeout=10),
            bus.nc.request(subject, long_unknown, timeout=10),
            *(bus.nc.request(subject, b"", timeout=10) for _ in range(20)),
        )
    many, long, *plain = answers
    assert len(QueryError.model_validate_json(many.data).problems) == 100  # the contract's most
    [problem] = QueryError.model_validate_json(long.data).problems
    assert problem.field == "x" * 200 and problem.rule == "extra_forbidden"
    for answer in plain:
        assert [h.level for h in HintsView.model_validate_json(answer.data).workload_hints] == ["high"]  # type: ignore[union-attr]


async def test_a_fresh_read_never_answers_with_a_read_that_began_before_the_question() -> None:
    reads = 0
    release = asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        started = reads
        await release.wait()
        return started

    fresh = FreshRead(read)
    first = asyncio.create_task(fresh())
    await asyncio.sleep(0)  # read 1 has begun
    during = [asyncio.create_task(fresh()) for _ in range(100)]  # asked while read 1 runs
    await asyncio.sleep(0)
    release.set()
    assert await first == 1
    assert {await task for task in during} == {2}  # all share read 2, which began after they asked
    assert reads == 2


async def test_a_fresh_read_cancelled_cancels_its_callers_and_the_next_read_is_new() -> None:
    reads = 0
    hang = asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        if reads == 1:
            await hang.wait()  # never set: this read is cancelled
        return reads

    fresh = FreshRead(read)
    first = asyncio.create_task(fresh())
    await asyncio.sleep(0)
    queued = asyncio.create_task(fresh())  # waits for the read after the hanging one
    await asyncio.sleep(0)
    assert fresh._reading is not None
    fresh._reading.cancel()  # as when its event loop shuts down
    for caller in (first, queued):
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert await fresh() == 2


async def test_a_fresh_read_that_fails_fails_its_callers_and_the_next_read_is_new() -> None:
    outcomes = iter([RuntimeError("database gone"), 7])

    async def read() -> int:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    fresh = FreshRead(read)
    failed = await asyncio.gather(fresh(), fresh(), return_exceptions=True)
    assert [str(f) for f in failed] == ["database gone", "database gone"]
    assert await fresh() == 7
