"""Writes ``schemas/``: the JSON Schema of every v1 message and an AsyncAPI 3 document of the bus.

Both are generated from the pydantic models and the subject tree, so they cannot drift from the code;
a test regenerates them and fails when the committed copy is stale, and another runs the official
AsyncAPI parser on the document.

The standalone files (``schemas/v1/<family>/<kind>.json``) are JSON Schema 2020-12 exactly as pydantic
writes it; their ``discriminator`` objects are OpenAPI's annotation, which JSON Schema validators ignore
and OpenAPI 3.1 tools use. The AsyncAPI document is self-contained: every payload schema sits in its
``components/schemas``, where AsyncAPI's Schema Object wants ``discriminator`` to be the name of the
property, so the document carries ``"discriminator": "kind"`` (each member of such a ``oneOf`` still
fixes its ``kind`` with ``const``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from wi import __version__
from wi.bus import (
    DEADLETTER_REASON,
    DEADLETTER_STREAM_SEQ,
    DEADLETTER_SUBJECT,
    DELIVER_GROUP,
    RECORDED_DECISIONS,
    RECORDED_HINTS,
    RECORDED_NOTICES,
    attach_subject,
    deadletter_subject,
    drill_report_subject,
    drill_start_subject,
    hints_query_subject,
    tenant_inbox,
)
from wi.bus.subjects import DELIVER_ROOT, SUBJECT_ROOTS
from wi.contract import (
    MESSAGE_TYPES,
    AttachError,
    AttachReply,
    AttachRequest,
    DecisionsRecorded,
    DrillError,
    DrillQuery,
    DrillReport,
    DrillRequest,
    Family,
    HintsQuery,
    HintsRecorded,
    HintsView,
    NoticesRecorded,
    QueryError,
)
from wi.contract._base import MESSAGE_ID_PATTERN, SLUG_PATTERN

ASYNCAPI_VERSION = "3.1.0"
NATS_BINDING_VERSION = "0.1.0"
COMPONENT_REF = "#/components/schemas/{model}"
"""Where AsyncAPI and OpenAPI documents keep their schemas."""

QUERY_TYPES: dict[str, type[BaseModel]] = {
    m.model_fields["kind"].default: m for m in (HintsQuery, HintsView, QueryError)
}
_QUERY_REPLIES = ("hints_view", "query_error")
ATTACH_TYPES: dict[str, type[BaseModel]] = {
    "attach_request": AttachRequest,
    "attach_reply": AttachReply,
    "attach_error": AttachError,
}
"""An attach request and its replies, by message name (they carry no ``kind``)."""
_ATTACH_REPLIES = ("attach_reply", "attach_error")
DRILL_TYPES: dict[str, type[BaseModel]] = {
    m.model_fields["kind"].default: m for m in (DrillRequest, DrillQuery, DrillReport, DrillError)
}
_DRILL_REPLIES = ("drill_report", "drill_error")

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
    Family.VERDICT: ("verdicts", f"{SUBJECT_ROOTS[Family.VERDICT]}.{{tenant}}.{{workload}}", "the registry"),
}

_PARAMETERS = {
    "tenant": {"description": f"The tenant id, a slug matching {SLUG_PATTERN}."},
    "workload": {"description": f"The workload id, a slug matching {SLUG_PATTERN}."},
    "kind": {"description": "The message kind (for a clear hint, the kind it removes)."},
    "stream": {"description": "The lowercased name of the stream the parked message came from."},
    "inbox": {
        "description": "The rest of the reply subject, chosen by the client library for each request "
        "(nats-py: a NUID, a dot and a number)."
    },
}

_TENANT_INBOX = tenant_inbox("{tenant}")
_CONNECTING = (
    "A tenant's client connects with its token (see the security schemes) and must set its inbox "
    f"prefix to `{_TENANT_INBOX}` (nats-py `inbox_prefix`, nats.go `CustomInboxPrefix`): its permissions "
    f"let it subscribe only to `{_TENANT_INBOX}.>` and `{DELIVER_ROOT}.{{tenant}}.>`, and publish "
    "only its own hints, responses, deployment requests, hints queries, attach and drill requests."
)


def _schema_path(family: str, kind: str) -> str:
    return f"{family}/{kind}.json"


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every message, by its path under ``schemas/v1``."""
    schemas: dict[str, dict[str, Any]] = {}
    for family, types in MESSAGE_TYPES.items():
        for kind, model in types.items():
            schemas[_schema_path(family, kind)] = _with_header(model, f"{family}/{kind}")
    for group, models in (("query", QUERY_TYPES), ("attach", ATTACH_TYPES), ("drill", DRILL_TYPES)):
        for kind, other in models.items():
            schemas[_schema_path(group, kind)] = _with_header(other, f"{group}/{kind}")
    return schemas


