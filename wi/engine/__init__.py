"""The decision engine: how platform services decide, record and act, in batches, on one log.

``plugin`` is the contract a platform service implements, ``runner`` the shell that runs one batch by
batch, ``log`` the decision log (every service's decisions in one sequence, written in turns),
``inventory`` the read model of what runs where built from it, ``decisions`` the decision a service
makes, ``hints`` the one typed view of a workload's hints (and of each instance's) with every default in
one place, ``fleet`` the servers, regions, pools and power domains the services act on.
"""

from .decisions import Decision
from .fleet import SAMPLE_FLEET, Fleet, load_fleet
from .hints import DEFAULT_MIN_NOTICE_S, NO_HINTS, HintsLookup, WorkloadHints
from .inventory import (
    Instance,
    InstancePlaced,
    InstanceReleased,
    InstanceResized,
    Inventory,
    InventoryChange,
    ServerUse,
    instance_name,
)
from .log import DecisionLog, Turn
from .plugin import PlatformService, ServiceContext, View, installed_services
from .runner import ServiceRunner

__all__ = [
    "DEFAULT_MIN_NOTICE_S",
    "NO_HINTS",
    "SAMPLE_FLEET",
    "Decision",
    "DecisionLog",
    "Fleet",
    "HintsLookup",
    "Instance",
    "InstancePlaced",
    "InstanceReleased",
    "InstanceResized",
    "Inventory",
    "InventoryChange",
    "PlatformService",
    "ServerUse",
    "ServiceContext",
    "ServiceRunner",
    "Turn",
    "View",
    "WorkloadHints",
    "installed_services",
    "instance_name",
    "load_fleet",
]
