"""How ``wi up`` authorizes NATS clients: its auth callout on the embedded server or on a cluster."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nats.aio.msg import Msg
from pydantic import ValidationError

from tests.platform import eventually, record_errors, start_platform, store_token_directly
from wi.auth import token_id_of
from wi.auth.callout import CALLOUT_USER, PLATFORM_USER, AuthCallout, CalloutAccounts, platform_password
from wi.auth.nats_jwt import account_keypair, new_account_seed, public_key
from wi.auth.store import TokenStore
from wi.bus import Bus, close_nats, connect_nats, tenant_inbox
from wi.contract import Evictability
from wi.database import create_db_engine, migrate
from wi.server import EmbeddedNatsServer, NatsServerError, Settings


async def _readyz(http_url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=http_url) as http:
        return await http.get("/readyz")


async def test_a_stored_token_whose_tenant_is_no_slug_is_reported_at_start_and_authorizes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "wi"
    data_dir.mkdir()
    engine = create_db_engine(f"sqlite:///{data_dir / 'wi.db'}")
    migrate(engine)
    star = store_token_directly(engine, "*")
    engine.dispose()
    caplog.set_level(logging.WARNING, logger="wi.server")
    async with start_platform(data_dir) as running:
        reported = [r.message for r in caplog.records if token_id_of(star) in r.message]
        assert reported == [
            f"token {token_id_of(star)} names tenant '*', which is not a slug: it is never authorized; "
            "revoke it"
        ]
        url = running.endpoints.nats_url
        with pytest.raises(PermissionError):
            await Bus.connect(url, source="/tests", token=star)
        with pytest.raises(PermissionError):
            await Bus.connect(url, source="/tests", user=token_id_of(star), password=star)
        async with httpx.AsyncClient(base_url=running.endpoints.http_url) as http:
            reply = await http.get("/v1/workloads/web/hints", headers={"Authorization": f"Bearer {star}"})
        assert reply.status_code == 401
        for credential in (
            {"token": running.acme},
            {"user": token_id_of(running.acme), "password": running.acme},
        ):
            acme = await Bus.connect(url, source="/tests", inbox_prefix=tenant_inbox("acme"), **credential)
            await acme.publish(Evictability(tenant="acme", workload="web", evictable=True))
            await acme.close()


async def test_a_revoked_tokens_connection_to_the_embedded_server_is_closed_and_stays_out(
    tmp_path: Path,
) -> None:
    async with start_platform(tmp_path / "wi") as running:
        acme = await Bus.connect(
            running.endpoints.nats_url, source="/tests", token=running.acme, inbox_prefix=tenant_inbox("acme")
        )
        errors = record_errors(acme)
        try:
            assert running.platform.tokens is not None
            running.platform.tokens.revoke(token_id_of(running.acme))
            await eventually(lambda: any("authorization violation" in e for e in errors), timeout_s=10)
            assert not acme.nc.is_connected
        finally:
            await acme.nc.close()


def test_a_configuration_nats_server_rejects_is_an_error_before_any_server_starts(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "nats", port=0, auth=CalloutAccounts("not-an-nkey", "a", "b"))
    with pytest.raises(NatsServerError, match=r"rejected its configuration .*valid public account nkey"):
        server.start()
    assert server.process is None and not list((tmp_path / "nats").glob("*.ports"))
    assert (server.config_file.stat().st_mode & 0o777) == 0o600


async def test_readyz_reports_whether_the_auth_callout_answers(tmp_path: Path) -> None:
    async with start_platform(tmp_path / "wi") as running:
        reply = await _readyz(running.endpoints.http_url)
        assert reply.status_code == 200 and reply.json()["checks"]["auth"] == "ok"
        assert running.platform.auth.callout is not None
        await running.platform.auth.callout.stop()
        reply = await _readyz(running.endpoints.http_url)
        assert reply.status_code == 503
        assert reply.json()["checks"]["auth"] == "down: the auth callout is not subscribed"


@pytest.fixture
def callout_server(tmp_path: Path) -> Iterator[tuple[EmbeddedNatsServer, str]]:
    """A nats-server configured for WI's auth callout as an operator would, and its issuer seed."""
    seed = new_account_seed()
    server = EmbeddedNatsServer(
        tmp_path / "nats",
        port=0,
        auth=CalloutAccounts(public_key(account_keypair(seed)), "callout-pw", "sys"),
    )
    server.start()
    yield server, seed
    server.stop()


