"""Counting stays exact: one run per state file; one rule for boxes in client and server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

import clarifai_connect
from clarifai_connect.engine.state import SyncState
from clarifai_connect.errors import ConfigError
from clarifai_connect.records import Box, RecordError, box_problem
from clarifai_connect.server import FaultInjector, LocalServer

from .sync_support import coco_file, png


def test_a_state_file_is_held_by_one_run_at_a_time(tmp_path):
    path = tmp_path / "state.sqlite"
    with SyncState(path, "src", "dst"):
        with pytest.raises(ConfigError, match=rf"another sync is using .*process {os.getpid()}"):
            SyncState(path, "src", "dst")
    with SyncState(path, "src", "dst"):  # released on close
        pass


def test_a_second_sync_on_a_busy_state_is_refused_and_counts_stay_exact(tmp_path):
    source = coco_file(tmp_path / "coco", images=300, boxes_per_image=1)
    state = tmp_path / "state.sqlite"
    faults = FaultInjector(latency=0.05, methods=frozenset({"PostInputs"}))
    with LocalServer(data_dir=tmp_path / "server", user="u", faults=faults) as server:
        env = {**os.environ, "CLARIFAI_PAT": server.keys[0]}
        first = subprocess.Popen(
            [sys.executable, "-m", "clarifai_connect.cli", "sync", str(source), "--app", "u/a",
             "--base-url", server.base_url, "--state", str(state), "--batch-size", "8",
             "--workers", "1", "--no-progress", "--report", str(tmp_path / "first.jsonl")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (tmp_path / "first.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            with pytest.raises(ConfigError, match="another sync is using the state file"):
                clarifai_connect.sync(str(source), "u/a", base_url=server.base_url,
                                      pat=server.keys[0], state=state)
        finally:
            out, err = first.communicate(timeout=300)
        assert first.returncode == 0, out + err
        assert "300 created" in out, out
        again = clarifai_connect.sync(str(source), "u/a", base_url=server.base_url,
                                      pat=server.keys[0], state=state)
        assert (again.created, again.skipped) == (0, 300)  # created is counted once in all


def test_one_box_rule_for_client_and_server(clarifai_raw, clarifai_app):
    assert box_problem(0.1, 0.1, 0.5, 0.5) is None
    assert "no height" in box_problem(0.3, 0.1, 0.3, 0.5)
    assert "no width" in box_problem(0.1, 0.4, 0.5, 0.4)
    with pytest.raises(RecordError, match="no height"):
        Box(0.3, 0.1, 0.3, 0.5)
    resp = clarifai_raw.call("PostInputs", s.PostInputsRequest(
        user_app_id=clarifai_app.user_app_id, inputs=[r.Input(id="flat", data=r.Data(
            image=r.Image(base64=png(1)), regions=[r.Region(region_info=r.RegionInfo(
                bounding_box=r.BoundingBox(top_row=0.3, left_col=0.1, bottom_row=0.3,
                                           right_col=0.5)))]))]))
    assert resp.inputs[0].status.code == codes.INPUT_INVALID_ARGUMENT
    assert "no height" in resp.inputs[0].status.description


def test_a_zero_area_coco_box_fails_its_annotation_by_name_and_the_image_lands(
        tmp_path, clarifai_server, clarifai_app, clarifai_pat):
    root = tmp_path / "coco"
    root.mkdir()
    (root / "a.png").write_bytes(png(2, size=10))
    doc = {"categories": [{"id": 1, "name": "cat"}],
           "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
           "annotations": [{"id": 41, "image_id": 1, "category_id": 1, "bbox": [2, 2, 4, 0]},
                           {"id": 42, "image_id": 1, "category_id": 1, "bbox": [1, 1, 3, 3]}]}
    (root / "instances.json").write_text(json.dumps(doc))
    lines = tmp_path / "report.jsonl"
    report = clarifai_connect.sync(str(root / "instances.json"), clarifai_app.target,
                                   base_url=clarifai_server.base_url, pat=clarifai_pat,
                                   state=tmp_path / "s.db", report=lines)
    assert report.created == 1 and report.annotations == 1  # the good box landed
    failed = [json.loads(x) for x in lines.read_text().splitlines()
              if json.loads(x).get("status") == "failed"]
    assert len(failed) == 1 and "annotation 41" in failed[0]["source"]
    assert "zero area" in failed[0]["reason"]
    rerun = clarifai_connect.sync(str(root / "instances.json"), clarifai_app.target,
                                  base_url=clarifai_server.base_url, pat=clarifai_pat,
                                  state=tmp_path / "s.db")
    assert rerun.skipped == 1 and rerun.created == 0  # not failing the image on every rerun
