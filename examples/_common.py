"""What the examples share: where the platform is, and for how long to run."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable


def arguments(
    description: str, more: Callable[[argparse.ArgumentParser], object] | None = None
) -> argparse.Namespace:
    """--url and --token (or WI_URL and WI_TOKEN), --tenant, --once to stop after the first notice, and
    what ``more`` adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--url",
        default=os.environ.get("WI_URL", "http://127.0.0.1:8080"),
        help="nats://... for the bus, http://... for the gateway (WI_URL)",
    )
    parser.add_argument("--token", default=os.environ.get("WI_TOKEN"), help="a tenant token (WI_TOKEN)")
    parser.add_argument("--tenant", default=os.environ.get("WI_TENANT", "dev"), help="the token's tenant")
    parser.add_argument("--once", action="store_true", help="exit after handling the first notice")
    if more is not None:
        more(parser)
    return parser.parse_args()
