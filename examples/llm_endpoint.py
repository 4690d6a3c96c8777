"""An LLM inference endpoint that states its TTFT/TBT SLO and logs how the platform reconfigures it.

python examples/llm_endpoint.py --url http://127.0.0.1:8080 --token "$WI_TOKEN" --tenant dev
"""

from __future__ import annotations

import asyncio

from _common import arguments
from wi_sdk import LatencyTolerance, PowerEvent, Priority, Received, Reconfiguration, WorkloadClient


async def main() -> None:
    args = arguments(__doc__ or "")
    async with WorkloadClient(
        tenant=args.tenant, workload="chat-llm", url=args.url, token=args.token
    ) as client:
        await client.hint(
            client.new(Priority, level="high"),
            client.new(LatencyTolerance, latency_class="strict", ttft_ms=400, tbt_ms=60, max_slowdown_pct=10),
        )
        print(
            "[llm endpoint] hints sent: high priority, TTFT 400 ms, TBT 60 ms, accepts 10 % slowdown",
            flush=True,
        )
        handled = asyncio.Event()

        @client.on(Reconfiguration)
        async def log_reconfiguration(change: Received[Reconfiguration]) -> None:
            before, after = change.notice.before, change.notice.after
            print(
                f"[llm endpoint] reconfiguration: {before.replicas}x TP{before.tensor_parallel} at "
                f"{before.gpu_frequency_mhz} MHz -> {after.replicas}x TP{after.tensor_parallel} at "
                f"{after.gpu_frequency_mhz} MHz ({change.notice.reason}); expected TTFT "
                f"{change.notice.expected_ttft_ms} ms, TBT {change.notice.expected_tbt_ms} ms",
                flush=True,
            )
            await change.ack()
            handled.set()

        @client.on(PowerEvent)
        async def log_power_event(event: Received[PowerEvent]) -> None:
            print(
                f"[llm endpoint] power event {event.notice.type} in {event.notice.power_domain}: "
                f"expect {event.notice.expected_slowdown_pct:.0f} % slowdown",
                flush=True,
            )
            await event.ack()

        client.start()
        await (handled.wait() if args.once else asyncio.Event().wait())


if __name__ == "__main__":
    asyncio.run(main())
