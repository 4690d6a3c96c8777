"""The failure drill: a node killed mid-stream, then the whole cluster and ``wi up`` restarted.

A workload publishes hints and the platform publishes notices to it throughout; whatever the bus
acknowledged must be stored once, in the streams and in the registry, and reach the workload's handler
once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

import nats.errors
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from wi_sdk import Eviction, Priority, Received, WIError, WorkloadClient

from tests.cluster.cluster import NatsCluster
from tests.platform import eventually, start_platform
from tests.processes import start_wi_up
from wi.auth import TokenKind
from wi.auth.store import TokenStore
from wi.bus import Bus
from wi.database import create_db_engine, migrate
from wi.registry.tables import HintRecord, NoticeRecord

PER_PHASE = 15
"""Hints and notices acknowledged before the kill; as many again are sent after it."""


class Traffic:
    """A workload's hints and the platform's notices to it, and what the bus acknowledged of each."""

    def __init__(self, client: WorkloadClient, platform: Bus) -> None:
        self.client = client
        self.platform = platform
        self.hints: list[str] = []
        self.notices: list[str] = []

    async def send(self, count: int) -> None:
        """Sends ``count`` hints and ``count`` notices, alternating; keeps the ids of those acknowledged."""
        for n in range(count):
            hint = self.client.new(Priority, level=("low", "high")[n % 2])
            notice = Eviction(
                tenant="acme",
                workload="web",
                instance=f"web-{n}",
                reason="spot",
                not_before=hint.issued_at + timedelta(minutes=10),
            )
            try:
                await self.client.hint(hint)
                self.hints.append(hint.hint_id)
            except WIError:
                pass  # not acknowledged: it may or may not be stored, but never twice
            try:
                await self.platform.publish(notice, timeout_s=10)
                self.notices.append(notice.notice_id)
            except (TimeoutError, nats.errors.Error):
                pass


def registered(engine: Engine, traffic: Traffic) -> tuple[list[str], list[str]]:
    """The acknowledged hints and notices the registry has recorded, in the order they were sent."""
    with Session(engine) as session:
        hints = set(
            session.exec(select(HintRecord.hint_id).where(col(HintRecord.hint_id).in_(traffic.hints)))
        )
        notices = set(
            session.exec(
                select(NoticeRecord.notice_id).where(col(NoticeRecord.notice_id).in_(traffic.notices))
            )
        )
    return [i for i in traffic.hints if i in hints], [i for i in traffic.notices if i in notices]


async def stored_ids(bus: Bus, stream: str) -> Counter[str]:
    """How often each message id is stored in a stream. Right after a whole-cluster restart a JetStream
    request can go unanswered while the stream's replicas settle, so the reading is retried for 60 s."""
    async with asyncio.timeout(60):
        while True:
            try:
                state = (await bus.js.stream_info(stream)).state
                ids: Counter[str] = Counter()
                for seq in range(state.first_seq, state.last_seq + 1):
                    message = await bus.js.get_msg(stream, seq)
                    ids[(message.headers or {})["Nats-Msg-Id"]] += 1
                return ids
            except nats.errors.TimeoutError:
                await asyncio.sleep(1)


async def test_a_node_killed_mid_stream_and_a_whole_cluster_restart_lose_and_repeat_nothing(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    data_dir = tmp_path / "wi"
    data_dir.mkdir()
    engine = create_db_engine(f"sqlite:///{data_dir / 'wi.db'}")
    migrate(engine)
    tokens = TokenStore(engine)
    acme, operator = tokens.create(TokenKind.TENANT, "acme"), tokens.create(TokenKind.PLATFORM)
    environment = {**nats_cluster.wi_environment(), "WI_SERVICES": "none"}

    wi = await start_wi_up(data_dir, environment)
    client = WorkloadClient(tenant="acme", workload="web", url=nats_cluster.url, token=acme)
    handled: Counter[str] = Counter()

    @client.on(Eviction)
    async def count(notice: Received[Eviction]) -> None:
        handled[notice.notice.notice_id] += 1

    async with client:
        client.start()
        platform = await Bus.connect(nats_cluster.url, source="/tests/platform", token=operator)
        traffic = Traffic(client, platform)
        try:
            notices_stream = (await platform.js.stream_info("WI_NOTICES")).cluster
            assert notices_stream is not None and notices_stream.leader is not None
            sending = asyncio.create_task(traffic.send(2 * PER_PHASE))
            await eventually(lambda: len(traffic.notices) >= PER_PHASE)
            nats_cluster.kill(notices_stream.leader)  # the notices stream's leader, mid-stream
            await sending

            wi.terminate()
            await wi.wait()
            nats_cluster.stop()
            nats_cluster.start()
            wi = await start_wi_up(data_dir, environment)

            # A notice republished while the client was cut off comes with the open notices it reads when it
            # attaches again, once the registry (whose consumers' ack wait is 30 s) has recorded it.
            await eventually(lambda: set(traffic.notices) <= set(handled), timeout_s=90)

            await eventually(lambda: registered(engine, traffic) == (traffic.hints, traffic.notices), 60)
            await asyncio.sleep(1)  # time for a repeat to show
            hints_stored = await stored_ids(platform, "WI_HINTS")
            notices_stored = await stored_ids(platform, "WI_NOTICES")
        finally:
            await platform.close()
            if wi.returncode is None:
                wi.terminate()
            await wi.wait()

    assert len(traffic.hints) >= PER_PHASE and len(traffic.notices) >= PER_PHASE, "the drill proves little"
    assert {i: hints_stored[i] for i in traffic.hints} == dict.fromkeys(traffic.hints, 1)
    assert {i: notices_stored[i] for i in traffic.notices} == dict.fromkeys(traffic.notices, 1)
    assert max(hints_stored.values()) == max(notices_stored.values()) == 1, "a message stored twice"
    assert {i: handled[i] for i in traffic.notices} == dict.fromkeys(traffic.notices, 1)
    print(
        f"acknowledged {len(traffic.hints)} hints and {len(traffic.notices)} notices of "
        f"{2 * PER_PHASE} each; all stored once, every notice handled once"
    )


async def test_wi_starts_right_after_the_whole_cluster_restarts(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    async with start_platform(tmp_path / "wi", **nats_cluster.wi_settings()):
        pass
    nats_cluster.stop()
    nats_cluster.start()  # every node healthy; JetStream's first answers may still go missing
    async with start_platform(tmp_path / "wi", **nats_cluster.wi_settings()) as running:
        assert (await running.bus.js.stream_info("WI_HINTS")).config.num_replicas == 3
