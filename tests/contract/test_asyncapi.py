"""The published AsyncAPI document passes the official parser, and a raw NATS client needs nothing else."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
from jsonschema import Draft7Validator
from nats.aio.msg import Msg

from tests.ci import unavailable
from tests.platform import Running
from wi.contract import Eviction, utc_now

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "schemas" / "v1" / "asyncapi.json"
VALIDATOR = ROOT / "tools" / "asyncapi-validate"


def test_the_official_parser_accepts_the_published_document() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        unavailable(f"{' and '.join(missing)} not found: the official AsyncAPI parser runs on Node.js")
    subprocess.run([str(VALIDATOR / "install")], check=True, timeout=600)
    parsed = subprocess.run(
        ["node", str(VALIDATOR / "validate.mjs"), str(DOCUMENT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = parsed.stdout + parsed.stderr
    assert parsed.returncode == 0, report
    assert "parsed; 0 errors, 0 warnings" in report, report


def _fill(address: str, **parameters: str) -> str:
    for name, value in parameters.items():
        address = address.replace(f"{{{name}}}", value)
    return address


def _check(document: dict[str, Any], message: str, body: bytes) -> None:
    """Validates a body against the payload schema of a component message of the document."""
    payload = document["components"]["messages"][message]["payload"]
    Draft7Validator({**payload, "components": document["components"]}).validate(json.loads(body))


async def test_a_raw_nats_client_gets_its_notices_with_nothing_but_the_document(running: Running) -> None:
    document = json.loads(DOCUMENT.read_text())
    channels, operations = document["channels"], document["operations"]
    workload = {"tenant": "acme", "workload": "raw"}
    soon = utc_now() + timedelta(minutes=5)
    while_away = Eviction(tenant="acme", workload="raw", instance="raw-0", reason="spot", not_before=soon)
    await running.bus.publish(while_away)
    token_id = running.acme.split("_")[1]  # userPassword: the user is the token's id
    inbox_prefix = _fill(channels["inbox"]["address"], tenant="acme").removesuffix(".{inbox}")
    client = await nats.connect(
        running.endpoints.nats_url, user=token_id, password=running.acme, inbox_prefix=inbox_prefix.encode()
    )
    try:
        arrived: asyncio.Queue[Msg] = asyncio.Queue()

        async def enqueue(msg: Msg) -> None:
            arrived.put_nowait(msg)

        queue = operations["receiveDeliveredNotices"]["bindings"]["nats"]["queue"]
        await client.subscribe(
            _fill(channels["deliver"]["address"], **workload, kind="*"), queue=queue, cb=enqueue
        )
        reply = await client.request(_fill(channels["attach"]["address"], **workload), b"", timeout=10)
        _check(document, "attach.attach_reply", reply.data)
        attached = json.loads(reply.data)
        assert [n["notice_id"] for n in attached["notices"]] == [while_away.notice_id]
        assert attached.get("next_cursor") is None

        live = Eviction(tenant="acme", workload="raw", instance="raw-1", reason="spot", not_before=soon)
        await running.bus.publish(live)
        delivered = await asyncio.wait_for(arrived.get(), 15)
        _check(document, "notice.eviction", delivered.data)
        assert delivered.headers is not None and delivered.headers["ce-id"] == live.notice_id
        assert delivered.subject == _fill(channels["deliver"]["address"], **workload, kind="eviction")
    finally:
        await client.close()
