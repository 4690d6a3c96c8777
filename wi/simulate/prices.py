"""The price model: what customers pay, fixed from cited public sources before any simulation was run.

Every figure below is a constant with its source. None was chosen or changed after looking at a
result, and none may be tuned toward a target saving: the README puts the paper's 48.8 % beside
whatever the simulator finds. Where a range is published, the model takes its midpoint; where no
public figure exists, the model says so and charges nothing extra or less for it.

Core-hours are priced per region (``REGULAR_PRICE_PER_CORE_HOUR``) times a pool factor
(``POOL_PRICE_FACTORS``); a Harvest VM pays the spot price for its minimum cores and
``HARVEST_EXTRA_CORE_FACTOR`` of regular for the cores above it; GPU-hours of LLM endpoints cost
``GPU_PRICE_PER_HOUR``.
"""

from __future__ import annotations

from types import MappingProxyType

from wi.contract import Pool

SPOT_DISCOUNT_RANGE = (0.48, 0.91)
"""Published spot discounts against pay-as-you-go: "typically 48-91 % cheaper" (Azure and GCP published
ranges, as ``../shared/data/README.md`` records them). Azure: "up to 90 %"
(https://azure.microsoft.com/en-us/products/virtual-machines/spot/); Google Cloud: "60-91 %"
(https://cloud.google.com/compute/docs/instances/spot); AWS: "up to 90 %"
(https://aws.amazon.com/ec2/spot/pricing/)."""
SPOT_DISCOUNT = sum(SPOT_DISCOUNT_RANGE) / 2
"""The midpoint of the published range: 69.5 % off regular."""

OVERSUBSCRIBED_DISCOUNT = 0.31
"""Google Compute Engine's E2 machine types, whose vCPUs are oversubscribed by "dynamic resource
management", are sold at "up to 31 % lower total cost of ownership" than N1
(https://cloud.google.com/blog/products/compute/google-compute-engine-gets-new-e2-vm-machine-types,
2019). The only public price we found for capacity sold on oversubscribed hosts."""

HARVEST_EXTRA_CORE_FACTOR = 0.5
"""Harvest VMs (Ambati et al., "Providing SLOs for Resource-Harvesting VMs in Cloud Platforms", OSDI'20,
https://www.usenix.org/conference/osdi20/presentation/ambati) are evictable like spot; the cores they
harvest above their minimum are priced at about half of regular (``../shared/data/README.md``). Their
minimum cores pay the spot price."""

DEFERRAL_DISCOUNT = 0.0
"""No public cloud lists a price for letting a regular VM's start wait. The closest products (Google
Cloud's Dynamic Workload Scheduler flex-start mode,
https://cloud.google.com/blog/products/compute/introducing-dynamic-workload-scheduler) queue GPU jobs
for capacity, but we found no published figure for general-purpose VMs, so deferral is charged as
regular capacity: what it saves shows in servers, not in the price."""

REGULAR_PRICE_PER_CORE_HOUR = MappingProxyType({"useast": 0.048, "europewest": 0.055})
"""A regular (pay-as-you-go, Linux) core-hour by region, in USD: a general-purpose D-series v5 VM's list
price per vCPU (two-vCPU D2s v5: $0.096 per hour in East US), as WI's sample fleet
(``wi/engine/sample_fleet.json``) prices these regions; Azure lists prices by region at
https://azure.microsoft.com/en-us/pricing/details/virtual-machines/linux/. The West Europe figure was
taken from the sample fleet and not re-checked against the price list while writing this model."""

GPU_PRICE_PER_HOUR = 98.32 / 8
"""An H100 GPU-hour, in USD: Azure's ND H100 v5 (eight H100 80 GB) at $98.32 per hour pay-as-you-go in
East US (https://azure.microsoft.com/en-us/pricing/details/virtual-machines/linux/), divided by eight.
Not re-checked against the price list while writing this model."""

POOL_PRICE_FACTORS = MappingProxyType(
    {
        Pool.REGULAR: 1.0,
        Pool.SPOT: 1 - SPOT_DISCOUNT,
        Pool.HARVEST: 1 - SPOT_DISCOUNT,
        Pool.OVERSUBSCRIBED: 1 - OVERSUBSCRIBED_DISCOUNT,
    }
)
"""A core-hour's price in each pool relative to regular (harvest: for the minimum cores)."""

PAPER_SAVING_PCT = 48.8
"""The average saving to customers the Workload Intelligence paper reports across ten optimizations
(arXiv:2404.19143): shown beside the simulator's figure, never a target."""


def vm_price_per_hour(region: str, pool: Pool, cores: int, min_cores: int | None = None) -> float:
    """What one VM costs an hour: its cores at its region's price and its pool's factor; on harvest,
    the cores above ``min_cores`` at ``HARVEST_EXTRA_CORE_FACTOR`` of regular."""
    regular = REGULAR_PRICE_PER_CORE_HOUR[region]
    if pool is Pool.HARVEST and min_cores is not None and min_cores < cores:
        extra = cores - min_cores
        return regular * (min_cores * POOL_PRICE_FACTORS[pool] + extra * HARVEST_EXTRA_CORE_FACTOR)
    return regular * cores * POOL_PRICE_FACTORS[pool]
