"""``schemas/`` is generated from the models; a stale copy fails here."""

from __future__ import annotations

import json
from pathlib import Path

from wi.cli import main
from wi.contract import MESSAGE_TYPES
from wi.schema_export import asyncapi, generated_files, render

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_committed_schemas_are_what_the_export_command_writes(tmp_path: Path) -> None:
    assert main(["schemas", "export", "--out", str(tmp_path)]) == 0
    fresh, committed = _tree(tmp_path), _tree(SCHEMAS)
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert stale == [], f"schemas/ is stale in {stale}: run `make schemas` (wi schemas export) and commit"


def test_export_removes_files_of_types_that_no_longer_exist(tmp_path: Path) -> None:
    gone = tmp_path / "v1" / "hint" / "retired.json"
    gone.parent.mkdir(parents=True)
    gone.write_text("{}")
    main(["schemas", "export", "--out", str(tmp_path)])
    assert not gone.exists()


def test_asyncapi_names_every_message_and_its_headers() -> None:
    document = asyncapi()
    assert document["asyncapi"].startswith("3.")
    messages = document["components"]["messages"]
    schemas = document["components"]["schemas"]
    for family, kinds in MESSAGE_TYPES.items():
        for kind, model in kinds.items():
            message = messages[f"{family}.{kind}"]
            assert message["headers"] == {"$ref": "#/components/schemas/CloudEventHeaders"}
            assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
            assert schemas[model.__name__]["required"][0] == "kind"
    headers = document["components"]["schemas"]["CloudEventHeaders"]
    assert {
        "ce-specversion",
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-time",
        "Nats-Msg-Id",
        "traceparent",
    } <= set(headers["required"])
    addresses = {name: channel["address"] for name, channel in document["channels"].items()}
    assert addresses["hints"] == "wi.v1.hints.{tenant}.{workload}.{kind}"
    assert addresses["events"] == "wi.v1.events.{kind}"
    for operation in document["operations"].values():
        assert operation["channel"]["$ref"].removeprefix("#/channels/") in document["channels"]


def test_every_schema_file_is_json_with_an_id() -> None:
    for name, text in generated_files().items():
        assert json.loads(text).get("$id") or name.endswith("asyncapi.json")


def test_asyncapi_discriminators_are_property_names_and_the_standalone_schemas_keep_openapis() -> None:
    document = render(asyncapi())
    assert '"discriminator": "kind"' in document and '"propertyName"' not in document
    view = json.loads(generated_files()["v1/query/hints_view.json"])
    assert view["properties"]["workload_hints"]["items"]["discriminator"]["propertyName"] == "kind"


def test_asyncapi_describes_what_a_raw_nats_client_of_a_tenant_uses() -> None:
    document = asyncapi()
    channels = document["channels"]
    assert channels["attach"]["address"] == "wi.v1.attach.{tenant}.{workload}"
    assert channels["deliver"]["address"] == "wi.v1.deliver.{tenant}.{workload}.{kind}"
    assert channels["hintsQuery"]["address"] == "wi.v1.query.hints.{tenant}.{workload}"
    assert channels["inbox"]["address"] == "_INBOX.{tenant}.{inbox}"
    assert "`_INBOX.{tenant}`" in document["info"]["description"]
    replies = {
        name: [m["$ref"].rsplit("/", 1)[-1] for m in document["operations"][name]["reply"]["messages"]]
        for name in ("attach", "queryHints")
    }
    assert replies == {
        "attach": ["attach_reply", "attach_error"],
        "queryHints": ["hints_view", "query_error"],
    }
    assert document["operations"]["receiveDeliveredNotices"]["bindings"]["nats"]["queue"] == "wi-sdk"
    schemes = document["components"]["securitySchemes"]
    assert {name: scheme["type"] for name, scheme in schemes.items()} == {
        "tokenAsPassword": "userPassword",
        "bareToken": "apiKey",
    }
    for server in document["servers"].values():
        for requirement in server["security"]:
            assert requirement["$ref"].removeprefix("#/components/securitySchemes/") in schemes
