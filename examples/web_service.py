"""A web service that keeps itself high priority and declines cost offers that would make it evictable.

Its priority hint expires after a minute unless renewed, so a crashed service does not hold priority
forever; while it runs it renews the hint every 30 s.

    python examples/web_service.py --url http://127.0.0.1:8080 --token "$WI_TOKEN" --tenant dev
"""

from __future__ import annotations

import asyncio
import contextlib

from _common import arguments
from wi_sdk import (
    Availability,
    Cost,
    CostOffer,
    LatencyTolerance,
    Migration,
    Placement,
    Priority,
    Received,
    Scaling,
    WorkloadClient,
)

RENEW_S = 30


async def main() -> None:
    args = arguments(__doc__ or "")
    async with WorkloadClient(
        tenant=args.tenant, workload="storefront", url=args.url, token=args.token
    ) as client:
        await client.hint(
            client.new(LatencyTolerance, latency_class="strict", p99_ms=200),
            client.new(Availability, target=0.9995),
            client.new(Cost, accepts_offers=True, max_price_per_hour=2.0),
            client.new(Scaling, stateless=True, min_instances=2, max_instances=12),
            client.new(Migration, live_migratable=False, restartable=True),
        )
        print(
            "[web service] hints sent: strict latency (p99 200 ms), 99.95 % availability, stateless and "
            "restartable, takes offers",
            flush=True,
        )
        handled = asyncio.Event()

        @client.on(Placement)
        async def placed(notice: Received[Placement]) -> None:
            print(f"[web service] {notice.notice.outcome}: {notice.notice.reason}", flush=True)

        @client.on(CostOffer)
        async def decline_risky_offers(offer: Received[CostOffer]) -> None:
            kinds = ", ".join(h.kind for h in offer.notice.commit)
            print(
                f"[web service] offer {offer.notice.offer_id}: {offer.notice.discount_pct:.0f} % off for "
                f"committing to {kinds}",
                flush=True,
            )
            await offer.decline(reason="customer-facing: we cannot be evicted")
            print("[web service] declined", flush=True)
            handled.set()

        async def keep_high_priority() -> None:
            while True:
                await client.hint(client.new(Priority, level="high", ttl_s=2 * RENEW_S))
                await asyncio.sleep(RENEW_S)

        client.start()
        await client.deploy(deployment="shop", instances=2, cores=4, memory_gb=16)
        print("[web service] asked for 2 instances of 4 cores", flush=True)
        renewer = asyncio.create_task(keep_high_priority())
        print("[web service] keeps itself high priority (renewed every 30 s)", flush=True)
        try:
            await (handled.wait() if args.once else asyncio.Event().wait())
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer


if __name__ == "__main__":
    asyncio.run(main())
