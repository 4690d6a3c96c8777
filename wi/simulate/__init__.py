"""The simulator: replays a fleet and a workload mix through the platform services' own policies."""

from .prices import PAPER_SAVING_PCT, vm_price_per_hour

__all__ = ["PAPER_SAVING_PCT", "vm_price_per_hour"]
