"""An LLM inference endpoint that states its TTFT/TBT SLO and logs how the platform reconfigures it.

Strict (the default) is an interactive chat endpoint; --tolerant is a code-completion endpoint that can
wait, so the platform caps it first when power is short.

python examples/llm_endpoint.py --url http://127.0.0.1:8080 --token "$WI_TOKEN" --tenant dev
python examples/llm_endpoint.py --tolerant --workload code-llm ...
"""

from __future__ import annotations

import argparse
import asyncio

from _common import arguments
from wi_sdk import (
    ConflictError,
    LatencyTolerance,
    PowerEvent,
    Priority,
    Received,
    Reconfiguration,
    WorkloadClient,
)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", default=None, help="the endpoint's workload (chat-llm, or code-llm)")
    parser.add_argument("--tolerant", action="store_true", help="low priority, TTFT 3 s, TBT 150 ms")


async def main() -> None:
    args = arguments(__doc__ or "", _options)
    workload = args.workload or ("code-llm" if args.tolerant else "chat-llm")
    me = f"[{workload}]"
    async with WorkloadClient(
        tenant=args.tenant, workload=workload, url=args.url, token=args.token
    ) as client:
        if args.tolerant:
            await client.hint(
                client.new(Priority, level="low"),
                client.new(
                    LatencyTolerance, latency_class="tolerant", ttft_ms=3000, tbt_ms=150, max_slowdown_pct=50
                ),
            )
            print(f"{me} hints sent: low priority, tolerant: TTFT 3 s, TBT 150 ms", flush=True)
        else:
            await client.hint(
                client.new(Priority, level="high"),
                client.new(
                    LatencyTolerance, latency_class="strict", ttft_ms=400, tbt_ms=60, max_slowdown_pct=10
                ),
            )
            print(f"{me} hints sent: high priority, strict: TTFT 400 ms, TBT 60 ms", flush=True)
        handled = asyncio.Event()

        async def ready(notice: Received[Reconfiguration] | Received[PowerEvent]) -> None:
            """Acks, so the platform may go ahead at once; past the deadline there is nothing to ack."""
            try:
                await notice.ack(reason="ready")
                print(f"{me} acked: ready now", flush=True)
            except ConflictError:
                print(f"{me} too late to ack; the change takes effect anyway", flush=True)

        @client.on(Reconfiguration)
        async def log_reconfiguration(change: Received[Reconfiguration]) -> None:
            before, after = change.notice.before, change.notice.after
            print(
                f"{me} reconfiguration: {before.replicas}x TP{before.tensor_parallel} at "
                f"{before.gpu_frequency_mhz} MHz -> {after.replicas}x TP{after.tensor_parallel} at "
                f"{after.gpu_frequency_mhz} MHz; expecting TTFT {change.notice.expected_ttft_ms:.0f} ms, "
                f"TBT {change.notice.expected_tbt_ms:.0f} ms",
                flush=True,
            )
            await ready(change)
            handled.set()

        @client.on(PowerEvent)
        async def log_power_event(event: Received[PowerEvent]) -> None:
            print(
                f"{me} power event {event.notice.type} in {event.notice.power_domain}: GPUs at "
                f"{event.notice.gpu_frequency_mhz} MHz, first tokens "
                f"{event.notice.expected_slowdown_pct:.0f} % slower",
                flush=True,
            )
            await ready(event)

        client.start()
        await (handled.wait() if args.once else asyncio.Event().wait())


if __name__ == "__main__":
    asyncio.run(main())
