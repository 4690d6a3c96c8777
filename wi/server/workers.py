"""``wi up``'s gateway worker processes (``WI_HTTP_WORKERS`` > 1): started, kept running, drained."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path

from pydantic import BaseModel, Field

from .nats_server import die_with_parent

log = logging.getLogger("wi.server.workers")

READY_TIMEOUT_S = 60.0
"""How long a worker may take to connect and serve before ``wi up`` gives up on it."""
RESTART_PAUSE_S = 1.0
"""How long after a worker dies another is started in its place (a worker that cannot start does not
spin)."""


READY = "ready"
"""What a worker writes to its standard output once it serves."""


class WorkerSpec(BaseModel):
    """What a gateway worker needs from ``wi up``: the inherited socket, where NATS and the database are,
    WI's credential there, and the gateway's settings."""

    socket_fd: int
    nats_url: str
    nats_user: str | None
    nats_password: str | None = Field(repr=False)
    retry_refusals: bool
    """Whether a refused NATS connection is tried again (WI's auth callout may answer late)."""
    database_url: str = Field(repr=False)
    health_subject: str
    """Where the platform process answers health requests (``wi.gateway.health``)."""
    fleet: Path
    max_body_bytes: int
    long_poll_max_s: float
    shutdown_grace_s: float
    log_level: str


class WorkerFailed(RuntimeError):
    """A gateway worker exited before it served."""


class GatewayWorkers:
    """``count`` gateway worker processes (``wi.server.worker``) serving the gateway on one listening
    socket (``spec.socket_fd``), each given ``spec``; a worker that dies is replaced, and ``stop`` drains
    them all."""

    def __init__(self, listening: socket.socket, spec: WorkerSpec, count: int) -> None:
        self.socket = listening
        self.spec = spec
        self.count = count
        self._stopping = asyncio.Event()
        self._processes: list[asyncio.subprocess.Process] = []
        self._keepers: list[asyncio.Task[None]] = []

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids, now."""
        return [process.pid for process in self._processes]

    async def start(self) -> None:
        """Starts every worker and returns once each serves; raises WorkerFailed if one cannot."""
        started = await asyncio.gather(*(self._spawn() for _ in range(self.count)), return_exceptions=True)
        self._processes = [process for process in started if isinstance(process, asyncio.subprocess.Process)]
        failed = [error for error in started if isinstance(error, BaseException)]
        if failed:
            raise failed[0]
        self._keepers = [
            asyncio.create_task(self._keep(slot), name=f"gateway worker {slot}") for slot in range(self.count)
        ]
        log.info(
            "%d gateway workers serve HTTP (pids %s)",
            self.count,
            ", ".join(map(str, self.pids)),
        )

    async def _spawn(self) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wi.server.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=(self.socket.fileno(),),
            # Its own session: a Ctrl-C reaches `wi up`, which stops HTTP first; the parent-death signal
            # still ends the worker if `wi up` dies.
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
        assert process.stdin is not None and process.stdout is not None
        ready = False
        try:
            process.stdin.write(self.spec.model_dump_json().encode())
            await process.stdin.drain()
            process.stdin.close()
            with contextlib.suppress(TimeoutError):
                line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT_S)
                ready = line.strip() == READY.encode()
        finally:
            if not ready and process.returncode is None:
                process.kill()
        if not ready:
            code = await process.wait()
            raise WorkerFailed(
                f"gateway worker {process.pid} did not start (exit code {code}; its log above says why)"
            )
        return process

    async def _keep(self, slot: int) -> None:
        """Replaces the worker in ``slot`` whenever it dies, until stopped."""
        while not self._stopping.is_set():
            process = self._processes[slot]
            code = await process.wait()
            if self._stopping.is_set():
                return
            log.error("gateway worker %d exited with code %s; starting another", process.pid, code)
            await asyncio.sleep(RESTART_PAUSE_S)
            try:
                self._processes[slot] = await self._spawn()
            except (WorkerFailed, OSError) as exc:
                log.error("%s; trying again", exc)

    async def stop(self, grace_s: float) -> None:
        """Drains every worker (SIGTERM: long polls end, requests in flight finish) within ``grace_s``,
        killing those still busy, then closes the socket."""
        self._stopping.set()
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        await asyncio.gather(*(_end(process, grace_s) for process in self._processes))
        self.socket.close()


async def _end(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """Stops a worker with SIGTERM, killing it if it is still running after ``grace_s``."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            log.warning("gateway worker %d still busy after %.0f s; killed", process.pid, grace_s)
            process.kill()
            await process.wait()
