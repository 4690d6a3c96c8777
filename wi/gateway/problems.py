"""Errors as RFC 9457 problem details, each naming the field and the rule it broke.

Statuses: 401 no or bad token; 403 another tenant's workload, or a tenant token on a platform route;
404 unknown notice; 409 a response after the deadline or contradicting an earlier one; 413 a body over
the limit; 422 invalid input.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from wi.contract import InvalidMessage, Problem

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

    def __init__(self, status: int, title: str, detail: str, errors: list[Problem] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []


def invalid(exc: InvalidMessage, prefix: str = "") -> ApiProblem:
    """A 422 for a message that broke the contract."""
    errors = [Problem(f"{prefix}{p.field}", p.rule, p.message) for p in exc.problems]
    return ApiProblem(422, "Invalid input", f"{len(errors)} rule(s) broken: {exc}", errors)


def problem_response(problem: ApiProblem, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON response for a problem."""
    body = ProblemDetails(
        type=f"urn:wi:problem:{problem.status}",
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
        errors=[FieldError(field=e.field, rule=e.rule, message=e.message) for e in problem.errors],
    )
    return JSONResponse(
        body.model_dump(), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


_TITLES = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    422: "Invalid input",
}


def install(app: FastAPI) -> None:
    """Renders every error of the app as problem details."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            Problem(".".join(str(p) for p in e["loc"]) or "$", e["type"], e["msg"]) for e in exc.errors()
        ]
        return problem_response(ApiProblem(422, "Invalid input", "; ".join(str(e) for e in errors), errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _TITLES.get(exc.status_code, "Error")
        return problem_response(ApiProblem(exc.status_code, title, str(exc.detail)), dict(exc.headers or {}))


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
