"""Scenarios: which traces a simulation replays, on what fleet, with which platform events.

Built-in scenarios (``SCENARIOS``) read the public traces in ``../shared/data/`` at run time (never a
copy). A scenario file is JSON whose keys override the default scenario's fields; its paths are relative
to the file::

    {"vms": "my_vms.csv", "vm_format": "wi", "llm": {"chat": "my_requests.csv"}, "vm_count": 1000}

The fleet is built from the traces: two regions (``REGIONS``), each with a cluster of servers in every
pool, each (region, pool) cell sized to hold ``fleet_headroom`` times the region's share of the trace's
peak cores, so that either arm could run on any pool; the servers a run needs are those it keeps busy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from wi.contract import LatencyClass, Pool, PriorityLevel
from wi.engine.fleet import Fleet, LlmEndpoint, PowerDomain, Region, Server, public_carbon

from .prices import POOL_PRICE_FACTORS, REGULAR_PRICE_PER_CORE_HOUR
from .traces import DAY_S, LlmTrace, VmFormat, VmTrace, read_llm, read_vms
from .workloads import SILENT, Characterization

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
"""The public traces: ``../shared/data`` beside the checkout."""
REGIONS = tuple(REGULAR_PRICE_PER_CORE_HOUR)
"""The regions simulated: those the price model prices (their carbon from ``azure-regions``)."""
GEOGRAPHY = MappingProxyType({"useast": "us", "europewest": "europe"})
FAULT_DOMAINS_PER_CELL = 4
OVERSUBSCRIPTION_RATIO = 1.25
"""vCPUs sold per physical core on an oversubscribed server. An assumption, not from a source: it sets
the servers and energy oversubscription saves, not any price."""
GPU_DOMAIN = "gpu-row"
"""The power domain of the LLM endpoints' GPUs (in the first region)."""
GPU_TDP_W = 700
"""An H100's draw while prefilling, its TDP (``power_model_constant.yaml`` of Splitwise)."""
POWER_OVERSUBSCRIPTION = 0.3
"""POLCA (arXiv:2308.12908) oversubscribes LLM inference power by 30 %: the GPU domain's budget is the
endpoints' GPUs' TDP divided by 1.3."""


@dataclass(frozen=True)
class EndpointSpec:
    """An LLM endpoint of the scenario: its trace and its latency needs."""

    trace: Path
    ttft_ms: float = 1000.0
    """Its TTFT SLO. An assumption (no public SLO for these services): one second to the first token."""
    tbt_ms: float = 100.0
    """Its TBT SLO. An assumption: ten tokens a second, faster than people read."""
    latency_class: LatencyClass = LatencyClass.MODERATE
    priority: PriorityLevel = PriorityLevel.NORMAL
    model: str = "llama2-70b"
    hardware: str = "h100-80gb"


