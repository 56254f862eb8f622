"""Spark: the ``clarifai`` Python data source writes a DataFrame into the real local server
(column mapping, exact app contents, a rerun skipping everything, a task that raises once
retried with an exact result) and reads the app back as a DataFrame.

Needs the ``[spark]`` extra and a JDK 17 (CI installs it in its own step, see ``.ci/run``)."""

from __future__ import annotations

import json
import os
import sys

import pytest

pytest.importorskip("pyspark")

from clarifai_connect.errors import ConfigError  # noqa: E402
from clarifai_connect.integrations.spark import (  # noqa: E402
    ClarifaiDataSource,
    column_options,
)

from .sync_support import app_content  # noqa: E402

ROWS = 1000  # the 20,000 rows: the slow variant


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers need this environment
    # local[2, 3]: two threads, a task may fail up to 3 times (local mode allows 1 by default).
    session = (SparkSession.builder.master("local[2, 3]").appName("clarifai-connect-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    session.dataSource.register(ClarifaiDataSource)
    yield session
    session.stop()


def _frame(spark, rows: int):
    data = [(f"s{i}", f"text {i}", f"c{i % 3}", i) for i in range(rows)]
    return spark.createDataFrame(data, "key string, body string, label string, n long") \
        .repartition(4)


def _expected(rows: int) -> dict:
    return {f"s{i}": {"concepts": [f"c{i % 3}"], "regions": [], "datasets": ["train"]}
            for i in range(rows)}


def _write(frame, app, server, report, fmt="clarifai"):
    (frame.write.format(fmt).option("app", app.target).option("dataset", "train")
        .option("base_url", server.base_url).option("pat", server.keys[0])
        .option("id_column", "key").option("media_column", "body")
        .option("concepts_column", "label").option("metadata_columns", "n")
        .option("input_type", "text").option("report", str(report)).mode("append").save())
    return json.loads(report.read_text())


def test_column_options_map_to_the_parquet_layout():
    assert column_options({"media_column": "url", "id_column": "k", "labels": "false",
                           "metadata_columns": "a, b", "app": "me/x"}) == \
        {"columns": {"input": "url", "inputid": "k"}, "labels": False,
         "metadata_columns": ("a", "b")}
    with pytest.raises(ConfigError, match="unknown option"):
        column_options({"media_colum": "url"})


@pytest.mark.parametrize("rows", [ROWS, pytest.param(20_000, marks=pytest.mark.slow)])
def test_spark_write_is_exact_survives_a_failing_task_and_reads_back(
        spark, tmp_path, clarifai_server, clarifai_raw, clarifai_app, rows):
    marker = str(tmp_path / "failed-once")

    # Defined here so that Spark's workers get it by value (cloudpickle): a writer whose
    # first task syncs half its rows, then raises; Spark runs the task again.
    class FailsOnce(ClarifaiDataSource):
        @classmethod
        def name(cls):
            return "clarifai_fails_once"

        def writer(self, schema, overwrite):
            writer = super().writer(schema, overwrite)
            write = writer.write

            def flaky(iterator):
                if os.path.exists(marker):
                    return write(iterator)
                open(marker, "w").close()
                batches = list(iterator)
                half = batches[0].slice(0, batches[0].num_rows // 2)
                write(iter([half]))
                raise RuntimeError("injected task failure")

            writer.write = flaky
            return writer

    spark.dataSource.register(FailsOnce)
    frame = _frame(spark, rows)
    report = _write(frame, clarifai_app, clarifai_server, tmp_path / "r1.json",
                    fmt="clarifai_fails_once")
    assert os.path.exists(marker)
    assert (report["read"], report["failed"]) == (rows, 0), report
    assert report["created"] + report["skipped"] == rows and report["skipped"] > 0
    assert app_content(clarifai_raw, clarifai_app) == _expected(rows)

    again = _write(frame, clarifai_app, clarifai_server, tmp_path / "r2.json")
    assert (again["read"], again["skipped"], again["created"]) == (rows, rows, 0)

    back = (spark.read.format("clarifai").option("app", clarifai_app.target)
            .option("dataset", "train").option("base_url", clarifai_server.base_url)
            .option("pat", clarifai_server.keys[0]).option("partitions", 3).load())
    assert back.rdd.getNumPartitions() == 3  # each partition lists every third page
    assert back.columns[:4] == ["inputid", "input", "kind", "concepts"]
    got = back.select("inputid", "input", "concepts", "metadata", "dataset_ids").collect()
    assert sorted((r.inputid, r.input, list(r.concepts), json.loads(r.metadata)["n"],
                   list(r.dataset_ids)) for r in got) == \
        sorted((f"s{i}", f"text {i}", [f"c{i % 3}"], i, ["train"]) for i in range(rows))


def test_spark_overwrite_is_refused(spark, clarifai_server, clarifai_app):
    with pytest.raises(Exception, match="appends"):
        (_frame(spark, 3).write.format("clarifai").option("app", clarifai_app.target)
            .option("base_url", clarifai_server.base_url).option("pat", clarifai_server.keys[0])
            .mode("overwrite").save())
