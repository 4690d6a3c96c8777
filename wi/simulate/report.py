"""What a simulation found: each arm's figures, the savings, the breakdown per optimization, as
``summary.json``, a terminal table and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .prices import PAPER_SAVING_PCT
from .simulation import WITH, WITHOUT, Arm, Simulation
from .vms import POOLS
from .workloads import FOUR_NINES, THREE_NINES, TWO_NINES, Optimization

TARGETS = (TWO_NINES, THREE_NINES, FOUR_NINES)


def arm_figures(simulation: Simulation, arm: Arm) -> dict[str, Any]:
    """One arm's figures, judged against what each workload truly needs."""
    vms, llm, traits = arm.vms, arm.llm, simulation.traits
    placed = ~np.isnan(vms.placed_s)
    up = vms.served_s + vms.down_s
    achieved = np.where(placed, vms.served_s / np.where(up > 0, up, 1.0), 0.0)
    deferred = vms.deferrals > 0
    delays = (vms.placed_s - simulation.trace.start_s)[deferred & placed]
    requests = llm.requests
    return {
        "customer_cost": round(float(vms.cost.sum()) + llm.cost, 2),
        "vm_cost": round(float(vms.cost.sum()), 2),
        "llm_cost": round(llm.cost, 2),
        "servers": vms.peak_servers,
        "peak_cores_booked": vms.peak_cores,
        "gpu_hours": round(llm.gpu_hours, 2),
        "energy_kwh": round(vms.energy_kwh + llm.energy_kwh, 1),
        "carbon_kg": round(vms.carbon_kg + llm.carbon_kg, 1),
        "slo_attainment": round(sum(int(m.sum()) for m in llm.met.values()) / requests, 4)
        if requests
        else 1.0,
        "llm_requests": requests,
        "llm_dropped": llm.dropped,
        "availability_attainment": {
            f"{target:g}": round(float((achieved[traits.availability == target] >= target).mean()), 4)
            for target in TARGETS
            if (traits.availability == target).any()
        },
        "evictions": int(vms.evictions.sum()),
        "evictions_short_notice": int(vms.short_notice.sum()),
        "vms_evicted": int(vms.evicted.sum()),
        "evictions_needing_three_nines": int(vms.evictions[traits.availability >= THREE_NINES].sum()),
        "core_hours_served": round(float(vms.served_s @ simulation.trace.cores) / 3600, 1),
        "deferred_starts": int(deferred.sum()),
        "mean_deferral_s": round(float(delays.mean()), 1) if len(delays) else 0.0,
        "rejected": int(vms.rejected.sum()),
        "vms_by_pool": {str(pool): int((vms.pool == i).sum()) for i, pool in enumerate(POOLS)},
        "power_above_cap_wh": round(llm.above_budget_wh, 1),
    }


def _pct(before: float, after: float) -> float:
    return round(100 * (before - after) / before, 2) if before else 0.0


def summary(simulation: Simulation) -> dict[str, Any]:
    """The figures of both arms, the savings, and the saving each optimization accounts for."""
    arms = {name: arm_figures(simulation, arm) for name, arm in simulation.arms.items()}
    without, with_wi = arms[WITHOUT], arms[WITH]
    base = without["customer_cost"]
    per_optimization = {
        str(o): {
            "saving_pct": _pct(base, base - (arms[o]["customer_cost"] - with_wi["customer_cost"])),
            "customer_cost_without_it": arms[o]["customer_cost"],
            "evictions_needing_three_nines_without_it": arms[o]["evictions_needing_three_nines"],
            "evictions_short_notice_without_it": arms[o]["evictions_short_notice"],
            "slo_attainment_without_it": arms[o]["slo_attainment"],
        }
        for o in Optimization
        if o in arms
    }
    saving = _pct(base, with_wi["customer_cost"])
    if per_optimization:
        parts = sum(p["saving_pct"] for p in per_optimization.values())
        per_optimization["interaction"] = {"saving_pct": round(saving - parts, 2)}
    scenario = simulation.scenario
    return {
        "scenario": scenario.name,
        "seed": simulation.seed,
        "vms": len(simulation.trace),
        "llm_requests": sum(len(t) for t in simulation.llm_traces.values()),
        "fleet_servers": simulation.servers,
        "arms": {WITHOUT: without, WITH: with_wi},
        "savings_pct": {
            key: _pct(without[key], with_wi[key])
            for key in ("customer_cost", "servers", "energy_kwh", "carbon_kg")
        },
        "paper_savings_pct": PAPER_SAVING_PCT,
        "per_optimization": per_optimization,
    }


