"""``wi demo``: the platform on embedded defaults with every platform service, and a tenant's workloads.

First a scripted tenant shows the registry's semantics over the bus: latest wins, instance scope over
workload scope, clear, a repeated publish stored once, an invalid message parked with its reason, and the
effective hints read back. Then the examples run as the tenant's workloads (a batch job, a web service
and two LLM endpoints, one strict and one tolerant) while the demo plays platform events: capacity
pressure, a power cap, falling load, the cap's end. It prints a timeline of the services' decisions with
their reasons, the notices they send and the workloads' reactions, then a summary.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from wi_services.llm import LlmReconfigurer
from wi_services.llm.policy import describe

from wi.auth import TokenKind
from wi.bus import (
    DEADLETTER_REASON,
    Bus,
    deadletter_subject,
    encode,
    hints_query_subject,
    subject_for,
    tenant_inbox,
)
from wi.contract import (
    Availability,
    CapacityPressure,
    ClearHint,
    DelayTolerance,
    EndpointLoad,
    Evictability,
    HintBase,
    HintsQuery,
    HintsView,
    LatencyTolerance,
    Migration,
    Placement,
    PowerCap,
    Priority,
    Scaling,
)
from wi.dashboard import dashboard_url
from wi.engine import Decision, DecisionLog, InstancePlaced, ServiceContext, load_fleet
from wi.engine.fleet import Fleet
from wi.server import Endpoints, Platform, Settings

TENANT = "acme"
ENVELOPE_FIELDS = {"kind", "tenant", "workload", "hint_id", "instance", "issued_at"}


def _script() -> list[tuple[str, HintBase]]:
    """What the tenant's three workloads say, in order, with a caption for each step."""
    etl, shop, llm = "nightly-etl", "storefront", "chat-llm"
    hint = {"tenant": TENANT}
    return [
        ("batch job: low priority", Priority(**hint, workload=etl, level="low")),
        (
            "batch job: evictable with 2 min notice",
            Evictability(**hint, workload=etl, evictable=True, min_notice_s=120, checkpoint_s=45),
        ),
        ("batch job: latency tolerant", LatencyTolerance(**hint, workload=etl, latency_class="tolerant")),
        ("batch job: may start within an hour", DelayTolerance(**hint, workload=etl, start_within_s=3600)),
        (
            "batch job: restartable elsewhere",
            Migration(**hint, workload=etl, live_migratable=False, restartable=True),
        ),
        ("batch job: raises its priority (latest wins)", Priority(**hint, workload=etl, level="normal")),
        (
            "batch job: must start now after all (clear)",
            ClearHint(**hint, workload=etl, hint_kind="delay_tolerance"),
        ),
        ("web service: critical", Priority(**hint, workload=shop, level="critical")),
        ("web service: not evictable", Evictability(**hint, workload=shop, evictable=False)),
        (
            "web service: strict, p99 200 ms",
            LatencyTolerance(**hint, workload=shop, latency_class="strict", p99_ms=200),
        ),
        ("web service: four nines", Availability(**hint, workload=shop, target=0.9999)),
        (
            "web service: stateless, 3 to 12 instances",
            Scaling(**hint, workload=shop, stateless=True, min_instances=3, max_instances=12),
        ),
        (
            "LLM endpoint: TTFT 400 ms / TBT 60 ms",
            LatencyTolerance(
                **hint, workload=llm, latency_class="strict", ttft_ms=400, tbt_ms=60, max_slowdown_pct=5
            ),
        ),
        ("LLM endpoint: high priority", Priority(**hint, workload=llm, level="high")),
        (
            "LLM endpoint: its canary is best effort (instance scope)",
            Priority(**hint, workload=llm, instance="canary-0", level="best_effort", ttl_s=3600),
        ),
    ]


def _describe(hint: HintBase) -> str:
    fields = hint.model_dump(mode="json", exclude=ENVELOPE_FIELDS, exclude_none=True)
    return " ".join(f"{key}={value}" for key, value in fields.items())


def _print_view(view: HintsView) -> None:
    print(f"\n  {view.tenant}/{view.workload}")
    for hint in view.workload_hints:
        print(f"    {hint.kind:<18} {_describe(hint)}")
    for instance, hints in view.instance_hints.items():
        for hint in hints:
            print(f"    {hint.kind:<18} {_describe(hint)}   (instance {instance} only)")


