"""The Spot/Harvest manager: evictions under capacity pressure that keep every notice promise, and Harvest
VM resizes that share a server's spare cores within each VM's core range."""

from .harvest import HarvestPlan, share_spare_cores
from .policy import EvictionPlan, plan_evictions
from .service import SpotHarvestManager

__all__ = [
    "EvictionPlan",
    "HarvestPlan",
    "SpotHarvestManager",
    "plan_evictions",
    "share_spare_cores",
]
