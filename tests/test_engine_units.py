"""Engine parts on their own: record → proto conversion, the sync state, the report, the
settings file; and the engine finishing an input an interrupted run left half done."""

from __future__ import annotations

import json

import pytest
from clarifai_grpc.grpc.api import service_pb2

from clarifai_connect.client.auth import ClientAuth
from clarifai_connect.client.record_upload import EXISTS, LANDED, RecordUploader
from clarifai_connect.client.records import annotation_id, record_annotations, record_input
from clarifai_connect.engine import RunReport, SyncOptions, SyncState, UploadEngine
from clarifai_connect.engine.config import load_config
from clarifai_connect.engine.run import parse_app
from clarifai_connect.errors import ConfigError
from clarifai_connect.records import Box, Media, Point, Problem, Record, Region

from .sync_support import app_content, png, record_regions


def _record(i: int, regions=(), **kw) -> Record:
    return Record(id=f"r{i}", media=Media("image", data=png(i)), concepts=["cat"],
                  regions=regions, source=f"src:{i}", **kw)


def test_record_input_carries_everything_inline(tmp_path):
    (tmp_path / "a.txt").write_text("héllo")
    rec = Record(id="t1", media=Media("text", uri=str(tmp_path / "a.txt")),
                 concepts=["x", "y"], metadata={"k": [1, 2]}, geo=(12.5, -3.0),
                 dataset_ids=("d1",))
    proto = record_input(rec, ["d2", "d1"])
    assert proto.id == "t1" and proto.data.text.raw == "héllo"
    assert [c.id for c in proto.data.concepts] == ["x", "y"]
    assert proto.data.metadata["k"] == [1, 2]
    assert (proto.data.geo.geo_point.longitude, proto.data.geo.geo_point.latitude) == (12.5, -3.0)
    assert list(proto.dataset_ids) == ["d1", "d2"]
    url = record_input(Record(id="u", media=Media("image", uri="https://x.test/a.jpg")))
    assert url.data.image.url == "https://x.test/a.jpg" and not url.data.image.base64
    image = record_input(_record(3))
    assert image.data.image.base64 == png(3)
    with pytest.raises(FileNotFoundError):
        record_input(Record(id="m", media=Media("image", uri=str(tmp_path / "nope.png"))))


def test_region_annotations_have_stable_ids():
    rec = _record(1, regions=[Region(box=Box(0.1, 0.2, 0.3, 0.4), concepts=["a"]),
                              Region(polygon=[(0, 0), (0, 1), (1, 1)], concepts=["b"]),
                              Region(point=Point(0.5, 0.5), concepts=["c"], id="given"),
                              Region(mask=png(9), concepts=["d"])])
    anns = record_annotations(rec)
    assert [a.id for a in anns] == ["r1-r0", "r1-r1", "given", "r1-r3"]
    assert all(a.input_id == "r1" for a in anns)
    box = anns[0].data.regions[0].region_info.bounding_box
    assert (box.top_row, box.left_col, box.bottom_row, box.right_col) == \
        pytest.approx((0.1, 0.2, 0.3, 0.4))
    assert len(anns[1].data.regions[0].region_info.polygon.points) == 3
    assert anns[3].data.regions[0].region_info.mask.image.base64 == png(9)
    long_id = "x" * 255
    derived = annotation_id(long_id, 7)
    assert len(derived) <= 255 and derived.endswith("-r7")
    assert derived != annotation_id("x" * 254 + "y", 7)


def test_state_acknowledges_forgets_and_finds_what_is_gone(tmp_path):
    path = tmp_path / "s.sqlite"
    with SyncState(path, "src", "tgt") as state:
        state.acknowledge([("a", "f1", "done", "s:1"), ("b", "f2", "input", "s:2"),
                           ("c", "f3", "done", "s:3")])
        assert state.lookup(["a", "b", "zz"]) == {"a": ("f1", "done"), "b": ("f2", "input")}
        assert state.mark_seen(["a", "b"]) == set()
        assert state.mark_seen(["b", "d"]) == {"b"}
        assert list(state.gone()) == [("c", "s:3")] and state.count_gone() == 1
        state.forget(["c"])
        assert state.count() == 2
    with SyncState(path, "src", "tgt") as state:  # the seen table is per run
        assert state.count_gone() == 2
    with pytest.raises(ConfigError, match="belongs to syncing src into tgt"):
        SyncState(path, "src", "another")


