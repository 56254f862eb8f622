"""Failing fast and clean: a dead API stops the sync (circuit breaker) with every item
accounted for, Ctrl-C keeps what the API acknowledged, a source that cannot be opened
creates nothing, --app means exactly one place, and a rerun says what changed."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

import clarifai_connect
from clarifai_connect.engine.run import parse_target
from clarifai_connect.errors import EXIT_INTERRUPTED, EXIT_UNREACHABLE, ConfigError
from clarifai_connect.server import FaultInjector, LocalServer
from clarifai_connect.testing import raw_api

from .sync_support import class_folders


def _texts(path: Path, count: int) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["inputid", "input", "concepts"])
        writer.writerows([f"t{i:05d}", f"text number {i}", "x"] for i in range(count))
    return path


def _input_ids(server: LocalServer, user: str, app: str) -> set[str]:
    raw = raw_api(server)
    try:
        response = raw.call("ListInputs", service_pb2.ListInputsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=user, app_id=app), per_page=1000))
        if response.status.code != status_code_pb2.SUCCESS:
            return set()
        return {i.id for i in response.inputs}
    finally:
        raw.channel.close()


def _input_count(server: LocalServer, user: str, app: str) -> int:
    return len(_input_ids(server, user, app))


def test_a_dead_api_stops_the_sync_and_a_rerun_resumes(tmp_path):
    source = _texts(tmp_path / "texts.csv", 300)
    state = tmp_path / "state.sqlite"
    server = LocalServer(data_dir=tmp_path / "server", user="u").start()
    port, key = server.port, server.keys[0]
    landed: list[int] = []

    def kill_after_a_few_batches(count: int) -> None:
        landed.append(count)
        if sum(landed) >= 40 and not server._stopped.is_set():
            server.stop(grace=0)

    started = time.monotonic()
    report = clarifai_connect.sync(str(source), "u/a", base_url=server.base_url, pat=key,
                                   state=state, batch_size=10, workers=2, give_up_after=1.5,
                                   on_progress=kill_after_a_few_batches)
    assert time.monotonic() - started < 40, report.failures[:2]  # not a 60 s retry per batch
    assert report.exit_code == EXIT_UNREACHABLE and report.unreachable, report.failures[:2]
    assert report.not_attempted > 0 and report.created >= 40
    assert report.read == report.created + report.failed + report.not_attempted
    assert report.read < 300
    assert any("run the same command again" in e for e in report.errors)
    assert "not attempted" in report.summary()

    again = LocalServer(data_dir=tmp_path / "server", port=port, keys=[key], user="u").start()
    try:
        rerun = clarifai_connect.sync(str(source), "u/a", base_url=again.base_url, pat=key,
                                      state=state, batch_size=50)
        assert rerun.ok, rerun.summary()
        # Nothing twice, nothing lost: what the first run created is skipped now (and so is
        # a batch the dying server stored without answering, "already in the app").
        assert rerun.skipped >= report.created and rerun.created + rerun.skipped == 300
        assert _input_count(again, "u", "a") == 300
    finally:
        again.stop()


def test_ctrl_c_counts_and_checkpoints_what_landed(tmp_path):
    source = _texts(tmp_path / "texts.csv", 600)
    state = tmp_path / "state.sqlite"
    report_path = tmp_path / "report.jsonl"
    with LocalServer(data_dir=tmp_path / "server",
                     faults=FaultInjector(latency=0.05), user="u") as server:
        env = {**os.environ, "CLARIFAI_PAT": server.keys[0], "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "clarifai_connect.cli", "sync", str(source), "--app",
                "u/a", "--base-url", server.base_url, "--state", str(state), "--batch-size",
                "5", "--no-progress"]
        process = subprocess.Popen(argv + ["--report", str(report_path)], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while _input_count(server, "u", "a") < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        assert process.returncode == EXIT_INTERRUPTED, err
        assert "Traceback" not in err and "closed database" not in err, err
        assert "interrupted after" in err and "run the same command again" in err
        summary = json.loads(report_path.read_text().splitlines()[-1])["summary"]
        landed = _input_count(server, "u", "a")
        assert 50 <= landed < 600
        assert summary["created"] == landed  # every acknowledged input is counted
        assert str(report_path) in err.strip().splitlines()[-1]  # one line ends it

        rerun = clarifai_connect.sync(str(source), "u/a", base_url=server.base_url,
                                      pat=server.keys[0], state=state)
        assert (rerun.skipped, rerun.created) == (landed, 600 - landed)



def test_a_second_ctrl_c_stops_at_once_and_the_state_stays_true(tmp_path):
    source = _texts(tmp_path / "texts.csv", 600)
    state = tmp_path / "state.sqlite"
    report_path = tmp_path / "report.jsonl"
    faults = FaultInjector(latency=0.02, methods={"PostInputs"})
    with LocalServer(data_dir=tmp_path / "server", faults=faults, user="u") as server:
        env = {**os.environ, "CLARIFAI_PAT": server.keys[0], "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "clarifai_connect.cli", "sync", str(source), "--app",
                "u/a", "--base-url", server.base_url, "--state", str(state), "--batch-size",
                "5", "--workers", "2", "--no-progress", "--report", str(report_path)]
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while _input_count(server, "u", "a") < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
            faults.configure(latency=3600)  # the batches in flight now wait for an hour
            process.send_signal(signal.SIGINT)
            said = []
            while not any("finishing the" in line for line in said):
                said.append(process.stderr.readline())
                assert said[-1], "".join(said)  # the first Ctrl-C is answered at once
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)  # it does not wait out the hour
            landed = _input_ids(server, "u", "a")
        finally:
            process.kill()
            faults.configure(latency=0)  # the calls in flight go on
        err = "".join(said) + err
        assert process.returncode == EXIT_INTERRUPTED, err
        assert "Traceback" not in err and "closed database" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("interrupted after") and str(report_path) in last, last
        assert "not attempted" in last and "run the same command again" in last
        lines = [json.loads(line) for line in report_path.read_text().splitlines()]
        summary = lines[-1]["summary"]
        db = sqlite3.connect(state)
        try:
            done = {i for (i,) in db.execute("SELECT id FROM items WHERE phase = 'done'")}
        finally:
            db.close()
        # The state is never ahead of the API, and the report counts what the state holds
        # (a batch the API stored without its answer reaching us is "not attempted").
        created = {line["id"] for line in lines[:-1] if line.get("status") == "created"}
        assert created == done and done <= landed, (sorted(landed - done), lines)
        assert summary["not_attempted"] > 0, summary
        assert summary["read"] == summary["created"] + summary["not_attempted"]

        rerun = clarifai_connect.sync(str(source), "u/a", base_url=server.base_url,
                                      pat=server.keys[0], state=state)
        assert rerun.ok and rerun.created + rerun.skipped == 600, rerun.summary()
        assert rerun.skipped >= len(done) and _input_count(server, "u", "a") == 600

def test_a_source_that_cannot_be_opened_creates_nothing(clarifai_server, clarifai_raw,
                                                        tmp_path):
    from clarifai_connect.errors import SourceError, UserError

    api = {"base_url": clarifai_server.base_url, "pat": clarifai_server.keys[0],
           "state": tmp_path / "s"}
    with pytest.raises(UserError):
        clarifai_connect.sync(str(tmp_path / "missing.csv"), "u/never1", format="csv", **api)
    with pytest.raises(SourceError, match="does not exist"):
        clarifai_connect.sync(str(tmp_path / "missing"), "u/never2", **api)
    empty = tmp_path / "empty"
    empty.mkdir()
    report = clarifai_connect.sync(str(empty), "u/never3", format="folder", dataset="d", **api)
    assert report.read == 0
    apps = clarifai_raw.call("ListApps", service_pb2.ListAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id="u"), per_page=1000))
    assert not {"never1", "never2", "never3"} & {a.id for a in apps.apps}


def test_app_is_user_slash_app_or_a_url():
    assert parse_target("me/pets").dataset_id == ""
    url = parse_target("https://clarifai.com/me/pets/datasets/train")
    assert (url.user_id, url.app_id, url.dataset_id) == ("me", "pets", "train")
    assert url.dataset(None) == "train" and url.dataset("train") == "train"
    with pytest.raises(ConfigError, match="names dataset 'train' but --dataset says 'val'"):
        url.dataset("val")
    version = parse_target("https://clarifai.com/me/pets/datasets/train/versions/v1")
    assert version.version_id == "v1"
    for bad in ("me/pets/extra", "me", "/pets", "me/", "ftp://clarifai.com/me/pets",
                "https://clarifai.com/me/pets/models/general"):
        with pytest.raises(Exception) as err:
            parse_target(bad)
        assert isinstance(err.value, clarifai_connect.errors.UserError), bad


def test_a_dataset_url_selects_the_dataset(clarifai_server, clarifai_raw, clarifai_app,
                                           tmp_path):
    folder = class_folders(tmp_path / "pets", {"cat": 2, "dog": 1})
    url = f"https://clarifai.com/{clarifai_app.target}/datasets/train"
    report = clarifai_connect.sync(str(folder), url, base_url=clarifai_server.base_url,
                                   pat=clarifai_server.keys[0], state=tmp_path / "s")
    assert report.created == 3 and "(dataset train)" in report.target
    listed = clarifai_raw.call("ListDatasetInputs", service_pb2.ListDatasetInputsRequest(
        user_app_id=clarifai_app.user_app_id, dataset_id="train"))
    assert len(listed.dataset_inputs) == 3


def test_a_rerun_says_what_changed_and_what_is_gone(clarifai_server, clarifai_app, tmp_path):
    folder = class_folders(tmp_path / "pets", {"cat": 3, "dog": 2})
    api = {"base_url": clarifai_server.base_url, "pat": clarifai_server.keys[0],
           "state": tmp_path / "s"}
    first = clarifai_connect.sync(str(folder), clarifai_app.target, **api)
    assert first.created == 5 and not first.hints()
    (folder / "cat" / "img00000.png").write_bytes(b"\x89PNG\r\n\x1a\n changed")
    (folder / "dog" / "img00004.png").unlink()
    rerun = clarifai_connect.sync(str(folder), clarifai_app.target, **api)
    assert (rerun.changed, rerun.gone, rerun.exit_code) == (1, 1, 0)
    summary = rerun.summary()
    assert "1 items changed since the last sync: pass --update" in summary
    assert "1 items are gone from the source: pass --delete" in summary
