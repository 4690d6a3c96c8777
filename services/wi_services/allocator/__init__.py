"""The VM allocator: places deployment requests by their hints (filters and weighers)."""

from .policy import Goal, Placed, acceptable_pools, fault_domains_needed, place
from .service import VmAllocator
from .steps import FILTERS, Ask, Usage

__all__ = [
    "FILTERS",
    "Ask",
    "Goal",
    "Placed",
    "Usage",
    "VmAllocator",
    "acceptable_pools",
    "fault_domains_needed",
    "place",
]
