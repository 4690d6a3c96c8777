"""How fast an LLM endpoint serves and how much power it draws, from Splitwise's measurements.

The tables are ``perf_model.csv`` and ``power_model_constant.yaml`` of the Splitwise simulator
(``../shared/data/splitwise-perf/``, MIT): prefill (prompt) and decode (per-token) latency by model,
hardware, tensor parallelism, prompt size and batch, and per-GPU watts when idle, prefilling and decoding.
Nothing of them is copied into WI; they are read at start.

What the tables do not say is modelled, and each assumption is written down here:

- GPU frequency. The power-capped H100 rows (``h100-80gb-pcap``, about 70 % of TDP) prefill about 1.3x
  slower and decode as fast as uncapped: prefill is compute bound, decode memory bound. So prefill time
  scales as ``f_max / f``; decode time holds down to the capped rows' frequency (``f_max`` over the
  measured prefill slowdown) and scales as ``knee / f`` below it. Hardware without capped rows uses the
  H100's ratio.
- Power. A GPU draws its idle watts plus, while busy, the phase's extra watts scaled by
  ``(f / f_max) ** gamma``; gamma is fitted so that the capped rows' frequency draws 70 % of TDP (the
  prefill watts).
- Queueing. Prefills queue per replica (mean TTFT = prefill time / (1 - prefill utilization), as in an
  M/M/1 queue); decoding sequences batch together, their number given by Little's law, and a decode step
  waits for the prefills that share its replica.
"""

from __future__ import annotations

import csv
import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from wi.contract import EndpointConfig

PERF_DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "splitwise-perf"
"""Where the Splitwise tables are by default: ``../shared/data/splitwise-perf`` beside the checkout."""
MAX_FREQUENCY_MHZ = {"h100-80gb": 1980, "a100-80gb": 1410}
"""Each GPU's highest (boost) clock, from the vendors' specifications."""
CAPPED_SUFFIX = "-pcap"
CAPPED_SHARE_OF_TDP = 0.7
"""The power-capped rows run at about 70 % of TDP (the data's README)."""
MAX_PREFILL_UTILIZATION = 0.9
"""Beyond this share of its time prefilling, a replica's prompt queue grows without bound."""
DEFAULT_PREFILL_SLOWDOWN = 1.3
"""The capped H100's measured prefill slowdown, used for hardware the tables have no capped rows for."""


class PerfDataMissing(FileNotFoundError):
    """The Splitwise tables are not where the model looks for them."""


@dataclass(frozen=True)
class Estimate:
    """What an endpoint in one configuration is expected to do under one load."""

    ttft_ms: float
    """Mean time to first token."""
    tbt_ms: float
    """Mean time between tokens."""
    watts: float
    """The endpoint's GPUs' mean draw."""
    feasible: bool
    """False when the load is beyond what the configuration can serve (queues grow without bound)."""

    def meets(self, ttft_slo_ms: float | None, tbt_slo_ms: float | None) -> bool:
        """Whether the estimate keeps both SLOs (an absent SLO is kept by any feasible estimate)."""
        return (
            self.feasible
            and (ttft_slo_ms is None or self.ttft_ms <= ttft_slo_ms)
            and (tbt_slo_ms is None or self.tbt_ms <= tbt_slo_ms)
        )


@dataclass(frozen=True)
class Load:
    """The load an endpoint serves."""

    requests_per_s: float
    prompt_tokens: int
    output_tokens: int

    def scaled(self, factor: float) -> Load:
        """The same load with ``factor`` times the requests."""
        return Load(self.requests_per_s * factor, self.prompt_tokens, self.output_tokens)


@dataclass(frozen=True)
class GpuTable:
    """The measurements of one model on one GPU type at one tensor parallelism."""

    prompt_ms: tuple[tuple[int, float], ...]
    """(prompt tokens, prefill ms at batch 1), by prompt size."""
    token_ms: tuple[tuple[int, float], ...]
    """(batch, decode ms per step), by batch."""


