"""Datasets and dataset inputs over the raw gRPC stub against the local server."""

import time
import urllib.request

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes


def post_datasets(api, app, *ids, **fields):
    """PostDatasets for ``ids`` (with the same extra fields each)."""
    return api.call("PostDatasets", service_pb2.PostDatasetsRequest(
        user_app_id=app.user_app_id, datasets=[resources_pb2.Dataset(id=i, **fields) for i in ids]))


def text_input(input_id, text, dataset_ids=(), concepts=()):
    """An Input of raw text with optional dataset ids and input-level concepts."""
    return resources_pb2.Input(id=input_id, dataset_ids=list(dataset_ids), data=resources_pb2.Data(
        text=resources_pb2.Text(raw=text),
        concepts=[resources_pb2.Concept(id=c, value=1.0) for c in concepts]))


def post_inputs(api, app, inputs):
    """PostInputs, then wait until every input is downloaded (a bounded number of polls)."""
    resp = api.call("PostInputs", service_pb2.PostInputsRequest(
        user_app_id=app.user_app_id, inputs=list(inputs)))
    assert resp.status.code == codes.SUCCESS, resp.status
    ids = [i.id for i in inputs]
    for _ in range(200):
        listed = api.call("ListInputs", service_pb2.ListInputsRequest(
            user_app_id=app.user_app_id, ids=ids, per_page=len(ids)))
        assert listed.status.code == codes.SUCCESS, listed.status
        if len(listed.inputs) == len(ids) and all(
                i.status.code == codes.INPUT_DOWNLOAD_SUCCESS for i in listed.inputs):
            return listed.inputs
        time.sleep(0.05)
    raise AssertionError(f"inputs never became ready: {listed}")


def list_all(api, method, request, field, per_page):
    """Every item of a listing, paging until an empty page; also the number of pages."""
    items, page = [], 1
    while True:
        request.page, request.per_page = page, per_page
        resp = api.call(method, request)
        assert resp.status.code == codes.SUCCESS, resp.status
        got = list(getattr(resp, field))
        if not got:
            # An empty page holds nothing but the status (the SDK stops on that).
            assert [f.name for f, _ in resp.ListFields()] == ["status"]
            return items, page - 1
        items += got
        page += 1


def test_dataset_create_read_list_update_delete(clarifai_raw, clarifai_app):
    api, app = clarifai_raw, clarifai_app
    ids = [f"ds{i}" for i in range(7)]
    resp = post_datasets(api, app, *ids, description="first")
    assert resp.status.code == codes.SUCCESS
    assert [d.id for d in resp.datasets] == ids
    assert resp.datasets[0].app_id == app.app_id and resp.datasets[0].user_id == app.user_id
    assert resp.datasets[0].created_at.seconds > 0

    dup = post_datasets(api, app, "ds0")
    assert dup.status.code == codes.CONN_INVALID_REQUEST and "ds0" in dup.status.details
    bad = post_datasets(api, app, "has space")
    assert bad.status.code == codes.CONN_INVALID_REQUEST and "has space" in bad.status.details

    got = api.call("GetDataset", service_pb2.GetDatasetRequest(
        user_app_id=app.user_app_id, dataset_id="ds3"))
    assert got.status.code == codes.SUCCESS and got.dataset.description == "first"

    listed, pages = list_all(api, "ListDatasets", service_pb2.ListDatasetsRequest(
        user_app_id=app.user_app_id), "datasets", per_page=3)
    assert [d.id for d in listed] == ids and pages == 3
    by_id = api.call("ListDatasets", service_pb2.ListDatasetsRequest(
        user_app_id=app.user_app_id, sort_by_id=True))
    assert [d.id for d in by_id.datasets] == sorted(ids, reverse=True)

    patch = resources_pb2.Dataset(id="ds1", description="second")
    patch.metadata.update({"team": "cv", "keep": 1})
    resp = api.call("PatchDatasets", service_pb2.PatchDatasetsRequest(
        user_app_id=app.user_app_id, datasets=[patch], action="merge"))
    assert resp.status.code == codes.SUCCESS
    assert resp.datasets[0].description == "second" and resp.datasets[0].metadata["team"] == "cv"
    removal = resources_pb2.Dataset(id="ds1")
    removal.metadata.update({"team": ""})
    resp = api.call("PatchDatasets", service_pb2.PatchDatasetsRequest(
        user_app_id=app.user_app_id, datasets=[removal], action="remove"))
    assert dict(resp.datasets[0].metadata) == {"keep": 1}
    over = resources_pb2.Dataset(id="ds1")
    over.metadata.update({"fresh": True})
    resp = api.call("PatchDatasets", service_pb2.PatchDatasetsRequest(
        user_app_id=app.user_app_id, datasets=[over], action="overwrite"))
    assert dict(resp.datasets[0].metadata) == {"fresh": True}
    assert resp.datasets[0].description == "second"
    missing = api.call("PatchDatasets", service_pb2.PatchDatasetsRequest(
        user_app_id=app.user_app_id, datasets=[resources_pb2.Dataset(id="nope")]))
    assert missing.status.code == codes.CONN_DOES_NOT_EXIST and "nope" in missing.status.details

    # Deleting names every id first: one unknown id deletes nothing.
    resp = api.call("DeleteDatasets", service_pb2.DeleteDatasetsRequest(
        user_app_id=app.user_app_id, dataset_ids=["ds5", "ghost"]))
    assert resp.status.code == codes.CONN_DOES_NOT_EXIST and "ghost" in resp.status.details
    resp = api.call("DeleteDatasets", service_pb2.DeleteDatasetsRequest(
        user_app_id=app.user_app_id, dataset_ids=["ds5", "ds6"]))
    assert resp.status.code == codes.SUCCESS
    gone = api.call("GetDataset", service_pb2.GetDatasetRequest(
        user_app_id=app.user_app_id, dataset_id="ds5"))
    assert gone.status.code == codes.CONN_DOES_NOT_EXIST and "ds5" in gone.status.details
    listed, _ = list_all(api, "ListDatasets", service_pb2.ListDatasetsRequest(
        user_app_id=app.user_app_id), "datasets", per_page=100)
    assert [d.id for d in listed] == ids[:5]


