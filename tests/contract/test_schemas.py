"""``schemas/`` is generated from the models; a stale copy fails here."""

from __future__ import annotations

import json
from pathlib import Path

from wi.cli import main
from wi.contract import MESSAGE_TYPES
from wi.schema_export import asyncapi, generated_files

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
    assert document["asyncapi"] == "3.0.0"
    messages = document["components"]["messages"]
    files = generated_files()
    for family, kinds in MESSAGE_TYPES.items():
        for kind in kinds:
            message = messages[f"{family}.{kind}"]
            assert message["headers"] == {"$ref": "#/components/schemas/CloudEventHeaders"}
            assert f"v1/{message['payload']['$ref']}" in files
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
