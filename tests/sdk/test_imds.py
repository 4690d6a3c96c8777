"""`wi imds` against a running platform, read by the clouds' own clients: the `ec2-metadata` package, and
`curl` exactly as AWS's, Azure's and GCE's documentation shows it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from ec2_metadata import EC2Metadata
from wi_sdk import Evictability, Received, WorkloadClient
from wi_sdk.imds import ImdsAgent

from tests.platform import Running, eventually, notice_state
from wi.contract import CapacityPressure, Eviction, Maintenance, NoticeState, utc_now
from wi.engine import DecisionLog

WI = Path(sys.executable).parent / "wi"
TTL = "X-aws-ec2-metadata-token-ttl-seconds"


async def _run(*argv: str) -> str:
    """Runs a command to its end; returns its stdout (it must succeed)."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def _evict(running: Running, workload: str, min_notice_s: int) -> Eviction:
    """The workload says it is evictable with ``min_notice_s`` of notice and deploys one instance
    (``train-0``); capacity pressure then makes the spot-harvest service evict it. Returns the notice
    WI recorded."""
    async with WorkloadClient(
        tenant="acme", workload=workload, url=running.endpoints.nats_url, token=running.acme
    ) as client:
        await client.hint(client.new(Evictability, evictable=True, min_notice_s=min_notice_s))
        await client.deploy(deployment="train", instances=1, cores=16, memory_gb=64)
    store = running.platform.store
    assert store is not None
    audit = DecisionLog(store.engine)
    await eventually(lambda: audit.recent("allocator"))
    [placed] = audit.recent("allocator")
    cluster = placed.detail["servers"][0].split("-")[0]
    await running.bus.publish(
        CapacityPressure(cluster=cluster, pool="spot", cores_needed=16, needed_within_s=5)
    )

    def evictions() -> list[Eviction]:
        return [s.notice for s in store.notices("acme", workload) if isinstance(s.notice, Eviction)]

    await eventually(evictions)
    [eviction] = evictions()
    assert eviction.instance == "train-0"
    return eviction


async def _eventually_read(predicate: Callable[[], object]) -> None:
    """Waits until a blocking read (run in a thread) comes true."""
    async with asyncio.timeout(15):
        while not await asyncio.to_thread(predicate):  # noqa: ASYNC110  # the agent answers over HTTP
            await asyncio.sleep(0.05)


async def _curl(*argv: str) -> str:
    """curl, quiet; returns what it read."""
    return await _run("curl", "-s", *argv)


def _lead_time(notice: Eviction | Maintenance) -> timedelta:
    return notice.not_before - notice.issued_at


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


