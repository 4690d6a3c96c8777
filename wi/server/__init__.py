"""``wi up``: runs the platform side of WI in one process.

``settings`` reads the ``WI_*`` variables, ``nats_server`` runs the embedded nats-server, ``http`` serves
the HTTP endpoints, ``runtime`` starts and drains everything in order.
"""

from .event_loop import run_event_loop
from .nats_server import EmbeddedNatsServer, NatsServerError, nats_server_binary
from .runtime import Endpoints, Platform, serve
from .settings import Settings
from .workers import WorkerFailed

__all__ = [
    "EmbeddedNatsServer",
    "Endpoints",
    "NatsServerError",
    "Platform",
    "Settings",
    "WorkerFailed",
    "nats_server_binary",
    "run_event_loop",
    "serve",
]
