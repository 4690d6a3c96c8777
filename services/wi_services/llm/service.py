"""The LLM reconfigurer as a platform service: endpoint load and power events in, reconfigurations out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from wi.contract import (
    EndpointConfig,
    EndpointLoad,
    Family,
    Message,
    PowerCap,
    PowerEvent,
    PowerEventType,
    Reconfiguration,
    ThermalEmergency,
    derived_id,
)
from wi.engine import Decision, Inventory, PlatformService, ServiceContext, View
from wi.engine.fleet import LlmEndpoint

from .perf_model import PERF_DATA, Estimate, Load, load_perf_model
from .policy import (
    SCALE_IN_WINDOW_S,
    EndpointState,
    at_frequency,
    choose_config,
    describe,
    estimate,
    fit_to_budget,
    peak_load,
)

NAME = "llm"
RESHARD_S = 60
"""Notice before a change of replicas or tensor parallelism takes effect (the weights must load)."""
CLOCK_LEAD_S = 5
"""Notice before a GPU frequency change takes effect: short, as a power limit cannot wait long."""
THERMAL_BUDGET_SHARE = {"warning": 0.85, "critical": 0.7}
"""The share of a power domain's budget a thermal emergency leaves, by severity."""

PowerEvents = PowerCap | ThermalEmergency