def test_dataset_inputs_add_list_delete(clarifai_raw, clarifai_app, clarifai_pat):
    api, app = clarifai_raw, clarifai_app
    assert post_datasets(api, app, "train", "other").status.code == codes.SUCCESS
    # Five inputs join "train" when posted, three more are added afterwards.
    post_inputs(api, app, [text_input(f"t{i}", f"text {i}", ["train"]) for i in range(5)]
                + [text_input(f"x{i}", f"extra {i}") for i in range(3)])
    resp = api.call("PostDatasetInputs", service_pb2.PostDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="train", dataset_inputs=[
            resources_pb2.DatasetInput(input=resources_pb2.Input(id=i))
            for i in ("x0", "x1", "missing", "x2", "t0")]))
    assert resp.status.code == codes.MIXED_STATUS
    assert "1 of 5" in resp.status.details
    statuses = {d.input.id: d.input.status for d in resp.dataset_inputs}
    assert statuses["missing"].code == codes.INPUT_DOES_NOT_EXIST
    assert "missing" in statuses["missing"].details
    assert statuses["x0"].code == codes.INPUT_DOWNLOAD_SUCCESS

    listed, pages = list_all(api, "ListDatasetInputs", service_pb2.ListDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="train"), "dataset_inputs", per_page=3)
    # Re-adding t0 kept its first place.
    assert [d.input.id for d in listed] == ["t0", "t1", "t2", "t3", "t4", "x0", "x1", "x2"]
    assert pages == 3
    first = listed[0]
    assert first.created_at.seconds > 0 and list(first.input.dataset_ids) == ["train"]
    url = first.input.data.text.url
    assert url == f"{first.input.data.text.hosted.prefix}/orig/{first.input.data.text.hosted.suffix}"
    req = urllib.request.Request(url, headers={"Authorization": f"Key {clarifai_pat}"})
    assert urllib.request.urlopen(req).read() == b"text 0"

    one = api.call("GetDatasetInput", service_pb2.GetDatasetInputRequest(
        user_app_id=app.user_app_id, dataset_id="train", input_id="x1"))
    assert one.status.code == codes.SUCCESS and one.dataset_input.input.id == "x1"

    # Removing needs every id to be a member; then only membership goes, not inputs.
    bad = api.call("DeleteDatasetInputs", service_pb2.DeleteDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="train", input_ids=["t1", "x9"]))
    assert bad.status.code == codes.CONN_DOES_NOT_EXIST and "x9" in bad.status.details
    resp = api.call("DeleteDatasetInputs", service_pb2.DeleteDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="train", input_ids=["t1", "x0"]))
    assert resp.status.code == codes.SUCCESS
    listed, _ = list_all(api, "ListDatasetInputs", service_pb2.ListDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="train"), "dataset_inputs", per_page=100)
    assert [d.input.id for d in listed] == ["t0", "t2", "t3", "t4", "x1", "x2"]
    still = api.call("GetInput", service_pb2.GetInputRequest(
        user_app_id=app.user_app_id, input_id="t1"))
    assert still.status.code == codes.SUCCESS

    # A search on dataset ids (the SDK's merge_dataset) adds every input of that dataset.
    query = resources_pb2.Search(query=resources_pb2.Query(filters=[resources_pb2.Filter(
        input=resources_pb2.Input(dataset_ids=["train"]))]))
    resp = api.call("PostDatasetInputs", service_pb2.PostDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="other", search=query))
    assert resp.status.code == codes.SUCCESS, resp.status
    listed, _ = list_all(api, "ListDatasetInputs", service_pb2.ListDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="other"), "dataset_inputs", per_page=100)
    assert [d.input.id for d in listed] == ["t0", "t2", "t3", "t4", "x1", "x2"]
    assert sorted(listed[0].input.dataset_ids) == ["other", "train"]
    text_search = resources_pb2.Search(query=resources_pb2.Query(filters=[resources_pb2.Filter(
        input=resources_pb2.Input(data=resources_pb2.Data(text=resources_pb2.Text(raw="x"))))]))
    resp = api.call("PostDatasetInputs", service_pb2.PostDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="other", search=text_search))
    assert resp.status.code == codes.CONN_INVALID_REQUEST and "dataset_ids" in resp.status.details

    # Deleting a dataset drops its membership, never the inputs.
    resp = api.call("DeleteDatasets", service_pb2.DeleteDatasetsRequest(
        user_app_id=app.user_app_id, dataset_ids=["train"]))
    assert resp.status.code == codes.SUCCESS
    count = api.call("GetInputCount", service_pb2.GetInputCountRequest(
        user_app_id=app.user_app_id))
    assert count.counts.processed == 8
    listed, _ = list_all(api, "ListDatasetInputs", service_pb2.ListDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="other"), "dataset_inputs", per_page=100)
    assert list(listed[0].input.dataset_ids) == ["other"]