def _with_header(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"urn:wi:v1:{name}", **schema}


def component_schemas(models: Iterable[type[BaseModel]]) -> dict[str, dict[str, Any]]:
    """The validation JSON Schemas of the models and of everything they use, by name.

    They refer to each other as ``#/components/schemas/<name>``, as AsyncAPI and OpenAPI documents do.
    """
    _, top = models_json_schema([(model, "validation") for model in models], ref_template=COMPONENT_REF)
    definitions: dict[str, dict[str, Any]] = top["$defs"]
    return definitions


def _asyncapi_schema(node: Any) -> Any:
    """A JSON Schema with each OpenAPI discriminator object turned into AsyncAPI's property name."""
    if isinstance(node, list):
        return [_asyncapi_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _asyncapi_schema(value) for key, value in node.items()}
    discriminator = node.get("discriminator")
    if isinstance(discriminator, dict) and "propertyName" in discriminator:
        converted["discriminator"] = discriminator["propertyName"]
    return converted


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


def _message(name: str, model: type[BaseModel], *, cloudevent: bool) -> dict[str, Any]:
    """A message whose payload is the model's schema; a bus message also has the CloudEvents headers."""
    message = {
        "name": name,
        "title": model.__name__,
        "summary": (model.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "payload": {"$ref": COMPONENT_REF.format(model=model.__name__)},
    }
    if cloudevent:
        message["headers"] = {"$ref": "#/components/schemas/CloudEventHeaders"}
    return message


def _channel(address: str | None, description: str, messages: Iterable[str]) -> dict[str, Any]:
    """A channel carrying the named component messages; its parameters are those its address names."""
    channel: dict[str, Any] = {"address": address, "description": description}
    params = [name for name in _PARAMETERS if address is not None and f"{{{name}}}" in address]
    if params:
        channel["parameters"] = {name: _PARAMETERS[name] for name in params}
    channel["messages"] = {
        name.split(".")[-1]: {"$ref": f"#/components/messages/{name}"} for name in messages
    }
    return channel


def _reply(channel: str, messages: Iterable[str]) -> dict[str, Any]:
    """An operation's reply: these messages of a channel."""
    return {
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages],
    }


def _family_parts(messages: dict[str, Any], channels: dict[str, Any], operations: dict[str, Any]) -> None:
    """The JetStream streams: a channel per family, published to and consumed by durable consumers."""
    for family, (channel, address, sender) in _CHANNELS.items():
        keys = []
        for kind, model in MESSAGE_TYPES[family].items():
            keys.append(f"{family}.{kind}")
            messages[keys[-1]] = _message(kind, model, cloudevent=True)
        description = (
            f"{family.capitalize()} messages, sent by {sender}; JetStream stream WI_{channel.upper()}."
        )
        channels[channel] = _channel(address, description, keys)
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
    channels["deadletter"] = _channel(
        deadletter_subject("{stream}"),
        "Parked messages; JetStream stream WI_DEADLETTER keeps them 30 days.",
        ["deadletter"],
    )
    operations["receiveDeadletter"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/deadletter"},
        "summary": "Operators inspect parked messages.",
    }


