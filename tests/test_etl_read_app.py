"""ETL code, records out: read_app() of an app, a dataset and a dataset version over the
real local server, to_arrow() / to_pandas(), and records → app → records → app again."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import clarifai_connect
from clarifai_connect import Box, Concept, Media, Record, Region
from clarifai_connect.client import Dataset
from clarifai_connect.errors import ConfigError, UserError

from .sync_support import png


def _records():
    for i in range(5):
        regions = (Region(box=Box(0.1, 0.2, 0.5, 0.6), concepts=("dog",)),) if i % 2 else ()
        yield Record(id=f"img{i}", media=Media(kind="image", data=png(i, size=8)),
                     concepts=(Concept.named("cat" if i < 3 else "dog"),), regions=regions,
                     metadata={"n": i})
    yield Record(id="note", media=Media(kind="text", text="a caption"),
                 concepts=(Concept.named("text"),))


@pytest.fixture
def synced(clarifai_server, clarifai_app, tmp_path):
    api = {"base_url": clarifai_server.base_url, "pat": clarifai_server.keys[0]}
    report = clarifai_connect.sync(_records(), app=clarifai_app.target, dataset="ds",
                                   source_id="gen", state=tmp_path / "s.sqlite", **api)
    assert (report.created, report.annotations) == (6, 2)
    return clarifai_app, api


def _labels(records) -> dict[str, tuple]:
    return {r.id: (tuple(sorted(c.name for c in r.concepts)),
                   tuple(sorted((round(g.box.top_row, 3), tuple(c.name for c in g.concepts))
                                for g in r.regions if g.box)), dict(r.metadata))
            for r in records}


def test_read_app_round_trips_dataset_and_version(synced, clarifai_server):
    app, api = synced
    expected = _labels(_records())
    listed = clarifai_connect.read_app(app.target, dataset="ds", **api)
    assert _labels(listed.records()) == expected and listed.problems == []
    assert listed.name.endswith("dataset ds")
    whole_app = [r for r in clarifai_connect.read_app(app.target, **api)]
    assert sorted(r.id for r in whole_app) == sorted(expected)

    version = Dataset(dataset_id="ds", user_id=app.user_id, app_id=app.app_id,
                      **api).create_version().version.id
    frozen = clarifai_connect.read_app(app.target, dataset="ds", version=version, **api)
    assert _labels(frozen.records()) == expected
    # The media comes back as it went in.
    image = next(r for r in frozen.records() if r.id == "img3")
    from clarifai_connect.exports.runner import resolve_media

    assert resolve_media(image).media.data == png(3, size=8)


def test_to_arrow_and_to_pandas(synced):
    app, api = synced
    table = clarifai_connect.read_app(app.target, dataset="ds", **api).to_arrow()
    assert table.num_rows == 6
    rows = {r["inputid"]: r for r in table.to_pylist()}
    assert rows["note"]["input"] == "a caption" and rows["note"]["kind"] == "text"
    assert rows["img1"]["concepts"] == ["cat"] and rows["img4"]["concepts"] == ["dog"]
    assert rows["img0"]["input"].startswith("http")  # a hosted URL, not downloaded
    assert json.loads(rows["img1"]["regions"])[0]["box"]["top_row"] == pytest.approx(0.1)
    assert json.loads(rows["img2"]["metadata"]) == {"n": 2}

    with_media = clarifai_connect.read_app(app.target, dataset="ds", **api).to_batches(
        batch_size=4, media=True)
    batches = list(with_media)
    assert [b.num_rows for b in batches] == [4, 2]
    media = {r["inputid"]: r["input"] for b in batches for r in b.to_pylist()}
    assert media["img2"] == png(2, size=8) and media["note"] == b"a caption"

    pd = pytest.importorskip("pandas")
    frame = clarifai_connect.read_app(app.target, dataset="ds", **api).to_pandas()
    assert isinstance(frame, pd.DataFrame) and sorted(frame["inputid"]) == sorted(rows)


def test_records_out_of_one_app_into_another(synced, clarifai_server, clarifai_raw, tmp_path):
    app, api = synced
    from clarifai_connect.exports.runner import resolve_media

    # ETL the other way and back: relabel what one app holds, sync it into a new app.
    def relabelled():
        for record in clarifai_connect.read_app(app.target, dataset="ds", **api).records():
            # Hosted media needs the source app's key: bring the bytes along.
            yield replace(resolve_media(record), dataset_ids=(),
                          concepts=(*record.concepts, Concept.named("copied")))

    report = clarifai_connect.sync(relabelled(), app=f"{app.user_id}/copy-{app.app_id}",
                                   source_id="copy", state=tmp_path / "c.sqlite", **api)
    assert (report.created, report.failed, report.annotations) == (6, 0, 2)
    copied = clarifai_connect.read_app(f"{app.user_id}/copy-{app.app_id}", **api)
    names = {r.id: sorted(c.name for c in r.concepts) for r in copied.records()}
    assert names["img4"] == ["copied", "dog"] and names["note"] == ["copied", "text"]


def test_read_app_fails_fast_on_what_does_not_exist(synced):
    app, api = synced
    with pytest.raises(ConfigError, match="dataset 'nope'"):
        clarifai_connect.read_app(app.target, dataset="nope", **api)
    with pytest.raises(ConfigError, match="version 'v9'"):
        clarifai_connect.read_app(app.target, dataset="ds", version="v9", **api)


def test_read_app_of_a_search(synced, clarifai_server, tmp_path):
    app, api = synced
    dogs = clarifai_connect.read_app(app.target, query={
        "filters": [{"concepts": [{"name": "dog"}]}]}, **api)
    # A concept matches the input's labels and its regions' (img1 has a dog box).
    assert sorted(r.id for r in dogs.records()) == ["img1", "img3", "img4"]
    assert dogs.name.endswith(" search")
    # Filters AND across dicts; the hits keep their region annotations, as a listing has.
    img3 = clarifai_connect.read_app(app.target, dataset="ds", query={
        "filters": [{"concepts": [{"name": "dog"}]}, {"metadata": {"n": 3}}]}, **api)
    records = list(img3.records())
    assert _labels(records) == {"img3": _labels(_records())["img3"]}
    table = clarifai_connect.read_app(app.target, query={
        "filters": [{"input_types": ["text"]}]}, **api).to_arrow()
    assert table.column("inputid").to_pylist() == ["note"]
    # Another dataset holds none of them.
    clarifai_connect.sync(iter([Record(id="other", media=Media(kind="text", text="x"),
                                       concepts=(Concept.named("dog"),))]),
                          app=app.target, dataset="other", source_id="o",
                          state=tmp_path / "o.sqlite", **api)
    everywhere = clarifai_connect.read_app(app.target, query={
        "filters": [{"concepts": [{"name": "dog"}]}]}, **api)
    assert "other" in {r.id for r in everywhere.records()}
    in_ds = clarifai_connect.read_app(app.target, dataset="ds", query={
        "filters": [{"concepts": [{"name": "dog"}]}]}, **api)
    assert sorted(r.id for r in in_ds.records()) == ["img1", "img3", "img4"]
    top = clarifai_connect.read_app(app.target, query={
        "filters": [{"concepts": [{"name": "dog"}]}], "top_k": 1}, **api)
    assert len(list(top.records())) == 1


def test_a_bad_query_fails_fast(synced):
    app, api = synced
    with pytest.raises(ConfigError, match="unknown key.*rank"):
        clarifai_connect.read_app(app.target, query={"rank": []}, **api)
    with pytest.raises(ConfigError, match="must be a mapping"):
        clarifai_connect.read_app(app.target, query="dogs", **api)
    with pytest.raises(ConfigError, match="cannot be combined with version"):
        clarifai_connect.read_app(app.target, dataset="ds", version="v1", query={}, **api)
    with pytest.raises(UserError, match="colour"):
        clarifai_connect.read_app(app.target, query={"filters": [{"colour": "red"}]}, **api)
