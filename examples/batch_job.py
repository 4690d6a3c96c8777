"""A batch job that tolerates eviction: it deploys, checkpoints when evicted and acks, so the platform may go
early.

python examples/batch_job.py --url http://127.0.0.1:8080 --token "$WI_TOKEN" --tenant dev
"""

from __future__ import annotations

import asyncio

from _common import arguments
from wi_sdk import DelayTolerance, Evictability, Eviction, Placement, Priority, Received, WorkloadClient


async def main() -> None:
    args = arguments(__doc__ or "")
    async with WorkloadClient(
        tenant=args.tenant, workload="nightly-etl", url=args.url, token=args.token
    ) as client:
        await client.hint(
            client.new(Priority, level="low"),
            client.new(Evictability, evictable=True, min_notice_s=120, checkpoint_s=45),
            client.new(DelayTolerance, start_within_s=3600),
        )
        print(
            "[batch job] hints sent: low priority, evictable with 120 s notice, may start within an hour",
            flush=True,
        )
        handled = asyncio.Event()

        @client.on(Placement)
        async def placed(notice: Received[Placement]) -> None:
            print(f"[batch job] {notice.notice.outcome}: {notice.notice.reason}", flush=True)

        @client.on(Eviction)
        async def checkpoint_and_go(notice: Received[Eviction]) -> None:
            left = notice.time_left()
            print(
                f"[batch job] eviction of {notice.notice.instance} ({notice.notice.reason}); "
                f"{left.total_seconds():.0f} s left: checkpointing",
                flush=True,
            )
            await asyncio.sleep(0.5)  # where the job would write its checkpoint
            await notice.ack(reason="checkpoint saved")
            print("[batch job] checkpoint saved; acked, so the platform may evict now", flush=True)
            handled.set()

        client.start()
        await client.deploy(deployment="etl", instances=2, cores=8, memory_gb=32)
        print("[batch job] asked for 2 instances of 8 cores", flush=True)
        await (handled.wait() if args.once else asyncio.Event().wait())


if __name__ == "__main__":
    asyncio.run(main())
