"""Drills: a tenant's test notice reaches its own workload (never another tenant's), is answered like a
real one, is reported, and no platform service acts on it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import httpx
import nats.errors
import pytest
from wi_sdk import Received, WorkloadClient

from tests.platform import Running, eventually, eventually_async, record_errors
from wi.bus import Bus, drill_start_subject, tenant_inbox
from wi.console import drill_lines
from wi.contract import DrillReport, DrillRequest, Eviction, Family, Maintenance, Message, utc_now
from wi.engine import Decision, DecisionLog, PlatformService, ServiceContext, ServiceRunner, View, load_fleet
from wi.gateway.drills import Drill, drill_notice

WI = Path(sys.executable).parent / "wi"


async def test_an_acked_eviction_drill_over_http_is_reported_with_its_answer(running: Running) -> None:
    received: list[Eviction] = []
    async with WorkloadClient(
        tenant="acme", workload="web", url=running.endpoints.nats_url, token=running.acme
    ) as workload:

        @workload.on(Eviction)
        async def evicted(notice: Received[Eviction]) -> None:
            received.append(notice.notice)
            await notice.ack("drained")

        workload.start()
        async with httpx.AsyncClient(
            base_url=running.endpoints.http_url, headers={"Authorization": f"Bearer {running.acme}"}
        ) as http:
            started = await http.post("/v1/workloads/web/drills", json={"notice_s": 120, "target": "web-0"})
            assert started.status_code == 202, started.text
            drill_id = started.json()["drill_id"]

            async def report() -> dict[str, object]:
                reply = await http.get(f"/v1/workloads/web/drills/{drill_id}")
                assert reply.status_code == 200, reply.text
                body: dict[str, object] = reply.json()
                return body

            found: dict[str, object] = {}

            async def answered() -> bool:
                found.update(await report())
                return found["done"] is True

            await eventually_async(answered)
    [notice] = received
    assert notice.drill and notice.instance == "web-0"
    assert found["answer"] == "ack" and found["state"] == "acked"
    assert found["notice_id"] == notice.notice_id and found["tenant"] == "acme"
    assert isinstance(found["delivered_after_s"], float) and isinstance(found["answered_after_s"], float)
    assert 0 <= float(str(found["before_deadline_s"])) <= 120


async def _done(workload: WorkloadClient, drill_id: str) -> DrillReport:
    """The drill's report over the SDK, once it is done."""
    found: list[DrillReport] = []

    async def done() -> bool:
        found.append(await workload.drill_report(drill_id))
        return found[-1].done

    await eventually_async(done)
    return found[-1]


@pytest.mark.parametrize("transport", ["nats", "http"])
async def test_a_deferred_maintenance_drill_over_the_sdk(running: Running, transport: str) -> None:
    url = running.endpoints.nats_url if transport == "nats" else running.endpoints.http_url
    async with WorkloadClient(tenant="acme", workload="db", url=url, token=running.acme) as workload:

        @workload.on(Maintenance)
        async def maintained(notice: Received[Maintenance]) -> None:
            assert notice.notice.deferrable_until is not None
            await notice.defer(notice.notice.deferrable_until)

        workload.start()
        started = await workload.drill("maintenance", notice_s=300)
        assert started.notice_kind == "maintenance" and not started.done
        report = await _done(workload, started.drill_id)
    assert (report.answer, report.state) == ("defer", "deferred")
    assert report.deferred_until is not None and report.deferred_until > report.deadline


async def test_a_tenant_cannot_drill_or_read_another_tenants_workload(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.endpoints.http_url) as http:
        acme = {"Authorization": f"Bearer {running.acme}"}
        globex = {"Authorization": f"Bearer {running.globex}"}
        started = await http.post("/v1/workloads/web/drills", json={}, headers=acme)
        drill_id = started.json()["drill_id"]
        stolen = await http.get(f"/v1/workloads/web/drills/{drill_id}", headers=globex)
        assert stolen.status_code == 404 and stolen.json()["errors"][0]["rule"] == "unknown_drill"
        platform = await http.post(
            "/v1/workloads/web/drills", json={}, headers={"Authorization": f"Bearer {running.operator}"}
        )
        assert platform.status_code == 403
    intruder = await Bus.connect(
        running.endpoints.nats_url,
        source="/tests",
        user=running.globex.split("_")[1],
        password=running.globex,
        inbox_prefix=tenant_inbox("globex"),
    )
    errors = record_errors(intruder)
    try:
        with pytest.raises((TimeoutError, nats.errors.Error)):
            await intruder.nc.request(
                drill_start_subject("acme", "web"), DrillRequest().model_dump_json().encode(), timeout=1
            )
    finally:
        await intruder.close()
    assert any("permissions violation" in e for e in errors)