async def _send_script(bus: Bus) -> int:
    last_seq = 0
    script = _script()
    for caption, hint in script:
        published = await bus.publish(hint)
        last_seq = published.seq
        print(f"  → {hint.workload:<12} {caption:<58} seq {published.seq}")
    repeat = script[0][1]
    again = await bus.publish(repeat)
    print(
        f"  → {repeat.workload:<12} {'the first hint again, same hint_id':<58} "
        f"{'stored once (duplicate)' if again.duplicate else 'STORED TWICE'}"
    )
    return last_seq


async def _send_invalid(bus: Bus, operator: Bus) -> str:
    """Publishes a hint with a negative notice, as a careless client might, and returns why it was parked."""
    parked = await operator.nc.subscribe(deadletter_subject("WI_HINTS"))
    bad = Evictability(tenant=TENANT, workload="nightly-etl", evictable=True)
    headers, body = encode(bad, "/demo")
    data = json.loads(body)
    data["min_notice_s"] = -5
    await bus.publish_raw(subject_for(bad), json.dumps(data).encode(), headers)
    print(f"  → {'nightly-etl':<12} {'an invalid hint: min_notice_s = -5':<58}", end=" ")
    message = await parked.next_msg(timeout=10)
    await parked.unsubscribe()
    return (message.headers or {}).get(DEADLETTER_REASON, "?")


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WORKLOADS = (
    ("batch_job.py", "nats"),  # nightly-etl
    ("web_service.py", "http"),  # storefront
    ("llm_endpoint.py", "http"),  # chat-llm, strict
    ("llm_endpoint.py --tolerant", "nats"),  # code-llm, tolerant
)
"""The example workloads the timeline runs: script (with its options) and the transport it uses."""
SHOWN_REASONS = 4
STEP_TIMEOUT_S = 30.0


async def _run_timeline(platform: Platform, endpoints: Endpoints, token: str) -> None:
    """Runs the example workloads against the platform's services and prints what happens, in order."""
    assert platform.bus is not None and platform.store is not None
    timeline = Timeline(DecisionLog(platform.store.engine))
    follower = asyncio.create_task(timeline.follow())
    processes: list[asyncio.subprocess.Process] = []
    fleet = load_fleet(platform.settings.effective_fleet)
    try:
        timeline.step("The workloads start, send their hints and ask for capacity")
        for command, transport in WORKLOADS:
            script, *options = command.split()
            url = endpoints.nats_url if transport == "nats" else endpoints.http_url
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(EXAMPLES / script),
                *options,
                "--url",
                url,
                "--token",
                token,
                "--tenant",
                TENANT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            processes.append(process)
            timeline.forward(process)
        await timeline.until(lambda: timeline.lines_with("hints sent") >= len(WORKLOADS))
        await timeline.until(lambda: timeline.count("allocator", "place") >= 2)
        await timeline.until(lambda: timeline.count("spot-harvest", "decline") >= 1)

        timeline.step("Spot capacity is needed back: 8 cores within 30 s where the batch job runs")
        etl = next(d for d in timeline.decisions("allocator") if d.workload == "nightly-etl")
        server = fleet.server(etl.detail["servers"][0])
        await platform.bus.publish(
            CapacityPressure(cluster=server.cluster, pool=server.pool, cores_needed=8, needed_within_s=30)
        )
        await timeline.until(lambda: timeline.count("spot-harvest", "evict") >= 1)

        timeline.step("The GPU row use1-gpu must stay under 11 kW for 15 minutes")
        await platform.bus.publish(
            PowerCap(power_domain="use1-gpu", cap_watts=11_000, expected_duration_s=900)
        )
        await timeline.until(lambda: timeline.count("llm", "cap") >= 1)
        await timeline.settle()

        timeline.step("The power cap ends")
        await platform.bus.publish(PowerCap(power_domain="use1-gpu", cap_watts=11_000, ended=True))
        await timeline.until(lambda: timeline.count("llm", "cap") >= 2)
        await timeline.settle()

        timeline.step("Evening: chat traffic falls to 1.5 req/s, code completion to 0.5 req/s")
        fitted = timeline.count("llm", "reconfigure", "keep")
        for endpoint, rate in (("chat-llm", 1.5), ("code-llm", 0.5)):
            await platform.bus.publish(EndpointLoad(endpoint=endpoint, requests_per_s=rate))
        await timeline.until(lambda: timeline.count("llm", "reconfigure", "keep") >= fitted + 2)
        await timeline.settle()
    finally:
        follower.cancel()
        for process in processes:
            if process.returncode is None:
                process.terminate()
            await process.wait()
    timeline.summary(fleet, platform.settings.llm_perf_dir)


