"""``wi demo``: the platform on embedded defaults, and a scripted tenant that sends hints over the bus.

It shows the registry's semantics end to end: latest wins, instance scope over workload scope, clear,
a repeated publish stored once, an invalid message parked with its reason, and the effective hints read
back over the bus.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from wi.auth import TokenKind, token_id_of
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
    ClearHint,
    CostOffer,
    DelayTolerance,
    EndpointConfig,
    Evictability,
    Eviction,
    HintBase,
    HintsQuery,
    HintsView,
    LatencyTolerance,
    Migration,
    NoticeBase,
    Priority,
    Reconfiguration,
    Scaling,
    utc_now,
)
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


async def _forward(name: str, process: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
    """Prints an example's output as it comes; sets ``ready`` once it has sent its hints."""
    assert process.stdout is not None
    async for raw in process.stdout:
        line = raw.decode().rstrip()
        print(f"  {line}", flush=True)
        if "hints sent" in line:
            ready.set()


def _notices_for(tenant: str) -> list[NoticeBase]:
    soon = utc_now() + timedelta(minutes=2)
    config = EndpointConfig(replicas=4, tensor_parallel=8, gpu_frequency_mhz=1980)
    return [
        Eviction(
            tenant=tenant,
            workload="nightly-etl",
            instance="etl-0",
            not_before=soon,
            reason="spot capacity reclaimed",
        ),
        CostOffer(
            tenant=tenant,
            workload="storefront",
            offer_id="evictable-40",
            discount_pct=40,
            expires_at=soon,
            commit=[Evictability(tenant=tenant, workload="storefront", evictable=True, min_notice_s=30)],
        ),
        Reconfiguration(
            tenant=tenant,
            workload="chat-llm",
            endpoint="chat-llm",
            before=config,
            after=config.model_copy(update={"replicas": 3, "gpu_frequency_mhz": 1600}),
            reason="load fell to 40 %: fewer replicas at a lower clock save energy",
            expected_ttft_ms=310,
            expected_tbt_ms=48,
            effective_at=soon,
        ),
    ]


async def _run_examples(platform: Platform, endpoints: Endpoints, token: str) -> None:
    """Runs the three examples against this platform and sends each a notice to react to."""
    assert platform.bus is not None and platform.store is not None
    runs = {
        "batch_job.py": endpoints.nats_url,
        "web_service.py": endpoints.http_url,
        "llm_endpoint.py": endpoints.http_url,
    }
    processes, forwarders, ready = [], [], []
    for script, url in runs.items():
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / script),
            "--url",
            url,
            "--token",
            token,
            "--tenant",
            TENANT,
            "--once",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        event = asyncio.Event()
        processes.append(process)
        ready.append(event)
        forwarders.append(asyncio.create_task(_forward(script, process, event)))
    try:
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 60)
        print("\nThe platform sends each a notice:")
        notices = _notices_for(TENANT)
        for notice in notices:
            await platform.bus.publish(notice)
            print(f"  -> {notice.workload:<12} {notice.kind} (deadline {notice.deadline:%H:%M:%S} UTC)")
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in processes)), 60)
        await asyncio.gather(*forwarders)
        await asyncio.sleep(0.5)  # the registry applies the last responses
        print("\nNotices in the registry:")
        for notice in notices:
            found = platform.store.notice(notice.notice_id)
            state = found[1].state if found else "not recorded"
            print(f"  {notice.workload:<12} {notice.kind:<16} {state}")
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


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
                f"SQLite in {endpoints.data_dir}\n"
            )
            token = platform.tokens.create(TokenKind.TENANT, TENANT, "wi demo")
            platform.refresh_nats_users()
            tenant = await Bus.connect(
                endpoints.nats_url,
                source=f"/tenants/{TENANT}",
                name="wi-demo-tenant",
                user=token_id_of(token),
                password=token,
                inbox_prefix=tenant_inbox(TENANT),
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
                print("\nThe examples run against this platform with the same token:")
                await _run_examples(platform, endpoints, token)
        finally:
            await platform.stop()
        print("\nThe platform drained and stopped.")
    return 0
