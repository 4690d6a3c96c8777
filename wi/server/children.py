"""Child processes bound to ``wi up``: they end when it ends, even when it is killed."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from functools import partial

_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
"""Looked up once, here: between fork and exec a child of a threaded process must not load libraries."""


def die_with(parent: int) -> None:
    """Has the kernel send this process SIGTERM when ``parent`` dies, even by SIGKILL; a parent already
    gone (before this call) ends this process at once. Nothing where Linux's parent-death signal is not
    available."""
    if _prctl is None:
        return
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


def bound_to_this_process() -> Callable[[], None] | None:
    """A ``preexec_fn`` that binds a child (a program that cannot call ``die_with`` itself) to the calling
    process and thread (call it from the thread that lives as long as the process), or None where Linux's
    parent-death signal is not available."""
    return partial(die_with, os.getpid()) if _prctl is not None else None
