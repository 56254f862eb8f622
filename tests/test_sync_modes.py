"""Sync modes over the real local server: create-missing, --update, --delete (and its
refusals), --dry-run; bad rows and missing files reported while the rest lands; the report
file; the CLI and its YAML settings file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from clarifai_grpc.grpc.api import service_pb2
from click.testing import CliRunner

import clarifai_connect
from clarifai_connect.cli import cli
from clarifai_connect.engine import RunReport
from clarifai_connect.errors import ConfigError

from .sync_support import app_content, class_folders, coco_file, png, source_content


@pytest.fixture
def target(clarifai_server, clarifai_app):
    return {"app": f"{clarifai_app.user_id}/{clarifai_app.app_id}",
            "base_url": clarifai_server.base_url, "pat": clarifai_server.keys[0]}


@pytest.fixture
def run_sync(target, tmp_path):
    def run(source, **kwargs) -> RunReport:
        kwargs.setdefault("state", tmp_path / "state.sqlite")
        report = clarifai_connect.sync(str(source), **target, **kwargs)
        assert report.read == report.created + report.updated + report.skipped + report.failed
        return report
    return run


def _write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["inputid,input,concepts"] + [f'{i},"{text}","{labels}"' for i, text, labels in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _texts(raw, app) -> dict[str, str]:
    resp = raw.call("ListInputs", service_pb2.ListInputsRequest(
        user_app_id=app.user_app_id, per_page=1000))
    return {i.id: i.data.text.raw for i in resp.inputs}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_update_resends_only_changed_items(run_sync, clarifai_raw, clarifai_app, tmp_path):
    rows = [(f"t{i}", f"text number {i}", "a,b" if i % 2 else "a") for i in range(6)]
    source = _write_csv(tmp_path / "t.csv", rows)
    assert run_sync(source).created == 6
    rows[1] = ("t1", "text number 1", "c")  # labels changed
    rows[2] = ("t2", "a new text", "a")  # content changed
    _write_csv(source, rows)

    plain = run_sync(source, report=tmp_path / "plain.jsonl")
    assert (plain.skipped, plain.updated, plain.created) == (6, 0, 0)
    changed = [e for e in _lines(tmp_path / "plain.jsonl") if "status" in e]
    assert {e["id"] for e in changed} == {"t1", "t2"}
    assert all("--update" in e["reason"] for e in changed)
    assert _texts(clarifai_raw, clarifai_app)["t2"] == "text number 2"

    updated = run_sync(source, update=True)
    assert (updated.updated, updated.skipped, updated.failed) == (2, 4, 0)
    assert app_content(clarifai_raw, clarifai_app) == source_content(str(source))
    assert _texts(clarifai_raw, clarifai_app)["t2"] == "a new text"
    assert run_sync(source, update=True).skipped == 6


def test_update_replaces_regions(run_sync, clarifai_raw, clarifai_app, tmp_path):
    path = coco_file(tmp_path / "coco", images=5, boxes_per_image=2)
    assert run_sync(path).annotations == 10
    doc = json.loads(path.read_text())
    doc["annotations"] = [a for a in doc["annotations"] if a["id"] != 1]
    doc["annotations"][0]["bbox"] = [0, 0, 5, 5]
    path.write_text(json.dumps(doc))
    report = run_sync(path, update=True)
    assert (report.updated, report.skipped) == (1, 4), report.summary()
    assert app_content(clarifai_raw, clarifai_app) == source_content(str(path))


def test_delete_removes_inputs_gone_from_the_source(run_sync, clarifai_raw, clarifai_app,
                                                    tmp_path):
    root = class_folders(tmp_path / "imgs", {"x": 10, "y": 10})
    assert run_sync(root).created == 20
    gone = sorted((root / "x").iterdir())[:3]
    for path in gone:
        path.unlink()
    # Without --delete nothing goes; a dry run shows what would.
    kept = run_sync(root)
    assert (kept.skipped, kept.deleted, kept.to_delete) == (17, 0, 0)
    plan = run_sync(root, delete=True, dry_run=True)
    assert (plan.to_delete, plan.deleted) == (3, 0)
    assert len(app_content(clarifai_raw, clarifai_app)) == 20

    report = run_sync(root, delete=True, report=tmp_path / "r.jsonl")
    assert (report.deleted, report.skipped, report.read) == (3, 17, 17)
    assert report.ok
    assert app_content(clarifai_raw, clarifai_app) == source_content(str(root))
    deleted = [e for e in _lines(tmp_path / "r.jsonl") if e.get("status") == "deleted"]
    assert sorted(e["source"] for e in deleted) == sorted(str(p) for p in gone)
    assert _lines(tmp_path / "r.jsonl")[-1]["summary"]["deleted"] == 3


def test_delete_is_refused_after_errors_and_over_the_cap(run_sync, clarifai_raw, clarifai_app,
                                                        tmp_path):
    root = class_folders(tmp_path / "imgs", {"x": 6})
    assert run_sync(root).created == 6
    for path in sorted((root / "x").iterdir())[:4]:
        path.unlink()
    (root / "x" / "broken.png").write_bytes(b"")  # a problem: the run has an error
    refused = run_sync(root, delete=True)
    assert refused.failed == 1 and refused.deleted == 0 and not refused.ok
    assert any("--delete refused" in e for e in refused.errors)
    (root / "x" / "broken.png").unlink()
    capped = run_sync(root, delete=True, max_delete=3)
    assert capped.deleted == 0 and capped.exit_code == 1
    assert any("--max-delete 3" in e for e in capped.errors)
    assert len(app_content(clarifai_raw, clarifai_app)) == 6
    allowed = run_sync(root, delete=True, max_delete=4)
    assert allowed.deleted == 4 and allowed.ok
    assert app_content(clarifai_raw, clarifai_app) == source_content(str(root))


def test_bad_rows_and_missing_files_are_reported_while_the_rest_lands(
        run_sync, clarifai_raw, clarifai_app, tmp_path):
    (tmp_path / "img").mkdir()
    for n in range(4):
        (tmp_path / "img" / f"{n}.png").write_bytes(png(n))
    (tmp_path / "data.csv").write_text(
        "inputid,input,concepts,metadata\n"
        "good-0,img/0.png,a,\n"
        "bad-meta,img/1.png,a,{not json\n"
        "missing,img/nope.png,a,\n"
        "good-2,img/2.png,b,\n"
        "bad id!,img/3.png,b,\n"
        "good-0,img/3.png,b,\n"  # the same id again
        "text-1,hello there,c,\n")
    report = run_sync(tmp_path / "data.csv", report=tmp_path / "r.jsonl")
    assert (report.created, report.failed) == (3, 4), report.summary()
    assert report.exit_code == 1
    failed = {e["source"].rsplit(":", 1)[-1]: e for e in _lines(tmp_path / "r.jsonl")
              if e.get("status") == "failed"}
    assert set(failed) == {"3", "4", "6", "7"}, failed
    assert "nope.png" in failed["4"]["reason"]
    assert "already read" in failed["7"]["reason"]
    assert set(app_content(clarifai_raw, clarifai_app)) == {"good-0", "good-2", "text-1"}


def test_media_that_vanishes_after_listing_fails_that_record_only(run_sync, clarifai_raw,
                                                                 clarifai_app, tmp_path):
    (tmp_path / "a.png").write_bytes(png(1))
    (tmp_path / "data.csv").write_text("inputid,input\nhere,a.png\ngone,b.png\n")
    report = run_sync(tmp_path / "data.csv", options={"check_files": False})
    assert (report.created, report.failed) == (1, 1)
    assert report.failures[0]["id"] == "gone"
    assert "media not found" in report.failures[0]["reason"]
    assert report.failures[0]["source"].endswith("data.csv:3")
    assert set(app_content(clarifai_raw, clarifai_app)) == {"here"}
    # Once the file exists, the next run sends just that one.
    (tmp_path / "b.png").write_bytes(png(2))
    again = run_sync(tmp_path / "data.csv", options={"check_files": False})
    assert (again.created, again.skipped, again.failed) == (1, 1, 0)


def test_state_file_of_another_target_is_refused(run_sync, tmp_path):
    root = class_folders(tmp_path / "imgs", {"x": 2})
    run_sync(root)
    other = class_folders(tmp_path / "other", {"x": 1})
    with pytest.raises(ConfigError, match="belongs to syncing"):
        run_sync(other)


def test_cli_sync_dry_run_then_real_run_and_yaml_settings(target, clarifai_raw, clarifai_app,
                                                         tmp_path, monkeypatch):
    root = class_folders(tmp_path / "imgs", {"p": 3, "q": 2})
    monkeypatch.setenv("CLARIFAI_PAT", target["pat"])
    monkeypatch.setenv("CLARIFAI_CONNECT_STATE_DIR", str(tmp_path / "states"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["sync", str(root), "--app", target["app"], "--base-url", target["base_url"],
            "--dataset", "d1"]
    plan = runner.invoke(cli, [*args, "--dry-run"])
    assert plan.exit_code == 0, plan.output
    assert "5 would be created" in plan.output
    assert app_content(clarifai_raw, clarifai_app) == {}
    assert not list(tmp_path.rglob("*.sqlite")) and not list(tmp_path.rglob("*.jsonl"))

    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "5 created" in done.output and "report:" in done.output
    report_path = Path(done.output.split("report:")[1].split()[0])
    assert _lines(report_path)[-1]["summary"]["created"] == 5
    assert target["pat"] not in done.output and target["pat"] not in report_path.read_text()
    assert app_content(clarifai_raw, clarifai_app) == source_content(str(root), dataset="d1")

    (tmp_path / "sync.yaml").write_text(
        f"source: imgs\napp: {target['app']}\nbase-url: {target['base_url']}\n"
        "dataset: d1\nworkers: 2\nreport: out/report.jsonl\n")
    again = runner.invoke(cli, ["sync", str(tmp_path / "sync.yaml")])
    assert again.exit_code == 0, again.output
    assert "5 skipped" in again.output  # same source and target: the same state file
    assert (tmp_path / "out" / "report.jsonl").exists()
    bad = runner.invoke(cli, ["sync", str(tmp_path / "sync.yaml"), "--batch-size", "500"])
    assert bad.exit_code == 2 and "128" in bad.output


def test_cli_failures_exit_non_zero_and_help_teaches(target, tmp_path, monkeypatch):
    monkeypatch.setenv("CLARIFAI_PAT", target["pat"])
    (tmp_path / "data.csv").write_text("inputid,input\nok,fine text\nbad id!,more text\n")
    result = CliRunner().invoke(cli, ["sync", str(tmp_path / "data.csv"), "--app",
                                      target["app"], "--base-url", target["base_url"],
                                      "--state", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 1, result.output
    assert "1 created" in result.output and "1 failed" in result.output
    assert "data.csv:3" in result.output
    missing = CliRunner().invoke(cli, ["sync", str(tmp_path / "data.csv")])
    assert missing.exit_code == 2 and "--app" in missing.output
    helped = CliRunner().invoke(cli, ["sync", "--help"])
    for words in ("--update", "--delete", "--max-delete", "--dry-run", "CLARIFAI_PAT",
                  "Examples", "YAML"):
        assert words in helped.output


def test_app_and_dataset_are_created_when_missing(clarifai_server, clarifai_raw, tmp_path):
    from clarifai_connect.testing import AppRef, raw_api

    root = class_folders(tmp_path / "imgs", {"z": 2})
    app_id = f"new-app-{os.getpid()}"
    key = clarifai_server.add_key(f"someone:{'o' * 32}")
    report = clarifai_connect.sync(str(root), f"someone/{app_id}", dataset="fresh",
                                   base_url=clarifai_server.base_url,
                                   pat=key, state=tmp_path / "s.sqlite")
    assert report.created == 2
    content = app_content(raw_api(clarifai_server, key), AppRef("someone", app_id))
    assert all(v["datasets"] == ["fresh"] for v in content.values()) and len(content) == 2


def test_a_source_that_cannot_be_opened_fails_fast(target, tmp_path, monkeypatch):
    from clarifai_connect.errors import SourceError

    with pytest.raises(SourceError, match="does not exist"):
        clarifai_connect.sync(str(tmp_path / "nope.csv"), **target, state=tmp_path / "s.sqlite")
    monkeypatch.setenv("CLARIFAI_PAT", target["pat"])
    result = CliRunner().invoke(cli, ["sync", str(tmp_path / "nope.csv"), "--app",
                                      target["app"], "--base-url", target["base_url"],
                                      "--state", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_progress_bar_counts_every_item(run_sync, tmp_path):
    root = class_folders(tmp_path / "imgs", {"a": 30})
    (root / "a" / "empty.png").write_bytes(b"")
    seen = []
    report = run_sync(root, progress=True, batch_size=8, on_progress=seen.append)
    assert sum(seen) == report.read == 31


def test_a_plan_needs_no_api_and_no_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    root = class_folders(tmp_path / "imgs", {"a": 3})
    plan = clarifai_connect.sync(str(root), "me/app", base_url="https://api.invalid",
                                 dry_run=True, state=tmp_path / "s.sqlite")
    assert (plan.created, plan.dry_run, plan.exit_code) == (3, True, 0)
    assert "3 would be created" in plan.summary()