class Timeline:
    """Prints decisions from the audit table, and what the workloads print, each with the time since start."""

    def __init__(self, audit: DecisionLog) -> None:
        self.audit = audit
        self.started = time.monotonic()
        self.seen: set[str] = set()
        self.output: list[str] = []
        self._forwarders: list[asyncio.Task[None]] = []

    def _print(self, who: str, text: str) -> None:
        print(f"  {time.monotonic() - self.started:5.1f}s  {who:<13} {text}", flush=True)

    def step(self, caption: str) -> None:
        """A scenario step's heading."""
        print(f"\n{caption}:", flush=True)

    def forward(self, process: asyncio.subprocess.Process) -> None:
        """Prints a workload's output as it comes."""

        async def forward() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                line = raw.decode().rstrip()
                self.output.append(line)
                who, _, text = line.partition("] ")
                self._print(who.strip("[") if text else "workload", text or line)

        self._forwarders.append(asyncio.create_task(forward()))

    def lines_with(self, text: str) -> int:
        """How many workload lines so far contain ``text``."""
        return sum(text in line for line in self.output)

    def decisions(self, service: str) -> list[Decision]:
        """A service's decisions, oldest first."""
        return self.audit.all_for(service)

    def count(self, service: str, *actions: str) -> int:
        """How many of a service's decisions took one of ``actions``."""
        return sum(d.action in actions for d in self.decisions(service))

    async def until(self, condition: Callable[[], bool]) -> None:
        """Waits until ``condition`` holds (checked off the event loop); fails after STEP_TIMEOUT_S."""
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while True:
                if await asyncio.to_thread(condition):
                    return
                await asyncio.sleep(0.1)

    async def settle(self) -> None:
        """Gives the workloads a moment to react before the next step."""
        await asyncio.sleep(1.0)

    async def follow(self) -> None:
        """Prints each new decision as the audit table records it."""
        while True:
            for decision in reversed(await asyncio.to_thread(self.audit.recent, None, 200)):
                if decision.key not in self.seen:
                    self.seen.add(decision.key)
                    self._show(decision)
            await asyncio.sleep(0.1)

    def _show(self, decision: Decision) -> None:
        self._print(decision.service, f"{decision.action}: {decision.summary}")
        reasons = decision.reasons
        for reason in reasons[:SHOWN_REASONS]:
            print(f"{'':24}· {reason}")
        if len(reasons) > SHOWN_REASONS:
            more = len(reasons) - SHOWN_REASONS
            print(f"{'':24}· ... {more} more step{'s' if more > 1 else ''} in `wi audit`")
        for notice in decision.notices:
            deadline = f", deadline {notice.deadline:%H:%M:%S}" if notice.deadline else ""
            print(f"{'':24}→ {notice.kind} notice to {notice.workload}{deadline}")
        for hint in decision.hints:
            print(f"{'':24}→ {hint.kind} hint committed for {hint.workload}")

    def summary(self, fleet: Fleet, perf_dir: Path | None) -> None:
        """What the services did and what the hints saved."""
        print("\nSummary:")
        for service in ("allocator", "spot-harvest", "llm"):
            actions = Counter(d.action for d in self.decisions(service))
            notices = sum(len(d.notices) for d in self.decisions(service))
            listed = ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
            print(f"  {service:<13} {listed}; {notices} notices")
        placed = [d for d in self.decisions("allocator") if d.action == "place"]
        paid = sum(_price(d) for d in placed)
        regular = sum(_regular_price(fleet, d) for d in placed)
        if regular:
            print(
                f"  capacity      {paid:.3f}/h for what costs {regular:.3f}/h on regular capacity: "
                f"{100 * (1 - paid / regular):.1f} % saved by the hints"
            )
        llm = LlmReconfigurer(ServiceContext(fleet, llm_perf_dir=perf_dir))
        provisioned = sum(e.watts for e in llm.estimates().values())
        llm.restore(self.decisions("llm"))
        for name, now in llm.estimates().items():
            print(
                f"  {name:<13} {describe(llm.configs[name])} for {llm.loads[name].requests_per_s:g} req/s: "
                f"{now.watts:.0f} W, TTFT {now.ttft_ms:.0f} ms, TBT {now.tbt_ms:.0f} ms"
            )
        drawn = sum(e.watts for e in llm.estimates().values())
        print(
            f"  GPU power     {provisioned:.0f} W as provisioned -> {drawn:.0f} W now "
            f"({100 * (1 - drawn / provisioned):.0f} % less)"
        )
        at_risk = self.count("llm", "slo_at_risk")
        kept = "every LLM SLO kept" if not at_risk else f"{at_risk} LLM SLO risks reported"
        print(f"  promises      {kept}; no eviction notice shorter than the workload asked for")


