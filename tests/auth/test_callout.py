"""NATS JWTs and the auth callout's answers, without a server: signatures, refusals, the platform's key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nkeys
import pytest

from wi.auth import TokenKind, nats_jwt
from wi.auth.callout import DATA_ACCOUNT, PLATFORM_USER, AuthCallout, platform_password
from wi.auth.store import TokenStore
from wi.database import create_db_engine, migrate


def _server_keypair() -> Any:
    return nkeys.from_seed(nkeys.encode_seed(b"s" * 32, nats_jwt.SERVER_PREFIX))


def _user_nkey() -> str:
    return nats_jwt.public_key(nkeys.from_seed(nkeys.encode_seed(b"u" * 32, nats_jwt.USER_PREFIX)))


def _request(connect_opts: dict[str, Any]) -> bytes:
    """An authorization request as nats-server signs it."""
    server = _server_keypair()
    claims = {
        "sub": "A" * 56,
        "aud": "nats-authorization-request",
        "nats": {
            "server_id": {"name": "n1", "host": "127.0.0.1", "id": nats_jwt.public_key(server)},
            "user_nkey": _user_nkey(),
            "client_info": {"host": "127.0.0.1", "name": "test"},
            "connect_opts": connect_opts,
            "type": "authorization_request",
            "version": 2,
        },
    }
    return nats_jwt.encode(claims, server).encode()


@pytest.fixture
def callout(tmp_path: Path) -> AuthCallout:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'wi.db'}")
    migrate(engine)
    return AuthCallout(TokenStore(engine), nats_jwt.new_account_seed())


def _answer(callout: AuthCallout, connect_opts: dict[str, Any]) -> dict[str, Any]:
    response = nats_jwt.decode(callout.respond(_request(connect_opts)).decode(), nats_jwt.ACCOUNT_PREFIX)
    assert response["iss"] == nats_jwt.public_key(callout.issuer)
    assert response["sub"] == _user_nkey() and response["aud"] == nats_jwt.public_key(_server_keypair())
    nats: dict[str, Any] = response["nats"]
    return nats


def test_a_jwt_round_trips_and_a_changed_one_does_not_verify() -> None:
    signer = nats_jwt.account_keypair(nats_jwt.new_account_seed())
    token = nats_jwt.encode({"sub": "x", "nats": {"type": "generic", "version": 2}}, signer)
    claims = nats_jwt.decode(token, nats_jwt.ACCOUNT_PREFIX)
    assert claims["sub"] == "x" and claims["iss"] == nats_jwt.public_key(signer)
    header, _, signature = token.split(".")
    forged = nats_jwt.encode({"sub": "y"}, signer).split(".")[1]
    with pytest.raises(nats_jwt.JwtError, match="signature"):
        nats_jwt.decode(f"{header}.{forged}.{signature}", nats_jwt.ACCOUNT_PREFIX)
    with pytest.raises(nats_jwt.JwtError, match="kind of public nkey"):
        nats_jwt.decode(token, nats_jwt.SERVER_PREFIX)
    expired = nats_jwt.encode({"sub": "x", "exp": int(time.time()) - 1}, signer)
    with pytest.raises(nats_jwt.JwtError, match="expired"):
        nats_jwt.decode(expired, nats_jwt.ACCOUNT_PREFIX)


def test_only_an_account_seed_can_issue() -> None:
    user_seed = nkeys.encode_seed(b"u" * 32, nats_jwt.USER_PREFIX).decode()
    with pytest.raises(nats_jwt.JwtError, match="account nkey seed"):
        nats_jwt.account_keypair(user_seed)
    with pytest.raises(nats_jwt.JwtError, match="not an nkey seed"):
        nats_jwt.account_keypair("SAnope")


def test_a_tenant_token_gets_a_user_jwt_with_its_tenants_permissions(callout: AuthCallout) -> None:
    token = callout.tokens.create(TokenKind.TENANT, "acme")
    user = nats_jwt.decode(_answer(callout, {"auth_token": token})["jwt"], nats_jwt.ACCOUNT_PREFIX)
    assert user["aud"] == DATA_ACCOUNT and user["sub"] == _user_nkey() and user["name"] == token[3:15]
    assert "wi.v1.hints.acme.>" in user["nats"]["pub"]["allow"]
    assert user["nats"]["sub"]["allow"] == ["_INBOX.acme.>", "wi.v1.deliver.acme.>"]
    assert "resp" not in user["nats"], "a tenant replies to nothing: notices come without a reply subject"


def test_refusals_say_why_and_never_the_token(callout: AuthCallout, caplog: pytest.LogCaptureFixture) -> None:
    token = callout.tokens.create(TokenKind.TENANT, "acme")
    caplog.set_level("INFO", logger="wi.auth.callout")
    assert _answer(callout, {})["error"].startswith("no credential")
    assert "is not the id of the token" in _answer(callout, {"user": "fedcba987654", "pass": token})["error"]
    assert (
        _answer(callout, {"user": PLATFORM_USER, "pass": token})["error"]
        == f"wrong password for {PLATFORM_USER}"
    )
    callout.tokens.revoke(token[3:15])
    assert _answer(callout, {"auth_token": token})["error"] == f"revoked token {token[3:15]}"
    assert len([r for r in caplog.records if r.levelname == "INFO" and "refused" in r.message]) == 4
    assert token not in caplog.text


def test_a_request_that_does_not_verify_is_refused_without_an_answer(callout: AuthCallout) -> None:
    header, payload, _ = _request({}).decode().split(".")
    assert callout.respond(f"{header}.{payload}.AAAA".encode()) == b""
    assert callout.respond(b"not a jwt") == b""


def test_every_wi_process_with_the_same_issuer_derives_the_same_platform_password(tmp_path: Path) -> None:
    seed = nats_jwt.new_account_seed()
    assert (
        platform_password(seed) == platform_password(seed) != platform_password(nats_jwt.new_account_seed())
    )
    engine = create_db_engine(f"sqlite:///{tmp_path / 'wi.db'}")
    migrate(engine)
    grant = AuthCallout(TokenStore(engine), seed).grant(
        {"user": PLATFORM_USER, "pass": platform_password(seed)}
    )
    assert grant.user == PLATFORM_USER and grant.permissions.jwt_claims() == {}
