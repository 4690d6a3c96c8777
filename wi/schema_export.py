"""Writes ``schemas/``: the JSON Schema of every v1 message and an AsyncAPI 3 document of the bus.

Both are generated from the pydantic models and the subject tree, so they cannot drift from the code;
a test regenerates them and fails when the committed copy is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from wi import __version__
from wi.bus import DEADLETTER_REASON, DEADLETTER_STREAM_SEQ, DEADLETTER_SUBJECT
from wi.bus.subjects import DEADLETTER_ROOT, QUERY_ROOT, SUBJECT_ROOTS
from wi.contract import MESSAGE_TYPES, Family, HintsQuery, HintsView, QueryError
from wi.contract._base import MESSAGE_ID_PATTERN, SLUG_PATTERN

QUERY_TYPES: dict[str, type[BaseModel]] = {
    m.model_fields["kind"].default: m for m in (HintsQuery, HintsView, QueryError)
}

_CHANNELS: dict[Family, tuple[str, str, str]] = {
    # family: (channel name, address, who sends it)
    Family.HINT: ("hints", f"{SUBJECT_ROOTS[Family.HINT]}.{{tenant}}.{{workload}}.{{kind}}", "a workload"),
    Family.NOTICE: (
        "notices",
        f"{SUBJECT_ROOTS[Family.NOTICE]}.{{tenant}}.{{workload}}.{{kind}}",
        "the platform",
    ),
    Family.RESPONSE: ("responses", f"{SUBJECT_ROOTS[Family.RESPONSE]}.{{tenant}}.{{workload}}", "a workload"),
    Family.DEPLOYMENT: (
        "deployments",
        f"{SUBJECT_ROOTS[Family.DEPLOYMENT]}.{{tenant}}.{{workload}}",
        "a workload",
    ),
    Family.EVENT: ("events", f"{SUBJECT_ROOTS[Family.EVENT]}.{{kind}}", "telemetry or an operator"),
}

_PARAMETERS = {
    "tenant": {"description": f"The tenant id, a slug matching {SLUG_PATTERN}."},
    "workload": {"description": f"The workload id, a slug matching {SLUG_PATTERN}."},
    "kind": {"description": "The message kind (for a clear hint, the kind it removes)."},
    "stream": {"description": "The lowercased name of the stream the parked message came from."},
}


def _schema_path(family: str, kind: str) -> str:
    return f"{family}/{kind}.json"


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every message, by its path under ``schemas/v1``."""
    schemas: dict[str, dict[str, Any]] = {}
    for family, types in MESSAGE_TYPES.items():
        for kind, model in types.items():
            schemas[_schema_path(family, kind)] = _with_header(model, f"{family}/{kind}")
    for kind, query_model in QUERY_TYPES.items():
        schemas[_schema_path("query", kind)] = _with_header(query_model, f"query/{kind}")
    return schemas


def _with_header(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"urn:wi:v1:{name}", **schema}


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0 binary mode over NATS headers.",
        "properties": {
            "ce-specversion": {"const": "1.0"},
            "ce-id": {
                "type": "string",
                "pattern": MESSAGE_ID_PATTERN,
                "description": "The message's id (hint_id, notice_id, ...).",
            },
            "ce-source": {"type": "string", "description": "Who published it, a URI reference."},
            "ce-type": {
                "type": "string",
                "pattern": r"^wi\.v1\.[a-z]+\.[a-z_]+$",
                "description": "wi.v1.<family>.<kind>, e.g. wi.v1.hint.evictability.",
            },
            "ce-time": {"type": "string", "format": "date-time", "description": "The message's issued_at."},
            "ce-subject": {
                "type": "string",
                "description": "What the message is about: workload[/instance], "
                "or the resource of a platform event.",
            },
            "content-type": {"const": "application/json"},
            "Nats-Msg-Id": {
                "type": "string",
                "description": "Equal to ce-id: JetStream stores a repeat once.",
            },
            "traceparent": {
                "type": "string",
                "pattern": r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "W3C trace context.",
            },
        },
        "required": [
            "ce-specversion",
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-time",
            "content-type",
            "Nats-Msg-Id",
            "traceparent",
        ],
    }


