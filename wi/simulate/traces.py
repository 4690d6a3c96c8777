"""The traces a simulation replays: VM arrivals and LLM requests, read from CSV into NumPy columns.

Two VM formats are read:

- ``azure-packing``: Azure's "Traces for Packing 2020" (``vmId,vmTypeId,priority,starttime,endtime,
  core,memory,machineId``; times in days, ``core``/``memory`` as fractions of one machine, ``priority``
  1 = low, empty ``endtime`` = outlived the trace);
- ``wi``: your own, ``start_s,end_s,cores,memory_gb,priority`` (seconds from the trace's start; whole
  cores; ``priority`` ``low`` or ``high``; empty ``end_s`` = runs to the end of the trace).

LLM requests use Azure's LLM inference trace format, ``TIMESTAMP,ContextTokens,GeneratedTokens``
(``2023-11-16 18:17:03.9799600``; prompt and output tokens), yours included.

A bad row raises ``TraceError`` naming the file, the line and the column: ``vms.csv: line 3, column
cores: 2.5 is not a whole number``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

VmFormat = Literal["azure-packing", "wi"]
DAY_S = 86_400.0


class TraceError(ValueError):
    """A trace file that cannot be read, with where: ``path: line N, column NAME: problem``."""


@dataclass(frozen=True)
class VmTrace:
    """VM arrivals as columns, one entry per VM, sorted by arrival."""

    start_s: NDArray[np.float64]
    """Arrival, in seconds from the trace's start."""
    end_s: NDArray[np.float64]
    """Departure had it started on arrival."""
    cores: NDArray[np.int64]
    memory_gb: NDArray[np.float64]
    low_priority: NDArray[np.bool_]
    """The trace's own priority: low-priority VMs were bought as evictable (spot)."""

    def __len__(self) -> int:
        return len(self.start_s)

    @property
    def lifetime_s(self) -> NDArray[np.float64]:
        """How long each VM runs once started."""
        lifetime: NDArray[np.float64] = self.end_s - self.start_s
        return lifetime

    def head(self, count: int) -> VmTrace:
        """The first ``count`` VMs."""
        return VmTrace(
            self.start_s[:count],
            self.end_s[:count],
            self.cores[:count],
            self.memory_gb[:count],
            self.low_priority[:count],
        )

    def synthetic(self, scale: int, spread_s: float, rng: np.random.Generator) -> VmTrace:
        """``scale`` times as many VMs, fitted to this trace: each draws one of its VMs' size, lifetime and
        priority (a bootstrap), and arrives uniformly at random within ``spread_s``."""
        count = scale * len(self)
        picked = rng.integers(0, len(self), count)
        start = np.sort(rng.uniform(0.0, spread_s, count))
        return VmTrace(
            start,
            start + self.lifetime_s[picked],
            self.cores[picked],
            self.memory_gb[picked],
            self.low_priority[picked],
        )


@dataclass(frozen=True)
class LlmTrace:
    """LLM requests as columns, sorted by arrival."""

    arrival_s: NDArray[np.float64]
    """Seconds from the trace's first request."""
    prompt_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.arrival_s)

    def within(self, seconds: float) -> LlmTrace:
        """The requests of the first ``seconds``."""
        keep = self.arrival_s < seconds
        return LlmTrace(self.arrival_s[keep], self.prompt_tokens[keep], self.output_tokens[keep])


Parse = Callable[[str], Any]


def _rows(path: Path, columns: Mapping[str, Parse]) -> Iterator[list[Any]]:
    """Each data row's named columns, parsed; a TraceError names the line and column of a bad value."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [name for name in columns if name not in (reader.fieldnames or [])]
        if missing:
            raise TraceError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
        for row in reader:
            parsed = []
            for name, parse in columns.items():
                value = row[name]
                try:
                    parsed.append(parse((value or "").strip()))
                except ValueError as exc:
                    raise TraceError(f"{path}: line {reader.line_num}, column {name}: {exc}") from None
            yield parsed


def _number(low: float, high: float, empty: float | None = None) -> Parse:
    """A number in [low, high] (``empty`` for an empty cell, where allowed)."""

    def parse(text: str) -> float:
        if not text and empty is not None:
            return empty
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not (low <= value <= high) or math.isnan(value):
            raise ValueError(f"{text} is outside {low:g}..{high:g}")
        return value

    return parse


def _choice(*allowed: str) -> Parse:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def _timestamp(text: str) -> float:
    try:
        return datetime.fromisoformat(text[:26]).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is not a timestamp like 2023-11-16 18:17:03.9799600") from None


def read_vms(path: Path, fmt: VmFormat, server_cores: int, server_memory_gb: float) -> VmTrace:
    """A VM trace in either format; ``azure-packing`` sizes are fractions of a server of ``server_cores``
    and ``server_memory_gb`` (cores rounded to the nearest whole core, at least one)."""
    never = math.inf
    if fmt == "azure-packing":
        spec: dict[str, Parse] = {
            "starttime": _number(0, 1e6),
            "endtime": _number(0, 1e6, empty=never),
            "core": _number(0, 1),
            "memory": _number(0, 1),
            "priority": _choice("0", "1"),
        }
        rows = [
            (
                start * DAY_S,
                end * DAY_S,
                max(1, round(core * server_cores)),
                memory * server_memory_gb,
                p == "1",
            )
            for start, end, core, memory, p in _rows(path, spec)
        ]
    else:
        spec = {
            "start_s": _number(0, 1e12),
            "end_s": _number(0, 1e12, empty=never),
            "cores": _number(1, server_cores),
            "memory_gb": _number(1e-3, server_memory_gb),
            "priority": _choice("low", "high"),
        }
        rows = []
        for line, (start, end, cores, memory, priority) in enumerate(_rows(path, spec), start=2):
            if cores != int(cores):
                raise TraceError(f"{path}: line {line}, column cores: {cores:g} is not a whole number")
            if end <= start:
                raise TraceError(f"{path}: line {line}, column end_s: {end:g} is not after start_s {start:g}")
            rows.append((start, end, int(cores), memory, priority == "low"))
    if not rows:
        raise TraceError(f"{path}: no VMs")
    rows.sort(key=lambda row: row[0])
    start_s = np.array([r[0] for r in rows])
    end_s = np.array([r[1] for r in rows])
    end_s[np.isinf(end_s)] = max(float(np.max(end_s[~np.isinf(end_s)], initial=0.0)), float(start_s.max()))
    return VmTrace(
        start_s,
        np.maximum(end_s, start_s + 1.0),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows]),
        np.array([r[4] for r in rows], dtype=np.bool_),
    )


def read_llm(path: Path) -> LlmTrace:
    """LLM requests in Azure's LLM inference trace format."""
    spec: dict[str, Parse] = {
        "TIMESTAMP": _timestamp,
        "ContextTokens": _number(1, 1e6),
        "GeneratedTokens": _number(1, 1e6),
    }
    rows = sorted(tuple(row) for row in _rows(path, spec))
    if not rows:
        raise TraceError(f"{path}: no requests")
    at = np.array([r[0] for r in rows])
    return LlmTrace(
        at - at[0],
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.int64),
    )
