"""Workload Intelligence: a typed bus between cloud workloads and the platform that runs them.

Rooms: ``wi.contract`` (the v1 messages), ``wi.bus`` (NATS JetStream with CloudEvents), ``wi.registry``
(the hint, notice and response store), ``wi.platform`` (``wi up``: the embedded server and the runtime),
``wi.cli`` (the ``wi`` command).
"""

__version__ = "0.1.0"
