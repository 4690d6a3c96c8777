"""Tests that need something outside the code (PostgreSQL, Node.js) skip without it, but not in CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
"""CI=true: every test must run, so a missing service or tool fails the test instead of skipping it."""


def unavailable(reason: str) -> NoReturn:
    """Skips the calling test for ``reason``; under CI=true, fails it instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)
