"""``wi up`` as a user runs it: a real process, real signals, its state in a data dir."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from wi.auth import token_id_of
from wi.bus import Bus, hints_query_subject
from wi.contract import HintsQuery, HintsView, Priority
from wi.engine import installed_services

WI = Path(sys.executable).parent / "wi"


@dataclass
class Running:
    process: subprocess.Popen[str]
    nats_url: str
    http_url: str
    nats_pid: int
    output: list[str]


def _start(data_dir: Path) -> Running:
    process = subprocess.Popen(
        [str(WI), "up", "--data-dir", str(data_dir), "--nats-port", "0", "--http-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a shell job
    )
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.strip().startswith("HTTP"):
            text = "".join(output)
            nats_url = re.search(r"NATS\s+(nats://\S+)", text)
            http_url = re.search(r"HTTP\s+(http://\S+)", text)
            [ports_file] = (data_dir / "nats").glob("nats-server_*.ports")
            nats_pid = int(ports_file.stem.rsplit("_", 1)[1])
            assert nats_url and http_url
            return Running(process, nats_url.group(1), http_url.group(1), nats_pid, output)
    process.kill()
    raise AssertionError("wi up did not come up:\n" + "".join(output))


def _finish(running: Running, timeout_s: float = 30) -> str:
    assert running.process.stdout is not None
    rest = running.process.stdout.read()
    running.process.wait(timeout_s)
    return "".join(running.output) + rest


def _gone(pid: int, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "wi-data"


def _platform_token(data_dir: Path) -> str:
    """A platform token made as an operator would, with the CLI."""
    made = subprocess.run(
        [str(WI), "tokens", "create", "--platform", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


async def _send_and_read(nats_url: str, token: str, hint: Priority | None) -> HintsView:
    bus = await Bus.connect(nats_url, source="/tests", token=token)
    try:
        after = (await bus.publish(hint)).seq if hint else None
        reply = await bus.nc.request(
            hints_query_subject("acme", "web"),
            HintsQuery(after_seq=after).model_dump_json().encode(),
            timeout=10,
        )
        return HintsView.model_validate_json(reply.data)
    finally:
        await bus.close()


async def test_wi_up_serves_drains_on_sigterm_and_keeps_state_across_restarts(data_dir: Path) -> None:
    token = _platform_token(data_dir)
    running = _start(data_dir)
    async with httpx.AsyncClient(base_url=running.http_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        checks = (await http.get("/readyz")).json()["checks"]
        assert set(checks.values()) == {"ok"}, checks
        assert {
            "nats",
            "database",
            "stream WI_HINTS",
            "loop registry hints",
            "loop allocator deployments",
            "auth",
        } <= set(checks)
    view = await _send_and_read(
        running.nats_url, token, Priority(tenant="acme", workload="web", level="critical")
    )
    assert [h.kind for h in view.workload_hints] == ["priority"]

    running.process.send_signal(signal.SIGTERM)
    output = _finish(running)
    assert running.process.returncode == 0, output
    assert "stopped" in output and "Traceback" not in output
    assert _gone(running.nats_pid), "nats-server outlived wi up"

    again = _start(data_dir)
    try:
        view = await _send_and_read(again.nats_url, token, None)
        assert [h.level for h in view.workload_hints] == ["critical"]  # type: ignore[union-attr]
    finally:
        os.killpg(again.process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        output = _finish(again)
    assert again.process.returncode == 0, output
    assert "Traceback" not in output
    assert _gone(again.nats_pid)


async def test_nats_refuses_a_client_without_a_valid_token(data_dir: Path) -> None:
    running = _start(data_dir)
    try:
        with pytest.raises(PermissionError, match="refused the credentials"):
            await Bus.connect(running.nats_url, source="/tests", initial_timeout_s=5)
        forged = "wi_0123456789ab_" + "x" * 43
        with pytest.raises(PermissionError):
            await Bus.connect(running.nats_url, source="/tests", user=token_id_of(forged), password=forged)
    finally:
        running.process.send_signal(signal.SIGTERM)
        _finish(running)


def test_a_killed_wi_up_leaves_no_nats_server(data_dir: Path) -> None:
    running = _start(data_dir)
    running.process.kill()
    running.process.wait(10)
    assert _gone(running.nats_pid), "nats-server was orphaned"


def test_a_port_in_use_is_a_clear_error(data_dir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(WI), "up", "--data-dir", str(data_dir), "--nats-port", "0", "--http-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "Address already in use" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_service_is_a_clear_error_and_services_list_names_the_installed(data_dir: Path) -> None:
    result = subprocess.run(
        [
            str(WI),
            "up",
            "--data-dir",
            str(data_dir),
            "--nats-port",
            "0",
            "--http-port",
            "0",
            "--services",
            "bogus",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    installed = ", ".join(installed_services())
    assert f"services: bogus not installed (installed: {installed})" in result.stderr
    assert "Traceback" not in result.stderr
    listed = subprocess.run([str(WI), "services", "list"], capture_output=True, text=True, check=True)
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(installed_services())
    assert "consumes deployment" in listed.stdout
