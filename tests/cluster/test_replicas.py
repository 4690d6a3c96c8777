"""Stream replicas: one per server of the cluster up to 3 at first; never lowered by a start that does not
say so; changed, with a warning, by one that does."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.cluster.cluster import NatsCluster
from tests.platform import start_platform
from wi.bus import ALL_STREAMS, Bus


async def _replicas(bus: Bus) -> set[int]:
    return {(await bus.js.stream_info(spec.name)).config.num_replicas or 1 for spec in ALL_STREAMS}


async def test_replicas_follow_the_cluster_and_are_never_lowered_implicitly(
    nats_cluster: NatsCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unset = nats_cluster.wi_settings(stream_replicas=None)
    async with start_platform(tmp_path / "first", **unset) as running:
        assert await _replicas(running.bus) == {3}, "a 3-node cluster: 3 replicas by default"

    async with start_platform(tmp_path / "lowered", **nats_cluster.wi_settings(stream_replicas=1)) as running:
        assert await _replicas(running.bus) == {1}, "an explicit setting is applied"
    assert "3 -> 1 replica(s), as WI_STREAM_REPLICAS says" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wi.bus"):
        async with start_platform(tmp_path / "again", **unset) as running:
            assert await _replicas(running.bus) == {1}, (
                "a start without the setting keeps what the streams have"
            )
    assert "keeps its 1 replica(s) though the cluster has 3 server(s)" in caplog.text
