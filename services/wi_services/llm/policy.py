"""LLM endpoint configurations under load and under power caps: pure functions of a performance model.

Under load (as in DynamoLLM) an endpoint gets the replicas, tensor parallelism and GPU frequency that
keep its TTFT/TBT SLOs at ``LOAD_HEADROOM`` times the load for the least power, the load being the peak
of those reported in the last ``SCALE_IN_WINDOW_S`` (``peak_load``): it scales up on one report, and in
only once the load has stayed low for the window. Under a power
cap (as in POLCA) the GPU frequency is lowered in steps, least costly endpoints first (tolerant and
low priority), each as far as its SLO at the reported load allows; only then are SLOs given up, each
one reported. Caps are lifted strictest endpoint first, and only while the predicted draw stays
``UNCAP_HYSTERESIS`` under the budget, so that a draw near the cap does not flap between capped and not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from wi.contract import EndpointConfig
from wi.engine import WorkloadHints
from wi.engine.fleet import LlmEndpoint

from .perf_model import Estimate, Load, PerfModel

LOAD_HEADROOM = 1.5
"""Configurations are sized for this many times the reported load: the burst until the next report."""
SAVING_TO_RECONFIGURE = 0.05
"""A load change reconfigures an endpoint that keeps its SLOs only to save this share of its power."""
SCALE_IN_WINDOW_S = 300
"""Configurations are sized for the peak of the loads reported this long back: a lull does not scale an
endpoint in until it has lasted this long. Kubernetes' horizontal pod autoscaler scales down on the highest
recommendation of the last 300 s by default ("scaleDown ... with a 300 second stabilization window",
autoscaling/v2 HorizontalPodAutoscalerBehavior). Without it, one quiet report scaled a bursty endpoint to
one replica, and the burst that followed met it for a report interval plus the re-shard notice."""
UNCAP_HYSTERESIS = 0.1
"""Caps are lifted only while the predicted draw stays this share under the budget."""
FREQUENCY_STEP_MHZ = 150
LOWEST_FREQUENCY_SHARE = 0.55
"""The lowest frequency step, as a share of the highest clock."""


@dataclass(frozen=True)
class Slo:
    """An endpoint's latency objectives (from its ``latency_tolerance`` hint); None where it set none."""

    ttft_ms: float | None = None
    tbt_ms: float | None = None

    @classmethod
    def from_hints(cls, hints: WorkloadHints) -> Slo:
        """The SLOs a workload's hints state."""
        return cls(hints.ttft_ms, hints.tbt_ms)

    def describe(self) -> str:
        """e.g. "TTFT <= 300 ms, TBT <= 50 ms"."""
        parts = [f"{name} <= {v:g} ms" for name, v in (("TTFT", self.ttft_ms), ("TBT", self.tbt_ms)) if v]
        return ", ".join(parts) or "no SLO"


@dataclass(frozen=True)
class EndpointState:
    """An endpoint as the policy sees it: what it runs, the load it serves, its SLOs and its cap."""

    endpoint: LlmEndpoint
    config: EndpointConfig
    load: Load
    slo: Slo
    cost: tuple[int, int]
    """Disruption cost (priority, latency strictness): the lowest is capped first."""
    cap_mhz: int | None = None
    """The frequency a power cap holds it at, if one does."""

    @classmethod
    def of(
        cls,
        endpoint: LlmEndpoint,
        config: EndpointConfig,
        load: Load,
        hints: WorkloadHints,
        cap_mhz: int | None = None,
    ) -> EndpointState:
        """The state of an endpoint whose workload has ``hints``."""
        return cls(endpoint, config, load, Slo.from_hints(hints), hints.disruption_cost, cap_mhz)

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def gpus(self) -> int:
        """The GPUs the endpoint is allotted in the fleet."""
        return self.endpoint.replicas * self.endpoint.tensor_parallel


def peak_load(loads: Sequence[Load]) -> Load:
    """The load to size for over several reports: the highest rate, prompt and output seen in them."""
    return Load(
        max(load.requests_per_s for load in loads),
        max(load.prompt_tokens for load in loads),
        max(load.output_tokens for load in loads),
    )


def frequency_steps(model: PerfModel, hardware: str) -> list[int]:
    """The frequencies the policy uses for a GPU type, highest first."""
    top = model.max_mhz(hardware)
    return list(range(top, int(top * LOWEST_FREQUENCY_SHARE) - 1, -FREQUENCY_STEP_MHZ))


def estimate(model: PerfModel, state: EndpointState, config: EndpointConfig | None = None) -> Estimate:
    """What the endpoint does in ``config`` (default: its own) under its reported load."""
    return model.estimate(state.endpoint.model, state.endpoint.hardware, config or state.config, state.load)


