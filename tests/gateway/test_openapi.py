"""The gateway's OpenAPI document is valid, and every POST body is typed by the contract's schemas."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.platform import Running
from wi.contract.hints import ONE_WEEK_S


@pytest.fixture
async def document(running: Running) -> dict[str, Any]:
    """/openapi.json as the running gateway serves it."""
    async with httpx.AsyncClient(base_url=running.endpoints.http_url) as http:
        served: dict[str, Any] = (await http.get("/openapi.json")).json()
    return served


def _body(document: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema of the POST body of a path, as a reference to a component."""
    schema: dict[str, Any] = document["paths"][path]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    return schema


def _component(document: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][
        ref["$ref"].removeprefix("#/components/schemas/")
    ]
    return schema


def _members(document: dict[str, Any], ref: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The object schemas a reference stands for, through oneOf, by title."""
    schema = _component(document, ref)
    if "oneOf" not in schema:
        return {schema["title"]: schema}
    return {title: s for member in schema["oneOf"] for title, s in _members(document, member).items()}


def _accepts(document: dict[str, Any], ref: dict[str, Any], body: Any) -> bool:
    return Draft202012Validator({**ref, "components": document["components"]}).is_valid(body)


async def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


async def test_every_post_body_is_a_schema_of_the_contract(document: dict[str, Any]) -> None:
    posts = [path for path, operations in document["paths"].items() if "post" in operations]
    for path in posts:
        assert "$ref" in _body(document, path), f"POST {path} has no schema of its body"

    hints = _members(document, _body(document, "/v1/workloads/{workload}/hints"))
    evictability = hints["EvictabilityBody"]["properties"]
    assert {"evictable", "min_notice_s", "checkpoint_s"} <= set(evictability)
    assert (evictability["min_notice_s"]["minimum"], evictability["min_notice_s"]["maximum"]) == (
        0,
        ONE_WEEK_S,
    )
    assert hints["HintBatchBody"]["properties"]["hints"]["maxItems"] == 100
    deployment = _members(document, _body(document, "/v1/workloads/{workload}/deployments"))
    assert deployment["DeploymentRequestBody"]["properties"]["instances"]["minimum"] == 1
    for body in [*hints.values(), *deployment.values()]:  # the token and the path give these
        assert not {"tenant", "workload"} & set(body["properties"]), body["title"]

    events = _members(document, _body(document, "/v1/platform/events"))
    assert "cores_needed" in events["CapacityPressure"]["properties"]
    notices = _members(document, _body(document, "/v1/platform/notices"))
    assert {"kind", "tenant", "workload", "not_before"} <= set(notices["Eviction"]["required"])
    response = _members(document, _body(document, "/v1/workloads/{workload}/notices/{notice_id}/responses"))
    assert "action" in response["ResponseRequest"]["required"]


async def test_the_body_schemas_take_what_the_routes_take(document: dict[str, Any]) -> None:
    hints = _body(document, "/v1/workloads/{workload}/hints")
    one = {"kind": "evictability", "evictable": True, "min_notice_s": 120}
    assert _accepts(document, hints, one)
    assert _accepts(document, hints, {"hints": [one, {"kind": "priority", "level": "low"}]})
    assert not _accepts(document, hints, {**one, "min_notice_s": -1})
    assert not _accepts(document, hints, {**one, "tenant": "acme"})
    assert not _accepts(document, hints, {"evictable": True})  # every hint names its kind
    assert not _accepts(document, hints, {"hints": []})
    deployment = _body(document, "/v1/workloads/{workload}/deployments")
    assert _accepts(
        document, deployment, {"deployment": "train", "instances": 4, "cores": 8, "memory_gb": 32}
    )
    events = _body(document, "/v1/platform/events")
    pressure = {"kind": "capacity_pressure", "source": "ops", "cluster": "c1", "pool": "spot"}
    assert _accepts(document, events, {**pressure, "cores_needed": 64, "needed_within_s": 300})
    assert not _accepts(document, events, {**pressure, "cores_needed": 0, "needed_within_s": 300})
