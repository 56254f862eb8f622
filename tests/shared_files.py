"""The fixture folders that live beside the checkout, in ``../shared`` (compat files written
by other projects, the SDK API reference). Locally a missing one skips the tests that need
it, saying what is missing; in CI (``CI=true``) it is an error, so nothing skips unseen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``, as CI services set)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_message(path: Path, what: str) -> str:
    """What to say when ``path`` (holding ``what``) is not there."""
    return (f"{what} not found at {path}: put the shared fixture folder beside the checkout "
            f"(expected {SHARED})")


def require(path: Path, what: str) -> Path:
    """``path`` when it exists; otherwise skip the test (locally) or fail it (in CI)."""
    if not path.exists():
        message = missing_message(path, what)
        if in_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return path
