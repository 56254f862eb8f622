"""Syncing from S3 (moto in server mode): the table and its media are read through fsspec
with the given storage options (media by the workers, in parallel with sending), and the
credentials never reach the report or the terminal."""

from __future__ import annotations

import json

import clarifai_connect

from .sync_support import app_content, png, source_content


def test_csv_and_images_on_s3(s3_endpoint, s3_bucket, clarifai_server, clarifai_raw,
                              clarifai_app, tmp_path):
    fs = s3_endpoint.filesystem()
    rows = ["inputid,input,concepts"]
    for i in range(40):
        fs.pipe(f"{s3_bucket}/media/img{i}.png", png(i))
        rows.append(f"s3-{i},media/img{i}.png,{'odd' if i % 2 else 'even'}")
    rows.append("gone,media/absent.png,odd")
    fs.pipe(f"{s3_bucket}/table.csv", ("\n".join(rows) + "\n").encode())
    source = f"s3://{s3_bucket}/table.csv"
    # moto accepts any secret: this one is ours to look for in the outputs.
    options = dict(s3_endpoint.storage_options, secret="s3-secret-never-shown")

    report = clarifai_connect.sync(
        source, f"{clarifai_app.user_id}/{clarifai_app.app_id}", dataset="from-s3",
        base_url=clarifai_server.base_url, pat=clarifai_server.keys[0],
        storage_options=options, state=tmp_path / "s.sqlite", report=tmp_path / "r.jsonl",
        batch_size=16)
    assert (report.created, report.failed) == (40, 1), report.summary()
    assert "absent.png" in report.failures[0]["reason"]
    expected = source_content(source, dataset="from-s3", storage_options=options)
    assert app_content(clarifai_raw, clarifai_app) == expected
    lines = (tmp_path / "r.jsonl").read_text()
    assert "s3-secret-never-shown" not in lines + report.summary() + repr(report)
    assert json.loads(lines.splitlines()[-1])["summary"]["source"] == source
