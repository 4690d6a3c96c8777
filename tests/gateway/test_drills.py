"""Drills: a tenant's test notice reaches its own workload (never another tenant's), is answered like a
real one, is reported, and no platform service acts on it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import httpx
import nats.errors
import pytest
from wi_sdk import Received, WorkloadClient

from tests.platform import Running, eventually, eventually_async, record_errors, start_platform
from wi.bus import STREAMS, Bus, drill_report_subject, drill_start_subject, tenant_inbox
from wi.console import drill_lines
from wi.contract import (
    DRILL_ANSWER,
    DrillError,
    DrillQuery,
    DrillReport,
    DrillRequest,
    Eviction,
    Family,
    Maintenance,
    Message,
    NoticeState,
    ResponseAction,
    utc_now,
)
from wi.engine import Decision, DecisionLog, PlatformService, ServiceContext, ServiceRunner, View, load_fleet
from wi.gateway import drills
from wi.gateway.drills import PUBLISH_TIMEOUT_S, Drill, DrillDesk, RegistryBehind, drill_notice
from wi.registry import Progress, Registry, RegistryStore
from wi.server import EmbeddedNatsServer

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


@asynccontextmanager
async def _acking_evictions(running: Running, workload: str, url: str) -> AsyncIterator[WorkloadClient]:
    """A started acme workload, over ``url``, that acks every eviction it is sent."""
    async with WorkloadClient(tenant="acme", workload=workload, url=url, token=running.acme) as client:

        @client.on(Eviction)
        async def evicted(notice: Received[Eviction]) -> None:
            await notice.ack()

        client.start()
        yield client


async def _wi_drill(running: Running, tenant: str) -> subprocess.CompletedProcess[str]:
    command = [str(WI), "drill", "-w", "api", "--tenant", tenant, "--kind", "eviction", "--notice-s", "60"]
    command += ["--url", running.endpoints.http_url, "--token", running.acme]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)


async def test_the_cli_prints_a_report_that_reads_well(running: Running) -> None:
    async with _acking_evictions(running, "api", running.endpoints.http_url):
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
        async with _acking_evictions(running, "web", running.endpoints.nats_url) as workload:
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


async def _acked_drill(running: Running, http: httpx.AsyncClient, drill_id: str) -> dict[str, object]:
    """Starts drill ``drill_id`` on acme/web, has the workload ack it, and returns its done report."""
    async with _acking_evictions(running, "web", running.endpoints.nats_url):
        started = await http.post("/v1/workloads/web/drills", json={"drill_id": drill_id, "notice_s": 600})
        assert started.status_code == 202, started.text
        found: dict[str, object] = {}

        async def done() -> bool:
            found.update((await http.get(f"/v1/workloads/web/drills/{drill_id}")).json())
            return found.get("done") is True

        await eventually_async(done)
    return found


async def _notices_stored(running: Running) -> int:
    return (await running.bus.js.stream_info(STREAMS[Family.NOTICE].name)).state.messages  # type: ignore[no-any-return]


def _tenant_http(running: Running) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=running.endpoints.http_url, headers={"Authorization": f"Bearer {running.acme}"}
    )


async def test_a_drill_report_survives_a_restart_and_starting_it_again_sends_nothing(tmp_path: Path) -> None:
    async with start_platform(tmp_path / "wi") as running, _tenant_http(running) as http:
        before = await _acked_drill(running, http, "d-restart")
        stored = await _notices_stored(running)
    assert (before["answer"], before["state"]) == ("ack", "acked")
    async with start_platform(tmp_path / "wi") as running, _tenant_http(running) as http:
        read = await http.get("/v1/workloads/web/drills/d-restart")
        again = await http.post("/v1/workloads/web/drills", json={"drill_id": "d-restart", "notice_s": 5})
        elsewhere = await http.post("/v1/workloads/db/drills", json={"drill_id": "d-restart"})
        assert await _notices_stored(running) == stored
    assert read.status_code == 200 and read.json() == before
    assert again.status_code == 202 and again.json() == before, "the drill as it was, not a new one"
    assert elsewhere.status_code == 409 and elsewhere.json()["errors"][0]["rule"] == "drill_conflict"


async def test_another_gateway_on_the_same_database_and_nats_answers_for_a_drill(
    tmp_path: Path, nats_server: EmbeddedNatsServer, database_url: str
) -> None:
    shared = {"nats_url": nats_server.url, "database_url": database_url, "services": "none"}
    async with (
        start_platform(tmp_path / "first", **shared) as first,
        start_platform(tmp_path / "second", **shared) as second,
        _tenant_http(first) as via_first,
        _tenant_http(second) as via_second,
    ):
        started = await via_first.post("/v1/workloads/web/drills", json={"drill_id": "d-shared"})
        assert started.status_code == 202, started.text
        read = await via_second.get("/v1/workloads/web/drills/d-shared")  # waits for the registry if needed
        again = await via_second.post("/v1/workloads/web/drills", json={"drill_id": "d-shared"})
        unknown = await via_second.get("/v1/workloads/web/drills/d-never")
        stored = await _notices_stored(second)
    assert read.status_code == 200, read.text
    assert read.json()["notice_id"] == started.json()["notice_id"]
    assert read.json()["requested_at"] == started.json()["requested_at"]
    assert isinstance(read.json()["delivered_after_s"], float)
    assert again.status_code == 202 and again.json()["requested_at"] == started.json()["requested_at"]
    assert stored == 1, "one notice for the drill"
    assert unknown.status_code == 404


class StallingDesk(DrillDesk):
    """The desk, but starting drill ``slow`` waits until released, as a start whose JetStream is slow."""

    def __init__(self, bus: Bus, store: RegistryStore) -> None:
        super().__init__(bus, store, Progress(store))
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()

    async def begin(
        self, tenant: str, workload: str, request: DrillRequest, timeout_s: float = PUBLISH_TIMEOUT_S
    ) -> DrillReport:
        if request.drill_id == "slow":
            self.stalled.set()
            await self.release.wait()
        return await super().begin(tenant, workload, request, timeout_s)


async def _ask(bus: Bus, subject: str, body: DrillRequest | DrillQuery) -> DrillReport | DrillError:
    reply = await bus.nc.request(subject, body.model_dump_json().encode(), timeout=10)
    return DRILL_ANSWER.validate_json(reply.data)


async def test_a_slow_drill_start_holds_up_no_other_drill_request(
    bus: Bus, store: RegistryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drills, "CATCH_UP_WAIT_S", 0.2)  # no registry runs: do not wait long to say so
    desk = StallingDesk(bus, store)
    await desk.start()
    try:
        start = drill_start_subject("acme", "web")
        slow = asyncio.create_task(_ask(bus, start, DrillRequest(drill_id="slow")))
        await desk.stalled.wait()
        fast = await _ask(bus, start, DrillRequest(drill_id="fast"))
        asked = await _ask(bus, drill_report_subject("acme", "web"), DrillQuery(drill_id="fast"))
        assert not slow.done()
        desk.release.set()
        slowed = await slow
    finally:
        await desk.stop()
    assert isinstance(fast, DrillReport) and fast.drill_id == "fast" and fast.delivered_after_s is None
    assert isinstance(asked, DrillError) and "catching up" in asked.error, "no registry runs here"
    assert isinstance(slowed, DrillReport) and slowed.drill_id == "slow"


async def test_a_drill_not_recorded_yet_is_read_once_the_registry_records_it(
    bus: Bus, store: RegistryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drills, "CATCH_UP_WAIT_S", 0.2)  # no registry runs at first: do not wait long
    first, second = DrillDesk(bus, store, Progress(store)), DrillDesk(bus, store, Progress(store))
    started = await first.begin("acme", "web", DrillRequest(drill_id="d-1", notice_s=600))
    assert started.delivered_after_s is None and not started.done
    with pytest.raises(RegistryBehind):
        await second.report("acme", "web", "d-1")
    with pytest.raises(RegistryBehind):  # a duplicate: its report is the registry's
        await second.begin("acme", "web", DrillRequest(drill_id="d-1", notice_s=5))
    stop = asyncio.Event()
    registry = asyncio.create_task(Registry(bus, store).run(stop))
    try:
        monkeypatch.setattr(drills, "CATCH_UP_WAIT_S", 15.0)
        read = await second.report("acme", "web", "d-1")
        again = await second.begin("acme", "web", DrillRequest(drill_id="d-1", notice_s=5))
        other_workload = await second.report("acme", "db", "d-1")
        other_tenant = await second.report("globex", "web", "d-1")
    finally:
        stop.set()
        await registry
    assert (
        read is not None and read.requested_at == started.requested_at and read.deadline == started.deadline
    )
    assert read.delivered_after_s is not None and read.delivered_after_s >= 0
    assert again == read
    assert other_workload is None and other_tenant is None


def test_an_answer_the_bus_took_before_the_registry_recorded_the_notice_came_0_s_after_delivery() -> None:
    requested = datetime(2026, 11, 23, 12, tzinfo=UTC)
    notice = drill_notice("acme", "web", DrillRequest(notice_s=60), requested)
    drill = Drill(
        notice,
        "d1",
        delivered_at=requested + timedelta(seconds=0.5),
        answer=ResponseAction.ACK,
        answered_at=requested + timedelta(seconds=0.4),
        state=NoticeState.ACKED,
    )
    report = drill.report(requested + timedelta(seconds=1))
    assert (report.answered_after_s, report.before_deadline_s, report.done) == (0.0, 59.6, True)
