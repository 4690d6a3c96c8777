"""The operators' dashboard at ``/ui``: the fleet by region and pool, power domains' draw against their
cap, a live timeline of decisions and the notices they sent with each notice's state, and each workload's
hints and open notices. Read-only, for a platform token; followed on the bus (``feed``), served as one
page of plain HTML, CSS and JavaScript with no build step (``routes``, which the gateway mounts,
and ``static``)."""

from .feed import DashboardFeed

__all__ = ["DashboardFeed"]