@dataclass(frozen=True)
class Choice:
    """The configuration chosen for an endpoint's load, and why."""

    config: EndpointConfig
    estimate: Estimate
    meets_slo: bool
    log: list[str]


def choose_config(model: PerfModel, state: EndpointState) -> Choice:
    """The least-power configuration that keeps the SLOs at ``LOAD_HEADROOM`` times the load.

    Within the endpoint's GPUs and under its frequency cap. If none keeps them with headroom, the
    least-power one that keeps them at the load; if none does, the one that misses them by the least.
    """
    ep = state.endpoint
    peak = state.load.scaled(LOAD_HEADROOM)
    ceiling = state.cap_mhz or model.max_mhz(ep.hardware)
    candidates = [
        EndpointConfig(replicas=replicas, tensor_parallel=tp, gpu_frequency_mhz=mhz)
        for tp in model.tensor_parallel_options(ep.model, ep.hardware)
        for replicas in range(1, state.gpus // tp + 1)
        for mhz in frequency_steps(model, ep.hardware)
        if mhz <= ceiling
    ]
    scored = [
        (model.estimate(ep.model, ep.hardware, c, peak), estimate(model, state, c), c) for c in candidates
    ]
    slo = (state.slo.ttft_ms, state.slo.tbt_ms)
    with_headroom = [(now.watts, c, now) for at_peak, now, c in scored if at_peak.meets(*slo)]
    at_load = [(now.watts, c, now) for _, now, c in scored if now.meets(*slo)]
    log = [f"{ep.name}: {state.load.requests_per_s:g} req/s; {state.slo.describe()}"]
    current = estimate(model, state)
    if with_headroom:
        watts, config, expected = min(with_headroom, key=lambda w: (w[0], _order(w[1])))
        log.append(
            f"{len(with_headroom)} of {len(candidates)} configs keep the SLOs at {LOAD_HEADROOM:g}x load"
        )
        log.append(f"least power: {describe(config)} at {watts:.0f} W")
        keeps = model.estimate(ep.model, ep.hardware, state.config, peak).meets(*slo)
        close = current.watts <= watts * (1 + SAVING_TO_RECONFIGURE)
        if keeps and close and state.config.gpu_frequency_mhz <= ceiling:
            log.append(
                f"kept {describe(state.config)}: {current.watts:.0f} W, within {SAVING_TO_RECONFIGURE:.0%}"
            )
            return Choice(state.config, current, True, log)
        return Choice(config, expected, True, log)
    if at_load:
        watts, config, expected = min(at_load, key=lambda w: (w[0], _order(w[1])))
        log.append(f"none keeps the SLOs with headroom; at the load: {describe(config)} at {watts:.0f} W")
        return Choice(config, expected, True, log)
    _, expected, config = min(scored, key=lambda s: _shortfall(s[1], state.slo, s[2]))
    if expected.feasible:
        worst = _shortfall(expected, state.slo, config)[0]
        log.append(f"no config keeps the SLOs; the closest misses by {worst - 1:.0%}")
    else:
        log.append("the load is beyond every config; the largest and fastest is chosen")
    return Choice(config, expected, False, log)


def describe(config: EndpointConfig) -> str:
    """e.g. "2x TP8 @ 1530 MHz"."""
    return f"{config.replicas}x TP{config.tensor_parallel} @ {config.gpu_frequency_mhz} MHz"


def at_frequency(config: EndpointConfig, mhz: int) -> EndpointConfig:
    """The same configuration at another GPU frequency."""
    return config.model_copy(update={"gpu_frequency_mhz": mhz})


def _order(config: EndpointConfig) -> tuple[int, int, int]:
    return (config.replicas * config.tensor_parallel, config.tensor_parallel, config.gpu_frequency_mhz)


def _shortfall(estimate: Estimate, slo: Slo, config: EndpointConfig) -> tuple[float, tuple[int, ...]]:
    """How far an estimate is from the SLOs (the worst ratio; above 1 misses), for ranking configs.

    An infeasible one ranks after every feasible one, the most GPU capacity first.
    """
    if not estimate.feasible:
        return math.inf, (-config.replicas * config.tensor_parallel, -config.gpu_frequency_mhz)
    pairs = ((estimate.ttft_ms, slo.ttft_ms), (estimate.tbt_ms, slo.tbt_ms))
    return max((got / want for got, want in pairs if want), default=1.0), _order(config)


@dataclass
class CapPlan:
    """The frequency of each endpoint in a power domain under a budget, and what it costs them."""

    frequency_mhz: dict[str, int] = field(default_factory=dict)
    cap_mhz: dict[str, int | None] = field(default_factory=dict)
    """Endpoint to the frequency it is held at (None: not held)."""
    slo_broken: list[str] = field(default_factory=list)
    """Endpoints whose SLO the budget breaks."""
    draw_before_w: float = 0.0
    draw_after_w: float = 0.0
    over_budget_w: float = 0.0
    """What the lowest frequencies still draw beyond the budget."""
    log: list[str] = field(default_factory=list)


def fit_to_budget(model: PerfModel, states: Sequence[EndpointState], budget_w: float) -> CapPlan:
    """Graded frequency caps that bring the endpoints' draw under ``budget_w``, or lift caps it allows."""
    plan = CapPlan()
    mhz = {s.name: s.config.gpu_frequency_mhz for s in states}
    wanted = {s.name: wanted_mhz(model, s) for s in states}

    def at(state: EndpointState, frequency: int) -> Estimate:
        return estimate(model, state, at_frequency(state.config, frequency))

    watts = {s.name: at(s, mhz[s.name]).watts for s in states}

    def clock(state: EndpointState, frequency: int) -> None:
        """Sets an endpoint's frequency and its predicted draw with it."""
        mhz[state.name], watts[state.name] = frequency, at(state, frequency).watts

    def draw() -> float:
        return sum(watts.values())

    def step(state: EndpointState, down: bool) -> int | None:
        steps = frequency_steps(model, state.endpoint.hardware)
        candidates = [f for f in steps if (f < mhz[state.name] if down else f > mhz[state.name])]
        return (max if down else min)(candidates, default=None)

    least_costly_first = sorted(states, key=lambda s: (s.cost, s.name))
    plan.draw_before_w = draw()
    plan.log.append(f"budget {budget_w:.0f} W, predicted draw {plan.draw_before_w:.0f} W")
    plan.log.append("least costly first: " + ", ".join(s.name for s in least_costly_first))
    if plan.draw_before_w > budget_w:
        for state in least_costly_first:  # first: caps that keep every SLO
            while draw() > budget_w and (lower := step(state, down=True)) is not None:
                if not at(state, lower).meets(state.slo.ttft_ms, state.slo.tbt_ms):
                    plan.log.append(f"{state.name}: not below {mhz[state.name]} MHz, its SLO would break")
                    break
                clock(state, lower)
        for state in least_costly_first:  # then: the budget before SLOs, each break reported
            while draw() > budget_w and (lower := step(state, down=True)) is not None:
                clock(state, lower)
                if state.name not in plan.slo_broken:
                    plan.slo_broken.append(state.name)
    else:
        for state in reversed(least_costly_first):  # strictest first; only what was held
            if state.cap_mhz is None:
                continue
            while (higher := step(state, down=False)) is not None:
                if higher > wanted[state.name]:
                    plan.log.append(f"{state.name}: {mhz[state.name]} MHz keeps its SLOs with headroom")
                    break
                was = mhz[state.name]
                clock(state, higher)
                if draw() > (1 - UNCAP_HYSTERESIS) * budget_w:
                    clock(state, was)
                    plan.log.append(
                        f"{state.name}: held at {was} MHz to stay {UNCAP_HYSTERESIS:.0%} under budget"
                    )
                    break
    for state in states:
        before, after = state.config.gpu_frequency_mhz, mhz[state.name]
        plan.cap_mhz[state.name] = after if after < wanted[state.name] else None
        if after != before:
            got = at(state, after)
            plan.log.append(
                f"{state.name}: {before} -> {after} MHz (TTFT {got.ttft_ms:.0f} ms, TBT {got.tbt_ms:.1f} ms; "
                f"{state.slo.describe()})"
            )
    plan.frequency_mhz = mhz
    plan.draw_after_w = draw()
    plan.log.append(f"predicted draw {plan.draw_after_w:.0f} W")
    if plan.draw_after_w > budget_w:
        plan.over_budget_w = plan.draw_after_w - budget_w
        plan.log.append(f"over budget by {plan.over_budget_w:.0f} W at the lowest frequencies")
    return plan


def wanted_mhz(model: PerfModel, state: EndpointState) -> int:
    """The lowest frequency at which the endpoint's replicas and parallelism keep its SLOs with headroom."""
    peak = state.load.scaled(LOAD_HEADROOM)
    ep = state.endpoint
    for mhz in reversed(frequency_steps(model, ep.hardware)):
        config = at_frequency(state.config, mhz)
        if model.estimate(ep.model, ep.hardware, config, peak).meets(state.slo.ttft_ms, state.slo.tbt_ms):
            return mhz
    return model.max_mhz(ep.hardware)
