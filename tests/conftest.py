"""Shared test setup: the fixtures come from clarifai_connect.testing (a pytest11 plugin)."""

from pathlib import Path

import pytest

from .shared_files import SHARED, require


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    """Real annotation files written by other projects (read-only), in ../shared/compat."""
    return require(SHARED / "compat", "the compat annotation files (shared/compat)")
