"""Plans and shards for distributed runs: sources split into independent parts (Parquet row
groups, CSV byte ranges on line boundaries, items of COCO / YOLO / folder sources), each part
synced with today's engine, merged reports exact, a shard run twice changing nothing —
against the real local server."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import clarifai_connect
from clarifai_connect import Concept, Media, Record
from clarifai_connect.connector import Reader
from clarifai_connect.engine.shards import merge_reports, plan, run_shard, split_evenly

from . import layouts
from .sync_support import app_content, class_folders, coco_file


def _items(shards):
    return [(item.id, item.source) for shard in shards for item in shard.reader]


def _whole(source, **kwargs):
    return [(item.id, item.source) for item in clarifai_connect.read(source, **kwargs)]


def _parquet(path, rows: int, group: int):
    table = pa.table({"inputid": [f"r{i}" for i in range(rows)],
                      "input": [f"text {i}" for i in range(rows)],
                      "concepts": [f"c{i % 3}" for i in range(rows)]})
    pq.write_table(table, path, row_group_size=group)
    return path


def test_split_evenly_keeps_order_and_never_leaves_a_group_empty():
    assert split_evenly([1] * 10, 3) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split_evenly([5, 1, 1, 1, 5], 2) == [[0, 1, 2], [3, 4]]
    assert split_evenly([1, 1], 5) == [[0], [1]]
    assert split_evenly([], 3) == []


def test_parquet_shards_are_row_groups_with_their_file_row_numbers(tmp_path):
    (tmp_path / "t").mkdir()
    _parquet(tmp_path / "t" / "a.parquet", 50, 10)
    _parquet(tmp_path / "t" / "b.parquet", 30, 10)
    shards = plan(str(tmp_path / "t"), shards=3)
    assert len(shards) == 3
    assert sum(s.reader.count() for s in shards) == 80
    # Together the shards read exactly the whole source, with the same ids and locations.
    assert sorted(_items(shards)) == sorted(_whole(str(tmp_path / "t")))
    assert len(plan(str(tmp_path / "t"))) == 8  # natural parts: one per row group


def test_csv_shards_are_byte_ranges_on_line_boundaries_outside_quotes(tmp_path):
    lines = ["inputid,input,concepts"]
    for i in range(60):  # every 5th row holds a quoted newline: no shard may start inside one
        text = f'"line one of {i}\nline two"' if i % 5 == 0 else f"text {i}"
        lines.append(f"r{i},{text},c{i % 2}")
    lines.append("r60,bad,row,too many")  # a broken row keeps its line number in its shard
    source = tmp_path / "t.csv"
    source.write_text("\n".join(lines) + "\n")
    shards = plan(str(source), shards=4)
    assert len(shards) == 4
    assert _items(shards) == _whole(str(source))
    starts = [s.reader.part[0] for s in shards]
    assert starts == sorted(starts) and shards[-1].reader.part[1] == source.stat().st_size
    problems = [i for s in shards for i in s.reader if isinstance(i, clarifai_connect.Problem)]
    assert [p.source for p in problems] == [f"{source}:{len(lines) + 12}"]


def test_coco_yolo_and_folder_sources_split_by_position(tmp_path):
    sources = [coco_file(tmp_path / "coco", 7), layouts.ultralytics_detect(tmp_path / "yolo"),
               class_folders(tmp_path / "folders", {"cat": 3, "dog": 4})]
    for source in sources:
        whole = _whole(str(source))
        shards = plan(str(source), shards=3)
        assert len(shards) == min(3, len(whole)) and len(whole) >= 2, source
        assert _items(shards) == whole, source


class _Opaque(Reader):
    name = "opaque"

    def __iter__(self):
        for i in range(4):
            yield Record(id=f"o{i}", media=Media(kind="text", text=f"o {i}"))


class _Split(_Opaque):
    def shards(self, hint):
        return [_Part(self.uri, i) for i in range(2)]


class _Part(_Opaque):
    def __init__(self, uri, half):
        super().__init__(uri)
        self.half = half

    def __iter__(self):
        return (r for i, r in enumerate(super().__iter__()) if i // 2 == self.half)


def test_a_reader_opts_in_with_shards_else_it_is_one_shard():
    assert len(plan(_Opaque("x://a"), shards=4)) == 1
    split = plan(_Split("x://a"), shards=4)
    assert [s.key for s in split] == ["x://a shard 1/2", "x://a shard 2/2"]
    assert [i for i, _ in _items(split)] == ["o0", "o1", "o2", "o3"]


def test_shards_sync_exactly_once_and_merge_into_an_exact_report(
        tmp_path, clarifai_server, clarifai_raw, clarifai_app, clarifai_dataset):
    target = {"base_url": clarifai_server.base_url, "pat": clarifai_server.keys[0]}
    source = str(_parquet(tmp_path / "t.parquet", 300, 40))
    shards = plan(source, shards=3)
    app = clarifai_dataset.app
    # One shard runs twice (a retried task): the second run creates nothing.
    first = run_shard(shards[0], app.target, dataset="ds", **target)
    again = run_shard(shards[0], app.target, dataset="ds", **target)
    assert first.created == first.read == shards[0].reader.count()
    assert (again.created, again.skipped, again.failed) == (0, first.read, 0)
    reports = [first] + [run_shard(s, app.target, dataset="ds", **target) for s in shards[1:]]
    merged = merge_reports(reports, source=source, target=app.target)
    assert (merged.read, merged.created, merged.skipped, merged.failed) == (300, 300, 0, 0)
    assert merged.ok and merged.total == 300
    content = app_content(clarifai_raw, app)
    assert content == {f"r{i}": {"concepts": [f"c{i % 3}"], "regions": [], "datasets": ["ds"]}
                       for i in range(300)}
    # A rerun of every shard skips everything; the app is unchanged.
    rerun = merge_reports(run_shard(s, app.target, dataset="ds", **target) for s in shards)
    assert (rerun.read, rerun.skipped, rerun.created) == (300, 300, 0)
    assert app_content(clarifai_raw, app) == content


def test_merged_reports_keep_failures_and_errors(clarifai_server, clarifai_app):
    target = {"base_url": clarifai_server.base_url, "pat": clarifai_server.keys[0]}
    bad = [Record(id="ok1", media=Media(kind="text", text="fine"),
                  concepts=(Concept.named("a"),)),
           Record(id="gone", media=Media(kind="image", uri="missing.png"))]
    shards = plan(bad, source_id="mixed")
    report = merge_reports([run_shard(shards[0], clarifai_app.target, **target)])
    assert (report.read, report.created, report.failed) == (2, 1, 1)
    assert report.failures[0]["id"] == "gone" and not report.ok
    with pytest.raises(clarifai_connect.errors.ConfigError):
        plan(bad, source_id="mixed", shards=-1)


@pytest.mark.parametrize("flag", ["--update", "--delete", "--dry-run"])
def test_cli_engine_ray_refuses_what_needs_a_local_state(tmp_path, flag):
    from click.testing import CliRunner

    from clarifai_connect.cli import cli

    source = _parquet(tmp_path / "t.parquet", 5, 5)
    result = CliRunner().invoke(cli, ["sync", str(source), "--app", "me/app", "--engine",
                                      "ray", "--base-url", "http://127.0.0.1:1", flag])
    assert result.exit_code == 2 and f"{flag} needs the state of a local run" in result.output
    local = CliRunner().invoke(cli, ["sync", str(source), "--app", "me/app", "--engine", "ray",
                                     "--base-url", "local"])
    assert local.exit_code == 2 and "clarifai-connect serve" in local.output, local.output