async def test_on_a_cluster_without_a_system_user_wi_warns_that_revoked_connections_stay_open(
    callout_server: tuple[EmbeddedNatsServer, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, seed = callout_server
    caplog.set_level(logging.WARNING, logger="wi.server")
    settings = {
        "nats_url": server.url,
        "nats_auth_issuer_seed": seed,
        "nats_user": CALLOUT_USER,
        "nats_password": "callout-pw",
        "services": "none",
    }
    async with start_platform(tmp_path / "wi", **settings) as running:
        assert "WI_NATS_SYSTEM_USER is unset" in caplog.text
        reply = await _readyz(running.endpoints.http_url)
        assert reply.status_code == 200
        assert reply.json()["checks"]["auth"].startswith("degraded: WI_NATS_SYSTEM_USER is unset")
        acme = await Bus.connect(server.url, source="/tests", token=running.acme)
        await acme.close()


async def test_on_a_cluster_without_the_callout_wi_warns_that_it_authorizes_nothing(
    nats_server: EmbeddedNatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wi.server")
    async with start_platform(tmp_path / "wi", nats_url=nats_server.url, services="none") as running:
        assert "WI_NATS_AUTH_ISSUER_SEED is unset" in caplog.text
        reply = await _readyz(running.endpoints.http_url)
        assert reply.status_code == 200
        assert reply.json()["checks"]["auth"].startswith("degraded: WI_NATS_AUTH_ISSUER_SEED is unset")


def test_the_cluster_auth_settings_are_checked_at_start() -> None:
    with pytest.raises(ValidationError, match="not an nkey seed"):
        Settings(nats_url="nats://n1:4222", nats_auth_issuer_seed="SAnope")
    with pytest.raises(ValidationError, match="needs WI_NATS_USER and WI_NATS_PASSWORD"):
        Settings(nats_url="nats://n1:4222", nats_auth_issuer_seed=new_account_seed())
    with pytest.raises(ValidationError, match="go together"):
        Settings(nats_url="nats://n1:4222", nats_system_user="wi-system")


async def test_streams_kept_before_the_callout_are_there_after_an_upgrade(tmp_path: Path) -> None:
    before = EmbeddedNatsServer(tmp_path / "wi" / "nats", port=0)  # as WI ran it without authorization
    before.start()
    try:
        bus = await Bus.connect(before.url, source="/tests")
        await bus.ensure_streams()
        await bus.publish(Evictability(tenant="acme", workload="web", evictable=True))
        await bus.close()
    finally:
        before.stop()
    async with start_platform(tmp_path / "wi") as running:
        assert (await running.bus.js.stream_info("WI_HINTS")).state.messages == 1


async def test_a_stored_token_for_tenant_gt_does_not_keep_a_revoked_platform_token_on_nats(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "wi"
    data_dir.mkdir()
    engine = create_db_engine(f"sqlite:///{data_dir / 'wi.db'}")
    migrate(engine)
    store_token_directly(engine, ">")
    engine.dispose()
    async with start_platform(data_dir) as running:
        operator = await Bus.connect(running.endpoints.nats_url, source="/tests", token=running.operator)
        errors = record_errors(operator)
        try:
            assert running.platform.tokens is not None
            running.platform.tokens.revoke(token_id_of(running.operator))
            await eventually(lambda: any("authorization violation" in e for e in errors), timeout_s=10)
            assert not operator.nc.is_connected
        finally:
            await operator.nc.close()
        async with httpx.AsyncClient(base_url=running.endpoints.http_url) as http:
            reply = await http.get(
                "/v1/platform/hints?tenant=acme", headers={"Authorization": f"Bearer {running.operator}"}
            )
        assert reply.status_code == 401


async def test_wis_own_connection_waits_for_a_callout_that_starts_late_where_a_plain_one_gives_up(
    callout_server: tuple[EmbeddedNatsServer, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, seed = callout_server
    caplog.set_level(logging.WARNING, logger="wi.bus")
    credential = {"user": PLATFORM_USER, "password": platform_password(seed)}
    heard: list[str] = []
    with pytest.raises(PermissionError, match="refused the credentials"):  # nobody answers the callout yet
        await connect_nats(server.url, name="plain", on_error=heard.append, **credential)
    refusals = [error for error in heard if "authorization violation" in error.lower()]
    assert len(refusals) == 1, "a plain connection gives up at the first refusal"

    own = asyncio.create_task(connect_nats(server.url, name="wi-platform", retry_refusals=True, **credential))
    await eventually(lambda: "refused wi-platform's credentials" in caplog.text)
    assert not own.done()
    engine = create_db_engine(f"sqlite:///{tmp_path / 'wi.db'}")
    migrate(engine)
    callout = AuthCallout(TokenStore(engine), seed)
    callout_nc = await connect_nats(
        server.url, name="wi-auth-callout", user=CALLOUT_USER, password="callout-pw"
    )
    try:
        await callout.start(callout_nc)  # only now, after WI's own connection was refused
        nc = await own
        assert nc.is_connected
        await close_nats(nc)
    finally:
        await callout.stop()
        await close_nats(callout_nc)
        engine.dispose()


async def test_wi_up_starts_although_its_callout_answers_too_late_at_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="wi.bus")
    answer = AuthCallout._answer

    def platform_refused() -> bool:
        return "refused wi-platform's credentials" in caplog.text

    async def late(callout: AuthCallout, msg: Msg) -> None:
        """Answers only once nats-server gave up waiting, as a callout slowed down by load at start-up."""
        await eventually(platform_refused)
        await answer(callout, msg)

    monkeypatch.setattr(AuthCallout, "_answer", late)
    async with start_platform(tmp_path / "wi", services="none") as running:
        assert running.bus.nc.is_connected
        assert platform_refused()


async def test_wis_own_connection_gives_up_with_a_permission_error_when_the_callout_never_answers(
    callout_server: tuple[EmbeddedNatsServer, str],
) -> None:
    server, seed = callout_server
    with pytest.raises(PermissionError, match=r"refused the credentials \(user wi-platform\) \d+ time"):
        await connect_nats(
            server.url,
            name="wi-platform",
            user=PLATFORM_USER,
            password=platform_password(seed),
            initial_timeout_s=6,
            retry_refusals=True,
        )
