"""Media are what they claim: the client checks before sending, the server before storing."""

from __future__ import annotations

import io
import json

import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from PIL import Image

from clarifai_connect import sync
from clarifai_connect.mediatypes import content_problem

from .sync_support import png

TEXT = b"just some notes, not a picture\n"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(out, format="JPEG")
    return out.getvalue()


def corrupt_jpeg() -> bytes:
    """Right magic and end marker, garbage in between: only decoding tells."""
    good = jpeg()
    return good[:20] + b"\x00" * (len(good) - 22) + good[-2:]


def test_magic_bytes_and_trailers():
    assert content_problem("image", png(1)) is None
    assert content_problem("image", jpeg()) is None
    assert "looks like text" in content_problem("image", TEXT)
    assert "truncated" in content_problem("image", png(1)[:-20])
    assert "looks like image" in content_problem("video", png(1))
    assert "empty" in content_problem("audio", b"")
    assert content_problem("audio", b"ID3\x03" + b"\x00" * 40) is None
    assert content_problem("text", b"\xff\xfe") is None  # text is checked as UTF-8 elsewhere
    assert content_problem("image", corrupt_jpeg()) is None  # cheap check: looks fine
    assert "cannot be decoded" in content_problem("image", corrupt_jpeg(), decode=True)
    assert content_problem("image", jpeg(), decode=True) is None


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "good.png").write_bytes(png(2))
    (root / "notes.png").write_bytes(TEXT)
    (root / "cut.png").write_bytes(png(3)[:-20])
    (root / "broken.jpg").write_bytes(corrupt_jpeg())
    return root


def failures(report_path):
    lines = [json.loads(line) for line in report_path.read_text().splitlines()]
    return {line["source"].rsplit("/", 1)[1]: line["reason"] for line in lines
            if line.get("status") == "failed"}


def test_sync_fails_media_that_is_not_what_it_claims(folder, tmp_path, clarifai_server,
                                                     clarifai_app, clarifai_pat):
    args = dict(base_url=clarifai_server.base_url, pat=clarifai_pat)
    report = sync(str(folder), clarifai_app.target, state=tmp_path / "a.db",
                  report=tmp_path / "a.jsonl", **args)
    assert (report.created, report.failed) == (2, 2)
    failed = failures(tmp_path / "a.jsonl")
    assert set(failed) == {"notes.png", "cut.png"}
    assert "declared image but the content looks like text" in failed["notes.png"]
    assert "truncated" in failed["cut.png"]
    # --check-media decodes too: the corrupt JPEG is caught before it is sent.
    report = sync(str(folder), f"{clarifai_app.user_id}/{clarifai_app.app_id}-decoded",
                  state=tmp_path / "b.db", report=tmp_path / "b.jsonl", check_media=True,
                  **args)
    assert (report.created, report.failed) == (1, 3)
    assert "cannot be decoded" in failures(tmp_path / "b.jsonl")["broken.jpg"]


def test_the_server_refuses_bytes_that_are_not_the_declared_kind(clarifai_raw, clarifai_app):
    resp = clarifai_raw.call("PostInputs", s.PostInputsRequest(
        user_app_id=clarifai_app.user_app_id, inputs=[
            r.Input(id="real", data=r.Data(image=r.Image(base64=png(4)))),
            r.Input(id="fake", data=r.Data(image=r.Image(base64=TEXT))),
            r.Input(id="clip", data=r.Data(video=r.Video(base64=png(6))))]))
    assert resp.status.code == codes.MIXED_STATUS
    statuses = {i.id: i.status for i in resp.inputs}
    assert statuses["real"].code == codes.INPUT_DOWNLOAD_SUCCESS
    for bad in ("fake", "clip"):
        assert statuses[bad].code == codes.INPUT_INVALID_ARGUMENT, statuses[bad]
    assert "looks like text" in statuses["fake"].description
    assert "looks like image" in statuses["clip"].description
    listed = clarifai_raw.call("ListInputs", s.ListInputsRequest(
        user_app_id=clarifai_app.user_app_id))
    assert [i.id for i in listed.inputs] == ["real"]  # nothing else was stored
