"""Notice delivery to NATS clients: a durable push consumer per workload, set up on request.

A tenant's NATS credential cannot use the JetStream API, so the platform answers an attach request on
``wi.v1.attach.<tenant>.<workload>`` by creating (or keeping) the workload's durable consumer, which
pushes the workload's notices to ``wi.v1.deliver.<tenant>.<workload>``. Notices published while the
workload was away wait there; the client acks each after its handler ran.
"""

from __future__ import annotations

import json
import logging

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from wi.contract import Family

from ._bus import Bus
from .subjects import ATTACH_ROOT, STREAMS, deliver_subject, workload_subjects

log = logging.getLogger("wi.bus.delivery")

DELIVER_GROUP = "wi-sdk"
"""Processes of one workload share its notices as a queue group."""
NOTICE_ACK_WAIT_S = 60.0


def notice_consumer_name(tenant: str, workload: str) -> str:
    """The durable consumer of a workload's notices; '_' cannot occur in a slug, so names never collide."""
    return f"wi-notices_{tenant}_{workload}"


async def ensure_notice_delivery(bus: Bus, tenant: str, workload: str) -> str:
    """Creates the workload's durable push consumer if needed; returns its deliver subject."""
    subject = deliver_subject(tenant, workload)
    config = ConsumerConfig(
        durable_name=notice_consumer_name(tenant, workload),
        deliver_subject=subject,
        deliver_group=DELIVER_GROUP,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=NOTICE_ACK_WAIT_S,
        filter_subject=workload_subjects(Family.NOTICE, tenant, workload),
    )
    await bus.js.add_consumer(STREAMS[Family.NOTICE].name, config)
    return subject


class NoticeDelivery:
    """Answers attach requests from workloads."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Starts answering; several platform processes share the requests."""
        self._subscription = await self.bus.nc.subscribe(
            f"{ATTACH_ROOT}.*.*", queue="wi-delivery", cb=self._attach
        )

    async def stop(self) -> None:
        """Stops answering."""
        if self._subscription is not None and not self.bus.nc.is_closed:
            await self._subscription.unsubscribe()
        self._subscription = None

    async def _attach(self, msg: Msg) -> None:
        *_, tenant, workload = msg.subject.split(".")
        try:
            subject = await ensure_notice_delivery(self.bus, tenant, workload)
        except Exception as exc:
            log.exception("could not set up notice delivery for %s/%s", tenant, workload)
            await msg.respond(json.dumps({"error": str(exc)}).encode())
            return
        log.info("notice delivery for %s/%s on %s", tenant, workload, subject)
        await msg.respond(json.dumps({"deliver_subject": subject, "queue": DELIVER_GROUP}).encode())