def table(result: dict[str, Any]) -> Table:
    """The terminal table: both arms side by side, then the breakdown."""
    arms = result["arms"]
    out = Table(
        title=f"wi simulate: scenario {result['scenario']}, seed {result['seed']}, {result['vms']:,} VMs, "
        f"{result['llm_requests']:,} LLM requests, {result['fleet_servers']:,} servers"
    )
    out.add_column("")
    out.add_column("without WI", justify="right")
    out.add_column("with WI", justify="right")
    out.add_column("saving", justify="right")
    rows = [
        ("customer cost (USD)", "customer_cost", "{:,.0f}"),
        ("  VMs", "vm_cost", "{:,.0f}"),
        ("  LLM endpoints", "llm_cost", "{:,.0f}"),
        ("servers (peak busy)", "servers", "{:,}"),
        ("peak cores booked", "peak_cores_booked", "{:,}"),
        ("energy (kWh)", "energy_kwh", "{:,.0f}"),
        ("carbon (kg CO2)", "carbon_kg", "{:,.0f}"),
        ("TTFT/TBT SLO attainment", "slo_attainment", "{:.1%}"),
        ("LLM requests dropped", "llm_dropped", "{:,}"),
        ("evictions", "evictions", "{:,}"),
        ("  with less notice than needed", "evictions_short_notice", "{:,}"),
        ("  of VMs needing three nines or more", "evictions_needing_three_nines", "{:,}"),
        ("core-hours served", "core_hours_served", "{:,.0f}"),
        ("deferred starts", "deferred_starts", "{:,}"),
        ("  mean delay (s)", "mean_deferral_s", "{:,.0f}"),
        ("rejected VMs", "rejected", "{:,}"),
        ("GPU energy above the cap (Wh)", "power_above_cap_wh", "{:,.0f}"),
    ]
    for label, key, fmt in rows:
        before, after = arms[WITHOUT][key], arms[WITH][key]
        saving = (
            _pct(before, after)
            if key in ("customer_cost", "vm_cost", "llm_cost", "servers", "energy_kwh", "carbon_kg")
            else None
        )
        out.add_row(label, fmt.format(before), fmt.format(after), "" if saving is None else f"{saving:.1f} %")
    for target, met in arms[WITHOUT]["availability_attainment"].items():
        out.add_row(
            f"availability {target} met",
            f"{met:.1%}",
            f"{arms[WITH]['availability_attainment'][target]:.1%}",
            "",
        )
    out.add_row("paper (arXiv:2404.19143)", "", "", f"{result['paper_savings_pct']:.1f} %", style="dim")
    for name, part in result["per_optimization"].items():
        out.add_row(f"  of which {name}", "", "", f"{part['saving_pct']:.1f} %")
    return out


def print_table(result: dict[str, Any], console: Console | None = None) -> None:
    """Prints the table."""
    (console or Console()).print(table(result))


def write(simulation: Simulation, result: dict[str, Any], out: Path) -> list[Path]:
    """Writes ``summary.json`` and the plots into ``out``; returns what it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return [path, *plots(simulation, result, out)]


def plots(simulation: Simulation, result: dict[str, Any], out: Path) -> list[Path]:
    """cost.png, latency_cdf.png, gpu_power.png and cores_by_pool.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = {"without WI": simulation.arms[WITHOUT], "with WI": simulation.arms[WITH]}
    figures = result["arms"]
    written = []

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(arms)
    vm = [figures[WITHOUT]["vm_cost"], figures[WITH]["vm_cost"]]
    llm = [figures[WITHOUT]["llm_cost"], figures[WITH]["llm_cost"]]
    left.bar(names, vm, label="VMs")
    left.bar(names, llm, bottom=vm, label="LLM endpoints")
    left.set_ylabel("customer cost (USD)")
    left.set_title(
        f"saving {result['savings_pct']['customer_cost']:.1f} % (paper: {result['paper_savings_pct']} %)"
    )
    left.legend()
    parts = result["per_optimization"]
    right.barh(list(parts), [p["saving_pct"] for p in parts.values()])
    right.set_xlabel("saving, % of the cost without WI (ablation)")
    right.set_title("by optimization")
    right.invert_yaxis()
    fig.tight_layout()
    written.append(_save(fig, out / "cost.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, (metric, label) in zip(axes, (("ttft_ms", "TTFT (ms)"), ("tbt_ms", "TBT (ms)")), strict=True):
        for name, arm in arms.items():
            values = np.sort(np.concatenate(list(getattr(arm.llm, metric).values())))
            values = values[~np.isnan(values)]
            axis.plot(values, np.arange(1, len(values) + 1) / max(len(values), 1), label=name)
        for spec in simulation.scenario.llm.values():
            axis.axvline(getattr(spec, metric), color="grey", linestyle=":")
        axis.set_xscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel("share of requests served")
        axis.legend()
    fig.tight_layout()
    written.append(_save(fig, out / "latency_cdf.png"))

    fig, axis = plt.subplots(figsize=(7, 4))
    for name, arm in arms.items():
        axis.plot(np.asarray(arm.llm.power_w) / 1000, label=name)
    axis.plot(np.asarray(arms["without WI"].llm.budget_w) / 1000, color="black", linestyle="--", label="cap")
    axis.set_xlabel("minute")
    axis.set_ylabel("GPU power (kW)")
    axis.legend()
    fig.tight_layout()
    written.append(_save(fig, out / "gpu_power.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, (name, arm) in zip(axes, arms.items(), strict=True):
        hours = np.asarray(arm.vms.times_s) / 3600
        cores = np.asarray(arm.vms.cores_by_pool).T
        axis.stackplot(hours, cores, labels=[str(p) for p in POOLS], step="post")
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xlabel("hours (log beyond 1)")
        axis.set_title(name)
    axes[0].set_ylabel("cores booked")
    axes[0].legend(loc="upper right")
    fig.tight_layout()
    written.append(_save(fig, out / "cores_by_pool.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    figure.savefig(path, dpi=80)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path
