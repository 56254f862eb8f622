"""Kill-and-resume: `clarifai-connect sync` as a subprocess against a server in this
process, SIGKILLed mid-run (more than once, at different points), then run again: the app
ends up holding exactly the source — ids, concepts, regions — with no duplicate."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from clarifai_connect.server import FaultInjector, LocalServer
from clarifai_connect.testing import AppRef, raw_api

from .sync_support import app_content, class_folders, coco_file, source_content


@pytest.fixture
def slow_server(tmp_path):
    # Latency on the write RPCs stretches the run so that a kill lands in its middle.
    faults = FaultInjector(latency=0.03, methods=frozenset({"PostInputs", "PostAnnotations"}))
    server = LocalServer(data_dir=tmp_path / "server", faults=faults, user="u").start()
    yield server
    server.stop()


def _acknowledged(state) -> int:
    if not state.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM items").fetchone()[0]
    except sqlite3.OperationalError:  # created but no table yet
        return 0


def _sync(server, source, state, report, *extra) -> subprocess.Popen:
    env = {**os.environ, "CLARIFAI_PAT": server.keys[0]}
    return subprocess.Popen(
        [sys.executable, "-m", "clarifai_connect.cli", "sync", str(source), "--app", "u/resume",
         "--base-url", server.base_url, "--state", str(state), "--report", str(report),
         "--batch-size", "16", "--workers", "2", "--no-progress", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, state, at_least: int) -> int:
    """SIGKILL ``proc`` once the state holds ``at_least`` rows; returns the rows then."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        count = _acknowledged(state)
        if count >= at_least:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return count
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the sync ended before it could be killed:\n{out}\n{err}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail("the sync made no progress")


@pytest.mark.parametrize("kind", ["coco", "folder"])
def test_killed_twice_then_rerun_lands_the_source_exactly(slow_server, tmp_path, kind):
    if kind == "coco":
        source = coco_file(tmp_path / "coco", images=400, boxes_per_image=2)
    else:
        source = class_folders(tmp_path / "imgs", {"a": 250, "b": 150})
    state = tmp_path / "state.sqlite"
    first = _kill_when(_sync(slow_server, source, state, tmp_path / "r1.jsonl"), state, 60)
    second = _kill_when(_sync(slow_server, source, state, tmp_path / "r2.jsonl"), state,
                        first + 120)
    assert 0 < first < second < 400
    final = _sync(slow_server, source, state, tmp_path / "r3.jsonl")
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, out + err
    assert "0 failed" in out
    raw = raw_api(slow_server)
    try:
        content = app_content(raw, AppRef("u", "resume"))
    finally:
        raw.channel.close()
    expected = source_content(str(source))
    assert len(expected) == 400
    assert content == expected  # ids, concepts and regions; app_content rejects duplicates
    assert _acknowledged(state) == 400
