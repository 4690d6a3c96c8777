"""The HTTP hint-and-notice gateway: what workloads and people use when they do not speak NATS."""

from .app import DEFAULT_MAX_BODY_BYTES, create_app
from .problems import ApiProblem, ProblemDetails

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ApiProblem", "ProblemDetails", "create_app"]
