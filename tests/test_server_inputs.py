"""Inputs over the raw gRPC stub: create, read, list, stream, patch, delete, add jobs, counts,
URL downloads and persistence across a restart."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.server import LocalServer
from clarifai_connect.testing import AppRef, raw_api

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00fake-png-body"


def _text(input_id: str = "", raw: str = "hello", dataset_ids=(), **data) -> r.Input:
    return r.Input(id=input_id, data=r.Data(text=r.Text(raw=raw), **data),
                   dataset_ids=list(dataset_ids))


def _post(api, app, inputs, **fields):
    return api.call("PostInputs", s.PostInputsRequest(user_app_id=app.user_app_id,
                                                      inputs=inputs, **fields))


def _list(api, app, **fields):
    return api.call("ListInputs", s.ListInputsRequest(user_app_id=app.user_app_id, **fields))


def _get(api, app, input_id):
    return api.call("GetInput", s.GetInputRequest(user_app_id=app.user_app_id, input_id=input_id))


def _wait_job(api, app, job_id):
    """Poll the add job until nothing is pending or in progress (as the official SDK does)."""
    for _ in range(600):
        job = api.call("GetInputsAddJob", s.GetInputsAddJobRequest(
            user_app_id=app.user_app_id, id=job_id))
        assert job.status.code == codes.SUCCESS, job.status
        progress = job.inputs_add_job.progress
        if progress.pending_count == 0 and progress.in_progress_count == 0:
            return job.inputs_add_job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never finished: {job}")


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    gate: threading.Event | None = None

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/slow/") and self.gate is not None:
            self.gate.wait(30)
        body = self.files.get(self.path.replace("/slow/", "/"))
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def file_server():
    """A tiny HTTP server on 127.0.0.1 serving ``files`` (``/slow/…`` waits for ``gate``)."""
    handler = type("Files", (_Files,), {"files": {"/cat.png": PNG, "/note.txt": b"a note"},
                                        "gate": threading.Event()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.gate = handler.gate
    yield httpd
    handler.gate.set()
    httpd.shutdown()
    httpd.server_close()


def test_post_bytes_and_text_succeed_at_once_with_hosted_urls(clarifai_raw, clarifai_app):
    meta = r.Data(text=r.Text(raw="a caption"))
    meta.metadata.update({"source": "unit", "n": 3})
    resp = _post(clarifai_raw, clarifai_app, [
        r.Input(id="img-1", data=r.Data(image=r.Image(base64=PNG))),
        r.Input(id="txt-1", data=meta),
        r.Input(id="vid-1", data=r.Data(video=r.Video(base64=b"\x00\x00\x00\x18ftypmp42"))),
        r.Input(id="aud-1", data=r.Data(audio=r.Audio(base64=b"ID3\x03audio"))),
    ])
    assert resp.status.code == codes.SUCCESS, resp.status
    assert [i.status.code for i in resp.inputs] == [codes.INPUT_DOWNLOAD_SUCCESS] * 4
    image = resp.inputs[0].data.image
    assert not image.base64
    assert image.hosted.suffix and image.hosted.sizes == ["orig"]
    assert image.url == f"{image.hosted.prefix}/orig/{image.hosted.suffix}"
    assert resp.inputs[0].created_at.seconds > 0

    got = _get(clarifai_raw, clarifai_app, "txt-1")
    assert got.status.code == codes.SUCCESS
    assert got.input.data.text.raw == "a caption"
    assert got.input.data.text.hosted.suffix
    assert got.input.data.metadata["source"] == "unit"
    listed = _list(clarifai_raw, clarifai_app)
    assert [i.id for i in listed.inputs] == ["img-1", "txt-1", "vid-1", "aud-1"]
    # A list response carries only status and inputs, and never media bytes.
    assert {f.name for f, _ in listed.ListFields()} == {"status", "inputs"}
    assert not any(i.data.image.base64 or i.data.video.base64 or i.data.audio.base64
                   for i in listed.inputs)


def test_post_echo_equals_the_stored_input_and_server_fields_are_replaced(
        clarifai_raw, clarifai_app):
    """The echo is built from wire bytes, not from messages: each item must equal what
    GetInput answers; a status or timestamps sent by the client are replaced, not merged."""
    first = _post(clarifai_raw, clarifai_app, [r.Input(id="src", data=r.Data(
        image=r.Image(base64=PNG)))]).inputs[0]
    box = r.Region(region_info=r.RegionInfo(bounding_box=r.BoundingBox(
        top_row=0.1, left_col=0.1, bottom_row=0.5, right_col=0.6)))
    claimed = r.Input(id="claims", data=r.Data(image=r.Image(base64=PNG), regions=[box],
                                               concepts=[r.Concept(id="cat", value=1)]))
    claimed.status.code, claimed.status.details = codes.INPUT_DOWNLOAD_FAILED, "client says"
    claimed.created_at.seconds, claimed.created_at.nanos = 1, 7
    claimed.modified_at.nanos = 7
    repost = r.Input(id="repost", data=r.Data(image=r.Image(url=first.data.image.url)))
    _post(clarifai_raw, clarifai_app, [_text("renamed")])
    resp = _post(clarifai_raw, clarifai_app, [claimed, repost, _text("renamed", "again"),
                                              _text("", "no id")],
                 input_id_conflict_resolution=r.SUFFIX)
    assert resp.status.code == codes.SUCCESS, resp.status
    assert [i.id for i in resp.inputs][:3] == ["claims", "repost", "renamed-1"]
    for echoed in resp.inputs:
        assert echoed == _get(clarifai_raw, clarifai_app, echoed.id).input
    claims = resp.inputs[0]
    assert claims.status.code == codes.INPUT_DOWNLOAD_SUCCESS and not claims.status.details
    assert claims.created_at.seconds > 1 and claims.created_at == claims.modified_at
    assert not claims.data.regions and [c.id for c in claims.data.concepts] == ["cat"]
    assert resp.inputs[1].data.image.url == first.data.image.url  # its own URL is kept
    assert resp.inputs[1].data.image.hosted.suffix == first.data.image.hosted.suffix
    assert resp.inputs[2].data.text.raw == "again"


def test_missing_id_is_generated(clarifai_raw, clarifai_app):
    resp = _post(clarifai_raw, clarifai_app, [_text(), _text(raw="other")])
    assert resp.status.code == codes.SUCCESS
    ids = [i.id for i in resp.inputs]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    assert _get(clarifai_raw, clarifai_app, ids[0]).input.data.text.raw == "hello"


def test_duplicates_give_mixed_status_and_valid_items_land(clarifai_raw, clarifai_app):
    assert _post(clarifai_raw, clarifai_app, [_text("dup")]).status.code == codes.SUCCESS
    resp = _post(clarifai_raw, clarifai_app, [_text("dup", "again"), _text("fresh"),
                                              _text("fresh", "twice")])
    assert resp.status.code == codes.MIXED_STATUS
    assert [i.status.code for i in resp.inputs] == [
        codes.INPUT_DUPLICATE, codes.INPUT_DOWNLOAD_SUCCESS, codes.INPUT_DUPLICATE]
    assert "already exists" in resp.inputs[0].status.description
    assert "more than once" in resp.inputs[2].status.description
    # The original is untouched; the valid one landed.
    assert _get(clarifai_raw, clarifai_app, "dup").input.data.text.raw == "hello"
    assert _get(clarifai_raw, clarifai_app, "fresh").input.data.text.raw == "hello"

    all_bad = _post(clarifai_raw, clarifai_app, [_text("dup"), _text("fresh")])
    assert all_bad.status.code == codes.FAILURE
    assert {i.status.code for i in all_bad.inputs} == {codes.INPUT_DUPLICATE}
    assert not all_bad.inputs[0].data.text.hosted.suffix  # its bytes were not kept


def test_suffix_conflict_resolution_renames(clarifai_raw, clarifai_app):
    _post(clarifai_raw, clarifai_app, [_text("x")])
    resp = _post(clarifai_raw, clarifai_app, [_text("x", "second")],
                 input_id_conflict_resolution=r.SUFFIX)
    assert resp.status.code == codes.SUCCESS
    assert resp.inputs[0].id == "x-1"
    resp = _post(clarifai_raw, clarifai_app, [_text("x", "third")],
                 input_id_conflict_resolution=r.SUFFIX)
    assert resp.inputs[0].id == "x-2"
    assert _get(clarifai_raw, clarifai_app, "x-2").input.data.text.raw == "third"
    for _ in range(7):  # x-3 … x-9
        _post(clarifai_raw, clarifai_app, [_text("x")], input_id_conflict_resolution=r.SUFFIX)
    last = _post(clarifai_raw, clarifai_app, [_text("x", "eleventh")],
                 input_id_conflict_resolution=r.SUFFIX).inputs[0]
    assert last.status.code == codes.INPUT_DOWNLOAD_SUCCESS
    assert last.id.startswith("x-") and len(last.id) == len("x-") + 8
    same_request = _post(clarifai_raw, clarifai_app, [_text("y"), _text("y")],
                         input_id_conflict_resolution=r.SUFFIX)
    assert [i.status.code for i in same_request.inputs] == [
        codes.INPUT_DOWNLOAD_SUCCESS, codes.INPUT_DUPLICATE]


@pytest.mark.parametrize("bad, words", [
    (_text("has space"), ["input id 'has space'", "invalid characters"]),
    (r.Input(id="nodata"), ["no data"]),
    (r.Input(id="empty-img", data=r.Data(image=r.Image())), ["empty image"]),
    (r.Input(id="both", data=r.Data(image=r.Image(base64=PNG), text=r.Text(raw="t"))),
     ["image and text"]),
    (_text("box", regions=[r.Region(region_info=r.RegionInfo(bounding_box=r.BoundingBox(
        top_row=0.1, left_col=0.2, bottom_row=1.5, right_col=0.4)))]),
     ["regions[0]", "bottom_row", "outside 0..1"]),
    (_text("inverted", regions=[r.Region(region_info=r.RegionInfo(bounding_box=r.BoundingBox(
        top_row=0.6, left_col=0.2, bottom_row=0.5, right_col=0.4)))]), ["top_row", "not above"]),
    (_text("badconcept", concepts=[r.Concept(id="cat", value=2)]), ["concept 'cat'", "value 2"]),
    (_text("ds", dataset_ids=["no-such-dataset"]), ["dataset 'no-such-dataset' does not exist"]),
    (r.Input(id="ftp", data=r.Data(image=r.Image(url="ftp://user:secret@host/x.png"))),
     ["scheme 'ftp' is not supported"]),
])
def test_invalid_items_get_descriptive_per_item_errors(clarifai_raw, clarifai_app, bad, words):
    resp = _post(clarifai_raw, clarifai_app, [bad, _text("ok-neighbour")])
    assert resp.status.code == codes.MIXED_STATUS
    failed, ok = resp.inputs
    assert failed.status.code == codes.INPUT_INVALID_ARGUMENT
    assert "inputs[0]" in failed.status.description
    for word in words:
        assert word in failed.status.description
    assert "secret" not in str(failed.status)
    assert not failed.data.image.base64
    assert ok.status.code == codes.INPUT_DOWNLOAD_SUCCESS
    ids = [i.id for i in _list(clarifai_raw, clarifai_app).inputs]
    assert ids == ["ok-neighbour"]


def test_request_level_errors(clarifai_raw, clarifai_app):
    assert _post(clarifai_raw, clarifai_app, []).status.code == codes.CONN_INVALID_REQUEST
    too_many = _post(clarifai_raw, clarifai_app, [_text(f"i{n}") for n in range(129)])
    assert too_many.status.code == codes.CONN_INVALID_REQUEST
    assert "at most 128" in too_many.status.details
    missing = _get(clarifai_raw, clarifai_app, "nope")
    assert missing.status.code == codes.CONN_DOES_NOT_EXIST and "nope" in missing.status.details


def test_dataset_ids_add_dataset_membership(clarifai_server, clarifai_raw, clarifai_app):
    resp = clarifai_raw.call("PostDatasets", s.PostDatasetsRequest(
        user_app_id=clarifai_app.user_app_id, datasets=[r.Dataset(id="train")]))
    assert resp.status.code == codes.SUCCESS, resp.status
    resp = _post(clarifai_raw, clarifai_app, [_text("in-ds", dataset_ids=["train"])])
    assert resp.status.code == codes.SUCCESS
    assert list(resp.inputs[0].dataset_ids) == ["train"]
    db = clarifai_server.store.read()
    rows = db.execute("SELECT dataset_id FROM dataset_inputs WHERE input_id='in-ds'").fetchall()
    assert rows == [("train",)]


def test_list_pages_until_empty_and_filters(clarifai_raw, clarifai_app):
    ids = [f"p{n:02d}" for n in range(25)]
    assert _post(clarifai_raw, clarifai_app, [_text(i) for i in ids]).status.code == codes.SUCCESS
    seen, page = [], 1
    while True:
        resp = _list(clarifai_raw, clarifai_app, page=page, per_page=7)
        assert resp.status.code == codes.SUCCESS
        if not resp.inputs:
            break
        seen += [i.id for i in resp.inputs]
        page += 1
    assert seen == ids and page == 5

    by_ids = _list(clarifai_raw, clarifai_app, ids=["p03", "p10", "missing"])
    assert [i.id for i in by_ids.inputs] == ["p03", "p10"]
    ok = r.Input()
    ok.status.code = codes.INPUT_DOWNLOAD_SUCCESS
    ok_list = _list(clarifai_raw, clarifai_app, ids=ids[:5], per_page=5,
                    status=ok.status)
    assert len(ok_list.inputs) == 5
    failed = ok.status.__class__(code=codes.INPUT_DOWNLOAD_FAILED)
    assert not _list(clarifai_raw, clarifai_app, status=failed).inputs


def test_stream_inputs_cursor(clarifai_raw, clarifai_app):
    ids = ["m", "c", "x", "a", "q"]  # creation order differs from id order
    _post(clarifai_raw, clarifai_app, [_text(i) for i in ids])

    def stream(**fields):
        out, last = [], ""
        while True:
            resp = clarifai_raw.call("StreamInputs", s.StreamInputsRequest(
                user_app_id=clarifai_app.user_app_id, per_page=2, last_id=last, **fields))
            assert resp.status.code == codes.SUCCESS, resp.status
            if not resp.inputs:
                return out
            out += [i.id for i in resp.inputs]
            last = resp.inputs[-1].id

    assert stream() == ids
    assert stream(order_by_id=True) == sorted(ids)
    assert stream(order_by_id=True, descending=True) == sorted(ids, reverse=True)
    assert stream(descending=True) == ids[::-1]
    gone = clarifai_raw.call("StreamInputs", s.StreamInputsRequest(
        user_app_id=clarifai_app.user_app_id, last_id="never-was"))
    assert gone.status.code == codes.CONN_DOES_NOT_EXIST and "never-was" in gone.status.details
    default = clarifai_raw.call("StreamInputs", s.StreamInputsRequest(
        user_app_id=clarifai_app.user_app_id))
    assert [i.id for i in default.inputs] == ids


def _annotations(api, app, input_id):
    resp = api.call("ListAnnotations", s.ListAnnotationsRequest(
        user_app_id=app.user_app_id, input_ids=[input_id]))
    assert resp.status.code == codes.SUCCESS
    return list(resp.annotations)


def test_inline_concepts_and_regions_become_annotations(clarifai_raw, clarifai_app):
    box = r.Region(region_info=r.RegionInfo(bounding_box=r.BoundingBox(
        top_row=0.1, left_col=0.1, bottom_row=0.5, right_col=0.6)),
        data=r.Data(concepts=[r.Concept(id="dog", value=1)]))
    inp = r.Input(id="labelled", data=r.Data(image=r.Image(base64=PNG), regions=[box],
                                             concepts=[r.Concept(id="pet", value=1)]))
    assert _post(clarifai_raw, clarifai_app, [inp]).status.code == codes.SUCCESS
    stored = _get(clarifai_raw, clarifai_app, "labelled").input
    assert [c.id for c in stored.data.concepts] == ["pet"]
    assert not stored.data.regions  # regions live on as annotations
    anns = _annotations(clarifai_raw, clarifai_app, "labelled")
    assert len(anns) == 2
    level = [a for a in anns if a.input_level]
    regions = [a for a in anns if not a.input_level]
    assert [c.id for c in level[0].data.concepts] == ["pet"]
    assert regions[0].data.regions[0].region_info.bounding_box.right_col == pytest.approx(0.6)
    assert regions[0].data.regions[0].id
    concepts = clarifai_raw.call("ListConcepts", s.ListConceptsRequest(
        user_app_id=clarifai_app.user_app_id))
    assert {c.id for c in concepts.concepts} == {"pet", "dog"}


def _patch(api, app, inputs, action):
    return api.call("PatchInputs", s.PatchInputsRequest(
        user_app_id=app.user_app_id, inputs=inputs, action=action))


def test_patch_inputs_merge_overwrite_remove(clarifai_raw, clarifai_app):
    data = r.Data(text=r.Text(raw="t"), concepts=[r.Concept(id="a", value=1)])
    data.metadata.update({"keep": 1, "drop": 2})
    _post(clarifai_raw, clarifai_app, [r.Input(id="p", data=data)])

    merge = r.Data(concepts=[r.Concept(id="b", value=1), r.Concept(id="a", value=0)])
    merge.metadata.update({"new": "yes"})
    resp = _patch(clarifai_raw, clarifai_app, [r.Input(id="p", data=merge)], "merge")
    assert resp.status.code == codes.SUCCESS, resp.status
    got = _get(clarifai_raw, clarifai_app, "p").input
    assert [(c.id, c.value) for c in got.data.concepts] == [("a", 0), ("b", 1)]
    assert dict(got.data.metadata) == {"keep": 1, "drop": 2, "new": "yes"}
    assert got.data.text.raw == "t"
    level = [a for a in _annotations(clarifai_raw, clarifai_app, "p") if a.input_level]
    assert [c.id for c in level[0].data.concepts] == ["a", "b"]

    remove = r.Data(concepts=[r.Concept(id="a")])
    remove.metadata.update({"drop": None})
    _patch(clarifai_raw, clarifai_app, [r.Input(id="p", data=remove)], "remove")
    got = _get(clarifai_raw, clarifai_app, "p").input
    assert [c.id for c in got.data.concepts] == ["b"]
    assert set(got.data.metadata.keys()) == {"keep", "new"}

    overwrite = r.Data()
    overwrite.metadata.update({"only": True})
    _patch(clarifai_raw, clarifai_app, [r.Input(id="p", data=overwrite)], "overwrite")
    got = _get(clarifai_raw, clarifai_app, "p").input
    assert dict(got.data.metadata) == {"only": True}
    assert got.data.text.raw == "t" and [c.id for c in got.data.concepts] == ["b"]

    resp = _patch(clarifai_raw, clarifai_app, [
        r.Input(id="p", data=r.Data(image=r.Image(base64=PNG))),
        r.Input(id="ghost", data=r.Data(concepts=[r.Concept(id="c", value=1)]))], "merge")
    assert resp.status.code == codes.FAILURE
    assert resp.inputs[0].status.code == codes.INPUT_INVALID_ARGUMENT
    assert "cannot be patched" in resp.inputs[0].status.description
    assert resp.inputs[1].status.code == codes.INPUT_DOES_NOT_EXIST
    assert "'ghost' does not exist" in resp.inputs[1].status.description
    bad_action = _patch(clarifai_raw, clarifai_app, [r.Input(id="p")], "replace")
    assert bad_action.status.code == codes.CONN_INVALID_REQUEST


def test_delete_inputs_removes_annotations_and_memberships(clarifai_server, clarifai_raw,
                                                           clarifai_app):
    clarifai_raw.call("PostDatasets", s.PostDatasetsRequest(
        user_app_id=clarifai_app.user_app_id, datasets=[r.Dataset(id="d")]))
    _post(clarifai_raw, clarifai_app, [
        _text("d1", concepts=[r.Concept(id="k", value=1)], dataset_ids=["d"]),
        _text("d2"), _text("d3")])
    resp = clarifai_raw.call("DeleteInputs", s.DeleteInputsRequest(
        user_app_id=clarifai_app.user_app_id, ids=["d1", "d2", "unknown"]))
    assert resp.status.code == codes.SUCCESS
    assert [i.id for i in _list(clarifai_raw, clarifai_app).inputs] == ["d3"]
    assert not _annotations(clarifai_raw, clarifai_app, "d1")
    db = clarifai_server.store.read()
    assert not db.execute("SELECT 1 FROM dataset_inputs WHERE input_id='d1'").fetchall()
    empty = clarifai_raw.call("DeleteInputs", s.DeleteInputsRequest(
        user_app_id=clarifai_app.user_app_id, ids=[]))
    assert empty.status.code == codes.SUCCESS
    one = clarifai_raw.call("DeleteInput", s.DeleteInputRequest(
        user_app_id=clarifai_app.user_app_id, input_id="d1"))
    assert one.status.code == codes.CONN_DOES_NOT_EXIST


def test_url_inputs_download_in_background(clarifai_server, clarifai_raw, clarifai_app,
                                           file_server):
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    dead_url = f"http://127.0.0.1:{closed.server_address[1]}/x.png"
    closed.server_close()  # nothing listens there any more
    resp = _post(clarifai_raw, clarifai_app, [
        r.Input(id="u-ok", data=r.Data(image=r.Image(url=f"{file_server.base}/cat.png"))),
        r.Input(id="u-text", data=r.Data(text=r.Text(url=f"{file_server.base}/note.txt"))),
        r.Input(id="u-404", data=r.Data(image=r.Image(url=f"{file_server.base}/missing.png"))),
        r.Input(id="u-dead", data=r.Data(image=r.Image(url=dead_url))),
    ], inputs_add_job_id="job-urls")
    assert resp.status.code == codes.SUCCESS
    assert {i.status.code for i in resp.inputs} == {codes.INPUT_DOWNLOAD_PENDING}

    job = _wait_job(clarifai_raw, clarifai_app, "job-urls")
    assert (job.progress.success_count, job.progress.failed_count) == (2, 2)
    assert job.status.code == codes.JOB_COMPLETED
    got = {i.id: i for i in _list(clarifai_raw, clarifai_app).inputs}
    assert got["u-ok"].status.code == codes.INPUT_DOWNLOAD_SUCCESS
    assert got["u-ok"].data.image.url == f"{file_server.base}/cat.png"  # the URL given is kept
    digest = got["u-ok"].data.image.hosted.suffix
    from clarifai_connect.server import media_blobs
    assert media_blobs.read(clarifai_server, digest) == PNG
    assert got["u-text"].status.code == codes.INPUT_DOWNLOAD_SUCCESS
    assert got["u-404"].status.code == codes.INPUT_DOWNLOAD_FAILED
    assert "HTTP 404" in got["u-404"].status.details
    assert got["u-dead"].status.code == codes.INPUT_DOWNLOAD_FAILED
    assert "cannot reach" in got["u-dead"].status.details

    # What the official SDK's bulk upload does next: list the successes by id and status.
    ok = _list(clarifai_raw, clarifai_app, ids=["u-ok", "u-404", "u-dead", "u-text"],
               status=resp.status.__class__(code=codes.INPUT_DOWNLOAD_SUCCESS))
    assert [i.id for i in ok.inputs] == ["u-ok", "u-text"]
    count = clarifai_raw.call("GetInputCount", s.GetInputCountRequest(
        user_app_id=clarifai_app.user_app_id)).counts
    assert (count.processed, count.errors, count.to_process) == (2, 2, 0)


def test_add_jobs_list_and_cancel(clarifai_raw, clarifai_app, file_server):
    file_server.gate.clear()
    try:
        _post(clarifai_raw, clarifai_app, [_text("j1"), _text("j1")], inputs_add_job_id="job-a")
        _post(clarifai_raw, clarifai_app, [
            r.Input(id="slow", data=r.Data(image=r.Image(url=f"{file_server.base}/slow/cat.png")))],
            inputs_add_job_id="job-b")
        job_b = clarifai_raw.call("GetInputsAddJob", s.GetInputsAddJobRequest(
            user_app_id=clarifai_app.user_app_id, id="job-b")).inputs_add_job
        assert job_b.progress.pending_count == 1 and job_b.status.code == codes.JOB_RUNNING
        count = clarifai_raw.call("GetInputCount", s.GetInputCountRequest(
            user_app_id=clarifai_app.user_app_id)).counts
        assert (count.processed, count.to_process) == (1, 1)

        jobs = clarifai_raw.call("ListInputsAddJobs", s.ListInputsAddJobsRequest(
            user_app_id=clarifai_app.user_app_id))
        assert [j.id for j in jobs.inputs_add_jobs] == ["job-a", "job-b"]
        job_a = jobs.inputs_add_jobs[0]
        assert (job_a.progress.success_count, job_a.progress.failed_count) == (1, 1)
        assert not clarifai_raw.call("ListInputsAddJobs", s.ListInputsAddJobsRequest(
            user_app_id=clarifai_app.user_app_id, page=2)).inputs_add_jobs

        cancelled = clarifai_raw.call("CancelInputsAddJob", s.CancelInputsAddJobRequest(
            user_app_id=clarifai_app.user_app_id, id="job-b"))
        assert cancelled.status.code == codes.SUCCESS
        assert cancelled.inputs_add_job.status.code == codes.JOB_CANCELLED
        assert cancelled.inputs_add_job.progress.failed_count == 1
    finally:
        file_server.gate.set()
    slow = _get(clarifai_raw, clarifai_app, "slow").input
    assert slow.status.code == codes.INPUT_DOWNLOAD_FAILED
    assert "cancelled" in slow.status.details
    missing = clarifai_raw.call("GetInputsAddJob", s.GetInputsAddJobRequest(
        user_app_id=clarifai_app.user_app_id, id="no-job"))
    assert missing.status.code == codes.CONN_DOES_NOT_EXIST


def test_inputs_persist_across_restart(tmp_path):
    key = "k" * 32
    user = r.UserAppIDSet(user_id="u1", app_id="keep")
    with LocalServer(data_dir=tmp_path, keys=[key], user="u1") as server:
        api = raw_api(server)
        api.call("PostApps", s.PostAppsRequest(user_app_id=r.UserAppIDSet(user_id="u1"),
                                               apps=[r.App(id="keep")]))
        resp = api.call("PostInputs", s.PostInputsRequest(user_app_id=user, inputs=[
            r.Input(id="img", data=r.Data(image=r.Image(base64=PNG),
                                          concepts=[r.Concept(id="c", value=1)])),
            _text("txt")]))
        assert resp.status.code == codes.SUCCESS
        digest = resp.inputs[0].data.image.hosted.suffix
    with LocalServer(data_dir=tmp_path, keys=[key], user="u1") as server:
        api = raw_api(server)
        listed = api.call("ListInputs", s.ListInputsRequest(user_app_id=user))
        assert [i.id for i in listed.inputs] == ["img", "txt"]
        image = listed.inputs[0].data.image
        assert image.hosted.suffix == digest
        assert image.hosted.prefix == f"{server.media_url}/media"  # re-rendered for this run
        anns = api.call("ListAnnotations", s.ListAnnotationsRequest(user_app_id=user))
        assert [c.id for c in anns.annotations[0].data.concepts] == ["c"]
        dup = api.call("PostInputs", s.PostInputsRequest(user_app_id=user, inputs=[_text("txt")]))
        assert dup.inputs[0].status.code == codes.INPUT_DUPLICATE


def test_downloads_left_pending_resume_after_restart(tmp_path, file_server):
    key = "k" * 32
    user = r.UserAppIDSet(user_id="u1", app_id="resume")
    url_input = r.Input(id="later", data=r.Data(image=r.Image(url=f"{file_server.base}/cat.png")))
    with LocalServer(data_dir=tmp_path, keys=[key], user="u1") as server:
        api = raw_api(server)
        api.call("PostApps", s.PostAppsRequest(user_app_id=r.UserAppIDSet(user_id="u1"),
                                               apps=[r.App(id="resume")]))
        server.background.shutdown(wait=True)  # as if the server were stopping right now
        resp = api.call("PostInputs", s.PostInputsRequest(
            user_app_id=user, inputs=[url_input], inputs_add_job_id="j"))
        assert resp.inputs[0].status.code == codes.INPUT_DOWNLOAD_PENDING
    with LocalServer(data_dir=tmp_path, keys=[key], user="u1") as server:
        api = raw_api(server)
        job = _wait_job(api, AppRef("u1", "resume"), "j")
        assert job.progress.success_count == 1
        got = api.call("GetInput", s.GetInputRequest(user_app_id=user, input_id="later")).input
        assert got.status.code == codes.INPUT_DOWNLOAD_SUCCESS and got.data.image.hosted.suffix


def test_slow_url_fails_with_a_timeout(tmp_path, file_server):
    file_server.gate.clear()
    try:
        with LocalServer(data_dir=tmp_path, download_timeout=0.3, user="u1") as server:
            api = raw_api(server)
            app = AppRef("u1", "slow")
            api.call("PostApps", s.PostAppsRequest(user_app_id=r.UserAppIDSet(user_id="u1"),
                                                   apps=[r.App(id="slow")]))
            api.call("PostInputs", s.PostInputsRequest(user_app_id=app.user_app_id, inputs=[
                r.Input(id="s", data=r.Data(image=r.Image(url=f"{file_server.base}/slow/cat.png")))],
                inputs_add_job_id="j"))
            assert _wait_job(api, app, "j").progress.failed_count == 1
            got = _get(api, app, "s").input
            assert got.status.code == codes.INPUT_DOWNLOAD_FAILED
            assert "timed out after 0.3s" in got.status.details
    finally:
        file_server.gate.set()


def test_unknown_app_fails_the_call(clarifai_raw):
    from clarifai_connect.testing import TEST_USER

    resp = clarifai_raw.call("PostInputs", s.PostInputsRequest(
        user_app_id=r.UserAppIDSet(user_id=TEST_USER, app_id="none"), inputs=[_text("a")]))
    assert resp.status.code == codes.CONN_DOES_NOT_EXIST
    assert "app 'none'" in resp.status.details and not resp.inputs
