"""``clarifai-connect export`` against the real local server: every input accounted for in
the report (exported, skipped, failed with the reason), the exit code, fail-fast errors,
whole-app exports and the csv format read back by the csv connector."""

from __future__ import annotations

import json
from pathlib import Path

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from click.testing import CliRunner

from clarifai_connect.cli import cli

from .export_support import read_all, sync_into

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample" / "labels.csv"


def _run(server, app, *args: str):
    progress = [] if "--progress" in args else ["--no-progress"]
    return CliRunner().invoke(cli, ["export", "--app", f"{app.user_id}/{app.app_id}",
                                    "--base-url", server.base_url, "--pat", server.keys[0],
                                    *progress, *args])


def _post(raw, app, input_proto) -> None:
    response = raw.call("PostInputs", service_pb2.PostInputsRequest(
        user_app_id=app.user_app_id, inputs=[input_proto]))
    assert response.inputs, response.status


def test_report_accounts_for_every_input(clarifai_server, clarifai_raw, clarifai_app,
                                         tmp_path):
    sync_into(clarifai_server, clarifai_app, SAMPLE, tmp_path)  # 6 images, 2 texts
    # An image the API cannot download, and bytes that are no image at all.
    _post(clarifai_raw, clarifai_app, resources_pb2.Input(
        id="dead-link", dataset_ids=["ds"],
        data=resources_pb2.Data(image=resources_pb2.Image(url="http://127.0.0.1:9/x.png"))))
    _post(clarifai_raw, clarifai_app, resources_pb2.Input(
        id="not-an-image", dataset_ids=["ds"],
        data=resources_pb2.Data(image=resources_pb2.Image(base64=b"GIF89a broken"))))
    out, report = tmp_path / "coco", tmp_path / "report.jsonl"
    result = _run(clarifai_server, clarifai_app, "--dataset", "ds", "--to", str(out),
                  "--format", "coco", "--workers", "3", "--report", str(report))
    assert result.exit_code == 1, result.output  # something failed
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    summary = lines.pop()["summary"]
    status = {line["id"]: line["status"] for line in lines}
    assert len(status) == len(lines) == summary["read"] == 10
    assert sorted(i for i, s in status.items() if s == "skipped") == ["note-1", "note-2"]
    assert sorted(i for i, s in status.items() if s == "failed") == ["dead-link",
                                                                     "not-an-image"]
    reasons = {line["id"]: line.get("reason", "") for line in lines}
    assert "download" in reasons["dead-link"]
    assert "not a readable image" in reasons["not-an-image"]
    assert "COCO holds images only" in reasons["note-1"]
    assert (summary["exported"], summary["skipped"], summary["failed"]) == (6, 2, 2)
    assert "6 exported, 2 skipped, 2 failed" in result.output
    assert clarifai_server.keys[0] not in report.read_text() + result.output
    records, problems = read_all(out, "coco")
    assert len(records) == 6 and not problems
    # Input-level labels became image-level annotations; metadata other than coco is named.
    assert sorted(c.name for c in records["default-red-square.png"].concepts) == \
        ["red", "square"]
    assert summary["warnings"] == {"metadata other than 'coco' not written (COCO has no "
                                   "place for it)": 6,
                                   "geo point not written (COCO has no place for it)": 1}


def test_whole_app_to_csv_is_read_back(clarifai_server, clarifai_app, tmp_path):
    sync_into(clarifai_server, clarifai_app, SAMPLE, tmp_path)
    before, _ = read_all(SAMPLE, "csv")
    out = tmp_path / "out" / "all.csv"
    result = _run(clarifai_server, clarifai_app, "--to", str(out), "--format", "csv",
                  "--progress")
    assert result.exit_code == 0, result.output
    assert "8 exported, 0 skipped, 0 failed" in result.output
    after, problems = read_all(out, "csv")
    assert not problems and sorted(after) == sorted(before)
    for record_id, record in before.items():
        got = after[record_id]
        assert got.media.read_bytes() == record.media.read_bytes()
        assert sorted(c.name for c in got.concepts) == sorted(c.name for c in record.concepts)
        assert got.metadata == record.metadata and got.geo == record.geo


def test_configuration_errors_fail_fast(clarifai_server, clarifai_app, tmp_path):
    out = tmp_path / "out"
    missing = _run(clarifai_server, clarifai_app, "--dataset", "nope", "--to", str(out),
                   "--format", "coco")
    assert missing.exit_code == 2  # a usage error (README: exit codes)
    assert "cannot export dataset 'nope'" in missing.output
    no_dataset = _run(clarifai_server, clarifai_app, "--version", "v1", "--to", str(out),
                      "--format", "coco")
    assert no_dataset.exit_code == 2 and "--version needs --dataset" in no_dataset.output
    unknown = _run(clarifai_server, clarifai_app, "--to", str(out), "--format", "nope")
    assert unknown.exit_code == 2 and "unknown export format 'nope'" in unknown.output
    bad_option = _run(clarifai_server, clarifai_app, "--to", str(out), "--format", "coco",
                      "-o", "colour=red")
    assert bad_option.exit_code == 2 and "has no option colour" in bad_option.output
    assert not out.exists()  # nothing was written