def _workload_client_parts(
    messages: dict[str, Any], channels: dict[str, Any], operations: dict[str, Any]
) -> None:
    """What a workload's raw NATS client uses besides publishing: its inbox, queries, notice delivery."""
    for kind, model in QUERY_TYPES.items():
        messages[f"query.{kind}"] = _message(kind, model, cloudevent=False)
    for name, model in ATTACH_TYPES.items():
        messages[f"attach.{name}"] = _message(name, model, cloudevent=False)
    for kind, model in DRILL_TYPES.items():
        messages[f"drill.{kind}"] = _message(kind, model, cloudevent=False)
    channels["inbox"] = _channel(
        f"{_TENANT_INBOX}.{{inbox}}",
        f"The tenant's reply inbox: replies to its requests come here. {_CONNECTING}",
        [
            *(f"query.{kind}" for kind in _QUERY_REPLIES),
            *(f"attach.{name}" for name in _ATTACH_REPLIES),
            *(f"drill.{kind}" for kind in _DRILL_REPLIES),
        ],
    )
    channels["drillStart"] = _channel(
        drill_start_subject("{tenant}", "{workload}"),
        "Request-reply (core NATS): the tenant sends its own workload a test notice, marked `drill` (no "
        "platform service acts on it); the reply is the drill's report so far.",
        ["drill.drill_request"],
    )
    operations["startDrill"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/drillStart"},
        "summary": "A tenant starts a drill on its workload; the platform replies with the report so far.",
        "reply": _reply("inbox", _DRILL_REPLIES),
    }
    channels["drillReport"] = _channel(
        drill_report_subject("{tenant}", "{workload}"),
        "Request-reply (core NATS): a drill's report: when the notice was delivered, how and when the "
        "workload answered.",
        ["drill.drill_query"],
    )
    operations["readDrillReport"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/drillReport"},
        "summary": "A tenant asks for a drill's report.",
        "reply": _reply("inbox", _DRILL_REPLIES),
    }
    channels["hintsQuery"] = _channel(
        hints_query_subject("{tenant}", "{workload}"),
        "Request-reply (core NATS): a workload's effective hints.",
        ["query.hints_query"],
    )
    operations["queryHints"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/hintsQuery"},
        "summary": "A workload asks for its effective hints; the registry replies.",
        "reply": _reply("inbox", _QUERY_REPLIES),
    }
    channels["deliver"] = _channel(
        f"{DELIVER_ROOT}.{{tenant}}.{{workload}}.{{kind}}",
        "The workload's notices, republished by JetStream the moment it stores them: the same messages "
        "as on the notices channel, with JetStream's Nats-Subject (the notices subject), Nats-Sequence "
        "and Nats-Time-Stamp headers added. Core NATS: what is sent while no process of the workload "
        "listens is not kept here; attach for it.",
        [f"{Family.NOTICE}.{kind}" for kind in MESSAGE_TYPES[Family.NOTICE]],
    )
    operations["receiveDeliveredNotices"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/deliver"},
        "summary": "A workload receives its notices as they are stored.",
        "description": f"Subscribe to `{DELIVER_ROOT}.{{tenant}}.{{workload}}.*` in queue group "
        f"`{DELIVER_GROUP}`, so the processes of one workload share its notices, before attaching; a "
        "reader that must see every notice (a metadata agent beside the workload) subscribes outside it.",
        "bindings": {"nats": {"queue": DELIVER_GROUP, "bindingVersion": NATS_BINDING_VERSION}},
    }
    channels["attach"] = _channel(
        attach_subject("{tenant}", "{workload}"),
        "Request-reply (core NATS): the workload's open notices (pending or deferred), a page a reply, "
        "from the registry. Subscribe to the deliver channel first, then ask with an empty body (or "
        "`{}`), then again with `after` set to each reply's `next_cursor` until it is null; attach again "
        "after every reconnect. A notice may come both ways: its notice_id tells a repeat.",
        ["attach.attach_request"],
    )
    operations["attach"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/attach"},
        "summary": "A workload asks for its open notices; the registry replies with a page of them.",
        "reply": _reply("inbox", _ATTACH_REPLIES),
    }


