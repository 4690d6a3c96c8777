"""Tenants are slugs: at creation, on the command line, and for tokens stored before the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from wi.auth import TokenKind
from wi.auth.store import TokenStore
from wi.cli import main
from wi.database import create_db_engine, migrate


@pytest.fixture
def tokens(tmp_path: Path) -> TokenStore:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'wi.db'}")
    migrate(engine)
    return TokenStore(engine)


@pytest.mark.parametrize("tenant", ["*", ">", "acme.web", "Acme", "-acme", "", "a" * 64, "acme web"])
def test_a_tenant_token_names_a_slug(tokens: TokenStore, tenant: str) -> None:
    with pytest.raises(ValueError, match=r"^tenant: .* is not a slug \(lowercase letters, digits and '-'"):
        tokens.create(TokenKind.TENANT, tenant)
    assert tokens.all_tokens() == []


def test_a_slug_tenant_gets_its_token(tokens: TokenStore) -> None:
    token = tokens.create(TokenKind.TENANT, "acme-2")
    identity = tokens.authenticate(token)
    assert identity is not None and identity.tenant == "acme-2"


def test_wi_tokens_create_refuses_a_tenant_that_is_no_slug_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tokens", "create", "--data-dir", str(tmp_path), "--tenant", "*"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("wi tokens create: tenant: '*' is not a slug") and err.count("\n") == 1
