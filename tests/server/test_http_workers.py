"""``wi up`` serving HTTP from gateway worker processes (``WI_HTTP_WORKERS`` > 1), and how a worker
learns the platform process's health."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.platform import eventually, eventually_async, start_platform
from wi.bus import Bus
from wi.bus.supervisor import LoopHealth, LoopState
from wi.contract import Eviction, utc_now
from wi.gateway.health import PLATFORM_CHECK, HealthDesk, PlatformHealth, ask_platform
from wi.server import EmbeddedNatsServer
from wi.server.http import bind_http_group
from wi.server.workers import GatewayWorkers, WorkerFailed, WorkerSpec


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


async def test_workers_serve_hints_notices_and_the_platform_processs_readiness(tmp_path: Path) -> None:
    async with start_platform(tmp_path / "wi", http_workers=2) as running:
        workers = running.platform.http
        assert isinstance(workers, GatewayWorkers)
        pids = workers.pids
        assert len(set(pids)) == 2 and os.getpid() not in pids and all(map(_alive, pids))
        auth = {"Authorization": f"Bearer {running.acme}"}
        async with httpx.AsyncClient(base_url=running.endpoints.http_url, timeout=30) as http:
            checks = (await http.get("/readyz")).json()["checks"]
            # The loops and auth live in the platform process: the worker asked it over NATS.
            assert {"loop registry hints", "loop allocator deployments", "auth"} <= set(checks)
            assert set(checks.values()) == {"ok"}, checks

            sent = await http.post(
                "/v1/workloads/web/hints", json={"kind": "priority", "level": "low"}, headers=auth
            )
            assert sent.status_code == 202, sent.text
            view = await http.get(
                "/v1/workloads/web/hints", params={"after_seq": sent.json()["seq"]}, headers=auth
            )
            assert view.json()["complete"] and [h["level"] for h in view.json()["workload_hints"]] == ["low"]

            # A long poll held by a worker is woken by a notice the registry records in another process.
            empty = (await http.get("/v1/workloads/web/notices", headers=auth)).json()
            soon = utc_now() + timedelta(minutes=5)
            eviction = Eviction(
                tenant="acme", workload="web", instance="web-0", reason="spot", not_before=soon
            )
            poll = asyncio.create_task(
                http.get(
                    "/v1/workloads/web/notices",
                    params={"after": empty["next_cursor"], "wait": 20},
                    headers=auth,
                )
            )
            await asyncio.sleep(0.5)
            await running.bus.publish(eviction)
            [delivered] = (await poll).json()["notices"]
            assert delivered["notice"]["notice_id"] == eviction.notice_id

            answered = await http.post(
                f"/v1/workloads/web/notices/{eviction.notice_id}/responses",
                json={"action": "ack"},
                headers=auth,
            )
            assert answered.status_code == 202 and answered.json()["state"] == "acked", answered.text

        # Each request on a connection of its own: the kernel spreads them over both workers, and a scrape
        # answered by either reports them all.
        for _ in range(20):
            async with httpx.AsyncClient(base_url=running.endpoints.http_url) as fresh:
                assert (await fresh.get("/healthz")).status_code == 200
        for _ in range(3):
            async with httpx.AsyncClient(base_url=running.endpoints.http_url) as fresh:
                scraped = (await fresh.get("/metrics")).text
            [count] = [
                line
                for line in scraped.splitlines()
                if line.startswith('wi_http_requests_total{method="GET",route="/healthz",status="200"}')
            ]
            assert float(count.split()[-1]) == 20, count
    assert not any(map(_alive, pids)), "a gateway worker outlived wi up"


async def test_a_worker_that_dies_is_replaced_while_the_others_serve(tmp_path: Path) -> None:
    async with start_platform(tmp_path / "wi", http_workers=2) as running:
        workers = running.platform.http
        assert isinstance(workers, GatewayWorkers)
        killed, kept = workers.pids
        os.kill(killed, signal.SIGKILL)
        async with httpx.AsyncClient(base_url=running.endpoints.http_url, timeout=30) as http:
            assert (await http.get("/healthz")).status_code == 200  # the other worker serves meanwhile
            await eventually(lambda: killed not in workers.pids, timeout_s=30)
            [new] = [pid for pid in workers.pids if pid != kept]
            assert _alive(new) and _alive(kept)
            await eventually_async(lambda: _ready(http))


async def _ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200


async def test_a_worker_asks_the_platform_process_for_its_health_over_nats(bus: Bus) -> None:
    subject = "wi.v1.health.test"
    ask = ask_platform(bus, subject)
    silent = await ask()
    assert silent.unreachable is not None and "no platform process" in silent.unreachable
    assert list(silent.checks()) == [PLATFORM_CHECK]

    failing = LoopHealth("registry hints", LoopState.RESTARTING, restarts=2, last_error="boom")

    async def report() -> PlatformHealth:
        return PlatformHealth((failing,), "ok")

    desk = HealthDesk(bus, subject, report)
    await desk.start()
    try:
        assert (await ask()).checks() == {
            "loop registry hints": "restarting after 2 restart(s): boom",
            "auth": "ok",
        }
    finally:
        await desk.stop()

    async def garbage(msg) -> None:  # type: ignore[no-untyped-def]
        await msg.respond(b'{"loops": "not a list"')

    impostor = await bus.nc.subscribe(subject, cb=garbage)
    try:
        broken = await ask()
        assert broken.unreachable is not None and "not a health report" in broken.unreachable
    finally:
        await impostor.unsubscribe()


async def test_a_worker_that_cannot_start_fails_the_start_and_leaves_no_process(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    sockets = bind_http_group("127.0.0.1", 0, 2)
    spec = WorkerSpec(
        socket_fd=-1,
        nats_url=nats_server.url,
        nats_user=None,
        nats_password=None,
        retry_refusals=False,
        database_url=f"sqlite:///{tmp_path / 'wi.db'}",
        health_subject="wi.v1.health.test",
        fleet=tmp_path / "no-such-fleet.json",
        max_body_bytes=1024,
        long_poll_max_s=1,
        shutdown_grace_s=1,
        log_level="WARNING",
    )
    workers = GatewayWorkers(sockets, spec, tmp_path / "metrics")
    try:
        with pytest.raises(WorkerFailed, match="did not start"):
            await workers.start()
        started = workers.pids
        assert len(started) == 2
    finally:
        await workers.stop(1)
        for listening in sockets:
            listening.close()
    assert not any(map(_alive, started))


async def test_workers_share_new_connections() -> None:
    """Each worker has a socket of its own on the port (SO_REUSEPORT), so the kernel spreads connections
    among them; processes accepting on one shared socket under uvloop do not (one takes a whole burst)."""
    group = bind_http_group("127.0.0.1", 0, 2)
    try:
        assert len({listening.getsockname() for listening in group}) == 1
        clients = [socket.create_connection(group[0].getsockname()[:2]) for _ in range(64)]
        try:
            accepted = []
            for listening in group:
                listening.setblocking(False)
                count = 0
                with contextlib.suppress(BlockingIOError):
                    while True:
                        listening.accept()[0].close()
                        count += 1
                accepted.append(count)
        finally:
            for client in clients:
                client.close()
        assert sum(accepted) == 64 and min(accepted) > 0, accepted
        with pytest.raises(OSError):
            bind_http_group("127.0.0.1", group[0].getsockname()[1], 2)  # the port is taken
    finally:
        for listening in group:
            listening.close()


async def test_readiness_reports_a_gateway_worker_that_is_down(tmp_path: Path) -> None:
    async with start_platform(tmp_path / "wi", http_workers=2) as running:
        workers = running.platform.http
        assert isinstance(workers, GatewayWorkers)
        assert workers.check() == "ok"
        os.kill(workers.pids[0], signal.SIGKILL)
        await eventually(lambda: workers.check() == "1 of 2 serving")
        health = await running.platform.health()
        assert health.checks()["gateway workers"] == "1 of 2 serving"
        await eventually(lambda: workers.check() == "ok", timeout_s=30)