class LlmReconfigurer(PlatformService):
    """Fits LLM endpoints to their load at the least power, and caps them gracefully under power limits."""

    name: ClassVar[str] = NAME
    consumes: ClassVar[tuple[Family, ...]] = (Family.EVENT,)

    def __init__(self, context: ServiceContext) -> None:
        super().__init__(context)
        self.model = load_perf_model(context.llm_perf_dir or PERF_DATA)
        self.endpoints = {e.name: e for e in self.fleet.llm_endpoints}
        self.budgets = {d.id: d.budget_watts for d in self.fleet.power_domains}
        self.reset()

    def reset(self) -> None:
        self.configs: dict[str, EndpointConfig] = {
            e.name: EndpointConfig(
                replicas=e.replicas, tensor_parallel=e.tensor_parallel, gpu_frequency_mhz=e.gpu_frequency_mhz
            )
            for e in self.endpoints.values()
        }
        """Endpoint to the configuration it runs."""
        self.loads = {
            e.name: Load(e.requests_per_s, e.mean_prompt_tokens, e.mean_output_tokens)
            for e in self.endpoints.values()
        }
        """Endpoint to the load last reported (the fleet's assumption before any report)."""
        self.reports: dict[str, list[tuple[datetime, Load]]] = {}
        """Endpoint to the loads reported in the last ``SCALE_IN_WINDOW_S``, with when."""
        self.caps: dict[str, int | None] = {}
        """Endpoint to the frequency a power cap holds it at."""

    def estimates(self) -> dict[str, Estimate]:
        """What each endpoint is expected to do in its configuration under its last reported load."""
        return {
            name: self.model.estimate(e.model, e.hardware, self.configs[name], self.loads[name])
            for name, e in self.endpoints.items()
        }

    def wants(self, message: Message) -> bool:
        return bool(self._affected(message))

    def concerns(self, message: Message, inventory: Inventory) -> set[tuple[str, str]]:
        return {(e.tenant, e.workload) for e in self._affected(message)}

    def _affected(self, message: Message) -> list[LlmEndpoint]:
        if isinstance(message, EndpointLoad):
            return [self.endpoints[message.endpoint]] if message.endpoint in self.endpoints else []
        if isinstance(message, PowerEvents):
            return [e for e in self.endpoints.values() if e.power_domain == message.power_domain]
        return []

    def apply(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            detail = decision.detail
            if decision.action in ("reconfigure", "keep"):
                self.configs[detail["endpoint"]] = EndpointConfig.model_validate(detail["config"])
                if "load" in detail:
                    self.loads[detail["endpoint"]] = Load(**detail["load"])
                if "reported_at" in detail:
                    self._remember(detail["endpoint"], datetime.fromisoformat(detail["reported_at"]))
            elif decision.action == "cap":
                self.caps.update(detail["caps"])

    def decide(self, message: Message, view: View, now: datetime) -> list[Decision]:
        if isinstance(message, EndpointLoad):
            return self._fit_load(message, view, now)
        if isinstance(message, PowerEvents):
            return self._fit_power(message, view, now)
        return []

    def _remember(self, endpoint: str, at: datetime) -> None:
        """Keeps the endpoint's last reported load among its recent reports, forgetting those out of the
        window."""
        kept = [(t, load) for t, load in self.reports.get(endpoint, []) if _within_window(t, at)]
        self.reports[endpoint] = [*kept, (at, self.loads[endpoint])]

    def _state(self, endpoint: LlmEndpoint, view: View, load: Load | None = None) -> EndpointState:
        return EndpointState.of(
            endpoint,
            self.configs[endpoint.name],
            load or self.loads[endpoint.name],
            view.hints_for(endpoint.tenant, endpoint.workload),
            self.caps.get(endpoint.name),
        )

    def _fit_load(self, report: EndpointLoad, view: View, now: datetime) -> list[Decision]:
        """DynamoLLM: the configuration that keeps the SLOs at the least power for the reported load."""
        endpoint = self.endpoints[report.endpoint]
        last = self.loads[endpoint.name]
        load = Load(
            report.requests_per_s,
            report.mean_prompt_tokens or last.prompt_tokens,
            report.mean_output_tokens or last.output_tokens,
        )
        recent = [load for at, load in self.reports.get(endpoint.name, []) if _within_window(at, now)]
        state = self._state(endpoint, view, peak_load([*recent, load]))
        choice = choose_config(self.model, state)
        if recent:
            choice.log.insert(
                1,
                f"sized for the peak of the {len(recent) + 1} loads reported in the last "
                f"{SCALE_IN_WINDOW_S} s (reported now: {load.requests_per_s:g} req/s)",
            )
        if choice.config == state.config:
            decisions = [
                self.decision(
                    input_id=report.event_id,
                    index=0,
                    action="keep",
                    summary=f"{endpoint.name}: keeps {describe(state.config)} ({_expected(choice.estimate)})",
                    reasons=choice.log,
                    tenant=endpoint.tenant,
                    workload=endpoint.workload,
                    detail=_detail(endpoint.name, choice.config, load, now),
                )
            ]
        else:
            reason = f"load {load.requests_per_s:g} req/s: least power that keeps {state.slo.describe()}"
            decisions = [
                self._reconfigure(
                    state,
                    choice.config,
                    choice.estimate,
                    reason,
                    choice.log,
                    report.event_id,
                    0,
                    now,
                    load,
                )
            ]
        if not choice.meets_slo:
            decisions.append(
                self._slo_at_risk(state, choice.estimate, report.event_id, len(decisions), choice.log)
            )
        return decisions

    def _fit_power(self, event: PowerCap | ThermalEmergency, view: View, now: datetime) -> list[Decision]:
        """POLCA: graded frequency caps within the power domain's budget; lifted with hysteresis."""
        domain = event.power_domain
        full = self.budgets.get(domain)
        if isinstance(event, PowerCap) and not event.ended:
            budget: float = event.cap_watts
        elif full is None:
            return [self.alert(event.event_id, 0, [], f"operator: power domain {domain} has no budget")]
        elif isinstance(event, ThermalEmergency) and not event.ended:
            budget = full * THERMAL_BUDGET_SHARE[event.severity]
        else:
            budget = full
        why = f"{event.kind.replace('_', ' ')}" + (" ended" if event.ended else f", budget {budget:.0f} W")
        states = [self._state(e, view) for e in self._affected(event)]
        plan = fit_to_budget(self.model, states, budget)
        decisions = [
            self.decision(
                input_id=event.event_id,
                index=0,
                action="cap",
                summary=f"{domain}: {why}; GPU draw {plan.draw_before_w:.0f} -> {plan.draw_after_w:.0f} W",
                reasons=plan.log,
                detail={"power_domain": domain, "budget_w": budget, "caps": plan.cap_mhz},
            )
        ]
        for state in states:
            mhz = plan.frequency_mhz[state.name]
            if mhz == state.config.gpu_frequency_mhz:
                continue
            after = at_frequency(state.config, mhz)
            expected = estimate(self.model, state, after)
            lowered = mhz < state.config.gpu_frequency_mhz
            decision = self._reconfigure(
                state,
                after,
                expected,
                f"{domain}: {why}" + (": GPU frequency capped" if lowered else ": cap lifted"),
                [line for line in plan.log if line.startswith(f"{state.name}:")],
                event.event_id,
                len(decisions),
                now,
            )
            if lowered:
                was = estimate(self.model, state)
                slowdown = min(100.0, max(0.0, 100 * (expected.ttft_ms / was.ttft_ms - 1)))
                power_event = PowerEvent(
                    tenant=state.endpoint.tenant,
                    workload=state.endpoint.workload,
                    issued_at=now,
                    notice_id=derived_id("power", event.event_id, len(decisions)),
                    power_domain=domain,
                    type=PowerEventType.POWER_CAP if isinstance(event, PowerCap) else PowerEventType.THERMAL,
                    gpu_frequency_mhz=mhz,
                    starts_at=now + timedelta(seconds=CLOCK_LEAD_S),
                    expected_duration_s=getattr(event, "expected_duration_s", None),
                    expected_slowdown_pct=round(slowdown, 1),
                )
                decision = replace(decision, notices=(*decision.notices, power_event))
            decisions.append(decision)
        for state in states:
            if state.name in plan.slo_broken:
                expected = estimate(
                    self.model, state, at_frequency(state.config, plan.frequency_mhz[state.name])
                )
                decisions.append(self._slo_at_risk(state, expected, event.event_id, len(decisions), plan.log))
        if plan.over_budget_w:
            decisions.append(
                self.alert(
                    event.event_id,
                    len(decisions),
                    plan.log,
                    f"operator: {domain} stays {plan.over_budget_w:.0f} W over budget at the lowest clocks",
                )
            )
        return decisions

    def _reconfigure(
        self,
        state: EndpointState,
        after: EndpointConfig,
        expected: Estimate,
        reason: str,
        log: Sequence[str],
        input_id: str,
        index: int,
        now: datetime,
        load: Load | None = None,
    ) -> Decision:
        """A reconfiguration decision with its notice, effective CLOCK_LEAD_S or RESHARD_S ahead; ``load``
        is recorded with it when a load report led to it."""
        before = state.config
        reshard = (after.replicas, after.tensor_parallel) != (before.replicas, before.tensor_parallel)
        notice = Reconfiguration(
            tenant=state.endpoint.tenant,
            workload=state.endpoint.workload,
            issued_at=now,
            notice_id=derived_id("reconfig", input_id, index),
            endpoint=state.name,
            before=before,
            after=after,
            reason=reason[:500],
            expected_ttft_ms=_bounded(expected.ttft_ms, 600_000),
            expected_tbt_ms=_bounded(expected.tbt_ms, 60_000),
            effective_at=now + timedelta(seconds=RESHARD_S if reshard else CLOCK_LEAD_S),
        )
        return self.decision(
            input_id=input_id,
            index=index,
            action="reconfigure",
            summary=f"{state.name}: {describe(before)} -> {describe(after)} ({_expected(expected)})",
            reasons=log,
            notices=(notice,),
            tenant=state.endpoint.tenant,
            workload=state.endpoint.workload,
            detail=_detail(state.name, after, load, now if load is not None else None),
        )

    def _slo_at_risk(
        self, state: EndpointState, expected: Estimate, input_id: str, index: int, log: Sequence[str]
    ) -> Decision:
        """A report that an endpoint's SLO will not be kept: never broken silently."""
        return self.decision(
            input_id=input_id,
            index=index,
            action="slo_at_risk",
            summary=f"{state.name}: {state.slo.describe()} cannot be kept ({_expected(expected)})",
            reasons=log,
            tenant=state.endpoint.tenant,
            workload=state.endpoint.workload,
        )


def _detail(
    endpoint: str, config: EndpointConfig, load: Load | None, reported_at: datetime | None = None
) -> dict[str, Any]:
    """What ``apply`` rebuilds the state from: the endpoint's configuration, and its load and when it
    was reported if a report led to the decision."""
    detail: dict[str, Any] = {"endpoint": endpoint, "config": config.model_dump()}
    if load is not None:
        detail["load"] = asdict(load)
    if reported_at is not None:
        detail["reported_at"] = reported_at.isoformat()
    return detail


def _within_window(at: datetime, now: datetime) -> bool:
    """Whether a load reported ``at`` still counts ``now`` when sizing an endpoint."""
    return (now - at).total_seconds() < SCALE_IN_WINDOW_S


def _expected(estimate: Estimate) -> str:
    return f"expected TTFT {estimate.ttft_ms:.0f} ms, TBT {estimate.tbt_ms:.1f} ms, {estimate.watts:.0f} W"


def _bounded(value: float, limit: float) -> float | None:
    """A latency for a notice: None when the model expects no finite value within the contract's bound."""
    return value if 0 < value <= limit else None
