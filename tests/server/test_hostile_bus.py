"""Whatever a tenant publishes on its own subjects, every consumer goes on, and each bad message is parked
once with its reason; a consumer loop that fails anyway is restarted and reported."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.platform import Running, eventually
from wi.auth import token_id_of
from wi.bus import DEADLETTER_REASON, DEADLETTER_STREAM, DEADLETTER_TRUNCATED, Bus, tenant_inbox
from wi.contract import Priority
from wi.registry import HINTS_CONSUMER

HINT_SUBJECT = "wi.v1.hints.acme.web.priority"


def _headers(msg_id: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": msg_id,
        "ce-source": "/hostile",
        "ce-type": "wi.v1.hint.priority",
        "content-type": "application/json",
        "Nats-Msg-Id": msg_id,
    }


async def _tenant_bus(running: Running) -> Bus:
    return await Bus.connect(
        running.endpoints.nats_url,
        source="/tests/hostile",
        user=token_id_of(running.acme),
        password=running.acme,
        inbox_prefix=tenant_inbox("acme"),
    )


async def _acked_by_every_hints_consumer(running: Running, seq: int) -> None:
    """Waits until the registry and every service consuming hints have handled the stream up to ``seq``."""
    durables = [HINTS_CONSUMER.durable, "wi-svc-spot-harvest-hint"]

    async def done() -> bool:
        for durable in durables:
            info = await running.bus.js.consumer_info("WI_HINTS", durable)
            if (info.ack_floor.stream_seq or 0) < seq:
                return False
        return True

    deadline = asyncio.get_running_loop().time() + 20
    while not await done():
        assert asyncio.get_running_loop().time() < deadline, "the hints consumers did not get there"
        await asyncio.sleep(0.05)


async def _parked_headers(running: Running) -> list[dict[str, str]]:
    info = await running.bus.js.stream_info(DEADLETTER_STREAM.name)
    messages = [
        await running.bus.js.get_msg(DEADLETTER_STREAM.name, seq) for seq in range(1, info.state.messages + 1)
    ]
    return [dict(m.headers or {}) for m in messages]


async def test_any_bytes_on_a_tenants_own_subject_are_parked_once_and_consumption_goes_on(
    running: Running,
) -> None:
    deep = b'{"kind":"priority","tenant":"acme","workload":"web","level":' + b"[" * 1000 + b"]" * 1000 + b"}"
    max_payload = running.bus.nc.max_payload
    hostile = {
        "deep": deep,
        "huge": b"[" + b"1," * ((max_payload - 200) // 2) + b"1]",
        "utf16": json.dumps({"kind": "priority", "tenant": "acme", "workload": "web", "level": "low"}).encode(
            "utf-16"
        ),
        "binary": bytes(range(256)) * 4,
        "year-9999": json.dumps(
            {
                "kind": "priority",
                "tenant": "acme",
                "workload": "web",
                "level": "critical",
                "hint_id": "year-9999",
                "issued_at": "9999-12-31T23:59:59Z",
            }
        ).encode(),
    }
    tenant = await _tenant_bus(running)
    try:
        for name, body in hostile.items():
            await tenant.publish_raw(
                HINT_SUBJECT, body, _headers(name if name != "year-9999" else "year-9999")
            )
        await tenant.publish_raw("wi.v1.hints.acme.web.priority", b"{}", {})  # no CloudEvents headers at all
        good = Priority(tenant="acme", workload="web", level="low")
        seq = (await tenant.publish(good)).seq
    finally:
        await tenant.close()

    await _acked_by_every_hints_consumer(running, seq)
    assert running.platform.store is not None
    effective = running.platform.store.effective("acme", "web", good.issued_at)
    assert effective.workload_hints["priority"] == good, "the good hint after the bad ones is applied"
    parked = await _parked_headers(running)
    reasons = [headers[DEADLETTER_REASON] for headers in parked]
    assert len(reasons) == len(hostile) + 1, f"each bad message parked once, not once per consumer: {reasons}"
    assert [h[DEADLETTER_TRUNCATED] for h in parked if DEADLETTER_TRUNCATED in h] == [
        str(len(hostile["huge"]))
    ]
    assert any("json_too_deep" in r for r in reasons)
    assert any("clock_skew" in r for r in reasons)
    async with httpx.AsyncClient(base_url=running.endpoints.http_url) as http:
        ready = (await http.get("/readyz")).json()
    assert ready["status"] == "ready", ready


async def test_a_consumer_loop_that_fails_is_restarted_and_reported(running: Running) -> None:
    await running.bus.js.delete_consumer("WI_HINTS", HINTS_CONSUMER.durable)  # an operator's slip
    health = running.platform.supervisor.health["registry hints"]
    await eventually(lambda: health.restarts >= 1, timeout_s=30)
    assert health.last_error is not None and "fetches failed" in health.last_error
    hint = Priority(tenant="acme", workload="after", level="high")
    await running.bus.publish(hint)
    assert running.platform.store is not None
    store = running.platform.store
    await eventually(
        lambda: "priority" in store.effective("acme", "after", hint.issued_at).workload_hints, 30
    )
    async with httpx.AsyncClient(base_url=running.endpoints.http_url) as http:
        metrics = (await http.get("/metrics")).text
        assert (await http.get("/readyz")).json()["checks"]["loop registry hints"] == "ok"
    assert 'wi_loop_restarts{loop="registry hints"} 1.0' in metrics
    assert 'wi_loop_up{loop="registry hints"} 1.0' in metrics


async def test_requests_on_subjects_that_are_not_slugs_or_with_loose_types_get_an_error_reply(
    running: Running,
) -> None:
    nc = running.bus.nc  # the platform's credential may publish anywhere; a tenant's only its own tenant
    attach = json.loads((await nc.request("wi.v1.attach.acme.Not_A_Slug", b"", timeout=5)).data)
    assert "workload" in attach["error"] and "pattern" in attach["error"]
    reply = json.loads((await nc.request("wi.v1.query.hints.acme.Not_A_Slug", b"{}", timeout=5)).data)
    assert reply["kind"] == "query_error" and reply["problems"][0]["field"] == "workload"
    reply = json.loads(
        (await nc.request("wi.v1.query.hints.acme.web", b'{"after_seq": "5"}', timeout=5)).data
    )
    assert [(p["field"], p["rule"]) for p in reply["problems"]] == [("after_seq", "int_type")]
    deep = b'{"after_seq":' + b"[" * 1000 + b"]" * 1000 + b"}"
    reply = json.loads((await nc.request("wi.v1.query.hints.acme.web", deep, timeout=5)).data)
    assert [(p["field"], p["rule"]) for p in reply["problems"]] == [("$", "json_too_deep")]
