"""The request bodies the routes read themselves, described in the OpenAPI document by the contract.

Such a route declares its body with ``openapi_extra=request_body(NAME)``; ``with_body_schemas`` puts the
named schema, generated from the contract's models, and everything it uses into the document's
components. A tenant's body is its message without ``tenant`` and ``workload``: the token and the path
give those.
"""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import Schema
from pydantic import BaseModel

from wi.contract import MESSAGE_TYPES, DeploymentRequest, DrillRequest, Family
from wi.contract.http import MAX_HINTS_PER_REQUEST, ResponseRequest, ScaleRequest
from wi.schema_export import COMPONENT_REF, component_schemas

SET_HINTS = "SetHintsBody"
"""One hint or a batch of them, for POST /v1/workloads/{workload}/hints."""
DEPLOYMENT = "DeploymentRequestBody"
"""A deployment request, for POST /v1/workloads/{workload}/deployments."""
PLATFORM_EVENT = "PlatformEventBody"
"""Any platform event, for POST /v1/platform/events."""
NOTICE = "NoticeBody"
"""Any notice, for POST /v1/platform/notices."""
SCALE = ScaleRequest.__name__
"""How many instances, for PATCH /v1/workloads/{workload}/deployments/{deployment}."""
RESPONSE = ResponseRequest.__name__
"""A workload's answer, for POST /v1/workloads/{workload}/notices/{notice_id}/responses."""
DRILL = DrillRequest.__name__
"""A drill, for POST /v1/workloads/{workload}/drills."""

_FROM_TOKEN_AND_PATH = ("tenant", "workload")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": COMPONENT_REF.format(model=name)}


def request_body(name: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose JSON body is the schema ``name`` of ``body_schemas``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _ref(name)}}}}


def _tenant_body(schema: dict[str, Any], title: str, defaulted: tuple[str, ...] = ()) -> dict[str, Any]:
    """A message's schema without the fields the token and the path give, and with ``defaulted`` optional."""
    properties = {k: v for k, v in schema["properties"].items() if k not in _FROM_TOKEN_AND_PATH}
    required = [k for k in schema.get("required", []) if k not in (*_FROM_TOKEN_AND_PATH, *defaulted)]
    return {**schema, "title": title, "properties": properties, "required": required}


def _one_of_kinds(schemas: dict[str, str], description: str) -> dict[str, Any]:
    """One of the named schemas, told apart by ``kind`` (schema names by kind)."""
    return {
        "description": description,
        "oneOf": [_ref(name) for name in schemas.values()],
        "discriminator": {
            "propertyName": "kind",
            "mapping": {kind: COMPONENT_REF.format(model=name) for kind, name in schemas.items()},
        },
    }


def body_schemas() -> dict[str, dict[str, Any]]:
    """The schemas of the request bodies and of everything they use, by component name."""
    hints, events, notices = (MESSAGE_TYPES[f] for f in (Family.HINT, Family.EVENT, Family.NOTICE))
    models: list[type[BaseModel]] = [
        *hints.values(),
        DeploymentRequest,
        *events.values(),
        *notices.values(),
        ResponseRequest,
        ScaleRequest,
        DrillRequest,
    ]
    schemas = component_schemas(models)
    hint_bodies = {kind: f"{model.__name__}Body" for kind, model in hints.items()}
    for kind, model in hints.items():
        schemas[hint_bodies[kind]] = _tenant_body(schemas[model.__name__], hint_bodies[kind])
    schemas["HintBody"] = _one_of_kinds(hint_bodies, "One v1 hint, without tenant and workload.")
    schemas["HintBatchBody"] = {
        "title": "HintBatchBody",
        "type": "object",
        "description": f"Up to {MAX_HINTS_PER_REQUEST} hints, sent together.",
        "properties": {
            "hints": {
                "type": "array",
                "items": _ref("HintBody"),
                "minItems": 1,
                "maxItems": MAX_HINTS_PER_REQUEST,
            }
        },
        "required": ["hints"],
        "additionalProperties": False,
    }
    schemas[SET_HINTS] = {
        "description": 'One hint, or {"hints": [...]}.',
        "oneOf": [_ref("HintBody"), _ref("HintBatchBody")],
    }
    # The route fills in the one kind a deployment request has.
    schemas[DEPLOYMENT] = _tenant_body(
        schemas.pop(DeploymentRequest.__name__), DEPLOYMENT, defaulted=("kind",)
    )
    schemas[PLATFORM_EVENT] = _one_of_kinds(
        {kind: model.__name__ for kind, model in events.items()}, "One v1 platform event."
    )
    schemas[NOTICE] = _one_of_kinds(
        {kind: model.__name__ for kind, model in notices.items()}, "One v1 notice, to a tenant's workload."
    )
    return schemas


def with_body_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's OpenAPI document with ``body_schemas`` in its components.

    They are written as FastAPI writes its own (through its Schema model), so a model that FastAPI
    already put there for a response comes out the same; a name that means two schemas raises.
    """
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in body_schemas().items():
        written = jsonable_encoder(Schema.model_validate(schema), by_alias=True, exclude_none=True)
        if components.setdefault(name, written) != written:
            raise ValueError(f"the OpenAPI document has another schema named {name}")
    return document
