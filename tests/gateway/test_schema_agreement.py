"""The gateway accepts exactly what the published schemas accept (plus the cross-field rules they describe).

Instances come from `schemas/v1` itself: valid ones drawn by a small generator that reads only the schema
keywords our schemas use (hypothesis-jsonschema no longer runs on current Hypothesis), invalid ones made
by putting any JSON value into any field of a valid one. The oracle is an independent validator
(jsonschema_rs, with formats asserted) and the few rules the schemas state in words: a hint issued no
later than the platform's clock plus the skew, min <= max for scaling ranges, complete_by after
issued_at. The subject is the running gateway, over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.platform import Running
from wi.contract import MAX_CLOCK_SKEW_S, MESSAGE_TYPES, Family, utc_now

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "v1"
CALLER = {"tenant": "acme", "workload": "web"}
ENVELOPE = frozenset(CALLER)

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
"""Any JSON value."""

_special = st.sampled_from(
    ["120", "yes", "on", 1, 0, 1.0, 120.0, -1, 1e30, "2026-11-22T12:00", "2026-11-22 12:00:00Z", "", []]
)
"""Values that lax parsers take for something they are not."""


def from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Values valid for a JSON Schema built of the keywords WI's schemas use; fails loudly on any other."""
    root = root or schema
    if "$ref" in schema:
        return from_schema(root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(option, root) for option in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if kind == "integer":
            return st.integers(low, high)
        return st.floats(
            low,
            high,
            exclude_min="exclusiveMinimum" in schema,
            exclude_max="exclusiveMaximum" in schema,
            allow_nan=False,
        )
    if kind == "string":
        if schema.get("format") == "date-time":
            moments = st.datetimes(min_value=datetime(1970, 1, 2), timezones=st.just(UTC))
            return moments.map(lambda moment: moment.isoformat().replace("+00:00", "Z"))
        if "pattern" in schema:
            text = st.from_regex(schema["pattern"], fullmatch=True)
        else:
            text = st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
        return text.filter(
            lambda value: schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9)
        )
    if kind == "array":
        items = from_schema(schema["items"], root)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object" and "properties" in schema:
        required = set(schema.get("required", ()))
        fields = {name: from_schema(sub, root) for name, sub in schema["properties"].items()}
        return st.fixed_dictionaries(
            {name: value for name, value in fields.items() if name in required},
            optional={name: value for name, value in fields.items() if name not in required},
        )
    raise AssertionError(f"the generator does not know {schema}")


@cache
def _schema(family: Family, kind: str, tenant_message: bool) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / family / f"{kind}.json").read_text())
    if tenant_message:  # the caller's own workload: the token and the path fix them
        schema["properties"] = {**schema["properties"], **{k: {"const": v} for k, v in CALLER.items()}}
    return schema


@cache
def _oracle(family: Family, kind: str, tenant_message: bool) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(_schema(family, kind, tenant_message), validate_formats=True)


def _instances(
    family: Family, tenant_message: bool, kinds: frozenset[str] | None = None
) -> st.SearchStrategy[tuple[str, dict[str, Any], bool]]:
    """(kind, instance, mutated): valid instances of the family's kinds (all unless named), and ones with a
    field set to any value."""

    def of_kind(kind: str) -> st.SearchStrategy[tuple[str, dict[str, Any], bool]]:
        schema = _schema(family, kind, tenant_message)
        fields = [*sorted(set(schema["properties"]) - ENVELOPE), "unknown_field"]
        valid = from_schema(schema)
        mutated = st.tuples(valid, st.sampled_from(fields), _json | _special).map(
            lambda t: {**t[0], t[1]: t[2]}
        )
        return st.one_of(
            valid.map(lambda instance: (kind, instance, False)),
            mutated.map(lambda instance: (kind, instance, True)),
        )

    return st.sampled_from(sorted(kinds or MESSAGE_TYPES[family])).flatmap(of_kind)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("z", "Z")) if isinstance(value, str) else None


def _stated_rules_hold(instance: dict[str, Any], now: datetime) -> bool:
    """The rules the schemas state in words (descriptions) rather than in keywords."""
    issued = _time(instance.get("issued_at")) or now
    if issued > now + timedelta(seconds=MAX_CLOCK_SKEW_S - 30):  # 30 s: the request's own time in flight
        return False
    complete_by = _time(instance.get("complete_by"))
    if complete_by is not None and complete_by <= issued:
        return False
    for low, high in (("min_instances", "max_instances"), ("min_cores", "max_cores")):
        if (
            instance.get(low) is not None
            and instance.get(high) is not None
            and instance[low] > instance[high]
        ):
            return False
    return not (
        instance.get("kind") == "scaling"
        and instance.get("min_instances", 1) > instance.get("max_instances", 1)
    )


@pytest.fixture
async def post(running: Running) -> AsyncIterator[Callable[[str, str, dict[str, Any]], Any]]:
    async with httpx.AsyncClient(base_url=running.endpoints.http_url, timeout=30) as http:

        async def send(path: str, token: str, instance: dict[str, Any]) -> httpx.Response:
            body = json.dumps(instance, allow_nan=False)
            headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
            return await http.post(path, content=body, headers=headers)

        yield send


async def _check(
    post: Callable[[str, str, dict[str, Any]], Any],
    path: str,
    token: str,
    family: Family,
    tenant_message: bool,
    case: tuple[str, dict[str, Any], bool],
    route_kind: str | None = None,
) -> None:
    """``route_kind``: the one kind a route takes, and its default when the body names none."""
    kind, instance, _ = case
    valid_kind = instance.get("kind", route_kind) == kind
    schema_valid = valid_kind and _oracle(family, kind, tenant_message).is_valid(instance)
    expected = schema_valid and _stated_rules_hold(instance, utc_now())
    reply = await post(path, token, instance)
    assert reply.status_code in (202, 422), reply.text
    assert (reply.status_code == 202) == expected, (
        f"schemas say {'valid' if schema_valid else 'invalid'} (stated rules "
        f"{'hold' if expected or not schema_valid else 'broken'}), gateway said {reply.status_code}: "
        f"{json.dumps(instance)} -> {reply.text}"
    )


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(case=_instances(Family.HINT, tenant_message=True))
async def test_the_gateway_takes_exactly_the_hints_the_schemas_take(
    running: Running, post: Callable[[str, str, dict[str, Any]], Any], case: tuple[str, dict[str, Any], bool]
) -> None:
    await _check(post, "/v1/workloads/web/hints", running.acme, Family.HINT, True, case)


@SETTINGS
@given(case=_instances(Family.DEPLOYMENT, tenant_message=True, kinds=frozenset({"deployment_request"})))
async def test_the_gateway_takes_exactly_the_deployment_requests_the_schemas_take(
    running: Running, post: Callable[[str, str, dict[str, Any]], Any], case: tuple[str, dict[str, Any], bool]
) -> None:
    path = "/v1/workloads/web/deployments"
    await _check(post, path, running.acme, Family.DEPLOYMENT, True, case, route_kind="deployment_request")


@SETTINGS
@given(case=_instances(Family.EVENT, tenant_message=False))
async def test_the_gateway_takes_exactly_the_platform_events_the_schemas_take(
    running: Running, post: Callable[[str, str, dict[str, Any]], Any], case: tuple[str, dict[str, Any], bool]
) -> None:
    await _check(post, "/v1/platform/events", running.operator, Family.EVENT, False, case)
