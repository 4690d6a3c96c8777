"""The simulator on small scenarios: deterministic, conserving, keeping notice promises, agreeing arms
without hints, and driven by the live policies."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from wi_services.allocator import policy as allocator_policy

from tests.ci import unavailable
from wi.cli import main
from wi.simulate import SCENARIOS, Scenario, TraceError, load_scenario, simulate, summary
from wi.simulate.simulation import WITH, WITHOUT
from wi.simulate.workloads import SILENT

TINY = replace(SCENARIOS["small"], name="tiny", vm_count=300, llm_minutes=4, pressure_every_h=0.05)
"""300 VMs, four minutes of LLM requests, capacity pressure every three minutes on average."""


@pytest.fixture(autouse=True)
def _data() -> None:
    if not (TINY.data_dir / "azure-packing-2020-sample" / "vm_requests.csv").is_file():
        unavailable(f"the public traces are not in {TINY.data_dir}")


def test_same_seed_same_result_other_seed_other_result() -> None:
    first, again = summary(simulate(TINY, seed=3)), summary(simulate(TINY, seed=3))
    assert first == again
    assert summary(simulate(TINY, seed=4))["arms"] != first["arms"]


def test_every_vms_work_is_served_once_or_its_rejection_counted_and_every_request_served_or_dropped() -> None:
    simulation = simulate(TINY, seed=1, ablations=False)
    lifetime = simulation.trace.lifetime_s
    for arm in simulation.arms.values():
        vms = arm.vms
        placed = ~np.isnan(vms.placed_s)
        assert (placed | vms.rejected).all()  # each VM ran, or was turned away
        assert (vms.pool[placed] >= 0).all()
        assert (np.isnan(vms.ended_s) == ~placed).all()  # every VM that ran stopped for good once
        done = ~vms.rejected
        assert vms.evictions.sum() > 0
        assert vms.served_s[done] == pytest.approx(lifetime[done])  # evicted ones too, after restarts
        assert (vms.served_s <= lifetime + 1e-6).all()
        served = sum(int((~np.isnan(t)).sum()) for t in arm.llm.ttft_ms.values())
        assert (
            served + arm.llm.dropped
            == arm.llm.requests
            == sum(len(t) for t in simulation.llm_traces.values())
        )


def test_with_wi_no_eviction_comes_with_less_notice_than_promised() -> None:
    pressed = replace(TINY, pressure_share=0.5)  # half of what runs in a cell: evictions in both arms
    simulation = simulate(pressed, seed=2, ablations=False)
    with_wi = simulation.arms[WITH].vms
    assert with_wi.evictions.sum() > 0
    assert (with_wi.notice_s[with_wi.evicted] >= simulation.traits.min_notice_s[with_wi.evicted]).all()
    assert with_wi.short_notice.sum() == 0
    figures = summary(simulation)["arms"]
    assert figures[WITH]["evictions_short_notice"] == 0
    assert figures[WITHOUT]["evictions_short_notice"] > 0  # the fixed 30 s notice is too short for some


def test_workloads_that_state_nothing_give_identical_arms() -> None:
    silent = replace(TINY, characterization=SILENT)
    result = summary(simulate(silent, seed=5))
    assert result["arms"][WITH] == result["arms"][WITHOUT]
    assert all(part["saving_pct"] == 0 for part in result["per_optimization"].values())


def test_the_live_allocator_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    before = summary(simulate(TINY, seed=0, ablations=False))["arms"][WITH]
    regular = (allocator_policy.Pool.REGULAR,)
    monkeypatch.setattr(allocator_policy, "acceptable_pools", lambda hints: (regular, "regular only"))
    after = summary(simulate(TINY, seed=0, ablations=False))["arms"][WITH]
    assert sum(before["vms_by_pool"].values()) - before["vms_by_pool"]["regular"] > 0
    assert sum(after["vms_by_pool"].values()) == after["vms_by_pool"]["regular"]  # nothing anywhere else
    assert after["vm_cost"] > before["vm_cost"]


def test_wi_simulate_writes_the_summary_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "tiny.json"
    scenario.write_text(json.dumps({"vm_count": 200, "llm_minutes": 3}))
    assert (
        main(["simulate", "--scenario", str(scenario), "--out", str(tmp_path / "out"), "--no-ablations"]) == 0
    )
    result = json.loads((tmp_path / "out" / "summary.json").read_text())
    for arm in (WITHOUT, WITH):
        for key in ("customer_cost", "servers", "energy_kwh", "carbon_kg", "slo_attainment", "evictions"):
            assert key in result["arms"][arm]
        assert "evictions_short_notice" in result["arms"][arm]
    assert {"savings_pct", "per_optimization"} <= set(result)
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == {
        "cost.png",
        "latency_cdf.png",
        "gpu_power.png",
        "cores_by_pool.png",
    }
    assert "customer cost" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("row", "where"),
    [
        ("10,20,2,4,medium", "line 3, column priority"),
        ("10,5,2,4,low", "line 3, column end_s"),
        ("ten,20,2,4,low", "line 3, column start_s"),
        ("10,20,2.5,4,low", "line 3, column cores"),
    ],
)
def test_a_bad_row_of_your_own_vm_trace_is_named(tmp_path: Path, row: str, where: str) -> None:
    trace = tmp_path / "vms.csv"
    trace.write_text(f"start_s,end_s,cores,memory_gb,priority\n0,100,4,16,high\n{row}\n")
    scenario = Scenario("own", vms=trace, vm_format="wi")
    with pytest.raises(TraceError, match=rf"vms\.csv: {where}"):
        simulate(scenario)


def test_a_bad_llm_row_is_named(tmp_path: Path) -> None:
    requests = tmp_path / "requests.csv"
    requests.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,100,10\nyesterday,1,1\n"
    )
    file = tmp_path / "s.json"
    file.write_text(json.dumps({"vm_count": 10, "llm": {"chat": str(requests)}}))
    with pytest.raises(TraceError, match=r"requests\.csv: line 3, column TIMESTAMP"):
        simulate(load_scenario(str(file)))
