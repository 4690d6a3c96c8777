"""``wi up``'s gateway worker processes (``WI_HTTP_WORKERS`` > 1): started, kept running, drained."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

from pydantic import BaseModel, Field

from wi.gateway.metrics import MULTIPROCESS_DIR

log = logging.getLogger("wi.server.workers")

READY = b"ready"
"""What a worker writes to its standard output once it serves (and nothing else: its prints go to
standard error)."""
READY_TIMEOUT_S = 60.0
"""How long a worker may take to connect and serve before ``wi up`` gives up on it."""
RESTART_PAUSE_S = 1.0
"""How long after a worker dies another is started in its place; doubled after each failed start, up to
RESTART_PAUSE_MAX_S (a worker that cannot start does not spin)."""
RESTART_PAUSE_MAX_S = 30.0
STOP_MARGIN_S = 1.0
"""How much of the grace period a worker leaves for closing its connections after its requests end."""


class WorkerSpec(BaseModel):
    """What a gateway worker needs from ``wi up``: the socket it inherits, where NATS and the database are,
    WI's credential there, and the gateway's settings. Sent on the worker's standard input, never in its
    arguments or environment."""

    socket_fd: int = -1
    """The worker's listening socket, inherited under this number (``GatewayWorkers`` sets it)."""
    parent_pid: int = -1
    """``wi up``'s process, which the worker ends with (``GatewayWorkers`` sets it)."""
    nats_url: str = Field(repr=False)
    """Where NATS is (may hold credentials)."""
    nats_user: str | None
    """WI's own NATS user, if NATS wants one."""
    nats_password: str | None = Field(repr=False)
    """Its password."""
    retry_refusals: bool
    """Whether a refused NATS connection is tried again (WI's auth callout may answer late)."""
    database_url: str = Field(repr=False)
    """The registry's database (may hold credentials)."""
    health_subject: str
    """Where the platform process answers health requests (``wi.gateway.health``)."""
    fleet: Path
    """The fleet file, for the dashboard."""
    max_body_bytes: int
    """WI_HTTP_MAX_BODY_BYTES."""
    long_poll_max_s: float
    """WI_HTTP_LONG_POLL_MAX_S."""
    shutdown_grace_s: float
    """How long the worker's requests in flight may take to finish once it is told to stop."""
    log_level: str
    """WI_LOG_LEVEL."""


class WorkerFailed(RuntimeError):
    """A gateway worker exited before it served."""


class GatewayWorkers:
    """One gateway worker process (``wi.server.worker``) per listening socket, given ``spec``; a worker
    that dies is replaced on its socket, and ``stop`` closes the sockets and drains the workers.

    The workers write their /metrics figures to ``metrics_dir`` (emptied at start), so that any of them
    reports all of them.
    """

    def __init__(self, sockets: list[socket.socket], spec: WorkerSpec, metrics_dir: Path) -> None:
        self.sockets = sockets
        self.spec = spec
        self.metrics_dir = metrics_dir
        self._processes: list[asyncio.subprocess.Process | None] = [None] * len(sockets)
        self._serving: set[int] = set()
        """The slots whose worker said it serves and has not exited since."""
        self._stopping = asyncio.Event()
        self._keepers: list[asyncio.Task[None]] = []

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids, now."""
        return [process.pid for process in self._processes if process is not None]

    def check(self) -> str:
        """``ok`` while every worker serves, else how many do (the others' share of new connections waits
        in their sockets' backlog): what /readyz reports as ``gateway workers``."""
        serving = len(self._serving)
        return "ok" if serving == len(self.sockets) else f"{serving} of {len(self.sockets)} serving"

    async def start(self) -> None:
        """Starts every worker and returns once each serves; raises WorkerFailed if one cannot (``stop``
        then ends those that started)."""
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True)
        started = await asyncio.gather(
            *(self._spawn(slot) for slot in range(len(self.sockets))), return_exceptions=True
        )
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        self._keepers = [
            asyncio.create_task(self._keep(slot), name=f"gateway worker {slot}")
            for slot in range(len(self.sockets))
        ]
        log.info("%d gateway workers serve HTTP (pids %s)", len(self.sockets), ", ".join(map(str, self.pids)))

    async def _spawn(self, slot: int) -> None:
        """Starts the worker of ``slot`` and waits until it serves."""
        listening = self.sockets[slot]
        process = self._processes[slot] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wi.server.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=(listening.fileno(),),
            # Not WI's secrets (the issuer seed, the callout's and the system user's passwords): a worker
            # faces the network and needs none of them.
            env={
                **{name: value for name, value in os.environ.items() if not name.startswith("WI_")},
                MULTIPROCESS_DIR: str(self.metrics_dir),
            },
            # Its own session: a Ctrl-C reaches `wi up`, which stops HTTP first. It binds itself to `wi up`
            # (spec.parent_pid) once started: nothing runs between fork and exec in this threaded process.
            start_new_session=True,
        )
        assert process.stdin is not None and process.stdout is not None
        spec = self.spec.model_copy(update={"socket_fd": listening.fileno(), "parent_pid": os.getpid()})
        try:
            process.stdin.write(spec.model_dump_json().encode())
            await process.stdin.drain()
            process.stdin.close()
            said = await asyncio.wait_for(process.stdout.readexactly(len(READY)), READY_TIMEOUT_S)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            said = b""
        if said == READY:
            self._serving.add(slot)
        else:
            await _end(process, 0)
            raise WorkerFailed(
                f"gateway worker {process.pid} did not start (exit code {process.returncode}; "
                "its log above says why)"
            )

    async def _keep(self, slot: int) -> None:
        """Replaces the worker of ``slot`` whenever it exits, until stopped."""
        while True:
            process = self._processes[slot]
            assert process is not None
            code = await process.wait()
            self._serving.discard(slot)
            if self._stopping.is_set():
                return
            log.log(
                logging.WARNING if code == 0 else logging.ERROR,
                "gateway worker %d exited with code %d; starting another",
                process.pid,
                code,
            )
            pause = RESTART_PAUSE_S
            while True:
                await asyncio.sleep(pause)
                try:
                    await self._spawn(slot)
                    break
                except Exception:
                    log.exception("could not start a gateway worker; trying again in %.0f s", pause)
                pause = min(pause * 2, RESTART_PAUSE_MAX_S)

    async def stop(self, grace_s: float) -> None:
        """Closes the sockets (new connections are refused, not left waiting in a backlog nobody serves),
        then drains every worker (SIGTERM: long polls end, requests in flight finish) within ``grace_s``,
        killing those still running after it."""
        self._stopping.set()
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        for listening in self.sockets:
            listening.close()
        ended = await asyncio.gather(
            *(_end(process, grace_s) for process in self._processes if process is not None),
            return_exceptions=True,
        )
        for error in ended:
            if isinstance(error, Exception):
                log.error("could not stop a gateway worker: %r", error)


async def _end(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """Stops a worker with SIGTERM, killing it if it is still running after ``grace_s``; waits for it."""
    with contextlib.suppress(ProcessLookupError):
        if grace_s > 0:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), grace_s)
        if process.returncode is None:
            if grace_s > 0:
                log.warning("gateway worker %d still busy after %.0f s; killed", process.pid, grace_s)
            process.kill()
    await process.wait()
