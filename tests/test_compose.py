"""compose.yaml describes the production topology with commands and variables the project really has.

Docker does not run here, so this parses the file and checks each part against the real thing.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from wi.auth.callout import CALLOUT_USER, SYSTEM_USER
from wi.auth.nats_jwt import account_keypair, public_key
from wi.cli import _parser
from wi.server import Settings, nats_server_binary

ROOT = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
WI = Path(sys.executable).parent / "wi"


@pytest.fixture(scope="module")
def dot_env() -> dict[str, str]:
    """The .env an operator makes as compose.yaml says: ``wi nats-issuer`` and two passwords."""
    issuer = subprocess.run([str(WI), "nats-issuer"], capture_output=True, text=True, check=True)
    made = dict(line.split("=", 1) for line in issuer.stdout.splitlines())
    return {
        **made,
        "WI_NATS_PASSWORD": secrets.token_hex(24),
        "WI_NATS_SYSTEM_PASSWORD": secrets.token_hex(24),
    }


def _environment(service: dict[str, Any], dot_env: dict[str, str]) -> dict[str, str]:
    """A service's environment as compose interpolates it: ``${NAME:?message}`` from the .env."""

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in dot_env, f"compose.yaml needs {match.group(1)}, which the .env lacks"
        return dot_env[match.group(1)]

    return {
        name: re.sub(r"\$\{(\w+)(?::\?[^}]*)?\}", value, str(text))
        for name, text in service["environment"].items()
    }


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_the_topology_is_three_nats_nodes_postgres_and_wi() -> None:
    nats = [name for name, service in SERVICES.items() if service.get("image", "").startswith("nats:")]
    assert sorted(nats) == ["nats-1", "nats-2", "nats-3"]
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert set(SERVICES["wi"]["depends_on"]) == {"nats-1", "nats-2", "nats-3", "postgres"}


def test_every_nats_node_runs_a_config_the_real_nats_server_accepts(dot_env: dict[str, str]) -> None:
    for name in ("nats-1", "nats-2", "nats-3"):
        node = SERVICES[name]
        command = _command(node)
        assert command[0] == "-c"
        mounted = {target: source for source, target, *_ in (v.split(":") for v in node["volumes"])}
        config = ROOT / mounted[command[1]]
        env = {**os.environ, **_environment(node, dot_env)}
        check = subprocess.run(
            [str(nats_server_binary()), "-c", str(config), "-t"], env=env, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        assert f"nats://{name}:6222" in config.read_text(), f"{name} is not among the cluster routes"


def test_the_nodes_send_every_client_to_the_callout_of_wi_with_its_users_and_issuer(
    dot_env: dict[str, str],
) -> None:
    config = (ROOT / "deploy/nats/cluster.conf").read_text()
    assert re.search(r"auth_callout \{[^}]*issuer: \$NATS_AUTH_ISSUER", config)
    assert f"auth_users: [ {CALLOUT_USER}, {SYSTEM_USER} ]" in config
    wi = _environment(SERVICES["wi"], dot_env)
    for node in ("nats-1", "nats-2", "nats-3"):
        nats = _environment(SERVICES[node], dot_env)
        assert nats["NATS_AUTH_ISSUER"] == public_key(account_keypair(wi["WI_NATS_AUTH_ISSUER_SEED"]))
        assert (nats["NATS_CALLOUT_PASSWORD"], nats["NATS_SYSTEM_PASSWORD"]) == (
            wi["WI_NATS_PASSWORD"],
            wi["WI_NATS_SYSTEM_PASSWORD"],
        )
    assert (wi["WI_NATS_USER"], wi["WI_NATS_SYSTEM_USER"]) == (CALLOUT_USER, SYSTEM_USER)


def test_wi_runs_a_real_command_with_variables_it_really_reads(dot_env: dict[str, str]) -> None:
    wi = SERVICES["wi"]
    command = _command(wi)
    assert command[0] == "wi"
    args = _parser().parse_args(command[1:])
    assert args.command == "up"
    read = {f"WI_{name.upper()}" for name in Settings.model_fields}
    assert set(wi["environment"]) <= read, f"unknown: {set(wi['environment']) - read}"
    environment = _environment(wi, dot_env)
    settings = Settings.model_validate({k[3:].lower(): v for k, v in environment.items()})
    assert settings.stream_replicas == 3
    assert all(f"nats-{i}:4222" in (settings.nats_url or "") for i in (1, 2, 3))
    postgres = SERVICES["postgres"]["environment"]
    assert settings.database_url == (
        f"postgresql+psycopg://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{postgres['POSTGRES_DB']}"
    )


def test_the_image_wi_builds_from_installs_the_platform_and_runs_wi() -> None:
    assert SERVICES["wi"]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "'.[platform]'" in dockerfile
    assert 'CMD ["wi", "up"]' in dockerfile


def test_wi_gets_the_llm_models_tables_mounted_where_it_looks() -> None:
    wi = SERVICES["wi"]
    mounted = {target: source for source, target, *_ in (v.split(":") for v in wi["volumes"])}
    source = mounted[wi["environment"]["WI_LLM_PERF_DIR"]]
    assert (ROOT / source / "perf_model.csv").is_file() and (
        ROOT / source / "power_model_constant.yaml"
    ).is_file()