@dataclass(frozen=True)
class PerfModel:
    """Latency and power of LLM endpoints by model, hardware, tensor parallelism and GPU frequency."""

    tables: Mapping[tuple[str, str, int], GpuTable]
    """(model, hardware, tensor_parallel) to its measurements."""
    watts: Mapping[str, tuple[float, float, float]]
    """Hardware to per-GPU (idle, prefill, decode) watts at full clock."""
    prefill_slowdown: Mapping[tuple[str, str], float]
    """(model, hardware) to the capped rows' prefill slowdown."""

    def tensor_parallel_options(self, model: str, hardware: str) -> list[int]:
        """The tensor-parallel degrees measured for a model on a GPU type."""
        return sorted(tp for (m, h, tp) in self.tables if (m, h) == (model, hardware))

    def max_mhz(self, hardware: str) -> int:
        """The GPU's highest clock."""
        return MAX_FREQUENCY_MHZ[hardware]

    def knee_mhz(self, model: str, hardware: str) -> float:
        """The capped rows' frequency: decode is memory bound above it."""
        return self.max_mhz(hardware) / self._slowdown(model, hardware)

    def _slowdown(self, model: str, hardware: str) -> float:
        return self.prefill_slowdown.get((model, hardware), DEFAULT_PREFILL_SLOWDOWN)

    def power_exponent(self, model: str, hardware: str) -> float:
        """gamma: busy power above idle scales as (f / f_max) ** gamma, fitted to the capped rows."""
        idle, prefill, _ = self.watts[hardware]
        busy_share = (CAPPED_SHARE_OF_TDP * prefill - idle) / (prefill - idle)
        return math.log(busy_share) / math.log(1 / self._slowdown(model, hardware))

    def estimate(self, model: str, hardware: str, config: EndpointConfig, load: Load) -> Estimate:
        """What ``config`` is expected to do under ``load``."""
        table = self.tables[(model, hardware, config.tensor_parallel)]
        f, f_max = config.gpu_frequency_mhz, self.max_mhz(hardware)
        knee = self.knee_mhz(model, hardware)
        prefill_ms = _interpolate(table.prompt_ms, load.prompt_tokens) * f_max / f
        decode_factor = max(1.0, knee / f)
        idle, prefill_w, decode_w = self.watts[hardware]
        scale = (f / f_max) ** self.power_exponent(model, hardware)
        gpus = config.replicas * config.tensor_parallel
        if config.replicas == 0:
            busy = load.requests_per_s > 0
            return Estimate(math.inf if busy else 0.0, math.inf if busy else 0.0, 0.0, not busy)
        per_replica = load.requests_per_s / config.replicas
        prefilling = per_replica * prefill_ms / 1000
        if prefilling >= MAX_PREFILL_UTILIZATION:
            return Estimate(math.inf, math.inf, gpus * prefill_w, False)
        tbt_ms, decoding = math.inf, 0.0
        for batch, step_ms in table.token_ms:
            tbt_ms = step_ms * decode_factor / (1 - prefilling)
            decoding = per_replica * load.output_tokens * tbt_ms / 1000  # sequences in flight (Little)
            if decoding <= batch:
                break
        else:
            return Estimate(prefill_ms / (1 - prefilling), tbt_ms, gpus * decode_w, False)
        busy_w = prefilling * (prefill_w - idle) + (1 - prefilling) * min(1.0, decoding) * (decode_w - idle)
        return Estimate(prefill_ms / (1 - prefilling), tbt_ms, gpus * (idle + busy_w * scale), True)


def _interpolate(points: Sequence[tuple[int, float]], x: float) -> float:
    """Piecewise-linear through ``points`` (sorted by x), extended linearly past the ends."""
    xs = [p[0] for p in points]
    i = min(max(bisect_left(xs, x), 1), len(points) - 1)
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    return max(0.0, y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def load_perf_model(directory: Path = PERF_DATA) -> PerfModel:
    """Reads the Splitwise tables from ``directory``; raises PerfDataMissing naming what is absent."""
    perf, power = directory / "perf_model.csv", directory / "power_model_constant.yaml"
    for path in (perf, power):
        if not path.is_file():
            raise PerfDataMissing(
                f"{path} not found: the LLM reconfigurer's performance model needs the Splitwise tables "
                "(set WI_LLM_PERF_DIR, or leave llm out of --services)"
            )
    sums: dict[tuple[str, str, int, int, int], list[tuple[float, float]]] = defaultdict(list)
    with perf.open(newline="") as rows:
        for row in csv.DictReader(rows):
            key = (
                row["model"],
                row["hardware"],
                int(row["tensor_parallel"]),
                int(row["prompt_size"]),
                int(row["batch_size"]),
            )
            sums[key].append((float(row["prompt_time"]), float(row["token_time"])))
    means = {k: (sum(p for p, _ in v) / len(v), sum(t for _, t in v) / len(v)) for k, v in sums.items()}
    groups = {k[:3] for k in means}
    tables: dict[tuple[str, str, int], GpuTable] = {}
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    for model, hardware, tp in groups:
        mine = {k[3:]: v for k, v in means.items() if k[:3] == (model, hardware, tp)}
        table = GpuTable(
            prompt_ms=tuple(sorted((p, v[0]) for (p, b), v in mine.items() if b == 1)),
            token_ms=tuple(sorted((b, v[1]) for (p, b), v in mine.items() if p == 512)),
        )
        if hardware.endswith(CAPPED_SUFFIX):
            base = hardware.removesuffix(CAPPED_SUFFIX)
            uncapped = {k[3:]: v for k, v in means.items() if k[:3] == (model, base, tp)}
            ratios[(model, base)] += [v[0] / uncapped[k][0] for k, v in mine.items() if k in uncapped]
        else:
            tables[(model, hardware, tp)] = table
    watts = yaml.safe_load(power.read_text())
    return PerfModel(
        tables=tables,
        watts={
            hw: (
                float(watts["idle_power"][hw]),
                float(watts["prompt_power"][hw]),
                float(watts["token_power"][hw]),
            )
            for hw in watts["idle_power"]
        },
        prefill_slowdown={k: sum(v) / len(v) for k, v in ratios.items()},
    )
