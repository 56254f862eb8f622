"""The client's Search and App.search: the reference's signatures, dict checks naming the bad
key, callers' dicts left alone, and lazy paging up to top_k, against the real server."""

from __future__ import annotations

import copy

import pytest

from clarifai_connect.client import App, Search
from clarifai_connect.client import search as search_module
from clarifai_connect.errors import UserError

from .test_search_server import ALL, pictures, zoo  # noqa: F401 (fixtures)
from .test_server_embeddings import encoded, scene


@pytest.fixture
def app(clarifai_server, zoo):  # noqa: F811
    return App(user_id=zoo.user_id, app_id=zoo.app_id, base_url=clarifai_server.base_url,
               pat=clarifai_server.keys[0])


def hit_ids(query) -> list[str]:
    return [hit.input.id for page in query for hit in page.hits]


def test_app_search_filters_and_ranks(app):
    search = app.search(top_k=10, metric="euclidean")
    assert isinstance(search, Search) and search.app_id == app.app_id
    assert hit_ids(search.query(filters=[{"concepts": [{"id": "dog", "value": 1}]}])) == \
        ["dog1", "dog2", "txt1"]
    assert hit_ids(search.query(filters=[{"concepts": [{"name": "dog"}]}])) == \
        ["dog1", "dog2", "txt1"]  # value defaults to 1 here
    assert hit_ids(search.query(filters=[{"metadata": {"breed": "Pug"}},
                                         {"input_dataset_ids": ["test"]}])) == ["dog2"]
    assert hit_ids(search.query(filters=[{"concepts": [{"id": "cat"}], "negate": True},
                                         {"input_types": ["image"]}])) == \
        ["dog1", "dog2", "box1", "gone"]
    near = hit_ids(search.query(ranks=[{"image_bytes": encoded(scene(10), "JPEG")}]))
    assert near[0] == "dog1"
    assert hit_ids(search.query(ranks=[{"input_id": "txt1"}]))[0] == "txt1"
    assert hit_ids(search.query(ranks=[{"text_raw": "dog sleeping in the sun"}])) == \
        ["txt1", "txt2"]
    assert search.count(filters=[{"input_types": ["text"]}]) == 2
    assert [h.input.id for h in search.hits(filters=[{"input_types": ["text"]}])] == \
        ["txt1", "txt2"]


def test_lazy_paging_stops_at_top_k(app, monkeypatch):
    monkeypatch.setattr(search_module, "PAGE_SIZE", 2)  # pages of 2 hits
    calls = []
    search = app.search(top_k=5)
    original = search._search

    def counting(request):
        calls.append(request.pagination.page)
        return original(request)

    search._search = counting
    query = search.query()
    assert calls == []  # nothing sent before iterating
    pages = [[h.input.id for h in page.hits] for page in query]
    assert pages == [ALL[:2], ALL[2:4], ALL[4:5]] and calls == [1, 2, 3]
    paged = app.search(pagination=True)
    assert hit_ids(paged.query(page_no=2, per_page=3)) == ALL[3:6]
    assert hit_ids(paged.query()) == ALL
    with pytest.raises(UserError, match="page \\* perPage cannot exceed 10000"):
        list(paged.query(page_no=11, per_page=1000))


def test_dicts_are_checked_naming_the_key_and_never_changed(app):
    search = app.search()
    bad = [
        ([{"input_id": "x"}], r"filters\[0\]: unknown key 'input_id'"),
        ([{}, {"concepts": [{"name": "dog", "value": 2}]}], r"filters\[1\].concepts\[0\].value"),
        ([{"concepts": [{"concept_id": "dog"}]}], "unknown key 'concept_id'"),
        ([{"concepts": [{"name": "big dog"}]}], r"concepts\[0\].name"),
        ([{"input_types": ["imaage"]}], "unknown input type 'imaage'"),
        ([{"geo_point": {"longitude": 1.0, "latitude": 2.0}}], "geo_point must be a dict"),
        ([{"input_status_code": "30000"}], "input_status_code must be an int"),
        ([{"metadata": "breed"}], "metadata must be a dict"),
        ({"concepts": []}, "filters must be a list"),
    ]
    for filters, message in bad:
        with pytest.raises(UserError, match=message):
            search.query(filters=filters)
    with pytest.raises(UserError, match=r"ranks\[0\].image_url"):
        search.query(ranks=[{"image_url": "ftp://x"}])
    with pytest.raises(UserError, match="metric"):
        Search(user_id="u", app_id="a", metric="manhattan")
    with pytest.raises(UserError, match="top_k and pagination"):
        Search(user_id="u", app_id="a", top_k=3, pagination=True)
    with pytest.raises(UserError, match="pagination=True"):
        search.query(page_no=2)

    filters = [{"concepts": [{"id": "dog", "value": 1}], "input_types": ["image"],
                "metadata": {"vet": {"ok": True}}}]
    ranks = [{"image_bytes": encoded(scene(10))}]
    before = copy.deepcopy((filters, ranks))
    found = hit_ids(search.query(ranks=ranks, filters=filters))  # keys of a dict are OR
    assert found[0] == "dog1" and set(found) == {"dog1", "dog2", "cat1", "box1"}
    assert (filters, ranks) == before
