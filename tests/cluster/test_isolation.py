"""Tokens and permissions hold on a 3-node cluster through WI's auth callout, as on the embedded server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.cluster import NatsCluster
from tests.platform import Running, eventually, record_errors, start_platform, store_token_directly
from wi.auth import token_id_of
from wi.bus import Bus, tenant_inbox
from wi.contract import Evictability, Priority


@pytest.fixture
async def on_cluster(nats_cluster: NatsCluster, tmp_path: Path) -> AsyncIterator[Running]:
    """A WI platform authorizing the cluster's clients, with tokens for acme, globex and the platform."""
    async with start_platform(tmp_path / "wi", **nats_cluster.wi_settings()) as running:
        yield running


async def test_tenant_and_platform_tokens_get_their_permissions_on_every_node(
    nats_cluster: NatsCluster, on_cluster: Running
) -> None:
    n1, n2, n3 = (node.url for node in nats_cluster.nodes.values())
    bare = await Bus.connect(n2, source="/tests", token=on_cluster.acme, inbox_prefix=tenant_inbox("acme"))
    as_password = await Bus.connect(
        n3,
        source="/tests",
        user=token_id_of(on_cluster.acme),
        password=on_cluster.acme,
        inbox_prefix=tenant_inbox("acme"),
    )
    violations = record_errors(bare)
    try:
        for bus in (bare, as_password):
            assert (await bus.publish(Evictability(tenant="acme", workload="web", evictable=True))).seq > 0
        await bare.nc.publish("wi.v1.hints.globex.web.priority", b"{}")
        await bare.nc.subscribe("wi.v1.hints.*.web.priority")
        await bare.nc.subscribe("wi.v1.notices.>")
        await bare.nc.publish("$JS.API.STREAM.PURGE.WI_HINTS", b"")
        await bare.nc.flush()
        await eventually(lambda: len(violations) >= 4)
    finally:
        await bare.close()
        await as_password.close()
    for refused in (
        'publish to "wi.v1.hints.globex.web.priority"',
        'subscription to "wi.v1.hints.*.web.priority"',
        'subscription to "wi.v1.notices.>"',
        'publish to "$js.api.stream.purge.wi_hints"',
    ):
        assert any(refused in v for v in violations), f"not refused: {refused}\n{violations}"

    with pytest.raises(PermissionError):  # a token's id must name the token given as password
        await Bus.connect(n1, source="/tests", user="fedcba987654", password=on_cluster.acme)

    operator = await Bus.connect(n1, source="/tests", token=on_cluster.operator)
    try:
        await operator.publish(Priority(tenant="globex", workload="web", level="critical"))
        assert (await operator.js.stream_info("WI_HINTS")).config.num_replicas == 3
    finally:
        await operator.close()


async def test_a_token_for_tenant_star_is_refused_bare_or_as_a_password(
    nats_cluster: NatsCluster, on_cluster: Running
) -> None:
    assert on_cluster.platform.store is not None
    star = store_token_directly(on_cluster.platform.store.engine, "*")
    n1 = nats_cluster.nodes["n1"].url
    with pytest.raises(PermissionError):
        await Bus.connect(n1, source="/tests", token=star)
    with pytest.raises(PermissionError):
        await Bus.connect(n1, source="/tests", user=token_id_of(star), password=star)


async def test_a_revoked_tokens_connection_is_closed_on_the_cluster_and_cannot_come_back(
    nats_cluster: NatsCluster, on_cluster: Running, tmp_path: Path
) -> None:
    # A second WI process sharing the issuer seed and the database: both answer the callout.
    database = on_cluster.endpoints.database_url
    async with start_platform(tmp_path / "wi-2", **nats_cluster.wi_settings(database_url=database)):
        n2 = nats_cluster.nodes["n2"].url
        acme = await Bus.connect(
            n2, source="/tests", token=on_cluster.acme, inbox_prefix=tenant_inbox("acme")
        )
        errors = record_errors(acme)
        disconnected = asyncio.Event()

        async def on_disconnect() -> None:
            disconnected.set()

        acme.nc._disconnected_cb = on_disconnect  # type: ignore[attr-defined]
        try:
            assert on_cluster.platform.tokens is not None
            on_cluster.platform.tokens.revoke(token_id_of(on_cluster.acme))
            await asyncio.wait_for(disconnected.wait(), timeout=10)
            await eventually(lambda: any("authorization violation" in e for e in errors), timeout_s=10)
            assert not acme.nc.is_connected
        finally:
            await acme.nc.close()
        with pytest.raises(PermissionError):
            await Bus.connect(n2, source="/tests", token=on_cluster.acme)
