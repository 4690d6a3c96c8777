"""The VM allocator: places deployment requests by their hints (filters and weighers over arrays)."""

from .columns import FleetColumns, Room, Usage
from .policy import Goal, Placed, acceptable_pools, fault_domains_needed, place, where_placed
from .service import VmAllocator
from .steps import ALLOWANCE_FILTERS, ROOM_FILTERS, Allowed, Ask

__all__ = [
    "ALLOWANCE_FILTERS",
    "ROOM_FILTERS",
    "Allowed",
    "Ask",
    "FleetColumns",
    "Goal",
    "Placed",
    "Room",
    "Usage",
    "VmAllocator",
    "acceptable_pools",
    "fault_domains_needed",
    "place",
    "where_placed",
]