@pytest.mark.parametrize("method, request_", [
    ("GetDataset", service_pb2.GetDatasetRequest(dataset_id="unknown")),
    ("ListDatasetInputs", service_pb2.ListDatasetInputsRequest(dataset_id="unknown")),
    ("PostDatasetInputs", service_pb2.PostDatasetInputsRequest(
        dataset_id="unknown", dataset_inputs=[resources_pb2.DatasetInput(
            input=resources_pb2.Input(id="a"))])),
    ("DeleteDatasetInputs", service_pb2.DeleteDatasetInputsRequest(
        dataset_id="unknown", input_ids=["a"])),
    ("ListDatasetVersions", service_pb2.ListDatasetVersionsRequest(dataset_id="unknown")),
    ("PostDatasetVersions", service_pb2.PostDatasetVersionsRequest(
        dataset_id="unknown", dataset_versions=[resources_pb2.DatasetVersion()])),
])
def test_unknown_dataset_is_named(clarifai_raw, clarifai_app, method, request_):
    request_.user_app_id.CopyFrom(clarifai_app.user_app_id)
    resp = clarifai_raw.call(method, request_)
    assert resp.status.code == codes.CONN_DOES_NOT_EXIST
    assert "dataset 'unknown'" in resp.status.details


def test_bad_requests_are_refused_with_reasons(clarifai_raw, clarifai_app):
    api, app = clarifai_raw, clarifai_app
    resp = api.call("GetDataset", service_pb2.GetDatasetRequest(
        user_app_id=app.user_app_id, dataset_id="../etc"))
    assert resp.status.code == codes.CONN_INVALID_REQUEST and "../etc" in resp.status.details
    resp = api.call("PostDatasets", service_pb2.PostDatasetsRequest(user_app_id=app.user_app_id))
    assert resp.status.code == codes.CONN_INVALID_REQUEST and "no datasets" in resp.status.details
    resp = api.call("ListDatasets", service_pb2.ListDatasetsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=app.user_id, app_id="no-such-app")))
    assert resp.status.code == codes.CONN_DOES_NOT_EXIST and "no-such-app" in resp.status.details
    assert post_datasets(api, app, "d").status.code == codes.SUCCESS
    resp = api.call("PostDatasetInputs", service_pb2.PostDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="d", dataset_inputs=[
            resources_pb2.DatasetInput(input=resources_pb2.Input(id="bad id!"))]))
    assert resp.status.code == codes.FAILURE
    assert resp.dataset_inputs[0].input.status.code == codes.INPUT_INVALID_ARGUMENT
    assert "bad id!" in resp.dataset_inputs[0].input.status.details
    resp = api.call("PatchDatasets", service_pb2.PatchDatasetsRequest(
        user_app_id=app.user_app_id, datasets=[resources_pb2.Dataset(id="d")], action="merge2"))
    assert resp.status.code == codes.CONN_INVALID_REQUEST and "merge2" in resp.status.details