def _deadletter_headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The parked message's own headers, plus why and where from.",
        "properties": {
            DEADLETTER_REASON: {
                "type": "string",
                "description": "Why the message was parked: each broken rule.",
            },
            DEADLETTER_SUBJECT: {"type": "string", "description": "The subject it was published on."},
            DEADLETTER_STREAM_SEQ: {"type": "string", "description": "Its sequence in its stream."},
        },
        "required": [DEADLETTER_REASON, DEADLETTER_SUBJECT, DEADLETTER_STREAM_SEQ],
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the bus."""
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for family, (channel, address, sender) in _CHANNELS.items():
        refs = {}
        for kind, model in MESSAGE_TYPES[family].items():
            key = f"{family}.{kind}"
            messages[key] = {
                "name": kind,
                "title": model.__name__,
                "summary": (model.__doc__ or "").strip().splitlines()[0],
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
                "payload": {"$ref": _schema_path(family, kind)},
            }
            refs[kind] = {"$ref": f"#/components/messages/{key}"}
        params = [name for name in ("tenant", "workload", "kind") if f"{{{name}}}" in address]
        channels[channel] = {
            "address": address,
            "description": f"{family.capitalize()} messages, sent by {sender}; JetStream stream "
            f"WI_{channel.upper()}.",
            "parameters": {name: _PARAMETERS[name] for name in params},
            "messages": refs,
        }
        operations[f"send{channel.capitalize()}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": f"{sender.capitalize()} publishes {channel}.",
        }
        operations[f"receive{channel.capitalize()}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": f"A durable JetStream consumer receives {channel}.",
        }
    messages["deadletter"] = {
        "name": "deadletter",
        "title": "Parked message",
        "summary": "A message that broke the contract or could not be applied, kept with its reason.",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": "The original body, unchanged."},
    }
    channels["deadletter"] = {
        "address": f"{DEADLETTER_ROOT}.{{stream}}",
        "description": "Parked messages; JetStream stream WI_DEADLETTER keeps them 30 days.",
        "parameters": {"stream": _PARAMETERS["stream"]},
        "messages": {"deadletter": {"$ref": "#/components/messages/deadletter"}},
    }
    operations["receiveDeadletter"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/deadletter"},
        "summary": "Operators inspect parked messages.",
    }
    for kind in QUERY_TYPES:
        messages[f"query.{kind}"] = {
            "name": kind,
            "title": QUERY_TYPES[kind].__name__,
            "summary": (QUERY_TYPES[kind].__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": _schema_path("query", kind)},
        }
    channels["hintsQuery"] = {
        "address": f"{QUERY_ROOT}.hints.{{tenant}}.{{workload}}",
        "description": "Request-reply (core NATS): a workload's effective hints.",
        "parameters": {"tenant": _PARAMETERS["tenant"], "workload": _PARAMETERS["workload"]},
        "messages": {"hints_query": {"$ref": "#/components/messages/query.hints_query"}},
    }
    channels["hintsQueryReply"] = {
        "address": None,
        "description": "The requester's reply inbox.",
        "messages": {
            "hints_view": {"$ref": "#/components/messages/query.hints_view"},
            "query_error": {"$ref": "#/components/messages/query.query_error"},
        },
    }
    operations["queryHints"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/hintsQuery"},
        "summary": "A workload asks for its effective hints; the registry replies.",
        "reply": {"channel": {"$ref": "#/channels/hintsQueryReply"}},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Workload Intelligence bus",
            "version": __version__,
            "description": "Hints from workloads, notices from the platform, responses, deployment requests "
            "and platform events on NATS JetStream, as CloudEvents 1.0 in binary mode.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The nats-server that `wi up` starts by default.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                "CloudEventHeaders": _headers_schema(),
                "DeadLetterHeaders": _deadletter_headers_schema(),
            },
            "messages": messages,
        },
    }


def render(document: dict[str, Any]) -> str:
    """Stable text for a JSON document: the same input gives the same bytes."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """Every file of ``schemas/``, by path relative to it."""
    files = {f"v1/{path}": render(schema) for path, schema in json_schemas().items()}
    files["v1/asyncapi.json"] = render(asyncapi())
    return files


def export(out: Path) -> list[Path]:
    """Writes the files into ``out`` and removes stale ``.json`` files there; returns what it wrote."""
    files = generated_files()
    for stale in (out / "v1").rglob("*.json") if (out / "v1").exists() else []:
        if stale.relative_to(out).as_posix() not in files:
            stale.unlink()
    written = []
    for relative, text in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
