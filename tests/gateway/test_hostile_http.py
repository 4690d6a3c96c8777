"""Hostile and careless HTTP input gets a problem naming the rule, never a 500; outages get a 503."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.platform import Running
from wi.contract import MAX_CLOCK_SKEW_S, utc_now


@pytest.fixture
async def http(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.endpoints.http_url, timeout=30) as client:
        yield client


def _headers(token: str, content_type: str | None = "application/json") -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type is not None:
        headers["content-type"] = content_type
    return headers


def _rules(reply: httpx.Response, status: int) -> list[tuple[str, str]]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    return [(e["field"], e["rule"]) for e in reply.json()["errors"]]


def _deep(depth: int) -> bytes:
    return b'{"kind":"priority","level":' + b"[" * depth + b"]" * depth + b"}"


async def test_a_deeply_nested_body_is_a_400_naming_the_rule(
    running: Running, http: httpx.AsyncClient
) -> None:
    for path in ("/v1/workloads/web/hints", "/v1/workloads/web/deployments"):
        reply = await http.post(path, content=_deep(1000), headers=_headers(running.acme))
        assert _rules(reply, 400) == [("$", "json_too_deep")]
    reply = await http.post("/v1/platform/events", content=_deep(1000), headers=_headers(running.operator))
    assert _rules(reply, 400) == [("$", "json_too_deep")]
    reply = await http.post(
        "/v1/workloads/web/notices/n-1/responses", content=_deep(1000), headers=_headers(running.acme)
    )
    assert _rules(reply, 400) == [("$", "json_too_deep")]


async def test_undecodable_bytes_are_a_400(running: Running, http: httpx.AsyncClient) -> None:
    for body in (b"\xff\xfe\x00\x01", b"", b'{"kind": "priority"'):
        reply = await http.post("/v1/workloads/web/hints", content=body, headers=_headers(running.acme))
        assert _rules(reply, 400) == [("$", "json_invalid")]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_json_is_a_415(
    running: Running, http: httpx.AsyncClient, content_type: str | None
) -> None:
    body = json.dumps({"kind": "priority", "level": "low"}).encode()
    reply = await http.post(
        "/v1/workloads/web/hints", content=body, headers=_headers(running.acme, content_type)
    )
    assert _rules(reply, 415) == [("header:content-type", "media_type")]


async def test_a_405_lists_every_method_the_path_takes(running: Running, http: httpx.AsyncClient) -> None:
    reply = await http.put("/v1/workloads/web/hints", headers=_headers(running.acme))
    assert _rules(reply, 405) == [("$", "method_not_allowed")]
    assert reply.headers["allow"] == "GET, POST"
    reply = await http.get("/v1/workloads/web/hints/priority", headers=_headers(running.acme))
    assert reply.status_code == 405 and reply.headers["allow"] == "DELETE"


@pytest.mark.parametrize(
    ("hint", "rule"),
    [
        ({"kind": "evictability", "evictable": True, "min_notice_s": "120"}, ("min_notice_s", "int_type")),
        ({"kind": "evictability", "evictable": "yes"}, ("evictable", "bool_type")),
        ({"kind": "evictability", "evictable": "on"}, ("evictable", "bool_type")),
        ({"kind": "evictability", "evictable": 1}, ("evictable", "bool_type")),
        ({"kind": "availability", "target": "0.999"}, ("target", "float_type")),
    ],
)
async def test_types_are_as_strict_as_the_schemas(
    running: Running, http: httpx.AsyncClient, hint: dict[str, Any], rule: tuple[str, str]
) -> None:
    reply = await http.post("/v1/workloads/web/hints", json=hint, headers=_headers(running.acme))
    assert rule in _rules(reply, 422)


async def test_a_batch_reports_every_broken_hint_at_once(running: Running, http: httpx.AsyncClient) -> None:
    batch = {
        "hints": [
            {"kind": "evictability", "evictable": True, "min_notice_s": -1},
            {"kind": "priority", "level": "high"},
            {"kind": "priority", "level": "urgent"},
            "not an object",
        ]
    }
    reply = await http.post("/v1/workloads/web/hints", json=batch, headers=_headers(running.acme))
    assert _rules(reply, 422) == [
        ("hints[0].min_notice_s", "greater_than_equal"),
        ("hints[2].level", "enum"),
        ("hints[3]", "object_type"),
    ]


async def test_a_hint_from_the_future_is_refused(running: Running, http: httpx.AsyncClient) -> None:
    for issued_at in (
        "9999-12-31T23:59:59Z",
        (utc_now() + timedelta(seconds=MAX_CLOCK_SKEW_S + 60)).isoformat(),
    ):
        hint = {"kind": "priority", "level": "critical", "issued_at": issued_at}
        reply = await http.post("/v1/workloads/web/hints", json=hint, headers=_headers(running.acme))
        assert _rules(reply, 422) == [("issued_at", "clock_skew")]


async def test_nats_down_is_a_503_with_retry_after_counted_in_metrics(
    running: Running, http: httpx.AsyncClient
) -> None:
    await running.bus.js.delete_stream("WI_EVENTS")
    ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["stream WI_EVENTS"].startswith("unavailable")
    event = {"kind": "price_update", "region": "useast", "pool": "spot", "price_per_core_hour": 0.01}
    reply = await http.post("/v1/platform/events", json=event, headers=_headers(running.operator))
    assert _rules(reply, 503) == [("$", "nats_unavailable")]
    assert reply.headers["retry-after"] == "5"

    assert running.platform.nats is not None
    # with NATS gone its consumers drain until the grace period ends: keep that short here
    running.platform.settings = running.platform.settings.model_copy(update={"shutdown_grace_s": 1.0})
    running.platform.nats.stop()
    reply = await http.post(
        "/v1/workloads/web/hints", json={"kind": "priority", "level": "low"}, headers=_headers(running.acme)
    )
    assert _rules(reply, 503) == [("$", "nats_unavailable")]
    assert (await http.get("/readyz")).json()["checks"]["nats"] == "disconnected"
    metrics = (await http.get("/metrics")).text
    assert 'wi_http_unavailable_total{dependency="nats"} 2.0' in metrics
