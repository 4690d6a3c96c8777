"""Small fleet files for service tests that run the platform as `wi up` does."""

from __future__ import annotations

import json
from pathlib import Path


def write_small_fleet(path: Path, pool: str, servers: int, fault_domains: int) -> Path:
    """Writes a one-cluster fleet (c1 in useast) of ``servers`` 64-core servers in ``pool``."""
    fleet = {
        "regions": [{"name": "useast", "geography": "us", "price_per_core_hour": 0.05}],
        "pool_price_factors": {"regular": 1.0, "spot": 0.3, "harvest": 0.5, "oversubscribed": 0.6},
        "servers": [
            {
                "id": f"{pool}-{n}",
                "cluster": "c1",
                "region": "useast",
                "pool": pool,
                "cores": 64,
                "memory_gb": 512,
                "fault_domain": f"fd{n % fault_domains}",
                "power_domain": "row1",
            }
            for n in range(servers)
        ],
    }
    path.write_text(json.dumps(fleet))
    return path
