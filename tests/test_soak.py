"""Soak (slow, ``-m slow``): SIGKILL the sync at 20 random moments and the server at 5, and
run under 10% and 30% transient faults of both kinds; every time the final run exits 0
and the app holds exactly the source (ids, concepts, regions, no duplicate)."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

import clarifai_connect
from clarifai_connect.server import FaultInjector, LocalServer
from clarifai_connect.testing import AppRef, raw_api

from .sync_support import app_content, coco_file, source_content

pytestmark = pytest.mark.slow
KEY = "k" * 32
SEED = int(os.environ.get("SOAK_SEED", "9"))  # a failure names its seed: rerun with it


def _sync(base_url, source, state, *extra) -> subprocess.Popen:
    env = {**os.environ, "CLARIFAI_PAT": KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "clarifai_connect.cli", "sync", str(source), "--app", "u/soak",
         "--base-url", base_url, "--state", str(state), "--batch-size", "16", "--workers",
         "3", "--no-progress", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _exact(base_url, source) -> None:
    host, port = base_url.split("//")[1].rsplit(":", 1)
    raw = raw_api(SimpleNamespace(host=host, port=int(port), keys=[KEY]))
    try:
        content = app_content(raw, AppRef("u", "soak"))
    finally:
        raw.channel.close()
    assert content == source_content(str(source))  # app_content rejects duplicates


def _finish(base_url, source, state) -> None:
    final = _sync(base_url, source, state)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, f"seed {SEED}\n{out}\n{err}"
    assert "0 failed" in out, out
    _exact(base_url, source)


def test_sync_killed_at_20_random_moments(tmp_path):
    rng = random.Random(SEED)
    source = coco_file(tmp_path / "coco", images=500, boxes_per_image=2)
    faults = FaultInjector(latency=0.01, methods=frozenset({"PostInputs", "PostAnnotations"}))
    with LocalServer(data_dir=tmp_path / "server", keys=[f"u:{KEY}"], faults=faults) as server:
        state = tmp_path / "state.sqlite"
        for _ in range(20):
            proc = _sync(server.base_url, source, state)
            time.sleep(rng.uniform(0.3, 2.5))  # from start-up to deep in the run
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        _finish(server.base_url, source, state)
        with sqlite3.connect(state) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(data_dir, port) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "clarifai_connect.cli", "serve", "--port", str(port),
         "--data-dir", str(data_dir), "--pat", f"u:{KEY}", "--latency", "0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "Serving the Clarifai API" in line, line + proc.stderr.read()
    return proc


def test_server_killed_at_5_random_moments(tmp_path):
    rng = random.Random(SEED + 1)
    source = coco_file(tmp_path / "coco", images=400, boxes_per_image=2)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    state = tmp_path / "state.sqlite"
    data = tmp_path / "server"
    for _ in range(5):
        server = _serve(data, port)
        sync = _sync(base_url, source, state, "--give-up-after", "2")
        time.sleep(rng.uniform(0.5, 3.0))
        server.send_signal(signal.SIGKILL)
        server.communicate(timeout=30)
        sync.communicate(timeout=120)  # it gives up (or finished first): either is fine
    server = _serve(data, port)
    try:
        _finish(base_url, source, state)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    with sqlite3.connect(data / "server.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("rate", [0.1, 0.3])
@pytest.mark.parametrize("kind", ["unavailable", "throttle"])
def test_faults_are_absorbed_exactly(tmp_path, rate, kind):
    source = coco_file(tmp_path / "coco", images=200, boxes_per_image=2)
    faults = FaultInjector(rate=rate, kind=kind, seed=SEED)
    with LocalServer(data_dir=tmp_path / "server", keys=[f"u:{KEY}"], faults=faults) as server:
        report = clarifai_connect.sync(str(source), "u/soak", base_url=server.base_url,
                                       pat=KEY, state=tmp_path / "state.sqlite",
                                       batch_size=16, workers=3)
        assert report.exit_code == 0 and report.failed == 0, report.summary()
        assert faults.injected > 0
        faults.configure(rate=0.0)  # the check reads without retries
        _exact(server.base_url, source)
