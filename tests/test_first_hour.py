"""The first hour of a new user: reports that name every item, exports that COCO tools
load, file names people recognise, options that explain themselves, progress that tells
the truth, and messages our redactor leaves alone."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import clarifai_connect
from clarifai_connect.cli import cli
from clarifai_connect.client import App
from clarifai_connect.engine.progress import RunProgress, format_eta
from clarifai_connect.errors import UserError, redact, register_secret
from clarifai_connect.exports.names import file_name_of
from clarifai_connect.plugins import get_registry
from clarifai_connect.records import stable_id

from .export_support import export_from, sync_into
from .sync_support import class_folders, png

# What the COCO format requires of each entry (cocodataset.org/#format-data), which
# pycocotools and COCOeval rely on.
COCO_KEYS = {"images": {"id", "width", "height", "file_name"},
             "annotations": {"id", "image_id", "category_id", "segmentation", "area", "bbox",
                             "iscrowd"},
             "categories": {"id", "name", "supercategory"}}


def _api(server, tmp_path: Path) -> dict:
    return {"base_url": server.base_url, "pat": server.keys[0], "state": tmp_path / "s"}


def test_failed_rows_carry_their_id_and_location(clarifai_server, clarifai_app, tmp_path):
    (tmp_path / "ok.png").write_bytes(png(1))
    table = tmp_path / "rows.csv"
    table.write_text("inputid,input,concepts\n"
                     "named,missing.png,x\n"   # a missing file: its own id
                     ",gone.png,x\n"           # no inputid: the id derived from the input
                     "fine,ok.png,x\n")
    report = clarifai_connect.sync(str(table), clarifai_app.target, report=tmp_path / "r.jsonl",
                                   **_api(clarifai_server, tmp_path))
    assert (report.created, report.failed) == (1, 2)
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    failed = {row["source"]: row for row in rows if row.get("status") == "failed"}
    assert failed[f"{table}:2"]["id"] == "named"
    assert failed[f"{table}:3"]["id"] == stable_id("gone.png")
    folder = class_folders(tmp_path / "pets", {"cat": 1})
    (folder / "cat" / "empty.png").write_bytes(b"")
    report = clarifai_connect.sync(str(folder), clarifai_app.target, report=tmp_path / "f.jsonl",
                                   **_api(clarifai_server, tmp_path / "folder"))
    row = next(json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()
               if '"failed"' in line)
    assert row["id"] == stable_id("cat/empty.png") and row["source"].endswith("empty.png")


def test_coco_export_loads_in_pycocotools(clarifai_server, clarifai_app, tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    folder = class_folders(tmp_path / "pets", {"cat": 2, "dog": 1})  # image-level labels
    sync_into(clarifai_server, clarifai_app, folder, tmp_path)
    out = tmp_path / "coco"
    report = export_from(clarifai_server, clarifai_app, out, "coco")
    assert report.exported == 3
    (path,) = (out / "annotations").glob("instances_*.json")
    doc = json.loads(path.read_text())
    for section, keys in COCO_KEYS.items():
        assert doc[section], section
        for entry in doc[section]:
            assert keys <= set(entry), (section, keys - set(entry))
    coco = COCO(str(path))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == 3
    for ann in anns:
        image = coco.loadImgs(ann["image_id"])[0]
        mask = coco.annToMask(ann)  # raised KeyError before
        assert mask.shape == (image["height"], image["width"]) and mask.all()
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"cat", "dog"}
    # ... and the labels come back as labels of the inputs, not as boxes.
    again = clarifai_connect.sync(str(out), f"{clarifai_app.user_id}/again",
                                  **_api(clarifai_server, tmp_path / "again"))
    assert again.created == 3 and again.annotations == 0


def test_exported_files_keep_the_source_name(clarifai_server, clarifai_app, tmp_path):
    assert file_name_of(stable_id("cat/cat0.png")) == "cat_cat0.png"
    assert file_name_of("note-1") == "note-1" and file_name_of("x-0123456789") == "x-0123456789"
    folder = tmp_path / "pets"
    (folder / "cat").mkdir(parents=True)
    (folder / "cat" / "cat0.png").write_bytes(png(1))
    (folder / "cat_cat0.png").write_bytes(png(2))  # the same readable name: a clash
    sync_into(clarifai_server, clarifai_app, folder, tmp_path)
    out = tmp_path / "out"
    export_from(clarifai_server, clarifai_app, out, "coco")
    names = sorted(p.name for p in (out / "images").rglob("*.png"))
    assert names[0] == "cat_cat0.png" and names[1].startswith("cat_cat0~")
    assert len(names) == 2


def test_export_writes_its_report_and_each_warning_once(clarifai_server, clarifai_app,
                                                        tmp_path, monkeypatch):
    monkeypatch.setenv("CLARIFAI_CONNECT_STATE_DIR", str(tmp_path / "state"))
    sample = Path(__file__).resolve().parents[1] / "examples" / "sample" / "labels.csv"
    sync_into(clarifai_server, clarifai_app, sample, tmp_path)  # 6 images and 2 texts
    result = CliRunner().invoke(cli, ["export", "--app", clarifai_app.target, "--to",
                                      str(tmp_path / "out"), "--format", "coco", "--base-url",
                                      clarifai_server.base_url, "--pat", clarifai_server.keys[0],
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    reports = list((tmp_path / "state").glob("export.*.report.jsonl"))
    assert len(reports) == 1 and f"report: {reports[0]}" in result.stdout
    lines = reports[0].read_text().splitlines()
    assert json.loads(lines[-1])["summary"]["read"] == 8
    said = [line for line in result.output.splitlines() if "warning" in line.lower()]
    assert len(said) == len({line.split(" (")[0] for line in said}) >= 1
    assert "WARNING" not in result.stderr


def test_plugins_explains_each_option():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("connector csv"))
    options = get_registry().connectors["csv"].options
    shown = lines[at + 1: at + 1 + len(options)]
    assert [line.split()[1] for line in shown] == options
    assert all(len(line.split(None, 2)[2]) > 10 for line in shown)  # a description each
    assert "the field separator" in "\n".join(shown)


def test_progress_tells_done_total_counts_rate_and_eta():
    counts = {"created": 0, "failed": 0}
    stream = io.StringIO()
    progress = RunProgress("sync csv", lambda: counts.items(), interval=0.05, stream=stream)
    with progress:
        progress.set_total(100)
        for _ in range(4):
            counts["created"] += 10
            progress.advance(10)
            time.sleep(0.1)
    lines = [line for line in stream.getvalue().splitlines() if line]
    assert len(lines) >= 3  # a line every interval on a non-terminal
    last = lines[-1]
    assert last.startswith("sync csv: 40/100 (40%) · 40 created · ")
    rate = float(last.split(" · ")[2].split()[0])
    assert 40 <= rate <= 200  # 10 items per 0.1 s, give or take a busy machine
    eta = progress.eta()
    assert eta is not None and 0.2 < eta < 3  # 60 left at ~100/s
    assert format_eta(65) == "1:05" and format_eta(3725) == "1:02:05" and format_eta(None) == "?"


def test_sync_counts_a_source_without_a_cheap_count(clarifai_server, clarifai_app, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("inputid,input\n" + "".join(f"t{i},text {i}\n" for i in range(300)))
    report = clarifai_connect.sync(str(table), clarifai_app.target, progress=True,
                                   batch_size=10, **_api(clarifai_server, tmp_path))
    assert report.created == 300 and report.total == 300


def test_redaction_never_rewrites_our_prose():
    register_secret("s3cr3t-key-0123456789abcdef")
    for text in ("no credentials: pass pat= or token=, or set CLARIFAI_PAT",
                 "the key configuration is missing", "token: required for the cloud"):
        assert redact(text) == text
    assert "0123456789abcdef" not in redact("pat=s3cr3t-key-0123456789abcdef")
    assert redact("token=abc123def456ghi") == "token=***"
    assert redact("Key 0123456789abcdefABCDEF") == "Key ***"


def test_upload_from_folder_reads_class_folders(clarifai_server, clarifai_app, tmp_path):
    app = App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
              base_url=clarifai_server.base_url, pat=clarifai_server.keys[0])
    folder = class_folders(tmp_path / "pets", {"cat": 2, "dog": 2})
    (folder / "dog" / "img00000.png").write_bytes(png(9))  # a stem in both classes
    summary = app.create_dataset("train").upload_from_folder(str(folder), "image", labels=True)
    assert summary.uploaded == 5
    got = {i.id: [c.id for c in i.data.concepts] for i in app.inputs().list_inputs()}
    assert got["cat-img00000"] == ["cat"] and got["dog-img00000"] == ["dog"]
    assert got["img00003"] == ["dog"]
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(UserError, match="no image files in it, nor in class folders"):
        app.dataset("train").upload_from_folder(str(tmp_path / "empty"), "image", labels=True)


def test_fetch_keeps_one_connection_alive_and_follows_redirects():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from clarifai_connect.client.http import HttpError, fetch

    connections = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            connections.append(1)
            super().setup()

        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            if self.path == "/moved":
                return self._send(302, b"", {"Location": "/file"})
            if self.path == "/missing":
                return self._send(404, b"no")
            closing = {"Connection": "close"} if self.path == "/once" else {}
            self._send(200, f"body of {self.path} {self.headers['Authorization']}".encode(),
                       closing)

        def _send(self, code, body, headers=None):
            self.send_response(code)
            for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        bodies = [fetch(f"{base}/file", {"Authorization": "Key k"})[0] for _ in range(5)]
        assert bodies == [b"body of /file Key k"] * 5 and len(connections) == 1
        assert fetch(f"{base}/moved", {"Authorization": "Key k"})[0] == b"body of /file Key k"
        assert fetch(f"{base}/once")[0] == b"body of /once None"  # the server closes it ...
        assert fetch(f"{base}/file")[0] == b"body of /file None"  # ... and a new one opens
        with pytest.raises(HttpError) as missing:
            fetch(f"{base}/missing")
        assert missing.value.status == 404
    finally:
        server.shutdown()
        server.server_close()