@pytest.fixture
async def wi_imds(running: Running) -> AsyncIterator[str]:
    """`wi imds` for acme/etl/train-0 over NATS, as a workload's operator starts it; yields its URL."""
    process = await asyncio.create_subprocess_exec(
        str(WI),
        "imds",
        "--tenant",
        "acme",
        "--workload",
        "etl",
        "--instance",
        "train-0",
        "--url",
        running.endpoints.nats_url,
        "--listen",
        "127.0.0.1:0",
        env={**os.environ, "WI_TOKEN": running.acme},
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(20):
        line = (await process.stdout.readline()).decode()
    assert line.startswith("serving acme/etl/train-0 on http://"), line
    try:
        yield line.split(" on ")[1].strip()
    finally:
        process.terminate()
        assert await process.wait() == 0


@pytest.fixture
async def agent(running: Running) -> AsyncIterator[ImdsAgent]:
    """The agent in this process for acme/batch/train-0 over HTTP, on any free port."""
    async with ImdsAgent(
        tenant="acme",
        workload="batch",
        instance="train-0",
        url=running.endpoints.http_url,
        token=running.acme,
        port=0,
    ) as started:
        yield started


async def test_aws_clients_read_the_eviction_with_the_lead_time_the_workload_asked_for(
    running: Running, wi_imds: str
) -> None:
    metadata = EC2Metadata()
    metadata.service_url = f"{wi_imds}/latest/"
    metadata.metadata_url = f"{metadata.service_url}meta-data/"
    assert await asyncio.to_thread(lambda: metadata.spot_instance_action) is None  # 404: nothing scheduled

    eviction = await _evict(running, "etl", min_notice_s=600)
    assert _lead_time(eviction) == timedelta(seconds=600)
    await _eventually_read(lambda: metadata.spot_instance_action is not None)
    action = await asyncio.to_thread(lambda: metadata.spot_instance_action)
    assert action is not None
    assert (action.action, action.time) == ("stop", _whole_seconds(eviction.not_before))

    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html
    documented = (
        f'TOKEN=`curl -X PUT "{wi_imds}/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 21600"` '
        f'&& curl -H "X-aws-ec2-metadata-token: $TOKEN" {wi_imds}/latest/meta-data/spot/instance-action'
    )
    read = json.loads(await _run("bash", "-c", documented))
    assert read == {"action": "stop", "time": f"{eviction.not_before:%Y-%m-%dT%H:%M:%S}Z"}
    without_token = await _run(
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        f"{wi_imds}/latest/meta-data/spot/instance-action",
    )
    assert without_token == "401"  # IMDSv1 is off unless --imdsv1


async def test_an_azure_polling_loop_sees_the_preemption_and_its_start_request_acks_it_in_wi(
    running: Running, agent: ImdsAgent
) -> None:
    eviction = await _evict(running, "batch", min_notice_s=300)
    # https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events
    endpoint = f"{agent.url}/metadata/scheduledevents?api-version=2020-07-01"

    async def poll() -> Any:
        return json.loads(await _run("curl", "-s", "-H", "Metadata:true", endpoint))

    async with asyncio.timeout(15):
        while not (document := await poll())["Events"]:  # noqa: ASYNC110  # a polling loop, as Azure's
            await asyncio.sleep(0.05)
    [event] = document["Events"]
    assert event == {
        "EventId": event["EventId"],
        "EventStatus": "Scheduled",
        "EventType": "Preempt",
        "ResourceType": "VirtualMachine",
        "Resources": ["train-0"],
        "NotBefore": event["NotBefore"],
        "Description": event["Description"],
        "EventSource": "Platform",
        "DurationInSeconds": -1,
    }
    not_before = parsedate_to_datetime(event["NotBefore"])
    assert not_before == _whole_seconds(eviction.not_before)
    assert _lead_time(eviction) == timedelta(seconds=300)

    approval = json.dumps({"StartRequests": [{"EventId": event["EventId"]}]})
    for _ in range(2):  # approving again changes nothing
        await _curl("-f", "-H", "Metadata:true", "-X", "POST", "-d", approval, endpoint)
    await eventually(lambda: notice_state(running, eviction.notice_id) == NoticeState.ACKED)
    assert running.platform.store is not None
    audit = DecisionLog(running.platform.store.engine)
    await eventually(lambda: any(d.action == "evict" for d in audit.recent("spot-harvest")))

    after = await poll()
    [started] = after["Events"]
    assert (started["EventStatus"], started["NotBefore"]) == ("Started", "")
    assert after["DocumentIncarnation"] > document["DocumentIncarnation"]
    refused = await _run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", endpoint)
    assert refused == "400"  # no Metadata: true header


async def test_maintenance_wakes_a_gce_wait_for_change_and_shows_in_every_format(running: Running) -> None:
    nats, token = running.endpoints.nats_url, running.acme
    seen_by_the_workload: list[str] = []
    async with (
        ImdsAgent(
            tenant="acme", workload="batch", instance="train-0", url=nats, token=token, port=0
        ) as agent,
        WorkloadClient(tenant="acme", workload="batch", url=nats, token=token) as workload,
    ):

        @workload.on(Maintenance)
        async def note(notice: Received[Maintenance]) -> None:
            seen_by_the_workload.append(notice.notice.notice_id)

        workload.start()
        flavor = "Metadata-Flavor: Google"
        event = f"{agent.url}/computeMetadata/v1/instance/maintenance-event"
        # https://cloud.google.com/compute/docs/metadata/querying-metadata#waitforchange
        headers = await _curl("-D", "-", "-o", "/dev/null", "-H", flavor, event)
        [etag] = [line.split(":")[1].strip() for line in headers.splitlines() if line.startswith("etag:")]
        assert await _curl("-H", flavor, f"{event}?wait_for_change=true&timeout_sec=1") == "NONE"
        waiting = asyncio.create_task(_curl("-H", flavor, f"{event}?wait_for_change=true&last_etag={etag}"))
        maintenance = Maintenance(
            tenant="acme",
            workload="batch",
            instance="train-0",
            type="live_migration",
            not_before=utc_now() + timedelta(minutes=10),
            expected_duration_s=60,
        )
        await running.bus.publish(maintenance)
        async with asyncio.timeout(15):
            assert await waiting == "MIGRATE_ON_HOST_MAINTENANCE"
        assert await _curl("-H", flavor, f"{agent.url}/computeMetadata/v1/instance/preempted") == "FALSE"
        await eventually(lambda: seen_by_the_workload == [maintenance.notice_id])  # the agent took no share

        aws = await _curl("-X", "PUT", f"{agent.url}/latest/api/token", "-H", f"{TTL}: 60")
        scheduled = f"{agent.url}/latest/meta-data/events/maintenance/scheduled"
        [scheduled_event] = json.loads(await _curl("-H", f"X-aws-ec2-metadata-token: {aws}", scheduled))
        assert (scheduled_event["Code"], scheduled_event["State"]) == ("system-maintenance", "active")
        not_before = datetime.strptime(scheduled_event["NotBefore"], "%d %b %Y %H:%M:%S GMT")
        assert not_before.replace(tzinfo=UTC) == _whole_seconds(maintenance.not_before)

        azure = f"{agent.url}/metadata/scheduledevents?api-version=2020-07-01"
        [freeze] = json.loads(await _curl("-H", "Metadata:true", azure))["Events"]
        assert (freeze["EventType"], freeze["DurationInSeconds"], freeze["EventStatus"]) == (
            "Freeze",
            60,
            "Scheduled",
        )


@pytest.fixture
async def offline() -> AsyncIterator[tuple[ImdsAgent, httpx.AsyncClient]]:
    """An agent's app and its notices, without WI: for the rules of each format, and notices held by hand."""
    agent = ImdsAgent(tenant="acme", workload="etl", instance="etl-0", url="http://127.0.0.1:1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(agent.app), base_url="http://imds") as http:
        yield agent, http
    agent.notices.close()
    await agent.client.close()


async def test_imdsv2_tokens_follow_the_aws_rules(offline: tuple[ImdsAgent, httpx.AsyncClient]) -> None:
    _, http = offline
    action = "/latest/meta-data/spot/instance-action"
    for ttl in (None, "0", "21601", "soon"):
        assert (
            await http.put("/latest/api/token", headers={} if ttl is None else {TTL: ttl})
        ).status_code == 400
    proxied = {TTL: "60", "X-Forwarded-For": "10.0.0.1"}
    assert (await http.put("/latest/api/token", headers=proxied)).status_code == 403
    issued = await http.put("/latest/api/token", headers={TTL: "60"})
    assert issued.headers[TTL] == "60"
    assert (await http.get(action, headers={"X-aws-ec2-metadata-token": issued.text})).status_code == 404
    assert (await http.get(action, headers={"X-aws-ec2-metadata-token": "forged"})).status_code == 401
    assert (await http.get(action)).status_code == 401
    v1 = ImdsAgent(tenant="acme", workload="etl", instance="etl-0", url="http://127.0.0.1:1", imdsv1=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(v1.app), base_url="http://imds") as http_v1:
        assert (await http_v1.get(action)).status_code == 404  # IMDSv1: no token needed, nothing scheduled
    await v1.client.close()


async def test_azure_and_gce_refuse_what_their_services_refuse(
    offline: tuple[ImdsAgent, httpx.AsyncClient],
) -> None:
    agent, http = offline
    events = "/metadata/scheduledevents"
    for headers, params in (
        ({}, {"api-version": "2020-07-01"}),
        ({"Metadata": "true"}, {}),
        ({"Metadata": "true"}, {"api-version": "2031-01-01"}),
    ):
        assert (await http.get(events, headers=headers, params=params)).status_code == 400
    metadata, version = {"Metadata": "true"}, {"api-version": "2020-07-01"}
    assert (
        await http.post(events, content=b'{"Start": []}', headers=metadata, params=version)
    ).status_code == 400
    unknown = {"StartRequests": [{"EventId": "602d9444-d2cd-49c7-8624-8643e7171297"}]}
    assert (await http.post(events, json=unknown, headers=metadata, params=version)).status_code == 400

    soon = utc_now() + timedelta(minutes=5)
    only_defer = Maintenance(
        tenant="acme",
        workload="etl",
        instance="etl-0",
        type="reboot",
        not_before=soon,
        expected_duration_s=30,
        deferrable_until=soon + timedelta(hours=1),
        responses=["defer"],
    )
    agent.notices.add_maintenance(Received(agent.client, only_defer))
    [reboot] = (await http.get(events, headers=metadata, params=version)).json()["Events"]
    approval = {"StartRequests": [{"EventId": reboot["EventId"]}]}
    assert (await http.post(events, json=approval, headers=metadata, params=version)).status_code == 409

    preempted = "/computeMetadata/v1/instance/preempted"
    assert (await http.get(preempted)).status_code == 403
    google = {"Metadata-Flavor": "Google"}
    assert (
        await http.get(preempted, headers=google, params={"wait_for_change": "true", "timeout_sec": "x"})
    ).status_code == 400


async def test_a_maintenance_that_ends_wakes_gce_waiters_and_leaves_every_format(
    offline: tuple[ImdsAgent, httpx.AsyncClient],
) -> None:
    agent, http = offline
    google = {"Metadata-Flavor": "Google"}
    event = "/computeMetadata/v1/instance/maintenance-event"
    brief = Maintenance(
        tenant="acme",
        workload="etl",
        instance="etl-0",
        type="reboot",
        not_before=utc_now() + timedelta(seconds=1),
        expected_duration_s=0,
    )
    agent.notices.add_maintenance(Received(agent.client, brief))
    during = await http.get(event, headers=google)
    assert during.text == "TERMINATE_ON_HOST_MAINTENANCE"
    after = await http.get(
        event, headers=google, params={"wait_for_change": "true", "last_etag": during.headers["ETag"]}
    )
    assert after.text == "NONE"  # woken by time alone: nothing arrived
    azure = await http.get(
        "/metadata/scheduledevents", headers={"Metadata": "true"}, params={"api-version": "2019-08-01"}
    )
    assert azure.json()["Events"] == []