def _price(decision: Decision) -> float:
    """What a placement costs per hour: its notice's price per instance-hour times its instances."""
    notice = decision.notices[0]
    assert isinstance(notice, Placement)
    return (notice.price_per_hour or 0) * len(decision.detail["servers"])


def _regular_price(fleet: Fleet, decision: Decision) -> float:
    """What a placement would cost per hour on regular capacity in its region."""
    cores = sum(change.cores for change in decision.changes if isinstance(change, InstancePlaced))
    server = fleet.server(decision.detail["servers"][0])
    return cores * fleet.region(server.region).price_per_core_hour


async def run_demo(data_dir: Path | None = None) -> int:
    """Runs the demo; returns the exit code."""
    with tempfile.TemporaryDirectory(prefix="wi-demo-") as scratch:
        settings = Settings(data_dir=data_dir or Path(scratch), nats_port=0, http_port=0, database_url=None)
        platform = Platform(settings)
        endpoints = await platform.start()
        try:
            assert platform.bus is not None and platform.tokens is not None
            print("Workload Intelligence demo: the platform runs on embedded defaults")
            print(
                f"  NATS {endpoints.nats_url} (embedded nats-server), HTTP {endpoints.http_url}, "
                f"SQLite in {endpoints.data_dir}"
            )
            operator = platform.tokens.create(TokenKind.PLATFORM, None, "wi demo dashboard")
            print(f"  Dashboard, live while the demo runs: {dashboard_url(endpoints.http_url, operator)}\n")
            token = platform.tokens.create(TokenKind.TENANT, TENANT, "wi demo")
            tenant = await Bus.connect(
                endpoints.nats_url,
                source=f"/tenants/{TENANT}",
                name="wi-demo-tenant",
                token=token,
                inbox_prefix=tenant_inbox(TENANT),
                retry_refusals=True,  # a token just made: only a callout too slow to answer refuses it
            )
            try:
                print(f"Tenant {TENANT!r} sends hints over the bus with its own token:")
                last_seq = await _send_script(tenant)
                reason = await _send_invalid(tenant, platform.bus)
                print(f"parked: {reason}")
                print("\nEffective hints, read back from the registry over the bus:")
                for workload in ("nightly-etl", "storefront", "chat-llm"):
                    reply = await tenant.nc.request(
                        hints_query_subject(TENANT, workload),
                        HintsQuery(after_seq=last_seq).model_dump_json().encode(),
                        timeout=10,
                    )
                    view = HintsView.model_validate_json(reply.data)
                    if not view.complete:
                        print("  (the registry had not caught up; the answer may be stale)")
                    _print_view(view)
            finally:
                await tenant.close()
            if EXAMPLES.is_dir():
                print(
                    "\nThe examples run as the tenant's workloads; the platform services act on their hints:"
                )
                await _run_timeline(platform, endpoints, token)
        finally:
            await platform.stop()
        print("\nThe platform drained and stopped.")
    return 0