async def _wi_drill(running: Running, tenant: str) -> subprocess.CompletedProcess[str]:
    command = [str(WI), "drill", "-w", "api", "--tenant", tenant, "--kind", "eviction", "--notice-s", "60"]
    command += ["--url", running.endpoints.http_url, "--token", running.acme]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)


async def test_the_cli_prints_a_report_that_reads_well(running: Running) -> None:
    async with WorkloadClient(
        tenant="acme", workload="api", url=running.endpoints.http_url, token=running.acme
    ) as workload:

        @workload.on(Eviction)
        async def evicted(notice: Received[Eviction]) -> None:
            await notice.ack()

        workload.start()
        done = await _wi_drill(running, "acme")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("drill ") and "eviction notice" in lines[0]
    assert any(line.startswith("  delivered   after ") for line in lines)
    assert any(line.startswith("  answered    ack, ") and "before the deadline" in line for line in lines)
    assert lines[-1] == "  notice      acked"
    wrong = await _wi_drill(running, "globex")
    assert wrong.returncode == 2 and "the token is tenant acme's, not globex's" in wrong.stderr


class Recorder(PlatformService):
    """A service that records every notice it is handed and decides nothing."""

    name: ClassVar[str] = "recorder"
    consumes: ClassVar[tuple[Family, ...]] = (Family.NOTICE, Family.VERDICT)

    def __init__(self, context: ServiceContext) -> None:
        super().__init__(context)
        self.handed: list[Message] = []

    def reset(self) -> None:
        self.handed = []

    def apply(self, decisions: Sequence[Decision]) -> None:
        pass

    def wants(self, message: Message) -> bool:
        self.handed.append(message)
        return False

    def decide(self, message: Message, view: View, now: datetime) -> list[Decision]:
        return []


async def test_no_service_is_handed_a_drill_or_a_verdict_on_one(running: Running) -> None:
    store = running.platform.store
    assert store is not None
    recorder = Recorder(ServiceContext(load_fleet()))
    runner = ServiceRunner(recorder, running.bus, store, DecisionLog(store.engine))
    await runner.start()
    stop = asyncio.Event()
    consuming = asyncio.create_task(runner.run(stop))
    try:
        async with WorkloadClient(
            tenant="acme", workload="web", url=running.endpoints.nats_url, token=running.acme
        ) as workload:

            @workload.on(Eviction)
            async def evicted(notice: Received[Eviction]) -> None:
                await notice.ack()

            workload.start()
            await _done(workload, (await workload.drill("eviction", notice_s=30)).drill_id)
            real = Eviction(
                tenant="acme",
                workload="web",
                instance="web-1",
                not_before=utc_now() + timedelta(minutes=1),
                reason="a real one",
            )
            await running.bus.publish(real)  # it and its verdict come after the drill's in each stream
            await eventually(lambda: len(recorder.handed) == 2)
    finally:
        stop.set()
        await consuming
    assert [(m.kind, getattr(m, "notice_id", None)) for m in recorder.handed] == [
        ("eviction", real.notice_id),
        ("verdict", real.notice_id),
    ], "the drill and the verdict on it never reach a service"


def test_a_drill_nobody_answers_expires_and_reads_so() -> None:
    requested = datetime(2026, 11, 23, 12, tzinfo=UTC)
    notice = drill_notice("acme", "web", DrillRequest(notice_kind="power_event", notice_s=60), requested)
    drill = Drill(notice, "d1", delivered_at=requested + timedelta(seconds=0.5))
    waiting = drill.report(requested + timedelta(seconds=30))
    assert (waiting.state, waiting.done, waiting.delivered_after_s) == ("pending", False, 0.5)
    over = drill.report(requested + timedelta(seconds=61))
    assert (over.state, over.done, over.answer) == ("expired", True, None)
    assert drill_lines(over.model_dump(mode="json", exclude_none=True))[-2:] == [
        "  answered    none: the deadline passed without an answer",
        "  notice      expired",
    ]
