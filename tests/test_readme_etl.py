"""The README's ETL task example runs as it is, against the embedded local server (its data
and the sync state in a temporary folder), and prints what its comments say."""

from __future__ import annotations

import ast
import contextlib
import io

from .readme_snippets import README, snippets


def _block(name: str) -> str:
    found = [s for s in snippets(README.read_text()) if s.name == name]
    assert len(found) == 1 and found[0].language == "python", f"no python block '{name}'"
    return found[0].code


def test_the_etl_task_example_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where `local` keeps data
    monkeypatch.setenv("CLARIFAI_CONNECT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_block("etl-task"), str(README), "exec"), {"__name__": "readme"})
    first, second, table = out.getvalue().splitlines()
    first, second = ast.literal_eval(first), ast.literal_eval(second)
    assert (first["created"], first["filtered"], first["failed"]) == (2, 1, 0)
    assert (second["skipped"], second["created"]) == (2, 0)
    assert sorted(ast.literal_eval(table), key=lambda r: r["inputid"]) == [
        {"inputid": "q1", "concepts": ["cat"]}, {"inputid": "q2", "concepts": ["dog"]}]
    assert (tmp_path / "data").exists() and any((tmp_path / "state").iterdir())
