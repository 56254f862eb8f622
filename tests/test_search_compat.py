"""The official SDK's ``Search.query``, unchanged, against the local server: the filter
cases of the SDK's own tests (OR within a dict, AND across), ranking by an image URL with
and without a filter, per-page and all-pages paging, and its client-side schema errors."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.protobuf import struct_pb2

pytestmark = pytest.mark.compat

sdk_search = pytest.importorskip("clarifai.client.search", reason="install the compat extra")
from clarifai.client.user import User  # noqa: E402
from clarifai.errors import UserError as SdkUserError  # noqa: E402

from .test_server_embeddings import encoded, scene  # noqa: E402

APP_ID = "sdk_search_app"


class _Dog(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture(scope="module")
def sdk_app(clarifai_server, tmp_path_factory):
    """The SDK test's app: one labelled, placed dog by URL and 11 other images (a folder)."""
    handler = type("Dog", (_Dog,), {"body": encoded(scene(42))})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    dog_url = f"http://127.0.0.1:{httpd.server_port}/dog.png"
    key = clarifai_server.add_key(f"sdk-search-user:{'q' * 32}")  # that user's own key
    user = User(user_id="sdk-search-user", base_url=clarifai_server.base_url, pat=key)
    app = user.create_app(APP_ID, base_workflow="General")
    dataset = app.create_dataset("ci_search_dataset")
    inputs = app.inputs()
    metadata = struct_pb2.Struct()
    metadata.update({"Breed": "Saint Bernard"})
    dog = inputs.get_input_from_url(dataset_id="ci_search_dataset", input_id="dog-tiff",
                                    image_url=dog_url, labels=["dog"], geo_info=[-30.0, 40.0],
                                    metadata=metadata)
    inputs.upload_inputs([dog])
    folder = tmp_path_factory.mktemp("images")
    for n in range(11):
        (folder / f"img{n}.png").write_bytes(encoded(scene(100 + n, size=(64, 48))))
    dataset.upload_from_folder(str(folder), input_type="image", labels=False)
    for _ in range(400):  # the dog is fetched from its URL in the background
        listed = list(inputs.list_inputs(input_type="image"))
        if len(listed) == 12 and all(i.status.code == 30000 for i in listed):
            break
        time.sleep(0.05)
    yield {"user": user, "url": dog_url, "server": clarifai_server, "key": key}
    user.delete_app(APP_ID)
    httpd.shutdown()


def _search(sdk_app, **kwargs):
    return sdk_search.Search(user_id="sdk-search-user", app_id=APP_ID,
                             base_url=sdk_app["server"].base_url,
                             pat=sdk_app["key"], **kwargs)


FILTER_CASES = [
    ([{"geo_point": {"longitude": -29.0, "latitude": 40.0, "geo_limit": 100}}], 1),
    ([{"geo_point": {"longitude": -29.0, "latitude": 40.0, "geo_limit": 10}}], 0),
    ([{"concepts": [{"name": "dog", "value": 1}]}], 1),
    ([{"concepts": [{"name": "deer", "value": 1}, {"name": "dog", "value": 1}]}], 1),  # OR
    ([{"concepts": [{"name": "dog", "value": 1}]},
      {"concepts": [{"name": "deer", "value": 1}]}], 0),  # AND
    ([{"metadata": {"Breed": "Saint Bernard"}}], 1),
    ([{"input_types": ["image"]}, {"input_status_code": 30000}], 1),
    ([{"input_types": ["text", "audio", "video"]}], 0),
    ([{"input_types": ["text", "audio", "video"], "input_status_code": 30000}], 1),  # OR
    ([{"input_dataset_ids": ["random_dataset"]}], 0),
    ([{"input_dataset_ids": ["ci_search_dataset"]}], 1),
]


@pytest.mark.parametrize("filters, expected", FILTER_CASES)
def test_sdk_filter_search(sdk_app, filters, expected):
    pages = list(_search(sdk_app, top_k=1, metric="euclidean").query(filters=filters))
    assert len(pages) == expected


def test_sdk_rank_search_finds_the_dog(sdk_app):
    search = _search(sdk_app, top_k=1, metric="euclidean")
    pages = list(search.query(ranks=[{"image_url": sdk_app["url"]}]))
    assert len(pages) == 1 and len(pages[0].hits) == 1
    assert pages[0].hits[0].input.id == "dog-tiff"
    ranked = list(search.query(ranks=[{"image_url": sdk_app["url"]}],
                               filters=[{"input_types": ["image"]}]))
    assert ranked[0].hits[0].input.id == "dog-tiff"
    cosine = _search(sdk_app, top_k=3, metric="cosine", algorithm="brute_force")
    hits = [h for page in cosine.query(ranks=[{"image_url": sdk_app["url"]}]) for h in page.hits]
    assert len(hits) == 3 and hits[0].input.id == "dog-tiff"
    assert hits[0].score > hits[1].score


def test_sdk_paging(sdk_app):
    paged = _search(sdk_app, metric="euclidean", pagination=True)
    first = list(paged.query(filters=[{"input_types": ["image"]}], per_page=3, page_no=1))
    assert len(first) == 1 and len(first[0].hits) == 3
    fourth = list(paged.query(filters=[{"input_types": ["image"]}], per_page=3, page_no=4))
    assert len(fourth[0].hits) == 3
    everything = list(paged.query(filters=[{"input_types": ["image"]}]))
    assert [len(page.hits) for page in everything] == [12]
    many = list(_search(sdk_app, top_k=12, metric="euclidean").query())
    assert sum(len(page.hits) for page in many) == 12


def test_sdk_schema_errors(sdk_app):
    search = _search(sdk_app, top_k=1, metric="euclidean")
    for bad in ([{"geo_point": {"longitude": -29.0, "latitude": 40.0, "geo_limit": 10,
                                "extra": 1}}],
                [{"concepts": [{"value": 1, "concept_id": "deer"}]}],
                [{"concepts": [{"name": "deer", "value": 2}]}],
                [{"input_types": ["imaage"]}],
                [{"input_id": "test"}]):
        with pytest.raises(SdkUserError):
            search.query(filters=bad)