def _platform_parts(messages: dict[str, Any], channels: dict[str, Any], operations: dict[str, Any]) -> None:
    """What the platform tells itself on core NATS, without a stream."""
    messages["notices_recorded"] = _message("notices_recorded", NoticesRecorded, cloudevent=False)
    channels["recordedNotices"] = _channel(
        RECORDED_NOTICES,
        "Which notices the registry has just recorded, one message a batch; no stream keeps them.",
        ["notices_recorded"],
    )
    operations["receiveRecordedNotices"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/recordedNotices"},
        "summary": "Gateways wake the long polls and event streams waiting on these workloads' notices.",
    }
    messages["hints_recorded"] = _message("hints_recorded", HintsRecorded, cloudevent=False)
    channels["recordedHints"] = _channel(
        RECORDED_HINTS,
        "Whose hints the registry has just changed, one message a batch; no stream keeps them.",
        ["hints_recorded"],
    )
    operations["receiveRecordedHints"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/recordedHints"},
        "summary": "The dashboard learns of workloads without following every hint.",
    }
    messages["decisions_recorded"] = _message("decisions_recorded", DecisionsRecorded, cloudevent=False)
    channels["recordedDecisions"] = _channel(
        RECORDED_DECISIONS,
        "What the platform services have just decided, a few decisions a message, after each batch is "
        "recorded in the decision log; no stream keeps them.",
        ["decisions_recorded"],
    )
    operations["receiveRecordedDecisions"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/recordedDecisions"},
        "summary": "The dashboard shows decisions live.",
    }


def _security_schemes() -> dict[str, Any]:
    return {
        "tokenAsPassword": {
            "type": "userPassword",
            "description": "A WI token (`wi_<id>_<secret>`) as a NATS user and password: the user is "
            "the token's id (the 12 hex digits after `wi_`), the password the whole token. The same "
            "token works on the HTTP gateway.",
        },
        "bareToken": {
            "type": "apiKey",
            "in": "user",
            "description": "The whole WI token as NATS token authentication (the CONNECT `auth_token`, "
            "`nats://<token>@host` in a URL), for servers that check WI tokens themselves, such as "
            "through an auth callout.",
        },
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3 document of the bus, self-contained: every schema is in its components."""
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    _family_parts(messages, channels, operations)
    _workload_client_parts(messages, channels, operations)
    _platform_parts(messages, channels, operations)
    payloads: list[type[BaseModel]] = [m for types in MESSAGE_TYPES.values() for m in types.values()]
    payloads += [*QUERY_TYPES.values(), *ATTACH_TYPES.values(), *DRILL_TYPES.values()]
    payloads += [NoticesRecorded, HintsRecorded, DecisionsRecorded]
    schemas = {
        **_asyncapi_schema(component_schemas(payloads)),
        "CloudEventHeaders": _headers_schema(),
        "DeadLetterHeaders": _deadletter_headers_schema(),
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Workload Intelligence bus",
            "version": __version__,
            "description": "Hints from workloads, notices from the platform, responses, deployment requests "
            "and platform events on NATS JetStream, as CloudEvents 1.0 in binary mode. " + _CONNECTING,
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The nats-server that `wi up` starts by default.",
                "security": [{"$ref": "#/components/securitySchemes/tokenAsPassword"}],
            },
            "cluster": {
                "host": "{host}",
                "protocol": "nats",
                "description": "A NATS cluster of your own (`WI_NATS_URL`), whose authorization you "
                "configure along the same lines.",
                "variables": {"host": {"description": "host:port of a server of the cluster."}},
                "security": [
                    {"$ref": "#/components/securitySchemes/tokenAsPassword"},
                    {"$ref": "#/components/securitySchemes/bareToken"},
                ],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": messages,
            "securitySchemes": _security_schemes(),
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
