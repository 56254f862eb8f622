"""ListInputs and ListDatasetInputs pages are keyset seeks (server/input_pages.py): every input exactly once and in
order, walked in order, out of order, and across deletes and later additions."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes


def _post(api, app, ids):
    for start in range(0, len(ids), 128):
        resp = api.call("PostInputs", s.PostInputsRequest(user_app_id=app.user_app_id, inputs=[
            r.Input(id=i, data=r.Data(text=r.Text(raw=i))) for i in ids[start:start + 128]]))
        assert resp.status.code == codes.SUCCESS, resp.status


def _page(api, app, page, per_page):
    resp = api.call("ListInputs", s.ListInputsRequest(user_app_id=app.user_app_id, page=page,
                                                      per_page=per_page))
    assert resp.status.code == codes.SUCCESS, resp.status
    return [i.id for i in resp.inputs]


def _walk(api, app, per_page):
    out, page = [], 1
    while True:
        ids = _page(api, app, page, per_page)
        out += ids
        if len(ids) < per_page:
            return out
        page += 1


def test_paging_returns_every_input_once_in_order(clarifai_raw, clarifai_app):
    ids = [f"in-{n:04d}" for n in range(530)]
    _post(clarifai_raw, clarifai_app, ids)
    assert _walk(clarifai_raw, clarifai_app, 50) == ids  # walked in order (keyset seeks)
    assert _walk(clarifai_raw, clarifai_app, 50) == ids  # again, from remembered bounds
    # out of order and with other page sizes: the same slices as the full listing
    for page, per_page in [(7, 50), (3, 50), (11, 50), (12, 50), (2, 128), (5, 128), (1, 7)]:
        start = (page - 1) * per_page
        assert _page(clarifai_raw, clarifai_app, page, per_page) == ids[start:start + per_page]


def test_pages_stay_right_after_deletes_and_additions(clarifai_raw, clarifai_app):
    ids = [f"d-{n:03d}" for n in range(300)]
    _post(clarifai_raw, clarifai_app, ids)
    assert _walk(clarifai_raw, clarifai_app, 40) == ids
    gone = ids[5:45]  # the whole of page 1's tail and page 2's head
    resp = clarifai_raw.call("DeleteInputs", s.DeleteInputsRequest(
        user_app_id=clarifai_app.user_app_id, ids=gone))
    assert resp.status.code == codes.SUCCESS, resp.status
    left = [i for i in ids if i not in gone]
    assert _page(clarifai_raw, clarifai_app, 3, 40) == left[80:120]  # boundaries forgotten
    more = [f"e-{n:03d}" for n in range(70)]
    _post(clarifai_raw, clarifai_app, more)
    assert _walk(clarifai_raw, clarifai_app, 40) == left + more  # the partial page filled up


def _members(api, app, dataset, page, per_page):
    resp = api.call("ListDatasetInputs", s.ListDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id=dataset, page=page, per_page=per_page))
    assert resp.status.code == codes.SUCCESS, resp.status
    return [d.input.id for d in resp.dataset_inputs]


def _walk_members(api, app, dataset, per_page):
    out, page = [], 1
    while True:
        ids = _members(api, app, dataset, page, per_page)
        out += ids
        if len(ids) < per_page:
            return out
        page += 1


def _add(api, app, dataset, ids):
    resp = api.call("PostDatasetInputs", s.PostDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id=dataset,
        dataset_inputs=[r.DatasetInput(input=r.Input(id=i)) for i in ids]))
    assert resp.status.code == codes.SUCCESS, resp.status


def test_dataset_pages_are_keyset_and_stay_right(clarifai_raw, clarifai_app):
    api, app = clarifai_raw, clarifai_app
    for dataset in ("a", "b"):
        resp = api.call("PostDatasets", s.PostDatasetsRequest(
            user_app_id=app.user_app_id, datasets=[r.Dataset(id=dataset)]))
        assert resp.status.code == codes.SUCCESS, resp.status
    ids = [f"m-{n:03d}" for n in range(260)]
    _post(api, app, ids)
    _add(api, app, "a", ids[::-1])  # members in the order they joined, not of creation
    _add(api, app, "b", ids[:90])
    joined = ids[::-1]
    assert _walk_members(api, app, "a", 40) == joined
    assert _walk_members(api, app, "a", 40) == joined  # from remembered bounds
    assert _walk_members(api, app, "b", 40) == ids[:90]  # each dataset its own bounds
    for page, per_page in [(5, 40), (2, 40), (7, 40), (3, 100), (1, 9)]:
        start = (page - 1) * per_page
        assert _members(api, app, "a", page, per_page) == joined[start:start + per_page]
    _add(api, app, "a", ids[:10])  # added again: they keep their first place
    assert _walk_members(api, app, "a", 40) == joined
    gone = joined[30:50]
    resp = api.call("DeleteDatasetInputs", s.DeleteDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="a", input_ids=gone))
    assert resp.status.code == codes.SUCCESS, resp.status
    left = [i for i in joined if i not in gone]
    assert _members(api, app, "a", 3, 40) == left[80:120]  # boundaries forgotten
    resp = api.call("DeleteInputs", s.DeleteInputsRequest(user_app_id=app.user_app_id,
                                                          ids=left[:5]))
    assert resp.status.code == codes.SUCCESS, resp.status
    assert _walk_members(api, app, "a", 40) == left[5:]
