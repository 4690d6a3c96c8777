"""Child processes bound to ``wi up``: they end when it ends, even when it is killed."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from functools import partial


def _die_with(parent: int) -> None:
    """Runs in the child before exec: the kernel sends it SIGTERM when ``parent`` dies, even by SIGKILL;
    a parent already gone by then (between fork and this call) ends the child at once."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


def bound_to_this_process() -> Callable[[], None] | None:
    """A ``preexec_fn`` that binds a child to the calling process (and thread: call it from the thread
    that lives as long as the process), or None where Linux's parent-death signal is not available."""
    return partial(_die_with, os.getpid()) if sys.platform.startswith("linux") else None
