"""The v1 models: bounds, errors that name the field and the rule, and a complete, documented catalog."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.samples import NOW, samples
from wi.contract import (
    MESSAGE_TYPES,
    CostOffer,
    Evictability,
    Family,
    InvalidMessage,
    Message,
    Priority,
    parse_message,
)
from wi.schema_export import json_schemas


def test_samples_cover_every_message_type() -> None:
    covered = {(m.family, m.kind) for m in samples()}
    catalog = {(family, kind) for family, kinds in MESSAGE_TYPES.items() for kind in kinds}
    assert covered == catalog


@pytest.mark.parametrize("message", samples(), ids=lambda m: m.ce_type)
def test_every_message_round_trips_through_json(message: Message) -> None:
    parsed = parse_message(message.family, message.model_dump_json())
    assert parsed == message
    assert type(parsed) is type(message)


def _problems(family: Family, data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(family, json.dumps(data))
    return [(p.field, p.rule) for p in caught.value.problems]


HINT = {"kind": "evictability", "tenant": "acme", "workload": "trainer", "evictable": True}


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"min_notice_s": -1}, "min_notice_s", "greater_than_equal"),
        ({"min_notice_s": 10**9}, "min_notice_s", "less_than_equal"),
        ({"surprise": 1}, "surprise", "extra_forbidden"),
        ({"tenant": "acme.other"}, "tenant", "string_pattern_mismatch"),
        ({"workload": "*"}, "workload", "string_pattern_mismatch"),
        ({"workload": ">"}, "workload", "string_pattern_mismatch"),
        ({"tenant": "A" * 64}, "tenant", "string_too_long"),
        ({"issued_at": "2026-11-22T12:00:00"}, "issued_at", "datetime_format"),
        ({"hint_id": "has space"}, "hint_id", "string_pattern_mismatch"),
        ({"ttl_s": 0}, "ttl_s", "greater_than_equal"),
        ({"kind": "teleport"}, "kind", "unknown_kind"),
    ],
)
def test_a_broken_rule_names_its_field_and_rule(change: dict[str, Any], field: str, rule: str) -> None:
    assert (field, rule) in _problems(Family.HINT, {**HINT, **change})


def test_every_broken_rule_is_reported_at_once() -> None:
    problems = _problems(Family.HINT, {**HINT, "min_notice_s": -1, "checkpoint_s": -1, "extra": 1})
    assert {field for field, _ in problems} == {"min_notice_s", "checkpoint_s", "extra"}


@pytest.mark.parametrize(
    ("family", "data", "field"),
    [
        (
            Family.HINT,
            {
                "kind": "scaling",
                "tenant": "a",
                "workload": "w",
                "stateless": True,
                "min_instances": 5,
                "max_instances": 2,
            },
            "min_instances",
        ),
        (Family.HINT, {"kind": "region", "tenant": "a", "workload": "w", "allowed": []}, "allowed"),
        (
            Family.HINT,
            {
                "kind": "delay_tolerance",
                "tenant": "a",
                "workload": "w",
                "start_within_s": 1,
                "issued_at": NOW.isoformat(),
                "complete_by": "2020-01-01T00:00:00Z",
            },
            "complete_by",
        ),
        (
            Family.NOTICE,
            {
                "kind": "eviction",
                "tenant": "a",
                "workload": "w",
                "instance": "i",
                "not_before": NOW.isoformat(),
                "reason": "r",
                "responses": ["accept"],
            },
            "responses",
        ),
        (
            Family.NOTICE,
            {
                "kind": "maintenance",
                "tenant": "a",
                "workload": "w",
                "instance": "i",
                "type": "reboot",
                "not_before": NOW.isoformat(),
                "expected_duration_s": 1,
                "responses": ["defer"],
            },
            "responses",
        ),
        (
            Family.NOTICE,
            {
                "kind": "power_event",
                "tenant": "a",
                "workload": "w",
                "power_domain": "p",
                "type": "thermal",
                "starts_at": NOW.isoformat(),
            },
            "cap_watts",
        ),
        (
            Family.NOTICE,
            {
                "kind": "placement",
                "tenant": "a",
                "workload": "w",
                "deployment": "d",
                "outcome": "deferred",
                "reason": "busy",
            },
            "start_at",
        ),
        (
            Family.NOTICE,
            {
                "kind": "placement",
                "tenant": "a",
                "workload": "w",
                "deployment": "d",
                "outcome": "rejected",
                "instances": [{"region": "useast", "pool": "spot"}],
                "reason": "full",
            },
            "instances",
        ),
    ],
)
def test_cross_field_rules_name_their_field(family: Family, data: dict[str, Any], field: str) -> None:
    assert field in [f for f, _ in _problems(family, data)]


def test_not_json_and_not_an_object_are_named() -> None:
    with pytest.raises(InvalidMessage, match=r"\$: not valid JSON"):
        parse_message(Family.HINT, b"{nope")
    with pytest.raises(InvalidMessage, match="kind: every message names its kind"):
        parse_message(Family.HINT, b"{}")


def test_nan_and_infinity_are_out_of_bounds() -> None:
    for bad in ("NaN", "Infinity"):
        with pytest.raises(InvalidMessage, match="target"):
            parse_message(
                Family.HINT, f'{{"kind":"availability","tenant":"a","workload":"w","target":{bad}}}'
            )


def test_a_cost_offer_commits_only_its_own_workload() -> None:
    with pytest.raises(ValueError, match="commit: every hint must belong"):
        CostOffer(
            tenant="a",
            workload="w",
            offer_id="o",
            discount_pct=10,
            expires_at=NOW,
            commit=[Priority(tenant="a", workload="other", level="low")],
        )


def test_messages_are_immutable() -> None:
    hint = Evictability(tenant="a", workload="w", evictable=True)
    with pytest.raises(ValueError, match="frozen"):
        hint.evictable = False  # type: ignore[misc]


def _unbounded(name: str, schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    """Paths of scalars in a schema that have no bound, following $refs and unions."""
    if "$ref" in schema:
        return _unbounded(name, defs[schema["$ref"].split("/")[-1]], defs)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return [p for option in schema[union] for p in _unbounded(name, option, defs)]
    if "const" in schema or "enum" in schema:
        return []
    kind = schema.get("type")
    if kind == "string":
        bounded = "maxLength" in schema or schema.get("format") == "date-time"
        return [] if bounded else [name]
    if kind in ("integer", "number"):
        low = "minimum" in schema or "exclusiveMinimum" in schema
        high = "maximum" in schema or "exclusiveMaximum" in schema
        return [] if low and high else [name]
    if kind == "array":
        return ([] if "maxItems" in schema else [name]) + _unbounded(f"{name}[]", schema["items"], defs)
    if (
        kind == "object"
        and "additionalProperties" in schema
        and isinstance(schema["additionalProperties"], dict)
    ):
        limit = [] if "maxProperties" in schema else [name]
        return limit + _unbounded(f"{name}{{}}", schema["additionalProperties"], defs)
    if kind == "object" or "properties" in schema:
        return [
            p
            for key, sub in schema.get("properties", {}).items()
            for p in _unbounded(f"{name}.{key}", sub, defs)
        ]
    return []


@pytest.mark.parametrize("path", sorted(json_schemas()))
def test_every_field_is_bounded_and_documented(path: str) -> None:
    schema = json_schemas()[path]
    defs = schema.get("$defs", {})
    assert _unbounded(path, schema, defs) == []
    for model in [schema, *defs.values()]:
        undocumented = [key for key, sub in model.get("properties", {}).items() if not sub.get("description")]
        assert undocumented == [], f"{path}: {model.get('title')} lacks descriptions for {undocumented}"
        assert model.get("additionalProperties") is False or "enum" in model, (
            f"{path}: unknown fields allowed"
        )
