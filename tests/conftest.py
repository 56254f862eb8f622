"""Shared test setup: the fixtures come from clarifai_connect.testing (a pytest11 plugin)."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    """Real annotation files written by other projects (read-only)."""
    path = SHARED / "compat"
    if not path.exists():
        pytest.skip("shared/compat is not beside the checkout")
    return path
