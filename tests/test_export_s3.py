"""Exports to S3 through a real S3 API (moto in server mode): COCO and VOC round trips read
back from the bucket, csv and parquet files named by their URI, credentials from storage
options or from the environment."""

from __future__ import annotations

import pytest

from .export_support import (
    assert_same_records,
    export_from,
    generated_coco,
    read_all,
    sync_into,
)


@pytest.mark.parametrize("fmt", ["coco", "voc"])
def test_round_trip_through_a_bucket(fmt, s3_endpoint, s3_bucket, compat_dir, clarifai_server,
                                     clarifai_app, tmp_path):
    source = generated_coco(tmp_path / "src") if fmt == "coco" else \
        compat_dir / "datumaro" / "voc_dataset" / "voc_dataset1"
    before, problems = read_all(source, fmt)
    assert not problems
    sync_into(clarifai_server, clarifai_app, source, tmp_path)
    uri = f"s3://{s3_bucket}/exports/{fmt}"
    options = s3_endpoint.storage_options
    report = export_from(clarifai_server, clarifai_app, uri, fmt, dataset="ds",
                         storage_options=options, workers=4)
    assert report.ok and report.exported == len(before), report.summary()
    assert report.destination == uri
    fs = s3_endpoint.filesystem()
    keys = fs.find(f"{s3_bucket}/exports/{fmt}")
    assert keys and all(k.startswith(f"{s3_bucket}/exports/{fmt}/") for k in keys)
    after, problems = read_all(uri, fmt, storage_options=options)
    assert not problems
    assert_same_records(before, after)


def test_csv_and_parquet_files_in_a_bucket_from_env_credentials(s3_endpoint, s3_bucket,
                                                                 clarifai_server, clarifai_app,
                                                                 tmp_path):
    source = generated_coco(tmp_path / "src")
    sync_into(clarifai_server, clarifai_app, source, tmp_path)
    before, _ = read_all(source, "coco")
    csv_uri = f"s3://{s3_bucket}/tables/labels.csv"
    report = export_from(clarifai_server, clarifai_app, csv_uri, "csv", dataset="ds")
    assert report.ok and report.exported == 5
    after, problems = read_all(csv_uri, "csv")
    assert not problems and sorted(after) == sorted(before)
    assert all(r.media.uri.startswith(f"s3://{s3_bucket}/tables/media/") for r in after.values())
    assert all(after[i].media.read_bytes() == before[i].media.read_bytes() for i in before)
    parquet_uri = f"s3://{s3_bucket}/tables/data.parquet"
    report = export_from(clarifai_server, clarifai_app, parquet_uri, "parquet", dataset="ds")
    assert report.ok and report.exported == 5
    rows, problems = read_all(parquet_uri, "parquet")
    assert not problems
    assert {i: r.media.read_bytes() for i, r in rows.items()} == \
        {i: r.media.read_bytes() for i, r in before.items()}
    assert sorted(s3_endpoint.filesystem().ls(f"{s3_bucket}/tables", detail=False)) == \
        [f"{s3_bucket}/tables/data.parquet", f"{s3_bucket}/tables/labels.csv",
         f"{s3_bucket}/tables/media"]
