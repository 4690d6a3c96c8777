"""The Spot/Harvest manager: evictions under capacity pressure that keep every notice promise."""

from .policy import DEFAULT_MIN_NOTICE_S, EvictionPlan, eviction_cost, plan_evictions
from .service import SpotHarvestManager

__all__ = ["DEFAULT_MIN_NOTICE_S", "EvictionPlan", "SpotHarvestManager", "eviction_cost", "plan_evictions"]