@dataclass(frozen=True)
class Scenario:
    """What to replay and on what: traces, hints' characterization, fleet sizing and platform events."""

    name: str
    vms: Path = Path("azure-packing-2020-sample/vm_requests.csv")
    """The VM trace (relative to the data folder, or absolute)."""
    vm_format: VmFormat = "azure-packing"
    vm_count: int | None = None
    """Replay only the first this many VMs."""
    llm: Mapping[str, EndpointSpec] = field(
        default_factory=lambda: {
            "code": EndpointSpec(
                Path("azure-llm-2023/code.csv"),
                latency_class=LatencyClass.STRICT,
                priority=PriorityLevel.HIGH,
            ),
            "conv": EndpointSpec(Path("azure-llm-2023/conv.csv")),
        }
    )
    """LLM endpoint name to its spec."""
    llm_minutes: int = 60
    """Replay the first this many minutes of each LLM trace."""
    characterization: Characterization = field(default_factory=Characterization)
    server_cores: int = 64
    server_memory_gb: float = 512.0
    fleet_headroom: float = 1.25
    servers: int | None = None
    """The fleet's servers in all (split evenly over the cells), instead of sizing it from the trace."""
    scale: int = 1
    """Replay a synthetic trace of this many times the VMs, fitted to the trace (``VmTrace.synthetic``)."""
    scale_spread_days: float = 7.0
    """Over how many days a scaled trace's VMs arrive."""
    pressure_every_h: float = 1.0
    """Mean time between capacity pressure events on each spot and harvest cell (Poisson). An assumption:
    clouds publish no eviction rates."""
    pressure_share: float = 0.05
    """The share of the cores booked in a cell a capacity pressure event needs back. (The first version
    took the share of the cell's capacity: on a cell sized for the whole trace, or on a large fleet given
    with ``--servers``, each event then reclaimed most of what ran there, every hour.)"""
    pressure_within_s: int = 30
    """How soon a capacity pressure event needs its cores: Azure's spot eviction notice."""
    thermal_at_min: int = 20
    """When a critical thermal emergency cuts the GPU domain's budget (minutes into the LLM traces)."""
    thermal_minutes: int = 20
    data_dir: Path = DATA_DIR

    def vm_trace(self, rng: np.random.Generator) -> VmTrace:
        """The VMs to replay (scaled, if asked, with ``rng``)."""
        trace = read_vms(self._path(self.vms), self.vm_format, self.server_cores, self.server_memory_gb)
        if self.vm_count is not None:
            trace = trace.head(self.vm_count)
        if self.scale > 1:
            trace = trace.synthetic(self.scale, self.scale_spread_days * DAY_S, rng)
        return trace

    def llm_traces(self) -> dict[str, LlmTrace]:
        """Each endpoint's requests."""
        return {
            name: read_llm(self._path(s.trace)).within(60.0 * self.llm_minutes)
            for name, s in self.llm.items()
        }

    def _path(self, path: Path) -> Path:
        return path if path.is_absolute() else self.data_dir / path

    def fleet(self, trace: VmTrace, endpoints: Mapping[str, tuple[int, int, int]]) -> Fleet:
        """The fleet: every (region, pool) cell sized for the trace's peak, and the LLM endpoints with
        their (replicas, tensor parallelism, GPU frequency) and the GPU domain's budget."""
        cells = len(REGIONS) * len(Pool)
        if self.servers is not None:
            per_cell = max(1, self.servers // cells)
        else:
            per_cell = math.ceil(peak_cores(trace) / len(REGIONS) / self.server_cores * self.fleet_headroom)
        servers = [
            Server(
                id=f"{region}-{pool}-{n}",
                cluster=cluster(region),
                region=region,
                pool=pool,
                cores=round(
                    self.server_cores * (OVERSUBSCRIPTION_RATIO if pool is Pool.OVERSUBSCRIBED else 1)
                ),
                memory_gb=self.server_memory_gb,
                fault_domain=f"{region}-{pool}-fd{n % FAULT_DOMAINS_PER_CELL}",
                power_domain=f"{region}-cpu",
            )
            for region in REGIONS
            for pool in Pool
            for n in range(per_cell)
        ]
        gpus = sum(replicas * tp for replicas, tp, _ in endpoints.values())
        domains = [PowerDomain(id=f"{region}-cpu", budget_watts=100_000_000) for region in REGIONS]
        budget = max(1, round(gpus * GPU_TDP_W / (1 + POWER_OVERSUBSCRIPTION)))
        carbon = public_carbon(self.data_dir / "azure-regions" / "azure_dc_data.csv")
        return Fleet(
            regions=[
                Region(
                    name=r,
                    geography=GEOGRAPHY[r],
                    price_per_core_hour=REGULAR_PRICE_PER_CORE_HOUR[r],
                    carbon_g_per_kwh=carbon.get(r),
                )
                for r in REGIONS
            ],
            pool_price_factors=dict(POOL_PRICE_FACTORS),
            servers=servers,
            power_domains=[*domains, PowerDomain(id=GPU_DOMAIN, budget_watts=budget)],
            llm_endpoints=[
                LlmEndpoint(
                    name=name,
                    tenant=TENANT,
                    workload=name,
                    model=spec.model,
                    hardware=spec.hardware,
                    replicas=endpoints[name][0],
                    tensor_parallel=endpoints[name][1],
                    gpu_frequency_mhz=endpoints[name][2],
                    power_domain=GPU_DOMAIN,
                )
                for name, spec in self.llm.items()
            ],
        )


TENANT = "sim"
"""The tenant every simulated workload belongs to."""


def cluster(region: str) -> str:
    """The one cluster of a region."""
    return f"{region}-1"


def peak_cores(trace: VmTrace) -> int:
    """The most cores the trace's VMs hold at once, had each started on arrival."""
    times = np.concatenate([trace.start_s, trace.end_s])
    deltas = np.concatenate([trace.cores, -trace.cores])
    order = np.lexsort((deltas, times))  # at equal times, departures first
    return int(np.cumsum(deltas[order]).max())


SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        "default": Scenario("default"),
        "small": Scenario("small", vm_count=500, llm_minutes=10),
        "silent": Scenario("silent", characterization=SILENT),
    }
)
"""Built-in scenarios: ``default`` replays the whole sample (5,000 VMs, an hour of each LLM trace);
``small`` its first 500 VMs and ten minutes; ``silent`` the default with workloads that state nothing
beyond what a cloud assumes today (both arms must then agree)."""


class ScenarioError(ValueError):
    """A scenario that cannot be found or read."""


def load_scenario(name_or_file: str) -> Scenario:
    """A built-in scenario by name, or a JSON scenario file (its keys override the default's)."""
    if name_or_file in SCENARIOS:
        return SCENARIOS[name_or_file]
    path = Path(name_or_file)
    if not path.is_file():
        raise ScenarioError(f"{name_or_file}: neither a scenario ({', '.join(SCENARIOS)}) nor a file")
    try:
        given: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    known = {f.name for f in fields(Scenario)} - {"name", "data_dir"}
    unknown = set(given) - known
    if unknown:
        raise ScenarioError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
        )
    base = path.resolve().parent
    if "vms" in given:
        given["vms"] = base / given["vms"]
    if "llm" in given:
        given["llm"] = {name: EndpointSpec(base / trace) for name, trace in given["llm"].items()}
    if "characterization" in given:
        given["characterization"] = Characterization(**given["characterization"])
    try:
        return replace(SCENARIOS["default"], name=path.stem, **given)
    except TypeError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
