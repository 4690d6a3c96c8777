"""Whatever bytes arrive, parsing ends in a message or in InvalidMessage naming the field and the rule."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.samples import NOW, samples
from wi.contract import (
    MAX_CLOCK_SKEW_S,
    MAX_JSON_DEPTH,
    Family,
    InvalidMessage,
    Message,
    parse_message,
)

WHO = {"tenant": "acme", "workload": "w"}


def _rules(family: Family, body: bytes | str) -> list[tuple[str, str]]:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(family, body)
    return [(p.field, p.rule) for p in caught.value.problems]


def _nested(depth: int) -> bytes:
    return b'{"kind":"priority","tenant":"acme","workload":"w","level":' + b"[" * depth + b"]" * depth + b"}"


def test_json_nested_past_the_limit_is_refused_as_too_deep() -> None:
    assert _rules(Family.HINT, _nested(1000)) == [("$", "json_too_deep")]
    assert _rules(Family.HINT, _nested(MAX_JSON_DEPTH + 10)) == [("$", "json_too_deep")]


def test_json_nested_within_the_limit_is_judged_by_the_contract() -> None:
    assert _rules(Family.HINT, _nested(50)) == [("level", "enum")]


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00", b"", b"{", b'{"kind": "priority",}', "\ud800".encode(errors="surrogatepass")],
    ids=["utf16-bom", "empty", "unclosed", "trailing-comma", "lone-surrogate"],
)
def test_undecodable_bytes_are_invalid_json(body: bytes) -> None:
    assert _rules(Family.HINT, body) == [("$", "json_invalid")]


@pytest.mark.parametrize("body", ["[]", "null", "42", '"priority"', "true"])
def test_a_message_is_an_object(body: str) -> None:
    assert _rules(Family.HINT, body) == [("$", "object_type")]


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(InvalidMessage, match="a hint kind is one of availability, clear") as caught:
        parse_message(Family.HINT, json.dumps({**WHO, "kind": "x" * 10_000}))
    assert [(p.field, p.rule) for p in caught.value.problems] == [("kind", "unknown_kind")]
    assert len(str(caught.value)) < 1000, "the message does not echo the input"


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("min_notice_s", "120", "int_type"),
        ("min_notice_s", 120.5, "int_type"),
        ("min_notice_s", 10**30, "less_than_equal"),
        ("evictable", "yes", "bool_type"),
        ("evictable", "on", "bool_type"),
        ("evictable", 1, "bool_type"),
        ("issued_at", 1_700_000_000, "datetime_type"),
    ],
)
def test_types_are_strict_as_the_schemas_say(field: str, value: object, rule: str) -> None:
    body = {**WHO, "kind": "evictability", "evictable": True, field: value}
    assert (field, rule) in _rules(Family.HINT, json.dumps(body))


def test_every_broken_rule_is_reported_at_once() -> None:
    body = {**WHO, "kind": "evictability", "evictable": "yes", "min_notice_s": -1, "extra": 1}
    assert set(_rules(Family.HINT, json.dumps(body))) == {
        ("evictable", "bool_type"),
        ("min_notice_s", "greater_than_equal"),
        ("extra", "extra_forbidden"),
    }


def test_issued_at_far_ahead_of_the_platform_clock_is_refused() -> None:
    ahead = NOW + timedelta(seconds=MAX_CLOCK_SKEW_S + 1)
    body = json.dumps({**WHO, "kind": "priority", "level": "critical", "issued_at": ahead.isoformat()})
    with pytest.raises(InvalidMessage) as caught:
        parse_message(Family.HINT, body, received_at=NOW)
    assert [(p.field, p.rule) for p in caught.value.problems] == [("issued_at", "clock_skew")]
    year_9999 = body.replace(ahead.isoformat(), "9999-12-31T23:59:59Z")
    with pytest.raises(InvalidMessage, match="clock_skew"):
        parse_message(Family.HINT, year_9999, received_at=NOW)


def test_issued_at_within_the_skew_or_in_the_past_is_fine() -> None:
    for issued in (NOW + timedelta(seconds=MAX_CLOCK_SKEW_S), NOW - timedelta(days=400)):
        body = json.dumps({**WHO, "kind": "priority", "level": "low", "issued_at": issued.isoformat()})
        assert parse_message(Family.HINT, body, received_at=NOW).issued_at == issued


@settings(max_examples=400, deadline=None)
@given(family=st.sampled_from(list(Family)), body=st.binary(max_size=512))
def test_any_bytes_end_in_a_message_or_invalid_message(family: Family, body: bytes) -> None:
    try:
        parse_message(family, body)
    except InvalidMessage as exc:
        assert exc.problems and all(p.field and p.rule for p in exc.problems)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(message=st.sampled_from(samples()), field=st.text(max_size=20), value=_json_values)
def test_any_json_value_in_any_field_ends_in_a_message_or_invalid_message(
    message: Message, field: str, value: object
) -> None:
    body = json.loads(message.model_dump_json())
    body[field if field else "kind"] = value
    try:
        parse_message(message.family, json.dumps(body))
    except InvalidMessage as exc:
        assert exc.problems
