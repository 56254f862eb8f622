"""Injected server faults (UNAVAILABLE, throttling) on every RPC of a sync: retried with
backoff inside one concurrency budget, and everything lands exactly once."""

from __future__ import annotations

import pytest

import clarifai_connect
from clarifai_connect.server import LocalServer
from clarifai_connect.testing import AppRef, raw_api

from .sync_support import app_content, class_folders, coco_file, source_content


@pytest.fixture
def faulty_server(tmp_path):
    server = LocalServer(data_dir=tmp_path / "server", user="u").start()
    yield server
    server.stop()


@pytest.mark.parametrize("kind", ["unavailable", "throttle"])
def test_everything_lands_despite_faults(faulty_server, tmp_path, kind):
    folder = class_folders(tmp_path / "imgs", {"a": 120, "b": 80})
    coco = coco_file(tmp_path / "coco", images=60, boxes_per_image=2)
    faulty_server.faults.configure(rate=0.25, kind=kind, seed=7)
    target = dict(base_url=faulty_server.base_url, pat=faulty_server.keys[0])
    first = clarifai_connect.sync(str(folder), "u/faults", dataset="ds", batch_size=8,
                                  state=tmp_path / "folder.sqlite", **target)
    second = clarifai_connect.sync(str(coco), "u/faults", batch_size=4, workers=3,
                                   state=tmp_path / "coco.sqlite", **target)
    injected = faulty_server.faults.injected
    faulty_server.faults.configure(rate=0.0)
    assert injected > 5  # the faults really happened
    assert (first.created, first.failed) == (200, 0), first.summary()
    assert (second.created, second.failed, second.annotations) == (60, 0, 120), second.summary()
    raw = raw_api(faulty_server)
    try:
        content = app_content(raw, AppRef("u", "faults"))
    finally:
        raw.channel.close()
    assert content == {**source_content(str(folder), dataset="ds"),
                       **source_content(str(coco))}