def test_report_buckets_lines_and_summary(tmp_path):
    report = RunReport(source="s", target="t").open(tmp_path / "r.jsonl")
    report.add("created", "a", "s:1")
    report.add("skipped", "b", "s:2", line=False)
    report.problem("s:3", "broken row")
    report.add("deleted", "z", "s:9", "gone")
    report.close()
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [x.get("status") for x in lines[:-1]] == ["created", "failed", "deleted"]
    summary = lines[-1]["summary"]
    assert (summary["read"], summary["deleted"], summary["problems"]) == (3, 1, 1)
    assert report.exit_code == 1 and "s:3: broken row" in report.summary()


def test_report_refuses_an_unknown_bucket(tmp_path):
    report = RunReport(source="s", target="t").open(tmp_path / "r.jsonl")
    with pytest.raises(ValueError, match="unknown bucket 'landed'"):
        report.add("landed", "a", "s:1")  # an uploader outcome, not a report bucket
    report.close()
    assert (report.read, report.failed) == (0, 0)
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1  # the summary alone


def test_settings_file_and_app_parsing(tmp_path):
    (tmp_path / "c.yaml").write_text("source: data/x.csv\napp: me/a\nbatch-size: 64\n"
                                     "options: {labels: false}\n")
    settings = load_config(str(tmp_path / "c.yaml"))
    assert settings["source"] == str(tmp_path / "data/x.csv")
    assert settings["batch_size"] == 64 and settings["options"] == {"labels": False}
    (tmp_path / "bad.yaml").write_text("source: x\nwokers: 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'wokers'"):
        load_config(str(tmp_path / "bad.yaml"))
    assert parse_app("me/app-1") == ("me", "app-1")
    assert parse_app("https://clarifai.com/me/app-1") == ("me", "app-1")
    for bad in ("justone", "me/bad app", ""):
        with pytest.raises(ConfigError):
            parse_app(bad)
    with pytest.raises(Exception, match="batch size"):
        SyncOptions(batch_size=129)


def test_engine_finishes_inputs_an_interrupted_run_left_half_done(
        clarifai_server, clarifai_raw, clarifai_app, tmp_path):
    auth = ClientAuth.resolve(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
                              base_url=clarifai_server.base_url, pat=clarifai_server.keys[0])
    uploader = RecordUploader(auth)
    boxes = [Region(box=Box(0.1 * k, 0.1, 0.1 * k + 0.05, 0.2), concepts=["part"])
             for k in range(3)]
    records = [_record(i, regions=boxes) for i in range(6)]
    # An earlier run posted r0..r3 (not in any state file); r1 also got one annotation,
    # r2 all of them.
    early = [uploader.prepare(r) for r in records[:4]]
    assert set(uploader.post_inputs(early).values()) == {(LANDED, "")}
    assert uploader.post_annotations([early[2]]) == {}
    clarifai_raw.call("PostAnnotations", service_pb2.PostAnnotationsRequest(
        user_app_id=clarifai_app.user_app_id, annotations=[early[1].annotations[0]]))
    assert uploader.post_inputs(early[:1])["r0"] == (EXISTS, "")

    items = [*records, Problem("src:99", "unreadable row")]
    with SyncState(tmp_path / "s.sqlite", "src", "tgt") as state:
        report = RunReport(source="src", target="tgt")
        UploadEngine(RecordUploader(auth), state, report, SyncOptions(batch_size=4)).run(items)
        assert (report.created, report.skipped, report.failed) == (2, 4, 1)
        assert state.lookup([r.id for r in records]) == {
            r.id: (r.fingerprint, "done") for r in records}
    content = app_content(clarifai_raw, clarifai_app)  # fails on any duplicate
    assert set(content) == {r.id for r in records}
    assert all(v["regions"] == record_regions(records[0]) for v in content.values())


