"""ETL code, records in: sync() of a generator, an Arrow table and a pandas DataFrame keyed
by source_id (reruns skip, update after a change, delete after a removal), read(), and
batch transforms from Python, the CLI and a YAML file — over the real local server."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from click.testing import CliRunner

import clarifai_connect
from clarifai_connect import Concept, Media, Problem, Record
from clarifai_connect.cli import cli
from clarifai_connect.errors import ConfigError

from .sync_support import app_content, png


@pytest.fixture
def target(clarifai_server, clarifai_app, tmp_path, monkeypatch):
    # The default state file (keyed by source_id and target) lands in tmp_path.
    monkeypatch.setenv("CLARIFAI_CONNECT_STATE_DIR", str(tmp_path / "state"))
    return {"app": clarifai_app.target, "base_url": clarifai_server.base_url,
            "pat": clarifai_server.keys[0]}


def _records(n: int, label: str = "a", start: int = 0):
    """A generator, as an ETL job would hold its data: nothing is listed up front."""
    for i in range(start, start + n):
        yield Record(id=f"r{i}", media=Media(kind="text", text=f"text {i}"),
                     concepts=(Concept.named(label),), metadata={"n": i})


def _concepts(content: dict) -> dict[str, list[str]]:
    return {k: v["concepts"] for k, v in content.items()}


def test_sync_of_a_generator_keyed_by_source_id(target, clarifai_raw, clarifai_app):
    first = clarifai_connect.sync(_records(5), **target, source_id="warehouse-q1")
    assert (first.created, first.failed, first.source) == (5, 0, "warehouse-q1")
    assert _concepts(app_content(clarifai_raw, clarifai_app)) == {f"r{i}": ["a"]
                                                                   for i in range(5)}
    # A new generator of the same items: the state of "warehouse-q1" makes it skip.
    again = clarifai_connect.sync(_records(5), **target, source_id="warehouse-q1")
    assert (again.skipped, again.created) == (5, 0)
    assert again.state_path == first.state_path and first.state_path.exists()
    # Another source_id is another state: nothing is known yet, the inputs already exist.
    other = clarifai_connect.sync(_records(5), **target, source_id="another")
    assert other.state_path != first.state_path
    assert other.created + other.skipped == 5 and other.failed == 0

    # A change is skipped (reported) without update, re-sent with it.
    changed = [*_records(2), *_records(3, label="b", start=2)]
    plain = clarifai_connect.sync(iter(changed), **target, source_id="warehouse-q1")
    assert (plain.skipped, plain.updated) == (5, 0)
    updated = clarifai_connect.sync(iter(changed), **target, source_id="warehouse-q1",
                                    update=True)
    assert (updated.updated, updated.skipped) == (3, 2)
    assert _concepts(app_content(clarifai_raw, clarifai_app)) == {
        **{f"r{i}": ["a"] for i in range(2)}, **{f"r{i}": ["b"] for i in range(2, 5)}}

    # A removal: delete removes what this source synced and no longer holds.
    gone = clarifai_connect.sync(_records(3), **target, source_id="warehouse-q1",
                                 delete=True, update=True)
    assert (gone.deleted, gone.read) == (2, 3)
    assert sorted(app_content(clarifai_raw, clarifai_app)) == ["r0", "r1", "r2"]


def test_in_memory_data_without_source_id_is_refused_clearly(target):
    with pytest.raises(ConfigError, match="source_id"):
        clarifai_connect.sync(_records(2), **target)
    with pytest.raises(ConfigError, match="source_id"):
        clarifai_connect.sync(pa.table({"input": ["x"]}), **target)
    with pytest.raises(ConfigError, match="cannot read a int"):
        clarifai_connect.sync(42, **target, source_id="n")


def test_items_that_are_not_records_fail_alone(target):
    items = [*_records(2), "not a record", Problem("upstream row 9", "no image")]
    report = clarifai_connect.sync(items, **target, source_id="mixed")
    assert (report.created, report.failed, report.problems) == (2, 2, 2)
    assert {f["source"] for f in report.failures} == {"mixed item 2", "upstream row 9"}


def _table(tmp_path, labels: list[str]) -> pa.Table:
    """Images on disk referenced by relative path, labels per row: the parquet layout."""
    (tmp_path / "img").mkdir(exist_ok=True)
    for i in range(len(labels)):
        (tmp_path / "img" / f"{i}.png").write_bytes(png(i))
    return pa.table({"input": [f"img/{i}.png" for i in range(len(labels))],
                     "label": labels, "split": ["train"] * len(labels)})


def test_sync_of_an_arrow_table_and_a_record_batch_reader(target, clarifai_raw, clarifai_app,
                                                          tmp_path):
    table = _table(tmp_path, ["cat", "dog", "cat", "dog"])
    options = {"columns": {"concepts": "label"}, "metadata_columns": ["split"],
               "media_root": str(tmp_path)}
    first = clarifai_connect.sync(table, **target, source_id="pets", options=options)
    assert (first.created, first.failed) == (4, 0)
    content = app_content(clarifai_raw, clarifai_app)
    assert sorted(v["concepts"] for v in content.values()) == [["cat"], ["cat"], ["dog"],
                                                               ["dog"]]
    # The same rows as a streaming RecordBatchReader: the same ids, so all skip.
    stream = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=3))
    again = clarifai_connect.sync(stream, **target, source_id="pets", options=options)
    assert (again.skipped, again.created) == (4, 0)
    # A mapped column that is missing fails fast, naming the source.
    with pytest.raises(ConfigError, match="pets has no 'image' column"):
        clarifai_connect.sync(table, **target, source_id="pets",
                              options={"columns": {"input": "image"}})


def test_sync_of_a_pandas_dataframe(target, clarifai_raw, clarifai_app, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"inputid": [f"t{i}" for i in range(6)],
                          "input": [f"a text {i}" for i in range(6)],
                          "concepts": ["x,y", "x", "y", "x", "", "y"]})
    first = clarifai_connect.sync(frame, **target, source_id="frame", batch_size=4)
    assert (first.created, first.failed) == (6, 0)
    assert _concepts(app_content(clarifai_raw, clarifai_app)) == {
        "t0": ["x", "y"], "t1": ["x"], "t2": ["y"], "t3": ["x"], "t4": [], "t5": ["y"]}
    assert clarifai_connect.sync(frame, **target, source_id="frame").skipped == 6
    frame.loc[1, "concepts"] = "y"
    updated = clarifai_connect.sync(frame.iloc[:5], **target, source_id="frame", update=True,
                                    delete=True)
    assert (updated.updated, updated.skipped, updated.deleted) == (1, 4, 1)
    assert _concepts(app_content(clarifai_raw, clarifai_app))["t1"] == ["y"]
    assert "t5" not in app_content(clarifai_raw, clarifai_app)


def test_read_yields_the_records_the_engine_consumes(tmp_path):
    (tmp_path / "cat").mkdir()
    for i in range(3):
        (tmp_path / "cat" / f"{i}.png").write_bytes(png(i))
    (tmp_path / "cat" / "broken.png").write_bytes(b"")
    reader = clarifai_connect.read(str(tmp_path), format="folder")
    items = list(reader)
    records = [i for i in items if isinstance(i, Record)]
    assert len(records) == 3 and all(r.concepts[0].name == "cat" for r in records)
    assert [type(i) for i in items].count(Problem) == 1
    assert [r.id for r in clarifai_connect.read(str(tmp_path)) if isinstance(r, Record)] == \
        [r.id for r in records]  # detected, and the same ids again
    rows = list(clarifai_connect.read(pa.table({"input": ["hello"], "concepts": ["greet"]})))
    assert rows[0].media.text == "hello" and rows[0].concepts[0].name == "greet"
    with pytest.raises(ConfigError, match="has no option nope"):
        clarifai_connect.read(str(tmp_path), format="folder", nope=1)


# -- transforms ------------------------------------------------------------------------

def relabel(records: list[Record]) -> list[Record]:
    """Drop odd items, add a concept to the others (a transform, as a user writes one)."""
    from dataclasses import replace

    return [replace(r, concepts=(*r.concepts, Concept.named("checked")))
            for r in records if int(r.id[1:]) % 2 == 0]


def test_a_transform_filters_and_relabels_each_batch(target, clarifai_raw, clarifai_app):
    batches: list[int] = []

    def counted(records):
        batches.append(len(records))
        return relabel(records)

    report = clarifai_connect.sync(_records(10), **target, source_id="t", transform=counted,
                                   batch_size=4)
    assert batches == [4, 4, 2]
    assert (report.created, report.filtered, report.read) == (5, 5, 5)
    assert "left out by the transform: 5" in report.summary()
    assert _concepts(app_content(clarifai_raw, clarifai_app)) == {
        f"r{i}": ["a", "checked"] for i in range(0, 10, 2)}


def test_a_failing_transform_fails_its_batch_only(target):
    def flaky(records):
        if any(r.id == "r5" for r in records):
            raise ValueError("no r5 please")
        return records

    report = clarifai_connect.sync(_records(8), **target, source_id="t", transform=flaky,
                                   batch_size=4)
    assert (report.created, report.failed) == (4, 4)
    assert all("transform" in f["reason"] and "no r5 please" in f["reason"]
               for f in report.failures)


def test_transform_from_the_cli_and_from_yaml(target, clarifai_raw, clarifai_app, tmp_path,
                                              monkeypatch):
    module = tmp_path / "etl_fixes.py"
    module.write_text("from dataclasses import replace\n"
                      "from clarifai_connect import Concept\n"
                      "def fix(records):\n"
                      "    return [replace(r, concepts=(Concept.named('fixed'),)) "
                      "for r in records if 'skip' not in r.media.text]\n")
    data = tmp_path / "data.csv"
    data.write_text("inputid,input,concepts\nx1,keep me,a\nx2,skip me,a\nx3,keep too,a\n")
    monkeypatch.chdir(tmp_path)
    args = ["sync", str(data), "--app", target["app"], "--base-url", target["base_url"],
            "--pat", target["pat"], "--state", str(tmp_path / "cli.sqlite")]
    result = CliRunner().invoke(cli, [*args, "--transform", "etl_fixes:fix"])
    assert result.exit_code == 0, result.output
    assert "left out by the transform: 1" in result.output
    assert _concepts(app_content(clarifai_raw, clarifai_app)) == {"x1": ["fixed"],
                                                                   "x3": ["fixed"]}
    bad = CliRunner().invoke(cli, [*args, "--transform", "etl_fixes:nothing"])
    assert bad.exit_code == 2 and "etl_fixes has no function nothing" in bad.output

    # YAML: the module is found beside the settings file, wherever the command runs.
    monkeypatch.chdir("/")
    settings = tmp_path / "sync.yaml"
    settings.write_text(json.dumps({"source": "data.csv", "app": target["app"],
                                    "base_url": target["base_url"], "pat": target["pat"],
                                    "state": "yaml.sqlite", "transform": "etl_fixes:fix",
                                    "update": True}))
    data.write_text("inputid,input,concepts\nx1,keep me,a\nx2,now keep,a\n")
    result = CliRunner().invoke(cli, ["sync", str(settings)])
    assert result.exit_code == 0, result.output
    assert sorted(app_content(clarifai_raw, clarifai_app)) == ["x1", "x2", "x3"]
    assert app_content(clarifai_raw, clarifai_app)["x2"]["concepts"] == ["fixed"]


def test_read_keeps_media_inside_the_source_unless_allowed(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.png").write_bytes(png(1))
    table = pa.table({"input": [str(outside / "x.png")]})
    root = tmp_path / "root"
    root.mkdir()
    refused = list(clarifai_connect.read(table, media_root=str(root)))
    assert isinstance(refused[0], Problem) and "outside the source" in refused[0].reason
    allowed = list(clarifai_connect.read(table, media_root=str(root), allow_paths=[outside]))
    assert isinstance(allowed[0], Record) and allowed[0].media.uri == str(outside / "x.png")
