"""Ray: a Parquet source written through ClarifaiDatasink and synced with sync_on_ray (the
``--engine ray`` path) into the real local server, with exact app contents, reruns that skip
everything, a worker killed mid-write survived, and the app read back as a Ray Dataset.

Needs the ``[ray]`` extra (CI installs it in its own step, see ``.ci/run``)."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")

from clarifai_connect.integrations.parts import DEFAULT_PARTS  # noqa: E402
from clarifai_connect.integrations.ray import (  # noqa: E402
    ClarifaiDatasink,
    ClarifaiDatasource,
    sync_on_ray,
)

from .export_support import read_all  # noqa: E402
from .sync_support import app_content  # noqa: E402

ROWS = 2000  # the 20,000 rows: test_ray_sync_of_20000_rows (slow)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True)
    yield
    ray.shutdown()


def _source(path, rows: int, group: int = 250):
    table = pa.table({"inputid": [f"r{i}" for i in range(rows)],
                      "input": [f"text {i}" for i in range(rows)],
                      "concepts": [f"c{i % 4}" for i in range(rows)]})
    pq.write_table(table, path, row_group_size=group)
    return str(path)


def _expected(rows: int) -> dict:
    return {f"r{i}": {"concepts": [f"c{i % 4}"], "regions": [], "datasets": ["train"]}
            for i in range(rows)}


def _target(server) -> dict:
    return {"base_url": server.base_url, "pat": server.keys[0]}


class _DiesOnce(ClarifaiDatasink):
    """A sink whose first write task syncs half its first block, then its worker process
    dies (as a node lost mid-write would): Ray runs the task again."""

    def __init__(self, marker: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.marker = marker

    def write(self, blocks, ctx):
        if os.path.exists(self.marker):
            return super().write(blocks, ctx)
        blocks = list(blocks)
        open(self.marker, "w").close()
        first = ray.data.block.BlockAccessor.for_block(blocks[0]).to_arrow()
        super().write([first.slice(0, first.num_rows // 2)], ctx)
        os._exit(1)


def test_datasink_writes_exactly_and_survives_a_worker_killed_mid_write(
        local_ray, tmp_path, clarifai_server, clarifai_raw, clarifai_app):
    source = _source(tmp_path / "t.parquet", ROWS)
    marker = str(tmp_path / "died")
    sink = _DiesOnce(marker, app=clarifai_app.target, dataset="train",
                     **_target(clarifai_server))
    (ray.data.read_parquet(source)
        .map(lambda row: {**row, "concepts": row["concepts"]})
        .write_datasink(sink, ray_remote_args={"max_retries": 3}))
    assert os.path.exists(marker)  # the failure happened
    report = sink.report
    assert report.read == ROWS and report.failed == 0, report.as_dict()
    # The retried task found the inputs its dead attempt had sent: skipped, not created twice.
    assert report.created + report.skipped == ROWS and report.skipped > 0
    assert app_content(clarifai_raw, clarifai_app) == _expected(ROWS)
    # A rerun skips everything and changes nothing.
    again = ClarifaiDatasink(app=clarifai_app.target, dataset="train", **_target(clarifai_server))
    ray.data.read_parquet(source).write_datasink(again)
    assert (again.report.read, again.report.skipped, again.report.created) == (ROWS, ROWS, 0)
    assert app_content(clarifai_raw, clarifai_app) == _expected(ROWS)

    # Read back as a Ray Dataset, in several read tasks (each every n-th listing page):
    # records with media as text / URIs and their concepts, each input once.
    source = ClarifaiDatasource(clarifai_app.target, dataset="train", parts=3,
                                **_target(clarifai_server))
    assert len(source.get_read_tasks(8)) == 3
    assert len(ClarifaiDatasource(clarifai_app.target, **_target(clarifai_server))
               .get_read_tasks(8)) == DEFAULT_PARTS
    rows = ray.data.read_datasource(source).take_all()
    assert sorted((r["inputid"], r["input"], list(r["concepts"])) for r in rows) == \
        sorted((f"r{i}", f"text {i}", [f"c{i % 4}"]) for i in range(ROWS))


def _sync_on_ray(local_ray, tmp_path, server, raw, app, rows: int) -> None:
    source = _source(tmp_path / "s.parquet", rows, group=max(rows // 8, 1))
    done: list[int] = []
    report = sync_on_ray(source, app.target, dataset="train", workers=2,
                         on_progress=done.append, **_target(server))
    assert (report.read, report.created, report.failed) == (rows, rows, 0), report.as_dict()
    assert sum(done) == rows  # progress from the tasks, each item once
    assert report.ok
    assert app_content(raw, app) == _expected(rows)
    rerun = sync_on_ray(source, app.target, dataset="train", workers=2, **_target(server))
    assert (rerun.read, rerun.skipped, rerun.created) == (rows, rows, 0)


def test_sync_on_ray_plans_shards_and_merges_an_exact_report(
        local_ray, tmp_path, clarifai_server, clarifai_raw, clarifai_app):
    _sync_on_ray(local_ray, tmp_path, clarifai_server, clarifai_raw, clarifai_app, ROWS)


@pytest.mark.slow
def test_ray_sync_of_20000_rows(local_ray, tmp_path, clarifai_server, clarifai_raw,
                                clarifai_app):
    _sync_on_ray(local_ray, tmp_path, clarifai_server, clarifai_raw, clarifai_app, 20_000)


def test_cli_sync_engine_ray(local_ray, tmp_path, clarifai_server, clarifai_raw, clarifai_app):
    from click.testing import CliRunner

    from clarifai_connect.cli import cli

    source = _source(tmp_path / "c.parquet", 300, group=50)
    args = ["sync", source, "--app", clarifai_app.target, "--dataset", "train",
            "--base-url", clarifai_server.base_url, "--pat", clarifai_server.keys[0],
            "--engine", "ray", "--workers", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "read 300 items" in result.output and "300 created" in result.output
    assert app_content(clarifai_raw, clarifai_app) == _expected(300)
    again = CliRunner().invoke(cli, [*args, "--report", str(tmp_path / "r.jsonl")])
    assert again.exit_code == 0 and "300 skipped" in again.output, again.output
    summary = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[-1])["summary"]
    assert (summary["read"], summary["skipped"]) == (300, 300)

    # The same app exported as Ray tasks (parts of the listing, merged at the end) holds
    # what a local export writes; the report is exact and goes to --report.
    out = tmp_path / "ray-out" / "table.csv"
    target = ["--app", clarifai_app.target, "--dataset", "train", "--base-url",
              clarifai_server.base_url, "--pat", clarifai_server.keys[0], "--format", "csv"]
    exported = CliRunner().invoke(cli, ["export", *target, "--to", str(out), "--engine", "ray",
                                        "--workers", "2", "--report",
                                        str(tmp_path / "e.jsonl")])
    assert exported.exit_code == 0, exported.output
    assert "300 exported, 0 skipped, 0 failed" in exported.output
    summary = json.loads((tmp_path / "e.jsonl").read_text().splitlines()[-1])["summary"]
    assert (summary["read"], summary["exported"]) == (300, 300)
    local = tmp_path / "local-out" / "table.csv"
    assert CliRunner().invoke(cli, ["export", *target, "--to", str(local)]).exit_code == 0
    after, problems = read_all(out, "csv")
    before, _ = read_all(local, "csv")
    assert not problems and len(after) == 300
    assert {k: (r.media.read_bytes(), r.concepts) for k, r in after.items()} == \
        {k: (r.media.read_bytes(), r.concepts) for k, r in before.items()}
    assert not (tmp_path / "ray-out" / "table.csv.parts").exists()
