"""A missing ../shared fixture folder: a skip that names it locally, an error in CI."""

import pytest

from .shared_files import require


def test_a_missing_folder_skips_locally_and_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="the compat files not found at .*gone"):
        require(tmp_path / "gone", "the compat files")
    assert require(tmp_path, "the compat files") == tmp_path


@pytest.mark.parametrize("value", ["true", "True", "1"])
def test_a_missing_folder_fails_in_ci(tmp_path, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true: the compat files not found"):
        require(tmp_path / "gone", "the compat files")
