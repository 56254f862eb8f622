"""PostInputsSearches and PostAnnotationsSearches over the raw stub: every filter kind, OR
within a filter and AND across, negation, paging and its limit, only_count, ranking by
image bytes / URL / text / input with both metrics, annotation hits, and SQL indexes."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from clarifai_grpc.grpc.api.status import status_pb2
from google.protobuf import struct_pb2

from clarifai_connect.server.ml.search_query import compile_query
from clarifai_connect.testing import TEST_USER, AppRef

from .test_server_embeddings import app_pk, encoded, make_app, post, scene

EUCLIDEAN, COSINE = r.Search.EUCLIDEAN_DISTANCE, r.Search.COSINE_DISTANCE


class _Pictures(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = self.files.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        if body:
            self.wfile.write(body)


@pytest.fixture(scope="module")
def pictures():
    handler = type("Pictures", (_Pictures,), {"files": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield handler.files, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def _struct(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def _geo(lon: float, lat: float) -> r.Geo:
    return r.Geo(geo_point=r.GeoPoint(longitude=lon, latitude=lat))


def _concept(cid: str, value: float = 1.0, name: str = "") -> r.Concept:
    return r.Concept(id=cid, name=name or cid, value=value)


@pytest.fixture(scope="module")
def zoo(clarifai_server, clarifai_raw, pictures):
    """An app of pictures and texts with concepts, metadata, places, datasets and statuses."""
    files, base = pictures
    api = clarifai_raw
    app = make_app(api, TEST_USER, f"zoo-{uuid.uuid4().hex[:8]}")
    resp = api.call("PostDatasets", s.PostDatasetsRequest(
        user_app_id=app.user_app_id, datasets=[r.Dataset(id="train"), r.Dataset(id="test")]))
    assert resp.status.code == codes.SUCCESS
    dog, cat = scene(10), scene(11)
    files["/dog-copy.png"] = encoded(dog.resize((200, 150)))
    inputs = [
        r.Input(id="dog1", dataset_ids=["train"], data=r.Data(
            image=r.Image(base64=encoded(dog)), concepts=[_concept("dog")],
            metadata=_struct({"breed": "Saint Bernard", "age": 3, "tags": ["big", "fluffy"],
                              "vet": {"ok": True}}),
            geo=_geo(-30.0, 40.0))),
        r.Input(id="dog2", dataset_ids=["test"], data=r.Data(
            image=r.Image(base64=encoded(scene(12))),
            concepts=[_concept("dog"), _concept("cat", 0.0)],
            metadata=_struct({"breed": "Pug", "age": 3.5, "vet": {"ok": False}}),
            geo=_geo(-31.5, 40.2))),
        r.Input(id="cat1", dataset_ids=["train"], data=r.Data(
            image=r.Image(base64=encoded(cat)), concepts=[_concept("cat", name="Kitty")],
            geo=_geo(10.0, 10.0))),
        r.Input(id="txt1", data=r.Data(text=r.Text(raw="the old dog sleeps in the warm sun"),
                                       concepts=[_concept("dog")])),
        r.Input(id="txt2", data=r.Data(text=r.Text(raw="stock prices fell sharply today"))),
        r.Input(id="box1", data=r.Data(image=r.Image(base64=encoded(scene(13))), regions=[
            r.Region(region_info=r.RegionInfo(bounding_box=r.BoundingBox(
                top_row=0.1, left_col=0.1, bottom_row=0.5, right_col=0.5)),
                data=r.Data(concepts=[_concept("person")]))])),
        r.Input(id="gone", data=r.Data(image=r.Image(url=f"{base}/missing.png"))),
    ]
    post(api, app, inputs)
    pk = app_pk(clarifai_server, app)
    for _ in range(200):  # the URL input fails to download (404)
        got = api.call("GetInput", s.GetInputRequest(user_app_id=app.user_app_id,
                                                     input_id="gone"))
        if got.input.status.code == codes.INPUT_DOWNLOAD_FAILED:
            break
        threading.Event().wait(0.05)
    assert clarifai_server.embeddings.wait(pk, 120)
    return app


def search(api, app: AppRef, filters=(), ranks=(), page=0, per_page=0, only_count=False,
           metric=EUCLIDEAN, annotations=False, **search_fields):
    query = r.Query(filters=list(filters), ranks=list(ranks))
    kind = "PostAnnotationsSearches" if annotations else "PostInputsSearches"
    cls = s.PostAnnotationsSearchesRequest if annotations else s.PostInputsSearchesRequest
    extra = {"only_count": only_count} if not annotations else {}
    return api.call(kind, cls(user_app_id=app.user_app_id, pagination=s.Pagination(
        page=page, per_page=per_page), searches=[r.Search(query=query, metric=metric,
                                                          **search_fields)], **extra))


def ids(api, app, *args, **kwargs) -> list[str]:
    resp = search(api, app, *args, **kwargs)
    assert resp.status.code == codes.SUCCESS, resp.status
    return [hit.input.id for hit in resp.hits]


def concepts_filter(*concepts: r.Concept, negate: bool = False) -> r.Filter:
    return r.Filter(negate=negate, annotation=r.Annotation(data=r.Data(concepts=concepts)))


def meta_filter(value: dict) -> r.Filter:
    return r.Filter(annotation=r.Annotation(data=r.Data(metadata=_struct(value))))


ALL = ["dog1", "dog2", "cat1", "txt1", "txt2", "box1", "gone"]


def test_empty_rank_and_filter_match_everything_in_creation_order(clarifai_raw, zoo):
    assert ids(clarifai_raw, zoo) == ALL
    assert ids(clarifai_raw, zoo, [r.Filter()], [r.Rank()]) == ALL
    resp = search(clarifai_raw, zoo)
    assert all(hit.score == 1.0 and hit.app_id == zoo.app_id for hit in resp.hits)
    assert resp.hits[0].input.data.image.url.startswith("http")  # hosted, not bytes
    assert not resp.hits[0].input.data.image.base64


def test_concepts_by_id_name_value_and_negation(clarifai_raw, zoo):
    api = clarifai_raw
    assert ids(api, zoo, [concepts_filter(r.Concept(id="dog", value=1))]) == \
        ["dog1", "dog2", "txt1"]
    assert ids(api, zoo, [concepts_filter(r.Concept(name="Kitty", value=1))]) == ["cat1"]
    # value 0: labelled "not cat"; negate: not labelled cat
    assert ids(api, zoo, [concepts_filter(r.Concept(id="cat", value=0))]) == ["dog2"]
    assert ids(api, zoo, [concepts_filter(r.Concept(id="cat", value=1), negate=True)]) == \
        ["dog1", "dog2", "txt1", "txt2", "box1", "gone"]
    assert ids(api, zoo, [concepts_filter(r.Concept(id="person", value=1))]) == ["box1"]
    bad = search(api, zoo, [concepts_filter(r.Concept(id="dog", value=0.5))])
    assert bad.status.code == codes.CONN_INVALID_REQUEST and "0 or 1" in bad.status.details


def test_or_within_a_filter_and_across_filters(clarifai_raw, zoo):
    api = clarifai_raw
    dog, cat = r.Concept(id="dog", value=1), r.Concept(id="cat", value=1)
    assert ids(api, zoo, [concepts_filter(dog, cat)]) == ["dog1", "dog2", "cat1", "txt1"]
    assert ids(api, zoo, [concepts_filter(dog), concepts_filter(cat)]) == []
    images = r.Filter(input=r.Input(data=r.Data(image=r.Image())))
    assert ids(api, zoo, [concepts_filter(dog), images]) == ["dog1", "dog2"]
    # One filter mixing input types and a status: OR (the SDK's own test case).
    mixed = r.Filter(input=r.Input(data=r.Data(text=r.Text(), audio=r.Audio()),
                                   status=status_pb2.Status(code=codes.INPUT_DOWNLOAD_FAILED)))
    assert ids(api, zoo, [mixed]) == ["txt1", "txt2", "gone"]
    both = r.Filter(annotation=r.Annotation(data=r.Data(concepts=[cat])),
                    input=r.Input(dataset_ids=["test"]))
    assert ids(api, zoo, [both]) == ["dog2", "cat1"]


def test_metadata_is_a_partial_json_match(clarifai_raw, zoo):
    api = clarifai_raw
    assert ids(api, zoo, [meta_filter({"breed": "Saint Bernard"})]) == ["dog1"]
    assert ids(api, zoo, [meta_filter({"age": 3})]) == ["dog1"]  # 3 == 3.0, not 3.5
    assert ids(api, zoo, [meta_filter({"age": 3.5})]) == ["dog2"]
    assert ids(api, zoo, [meta_filter({"tags": ["fluffy"]})]) == ["dog1"]
    assert ids(api, zoo, [meta_filter({"tags": ["fluffy", "small"]})]) == []
    assert ids(api, zoo, [meta_filter({"vet": {"ok": False}})]) == ["dog2"]
    assert ids(api, zoo, [meta_filter({"vet": {"ok": True}, "breed": "Pug"})]) == []
    assert ids(api, zoo, [meta_filter({"breed": "saint bernard"})]) == []


def test_types_datasets_status_and_input_ids(clarifai_raw, zoo):
    api = clarifai_raw
    text = r.Filter(input=r.Input(data=r.Data(text=r.Text())))
    assert ids(api, zoo, [text]) == ["txt1", "txt2"]
    video = r.Filter(input=r.Input(data=r.Data(video=r.Video())))
    assert ids(api, zoo, [video]) == []
    assert ids(api, zoo, [r.Filter(input=r.Input(dataset_ids=["train"]))]) == ["dog1", "cat1"]
    assert ids(api, zoo, [r.Filter(input=r.Input(dataset_ids=["nope"]))]) == []
    ok = r.Filter(input=r.Input(status=status_pb2.Status(code=codes.INPUT_DOWNLOAD_SUCCESS)))
    assert ids(api, zoo, [ok]) == ALL[:-1]
    assert ids(api, zoo, [r.Filter(input=r.Input(id="txt2"))]) == ["txt2"]


def test_geo_within_kilometres(clarifai_raw, zoo):
    api = clarifai_raw

    def near(lon, lat, km, unit="withinKilometers"):
        geo = r.Geo(geo_point=r.GeoPoint(longitude=lon, latitude=lat),
                    geo_limit=r.GeoLimit(type=unit, value=km))
        return r.Filter(annotation=r.Annotation(data=r.Data(geo=geo)))

    # (-29, 40) is ~85 km from dog1 and ~213 km from dog2 (great-circle distances).
    assert ids(api, zoo, [near(-29.0, 40.0, 100)]) == ["dog1"]
    assert ids(api, zoo, [near(-29.0, 40.0, 80)]) == []
    assert ids(api, zoo, [near(-29.0, 40.0, 250)]) == ["dog1", "dog2"]
    assert ids(api, zoo, [near(-29.0, 40.0, 150, "withinMiles")]) == ["dog1", "dog2"]
    bad = search(api, zoo, [near(0, 0, 10, "withinFurlongs")])
    assert bad.status.code == codes.CONN_INVALID_REQUEST and "geo_limit" in bad.status.details


def test_pagination_across_pages_the_window_limit_and_only_count(clarifai_raw, zoo):
    api = clarifai_raw
    pages = [ids(api, zoo, page=p, per_page=3) for p in (1, 2, 3, 4)]
    assert pages == [ALL[:3], ALL[3:6], ALL[6:], []]
    too_far = search(api, zoo, page=11, per_page=1000)
    assert too_far.status.code == codes.CONN_INVALID_REQUEST
    assert "page * perPage cannot exceed" in too_far.status.details
    counted = search(api, zoo, [concepts_filter(r.Concept(id="dog", value=1))], only_count=True)
    assert counted.status.code == codes.SUCCESS and not counted.hits
    assert counted.hit_counts[0].estimated_total == 3
    ranked = search(api, zoo, ranks=[r.Rank(annotation=r.Annotation(
        data=r.Data(text=r.Text(raw="dog"))))], only_count=True)
    assert ranked.hit_counts[0].estimated_total == 2  # the texts: the ones with text vectors


def _rank(**data) -> r.Rank:
    return r.Rank(annotation=r.Annotation(data=r.Data(**data)))


@pytest.mark.parametrize("metric", [EUCLIDEAN, COSINE])
def test_rank_by_image_bytes_url_text_and_input(clarifai_raw, zoo, pictures, metric):
    api = clarifai_raw
    _, base = pictures
    near_copy = encoded(scene(10).resize((120, 90)), "JPEG")
    for rank in (_rank(image=r.Image(base64=near_copy)),
                 _rank(image=r.Image(url=f"{base}/dog-copy.png")),
                 r.Rank(annotation=r.Annotation(input_id="dog1"))):
        resp = search(api, zoo, ranks=[rank], metric=metric)
        assert resp.status.code == codes.SUCCESS, resp.status
        hits = [(h.input.id, h.score) for h in resp.hits]
        assert hits[0][0] == "dog1", hits  # the near-duplicate ranks first
        assert {h[0] for h in hits} == {"dog1", "dog2", "cat1", "box1"}  # images only
        assert all(a[1] >= b[1] for a, b in zip(hits, hits[1:], strict=False))
        assert 0 <= hits[-1][1] < hits[0][1] <= 1
    words = [h.input.id for h in search(api, zoo, ranks=[_rank(text=r.Text(
        raw="a sleeping dog in the sun"))], metric=metric).hits]
    assert words == ["txt1", "txt2"]  # shared words outrank none
    texts = search(api, zoo, ranks=[_rank(text=r.Text(raw="dog"))],
                   filters=[concepts_filter(r.Concept(id="dog", value=1))], metric=metric)
    assert [h.input.id for h in texts.hits] == ["txt1"]  # filter first, then rank


def test_rank_errors_are_clear(clarifai_raw, zoo, pictures):
    api = clarifai_raw
    _, base = pictures
    missing = search(api, zoo, ranks=[_rank(image=r.Image(url=f"{base}/nope.png"))])
    assert missing.status.code == codes.CONN_INVALID_REQUEST
    assert "HTTP 404" in missing.status.details
    unknown = search(api, zoo, ranks=[r.Rank(annotation=r.Annotation(input_id="nobody"))])
    assert unknown.status.code == codes.CONN_DOES_NOT_EXIST
    broken = search(api, zoo, ranks=[_rank(image=r.Image(base64=b"not a picture"))])
    assert broken.status.code == codes.CONN_INVALID_REQUEST and "could not be read" in \
        broken.status.details
    algorithm = search(api, zoo, algorithm="annoy")
    assert algorithm.status.code == codes.CONN_INVALID_REQUEST


def test_negated_rank_min_value_and_two_ranks(clarifai_raw, zoo):
    api = clarifai_raw
    copy = _rank(image=r.Image(base64=encoded(scene(10))))
    far = [h.input.id for h in search(api, zoo, ranks=[r.Rank(
        negate=True, annotation=copy.annotation)]).hits]
    assert far[-1] == "dog1"
    close = search(api, zoo, ranks=[copy], min_value=0.97)
    assert [h.input.id for h in close.hits] == ["dog1"]
    two = search(api, zoo, ranks=[copy, r.Rank(annotation=r.Annotation(input_id="cat1"))])
    assert {h.input.id for h in two.hits[:2]} == {"dog1", "cat1"}


def test_annotation_search_returns_annotation_hits(clarifai_raw, zoo):
    api = clarifai_raw
    resp = search(api, zoo, [concepts_filter(r.Concept(id="person", value=1))],
                  annotations=True)
    assert resp.status.code == codes.SUCCESS, resp.status
    assert len(resp.hits) == 1
    hit = resp.hits[0]
    assert hit.input.id == "box1" and hit.annotation.input_id == "box1"
    assert hit.annotation.data.regions[0].data.concepts[0].id == "person"
    dogs = search(api, zoo, [concepts_filter(r.Concept(id="dog", value=1)),
                             r.Filter(input=r.Input(dataset_ids=["train"]))], annotations=True)
    assert [(h.input.id, h.annotation.data.concepts[0].id) for h in dogs.hits] == \
        [("dog1", "dog")]


def test_facts_follow_patches_and_deletes(clarifai_raw, clarifai_app, clarifai_server):
    api = clarifai_raw
    post(api, clarifai_app, [r.Input(id="a", data=r.Data(text=r.Text(raw="x"),
                                                          concepts=[_concept("red")]))])
    red = [concepts_filter(r.Concept(id="red", value=1))]
    assert ids(api, clarifai_app, red) == ["a"]
    patched = api.call("PatchInputs", s.PatchInputsRequest(
        user_app_id=clarifai_app.user_app_id, action="overwrite", inputs=[r.Input(
            id="a", data=r.Data(concepts=[_concept("blue")], metadata=_struct({"k": 1})))]))
    assert patched.status.code == codes.SUCCESS, patched.status
    assert ids(api, clarifai_app, red) == []
    assert ids(api, clarifai_app, [meta_filter({"k": 1})]) == ["a"]
    api.call("DeleteInputs", s.DeleteInputsRequest(user_app_id=clarifai_app.user_app_id,
                                                   ids=["a"]))
    assert ids(api, clarifai_app, [meta_filter({"k": 1})]) == []
    pk = app_pk(clarifai_server, clarifai_app)
    left = clarifai_server.store.read().execute(
        "SELECT COUNT(*) FROM search_metadata WHERE app_pk=?", (pk,)).fetchone()[0]
    assert left == 0


def test_filters_run_on_indexes(clarifai_server, zoo):
    db = clarifai_server.store.read()
    pk = app_pk(clarifai_server, zoo)
    query = r.Query(filters=[concepts_filter(r.Concept(id="dog", value=1)),
                             meta_filter({"breed": "Pug"})])
    compiled = compile_query(db, pk, query)
    plan = " ".join(row[-1] for row in db.execute(
        f"EXPLAIN QUERY PLAN SELECT i.id FROM inputs i WHERE i.app_pk=? AND "
        f"{compiled.where}", [pk, *compiled.args]))
    assert "COVERING INDEX search_concepts_of_id" in plan
    assert "COVERING INDEX search_metadata_of_value" in plan
    assert "SCAN search_concepts" not in plan and "SCAN search_metadata" not in plan