def test_an_annotation_id_taken_by_another_input_fails_that_record(
        clarifai_server, clarifai_raw, clarifai_app, tmp_path):
    auth = ClientAuth.resolve(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
                              base_url=clarifai_server.base_url, pat=clarifai_server.keys[0])
    box = Box(0.1, 0.1, 0.5, 0.5)
    records = [_record(i, regions=[Region(box=box, concepts=["p"], id="same-id")])
               for i in range(2)]
    with SyncState(tmp_path / "s.sqlite", "src", "tgt") as state:
        report = RunReport(source="src", target="tgt")
        UploadEngine(RecordUploader(auth), state, report, SyncOptions(batch_size=1,
                                                                      workers=1)).run(records)
        assert (report.created, report.failed) == (1, 1)
        loser = report.failures[0]["id"]  # two batches race for the id: either may win
        assert "already exists" in report.failures[0]["reason"]
        assert state.lookup([loser])[loser][1] == "input"  # not done: retried next run
    content = app_content(clarifai_raw, clarifai_app)
    assert {r.id: len(content[r.id]["regions"]) for r in records} == {
        r.id: 0 if r.id == loser else 1 for r in records}


def test_a_source_that_breaks_mid_stream_keeps_what_was_read(clarifai_server, clarifai_raw,
                                                            clarifai_app, tmp_path):
    import types

    import clarifai_connect
    from clarifai_connect import Reader, hookimpl
    from clarifai_connect.plugins import PluginRegistry

    class Breaking(Reader):
        name = "breaking"

        def __iter__(self):
            for i in range(10):
                yield _record(i)
            raise OSError("the disk went away")

    plugin = types.SimpleNamespace(register_connectors=hookimpl(
        lambda register: register(Breaking)))
    registry = PluginRegistry(entry_points=False)
    registry.add_plugin(plugin, name="breaking")
    report = clarifai_connect.sync(
        "anything", f"{clarifai_app.user_id}/{clarifai_app.app_id}", format="breaking",
        registry=registry.load(), batch_size=4, delete=True, base_url=clarifai_server.base_url,
        pat=clarifai_server.keys[0], state=tmp_path / "s.sqlite")
    assert (report.read, report.created) == (10, 10)  # the last, partial batch went too
    assert report.exit_code == 1 and "the disk went away" in report.errors[0]
    assert report.deleted == 0 and report.to_delete == 0  # never delete after a broken read
    assert len(app_content(clarifai_raw, clarifai_app)) == 10


def test_annotations_that_never_get_through_are_failed_then_resumed(tmp_path):
    from clarifai_connect.client.base import RetryPolicy
    from clarifai_connect.server import LocalServer
    from clarifai_connect.testing import AppRef, raw_api

    with LocalServer(data_dir=tmp_path / "server", user="u") as server:
        auth = ClientAuth.resolve(user_id="u", app_id="a", base_url=server.base_url,
                                  pat=server.keys[0])
        records = [_record(i, regions=[Region(box=Box(0.1, 0.1, 0.4, 0.4), concepts=["p"])])
                   for i in range(5)]

        def run() -> RunReport:
            uploader = RecordUploader(auth)
            uploader.retry_policy = RetryPolicy(initial=0.01, cap=0.02, deadline=0.2)
            uploader.ensure_app()
            with SyncState(tmp_path / "s.sqlite", "src", "tgt") as state:
                report = RunReport(source="src", target="tgt")
                UploadEngine(uploader, state, report, SyncOptions(batch_size=2)).run(records)
            return report

        server.faults.configure(rate=1.0, methods=["PostAnnotations", "ListAnnotations"])
        broken = run()
        server.faults.configure(rate=0.0)
        assert (broken.created, broken.failed) == (0, 5)
        assert "annotations did not" in broken.failures[0]["reason"]
        healed = run()
        assert (healed.created, healed.failed, healed.annotations) == (5, 0, 5)
        raw = raw_api(server)
        try:
            content = app_content(raw, AppRef("u", "a"))
        finally:
            raw.channel.close()
        assert all(len(content[r.id]["regions"]) == 1 for r in records)
