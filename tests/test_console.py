"""``wi hint`` and ``wi notices``, run as a person runs them, against a running gateway."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from tests.platform import Running
from wi.contract import Maintenance, utc_now

WI = Path(sys.executable).parent / "wi"


async def _wi(running: Running, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(WI), *args, "--url", running.endpoints.http_url, "--token", running.acme]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)


async def test_set_list_and_clear_hints(running: Running) -> None:
    done = await _wi(
        running, "hint", "set", "-w", "web", "evictability", "evictable=true", "min_notice_s=120"
    )
    assert done.returncode == 0, done.stderr
    await _wi(
        running, "hint", "set", "-w", "web", "priority", "level=low", "--instance", "canary", "--ttl", "600"
    )
    listed = await _wi(running, "hint", "list", "-w", "web")
    assert "evictability       evictable=true min_notice_s=120" in listed.stdout
    assert "(instance canary)" in listed.stdout
    await _wi(running, "hint", "clear", "-w", "web", "evictability")
    assert "evictability" not in (await _wi(running, "hint", "list", "-w", "web")).stdout


async def test_a_refused_hint_prints_the_field_and_the_rule(running: Running) -> None:
    done = await _wi(running, "hint", "set", "-w", "web", "evictability", "evictable=true", "min_notice_s=-5")
    assert done.returncode == 1
    assert "min_notice_s: Input should be greater than or equal to 0 [greater_than_equal]" in done.stderr


async def test_watch_and_respond_to_notices(running: Running) -> None:
    maintenance = Maintenance(
        tenant="acme",
        workload="web",
        instance="web-0",
        type="reboot",
        not_before=utc_now() + timedelta(minutes=15),
        expected_duration_s=300,
        deferrable_until=utc_now() + timedelta(hours=2),
        responses=["ack", "defer"],
    )
    await running.bus.publish(maintenance)
    watch = await asyncio.create_subprocess_exec(
        *[str(WI), "notices", "watch", "-w", "web"],
        *["--url", running.endpoints.http_url, "--token", running.acme],
        stdout=subprocess.PIPE,
    )
    try:
        assert watch.stdout is not None
        line = (await asyncio.wait_for(watch.stdout.readline(), 30)).decode()
    finally:
        watch.terminate()
        await watch.wait()
    assert line.startswith(maintenance.notice_id) and "maintenance" in line and "ack,defer" in line
    until = (utc_now() + timedelta(hours=1)).isoformat()
    answered = await _wi(
        running, "notices", "respond", "-w", "web", maintenance.notice_id, "defer", "--until", until
    )
    assert answered.returncode == 0, answered.stderr
    assert "notice is now deferred" in answered.stdout
