"""Platform services that act on hints and platform events: the VM allocator ships with WI.

A service is a ``PlatformService`` (``plugin.py``) registered in the entry-point group ``wi.services``;
``wi up --services NAME,...`` runs it in a ``ServiceRunner``. ``fleet.py`` is the fleet they act on.
"""

from .fleet import Fleet, load_fleet
from .plugin import PlatformService, ServiceContext, ServiceRunner, installed_services

__all__ = ["Fleet", "PlatformService", "ServiceContext", "ServiceRunner", "installed_services", "load_fleet"]
