"""The operators' dashboard at ``/ui``: the fleet by region and pool, power domains' draw against their
cap, a live timeline of decisions and the notices they sent with each notice's state, and each workload's
hints and open notices. Read-only, for a platform token; followed on the bus (``feed``), served as one
page of plain HTML, CSS and JavaScript with no build step (``routes``, which the gateway mounts,
and ``static``)."""

from .feed import DashboardFeed

__all__ = ["DashboardFeed", "dashboard_url"]


def dashboard_url(http_url: str, platform_token: str | None = None) -> str:
    """The dashboard's address; given a platform token, with it in the fragment (which browsers never send
    on: the page takes it from there, keeps it in the tab and clears the address bar)."""
    return f"{http_url}/ui" + (f"#token={platform_token}" if platform_token else "")
