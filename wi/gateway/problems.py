"""Errors as RFC 9457 problem details, each naming the field and the rule it broke.

Statuses: 400 a body that is not JSON, or nests too deeply; 401 no or bad token; 403 another tenant's
workload, or a tenant token on a platform route; 404 unknown notice or route; 405 a method the route does
not take (``Allow`` lists those it does); 409 a response after the deadline or contradicting an earlier
one; 413 a body over the limit; 415 a body that is not ``application/json``; 422 invalid input; 503 NATS
or the database unavailable (with ``Retry-After``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from wi.contract import Problem

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One broken rule."""

    field: Annotated[str, Field(max_length=200)]
    """The field, as a dotted path ('$' for the whole body)."""
    rule: Annotated[str, Field(max_length=64)]
    """The rule broken (e.g. greater_than_equal, extra_forbidden, late, conflict)."""
    message: Annotated[str, Field(max_length=2000)]
    """What is wrong, for people."""


class ProblemDetails(BaseModel):
    """An error response (RFC 9457)."""

    type: str = "about:blank"
    """A URI naming the kind of problem."""
    title: str
    """A short summary of the kind of problem."""
    status: int
    """The HTTP status."""
    detail: str
    """What went wrong in this case."""
    errors: list[FieldError] = []
    """Each broken rule, where the input was at fault."""


class ApiProblem(Exception):
    """Raised by routes; rendered as problem details."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers


class Unavailable(Exception):
    """A dependency (``nats``, ``database``, or ``registry`` catching up) did not answer; rendered as 503 with
    Retry-After."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(detail)
        self.dependency = dependency
        self.detail = detail


RETRY_AFTER_S = 5
"""What a 503 tells clients to wait before they try again."""
UNDECODABLE = frozenset({"json_invalid", "json_too_deep"})
"""Rules that make a body a 400 (not JSON at all) rather than a 422 (JSON that breaks the contract)."""


def invalid(problems: list[Problem]) -> ApiProblem:
    """A 400 for a body that is not JSON (or nests too deeply), else a 422, naming every broken rule."""
    if any(p.rule in UNDECODABLE for p in problems):
        return ApiProblem(400, "Bad request", "; ".join(str(p) for p in problems), problems)
    detail = f"{len(problems)} rule(s) broken: " + "; ".join(str(p) for p in problems)
    return ApiProblem(422, "Invalid input", detail, problems)


def unavailable(exc: Unavailable) -> ApiProblem:
    """The 503 for a dependency that did not answer."""
    return ApiProblem(
        503,
        "Service unavailable",
        f"{exc.dependency} is unavailable: {exc.detail}; try again in {RETRY_AFTER_S} s",
        [Problem("$", f"{exc.dependency}_unavailable", exc.detail)],
        {"Retry-After": str(RETRY_AFTER_S)},
    )


def problem_response(problem: ApiProblem) -> JSONResponse:
    """The JSON response for a problem."""
    body = ProblemDetails(
        type=f"urn:wi:problem:{problem.status}",
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
        errors=[FieldError(field=e.field, rule=e.rule, message=e.message) for e in problem.errors],
    )
    return JSONResponse(
        body.model_dump(), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    503: "Service unavailable",
}


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(app: FastAPI, scope: Scope) -> str:
    """Every method some route takes on this path (Starlette names only the first route's)."""
    return ", ".join(
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in app.router.routes)
    )


def install(app: FastAPI) -> None:
    """Renders every error of the app as problem details."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        if exc.status == 401:
            exc.headers = {**(exc.headers or {}), "WWW-Authenticate": "Bearer"}
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            Problem(".".join(str(p) for p in e["loc"]) or "$", e["type"], e["msg"]) for e in exc.errors()
        ]
        return problem_response(ApiProblem(422, "Invalid input", "; ".join(str(e) for e in errors), errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _TITLES.get(exc.status_code, "Error")
        headers = dict(exc.headers or {})
        errors = []
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(app, request.scope)
            errors = [Problem("$", "method_not_allowed", f"this route takes {headers['Allow']}")]
        problem = ApiProblem(exc.status_code, title, str(exc.detail), errors, headers)
        return problem_response(problem)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the problem responses a route may give."""
    return {
        status: {
            "model": ProblemDetails,
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_JSON: {}},
        }
        for status in statuses
    }
