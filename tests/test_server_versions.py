"""Dataset versions, their metrics and export archives over the raw gRPC stub."""

import io
import socket
import struct
import threading
import time
import urllib.request
import zipfile
import zlib

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf import struct_pb2

from clarifai_connect.server import LocalServer, archive
from clarifai_connect.testing import TEST_USER, AppRef, raw_api

from .test_server_datasets import list_all, post_datasets, post_inputs, text_input

PROTOBUF = resources_pb2.CLARIFAI_DATA_PROTOBUF


def png(rgb=(255, 0, 0), width=4, height=3) -> bytes:
    """A small valid PNG of one colour."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def image_input(input_id, data, dataset_ids=(), concepts=()):
    return resources_pb2.Input(id=input_id, dataset_ids=list(dataset_ids), data=resources_pb2.Data(
        image=resources_pb2.Image(base64=data),
        concepts=[resources_pb2.Concept(id=c, value=1.0) for c in concepts]))


def box(concept, top=0.1, left=0.1, bottom=0.5, right=0.5):
    return resources_pb2.Region(
        region_info=resources_pb2.RegionInfo(bounding_box=resources_pb2.BoundingBox(
            top_row=top, left_col=left, bottom_row=bottom, right_col=right)),
        data=resources_pb2.Data(concepts=[resources_pb2.Concept(id=concept, value=1.0)]))


def polygon(concept):
    points = [resources_pb2.Point(row=r, col=c) for r, c in ((0.1, 0.1), (0.1, 0.6), (0.7, 0.3))]
    return resources_pb2.Region(
        region_info=resources_pb2.RegionInfo(polygon=resources_pb2.Polygon(points=points)),
        data=resources_pb2.Data(concepts=[resources_pb2.Concept(id=concept, value=1.0)]))


def annotate(api, app, input_id, *regions):
    resp = api.call("PostAnnotations", service_pb2.PostAnnotationsRequest(
        user_app_id=app.user_app_id, annotations=[resources_pb2.Annotation(
            input_id=input_id, data=resources_pb2.Data(regions=[r])) for r in regions]))
    assert resp.status.code == codes.SUCCESS, resp.status


def create_version(api, app, dataset_id, version_id="", **fields):
    resp = api.call("PostDatasetVersions", service_pb2.PostDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id=dataset_id,
        dataset_versions=[resources_pb2.DatasetVersion(id=version_id, **fields)]))
    assert resp.status.code == codes.SUCCESS, resp.status
    version = resp.dataset_versions[0]
    assert version.status.code == codes.DATASET_VERSION_READY
    return version


def export(api, app, dataset_id, version_id, fmt=PROTOBUF):
    return api.call("PutDatasetVersionExports", service_pb2.PutDatasetVersionExportsRequest(
        user_app_id=app.user_app_id, dataset_id=dataset_id, dataset_version_id=version_id,
        exports=[resources_pb2.DatasetVersionExport(format=fmt)]))


def exported_inputs(api, app, dataset_id, version_id):
    """Export a version, download the archive over HTTP and parse it back.

    Returns (inputs by id, entry names, the export message)."""
    resp = export(api, app, dataset_id, version_id)
    assert resp.status.code == codes.SUCCESS, resp.status
    result = resp.exports[0]
    for _ in range(100):  # the SDK re-sends the call while the export is pending
        if result.status.code != codes.DATASET_VERSION_EXPORT_PENDING and \
                result.status.code != codes.DATASET_VERSION_EXPORT_IN_PROGRESS:
            break
        time.sleep(0.05)
        result = export(api, app, dataset_id, version_id).exports[0]
    assert result.status.code == codes.DATASET_VERSION_EXPORT_SUCCESS, result.status
    with urllib.request.urlopen(result.url) as http:
        assert http.headers["Content-Type"] == "application/zip"
        body = http.read()
    assert len(body) == result.size
    inputs = {}
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
        assert names[0] == "mimetype"
        assert archive.read("mimetype") == b"application/x.clarifai-data+protobuf"
        for name in names[1:]:
            batch = resources_pb2.InputBatch.FromString(archive.read(name))
            assert name.endswith(f"_n{len(batch.inputs)}")
            for item in batch.inputs:
                assert item.id not in inputs
                inputs[item.id] = item
    return inputs, names[1:], result


def metrics_groups(api, app, dataset_id, version_id, **filters):
    groups, _ = list_all(api, "ListDatasetVersionMetricsGroups",
                         service_pb2.ListDatasetVersionMetricsGroupsRequest(
                             user_app_id=app.user_app_id, dataset_id=dataset_id,
                             dataset_version_id=version_id, **filters),
                         "dataset_version_metrics_groups", per_page=4)
    return groups


def _counts(metrics):
    return {f.name: v.value for f, v in metrics.ListFields()}


def test_version_create_read_list_update_delete(clarifai_raw, clarifai_app):
    api, app = clarifai_raw, clarifai_app
    assert post_datasets(api, app, "d").status.code == codes.SUCCESS
    post_inputs(api, app, [text_input("a", "alpha", ["d"])])
    made = [create_version(api, app, "d", f"v{i}", description=f"n{i}") for i in range(4)]
    auto = create_version(api, app, "d")
    assert len(auto.id) == 32 and auto.dataset_id == "d" and auto.app_id == app.app_id
    assert made[0].metrics["/"].inputs_count.value == 1
    assert made[0].request_origin == resources_pb2.MANUAL

    dup = api.call("PostDatasetVersions", service_pb2.PostDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id="d",
        dataset_versions=[resources_pb2.DatasetVersion(id="v1")]))
    assert dup.status.code == codes.CONN_INVALID_REQUEST and "v1" in dup.status.details
    bad = api.call("PostDatasetVersions", service_pb2.PostDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id="d",
        dataset_versions=[resources_pb2.DatasetVersion(id="v/1")]))
    assert bad.status.code == codes.CONN_INVALID_REQUEST and "v/1" in bad.status.details

    got = api.call("GetDatasetVersion", service_pb2.GetDatasetVersionRequest(
        user_app_id=app.user_app_id, dataset_id="d", dataset_version_id="v2"))
    assert got.status.code == codes.SUCCESS and got.dataset_version.description == "n2"

    listed, pages = list_all(api, "ListDatasetVersions", service_pb2.ListDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id="d"), "dataset_versions", per_page=2)
    assert [v.id for v in listed] == [auto.id, "v3", "v2", "v1", "v0"] and pages == 3
    training = api.call("ListDatasetVersions", service_pb2.ListDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id="d", request_origins=[resources_pb2.TRAINING]))
    assert list(training.dataset_versions) == []

    # GetDataset carries the newest version, with its input count.
    dataset = api.call("GetDataset", service_pb2.GetDatasetRequest(
        user_app_id=app.user_app_id, dataset_id="d")).dataset
    assert dataset.version.id == auto.id
    assert dataset.version.metrics["/"].inputs_count.value == 1

    patch = resources_pb2.DatasetVersion(id="v2", description="renamed")
    patch.metadata.update({"stage": "qa"})
    patch.metrics["/"].inputs_count.value = 99  # measured, not patchable
    resp = api.call("PatchDatasetVersions", service_pb2.PatchDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id="d", dataset_versions=[patch], action="merge"))
    assert resp.status.code == codes.SUCCESS
    patched = resp.dataset_versions[0]
    assert patched.description == "renamed" and patched.metadata["stage"] == "qa"
    assert patched.metrics["/"].inputs_count.value == 1

    resp = api.call("DeleteDatasetVersions", service_pb2.DeleteDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id="d", dataset_version_ids=["v0", "nope"]))
    assert resp.status.code == codes.CONN_DOES_NOT_EXIST and "nope" in resp.status.details
    resp = api.call("DeleteDatasetVersions", service_pb2.DeleteDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id="d", dataset_version_ids=["v0", "v1"]))
    assert resp.status.code == codes.SUCCESS
    listed, _ = list_all(api, "ListDatasetVersions", service_pb2.ListDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id="d"), "dataset_versions", per_page=10)
    assert [v.id for v in listed] == [auto.id, "v3", "v2"]
    for method, request in [
        ("GetDatasetVersion", service_pb2.GetDatasetVersionRequest(dataset_version_id="v0")),
        ("ListDatasetVersionMetricsGroups",
         service_pb2.ListDatasetVersionMetricsGroupsRequest(dataset_version_id="v0")),
        ("PutDatasetVersionExports", service_pb2.PutDatasetVersionExportsRequest(
            dataset_version_id="v0", exports=[resources_pb2.DatasetVersionExport(format=PROTOBUF)])),
    ]:
        request.user_app_id.CopyFrom(app.user_app_id)
        request.dataset_id = "d"
        resp = api.call(method, request)
        assert resp.status.code == codes.CONN_DOES_NOT_EXIST, method
        assert "'v0'" in resp.status.details and "'d'" in resp.status.details


def test_metrics_count_inputs_concepts_boxes_polygons(clarifai_raw, clarifai_app):
    api, app = clarifai_raw, clarifai_app
    assert post_datasets(api, app, "m").status.code == codes.SUCCESS
    post_inputs(api, app, [
        image_input("i0", png(), ["m"], concepts=["cat", "dog"]),
        image_input("i1", png((0, 255, 0)), ["m"], concepts=["cat"]),
        text_input("i2", "a dog", ["m"], concepts=["dog"]),
        text_input("i3", "nothing", ["m"]),
    ])
    annotate(api, app, "i0", box("cat"))
    annotate(api, app, "i1", box("cat"), box("bird", 0.2, 0.2, 0.9, 0.9), polygon("bird"))
    version = create_version(api, app, "m", "v")
    assert _counts(version.metrics["/"]) == {
        "inputs_count": 4, "unlabeled_inputs_count": 1, "inputs_with_metadata_count": 0,
        "inputs_with_geo_count": 0, "regions_count": 4, "region_inputs_count": 2,
        "bounding_boxes_count": 3, "polygons_count": 1, "points_count": 0, "masks_count": 0,
        "positive_input_tags_count": 4, "positive_region_tags_count": 4}

    groups = metrics_groups(api, app, "m", "v")
    by_type = {}
    for group in groups:
        assert group.parent_path == "/"
        value = group.value.string_value or group.value.number_value
        by_type.setdefault(group.type, {})[value] = _counts(group.metrics)
    assert {k: v["inputs_count"] for k, v in by_type[resources_pb2.INPUT_TYPE].items()} == {
        "total": 4, "image": 2, "text": 2}
    concepts = by_type[resources_pb2.CONCEPT_ID]
    assert set(concepts) == {"bird", "cat", "dog"}
    assert (concepts["cat"]["inputs_count"], concepts["cat"]["positive_input_tags_count"],
            concepts["cat"]["bounding_boxes_count"]) == (2, 2, 2)
    assert (concepts["dog"]["inputs_count"], concepts["dog"]["regions_count"]) == (2, 0)
    assert (concepts["bird"]["inputs_count"], concepts["bird"]["bounding_boxes_count"],
            concepts["bird"]["polygons_count"], concepts["bird"]["positive_input_tags_count"]) \
        == (1, 1, 1, 0)
    histogram = {k: {int(v): c["inputs_count"] for v, c in vals.items()}
                 for k, vals in by_type.items()
                 if k not in (resources_pb2.INPUT_TYPE, resources_pb2.CONCEPT_ID)}
    assert histogram[resources_pb2.CONCEPTS_COUNT] == {0: 1, 1: 2, 2: 1}
    assert histogram[resources_pb2.BOUNDING_BOXES_COUNT] == {0: 2, 1: 1, 2: 1}
    assert histogram[resources_pb2.POLYGONS_COUNT] == {0: 3, 1: 1}

    # Filters: by type, and by value.
    only = metrics_groups(api, app, "m", "v", types=[resources_pb2.CONCEPT_ID])
    assert [g.value.string_value for g in only] == ["bird", "cat", "dog"]
    cat = metrics_groups(api, app, "m", "v", values=[struct_pb2.Value(string_value="cat")])
    assert [(g.type, g.value.string_value) for g in cat] == [(resources_pb2.CONCEPT_ID, "cat")]

    # The official SDK's upload-status reader understands the groups (the compat extra).
    sdk_utils = pytest.importorskip("clarifai.datasets.upload.utils",
                                    reason="the official SDK: install the compat extra")
    resp = api.call("ListDatasetVersionMetricsGroups",
                    service_pb2.ListDatasetVersionMetricsGroupsRequest(
                        user_app_id=app.user_app_id, dataset_id="m", dataset_version_id="v"))
    assert sdk_utils.DisplayUploadStatus.get_dataset_version_stats(resp) == (
        {"total": "4", "image": "2", "text": "2"}, {"concepts": 4, "bboxes": 3, "polygons": 1})

    # A version that ignores empty inputs leaves the unlabeled one out, and says so.
    labelled = create_version(api, app, "m", "labelled", annotation_filter_config=
                              resources_pb2.AnnotationFilterConfig(ignore_empty_inputs=True))
    assert labelled.metrics["/"].inputs_count.value == 3
    assert "1 without annotations" in labelled.status.details


def test_version_is_a_frozen_snapshot(clarifai_raw, clarifai_app):
    api, app = clarifai_raw, clarifai_app
    assert post_datasets(api, app, "s").status.code == codes.SUCCESS
    post_inputs(api, app, [text_input(f"a{i}", f"text {i}", ["s"], ["old"]) for i in range(4)])
    annotate(api, app, "a2", box("thing"))
    create_version(api, app, "s", "before")

    # Change everything the version could have depended on.
    post_inputs(api, app, [text_input("a4", "late", ["s"], ["late"])])
    annotate(api, app, "a0", polygon("shape"))
    resp = api.call("DeleteInputs", service_pb2.DeleteInputsRequest(
        user_app_id=app.user_app_id, ids=["a3"]))
    assert resp.status.code == codes.SUCCESS
    resp = api.call("DeleteDatasetInputs", service_pb2.DeleteDatasetInputsRequest(
        user_app_id=app.user_app_id, dataset_id="s", input_ids=["a1"]))
    assert resp.status.code == codes.SUCCESS
    after = create_version(api, app, "s", "after")

    before, _, before_export = exported_inputs(api, app, "s", "before")
    assert sorted(before) == ["a0", "a1", "a2", "a3"]
    assert not before["a0"].data.regions
    assert [c.id for c in before["a1"].data.concepts] == ["old"]
    assert before["a2"].data.regions[0].data.concepts[0].id == "thing"
    now, _, _ = exported_inputs(api, app, "s", "after")
    assert sorted(now) == ["a0", "a2", "a4"]
    assert now["a0"].data.regions[0].region_info.HasField("polygon")
    assert after.metrics["/"].inputs_count.value == 3
    kept = api.call("GetDatasetVersion", service_pb2.GetDatasetVersionRequest(
        user_app_id=app.user_app_id, dataset_id="s", dataset_version_id="before"))
    assert kept.dataset_version.metrics["/"].inputs_count.value == 4
    assert kept.dataset_version.metrics["/"].polygons_count.value == 0

    # Deleting the dataset deletes its versions and their archives, not the inputs.
    resp = api.call("DeleteDatasets", service_pb2.DeleteDatasetsRequest(
        user_app_id=app.user_app_id, dataset_ids=["s"]))
    assert resp.status.code == codes.SUCCESS
    try:
        urllib.request.urlopen(before_export.url)
        raise AssertionError("the archive of a deleted dataset is still served")
    except urllib.error.HTTPError as err:
        assert err.code == 404
    assert post_datasets(api, app, "s").status.code == codes.SUCCESS  # the same id, afresh
    gone = api.call("GetDatasetVersion", service_pb2.GetDatasetVersionRequest(
        user_app_id=app.user_app_id, dataset_id="s", dataset_version_id="before"))
    assert gone.status.code == codes.CONN_DOES_NOT_EXIST
    assert api.call("GetInput", service_pb2.GetInputRequest(
        user_app_id=app.user_app_id, input_id="a0")).status.code == codes.SUCCESS


def test_export_archive_holds_every_input_and_annotation(clarifai_raw, clarifai_app, clarifai_pat):
    api, app = clarifai_raw, clarifai_app
    assert post_datasets(api, app, "e").status.code == codes.SUCCESS
    texts = [text_input(f"t{i:03d}", f"text number {i}", ["e"], [f"c{i % 3}"]) for i in range(130)]
    post_inputs(api, app, texts[:100])
    post_inputs(api, app, texts[100:] + [image_input("img", png(), ["e"], ["red"])])
    annotate(api, app, "img", box("square", 0.2, 0.1, 0.6, 0.5), polygon("tri"))
    create_version(api, app, "e", "v1")

    inputs, names, result = exported_inputs(api, app, "e", "v1")
    assert sorted(inputs) == sorted([t.id for t in texts] + ["img"])
    # Entries hold up to 128 inputs each, and their names count them.
    assert sum(int(n.rsplit("_n", 1)[1]) for n in names) == 131 and len(names) == 2
    for t in texts:
        assert [c.id for c in inputs[t.id].data.concepts] == [t.data.concepts[0].id]
        assert "e" in inputs[t.id].dataset_ids
    image = inputs["img"]
    assert [c.id for c in image.data.concepts] == ["red"]
    shapes = {r.data.concepts[0].id: r.region_info for r in image.data.regions}
    assert set(shapes) == {"square", "tri"}
    assert abs(shapes["square"].bounding_box.top_row - 0.2) < 1e-6
    assert len(shapes["tri"].polygon.points) == 3
    # Media are reached as the SDK's reader does: hosted prefix + /orig/ + suffix, with the key.
    hosted = image.data.image.hosted
    assert "orig" in hosted.sizes
    req = urllib.request.Request(f"{hosted.prefix}/orig/{hosted.suffix}",
                                 headers={"Authorization": f"Key {clarifai_pat}"})
    assert urllib.request.urlopen(req).read() == png()
    hosted = inputs["t007"].data.text.hosted
    req = urllib.request.Request(f"{hosted.prefix}/orig/{hosted.suffix}",
                                 headers={"Authorization": f"Key {clarifai_pat}"})
    assert urllib.request.urlopen(req).read() == b"text number 7"

    # Asking again hands out the same archive (signed anew); the version records it.
    again = export(api, app, "e", "v1").exports[0]
    assert again.url.split("?")[0] == result.url.split("?")[0]
    stored = api.call("GetDatasetVersion", service_pb2.GetDatasetVersionRequest(
        user_app_id=app.user_app_id, dataset_id="e", dataset_version_id="v1")).dataset_version
    assert stored.export_info.clarifai_data_protobuf.url == result.url.split("?")[0]
    assert stored.export_info.clarifai_data_protobuf.status.code == \
        codes.DATASET_VERSION_EXPORT_SUCCESS

    coco = export(api, app, "e", "v1", resources_pb2.COCO)
    assert coco.status.code == codes.CONN_INVALID_REQUEST and "COCO" in coco.status.details
    none = api.call("PutDatasetVersionExports", service_pb2.PutDatasetVersionExportsRequest(
        user_app_id=app.user_app_id, dataset_id="e", dataset_version_id="v1"))
    assert none.status.code == codes.CONN_INVALID_REQUEST

    # Deleting the version removes its archive.
    resp = api.call("DeleteDatasetVersions", service_pb2.DeleteDatasetVersionsRequest(
        user_app_id=app.user_app_id, dataset_id="e", dataset_version_ids=["v1"]))
    assert resp.status.code == codes.SUCCESS
    try:
        urllib.request.urlopen(result.url)
        raise AssertionError("the archive of a deleted version is still served")
    except urllib.error.HTTPError as err:
        assert err.code == 404


def test_versions_and_exports_survive_a_restart(tmp_path):
    key = "k" * 32
    app = AppRef("u1", "kept")
    with LocalServer(data_dir=tmp_path, keys=[key], user="u1") as server:
        api = raw_api(server)
        assert api.call("PostApps", service_pb2.PostAppsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="u1"),
            apps=[resources_pb2.App(id="kept")])).status.code == codes.SUCCESS
        assert post_datasets(api, app, "d", description="kept").status.code == codes.SUCCESS
        post_inputs(api, app, [text_input(f"p{i}", f"persisted {i}", ["d"], ["x"])
                               for i in range(3)])
        create_version(api, app, "d", "v1")
        first, _, first_export = exported_inputs(api, app, "d", "v1")
        groups_before = metrics_groups(api, app, "d", "v1")
        api.channel.close()
        old_media_url = server.media_url
    # Hold the old media port, so the restarted server surely answers on another one.
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
    blocker.bind(("127.0.0.1", int(old_media_url.rsplit(":", 1)[1])))
    blocker.listen()
    with blocker, LocalServer(data_dir=tmp_path, keys=[key], user="u1") as server:
        assert server.media_url != old_media_url
        api = raw_api(server)
        dataset = api.call("GetDataset", service_pb2.GetDatasetRequest(
            user_app_id=app.user_app_id, dataset_id="d"))
        assert dataset.dataset.description == "kept" and dataset.dataset.version.id == "v1"
        members, _ = list_all(api, "ListDatasetInputs", service_pb2.ListDatasetInputsRequest(
            user_app_id=app.user_app_id, dataset_id="d"), "dataset_inputs", per_page=10)
        assert [m.input.id for m in members] == ["p0", "p1", "p2"]
        assert metrics_groups(api, app, "d", "v1") == groups_before
        inputs, _, result = exported_inputs(api, app, "d", "v1")
        assert sorted(inputs) == sorted(first)
        # An archive names hosted URLs: one written before the restart is not handed out
        # with another server's address.
        assert result.url.startswith(server.media_url)
        hosted = inputs["p1"].data.text.hosted
        req = urllib.request.Request(f"{hosted.prefix}/orig/{hosted.suffix}",
                                     headers={"Authorization": f"Key {key}"})
        assert urllib.request.urlopen(req).read() == b"persisted 1"
        # The archive written for the old address was replaced by a new one, and is gone.
        assert first_export.url.startswith(old_media_url)
        old_token = first_export.url.split("/exports/")[1].split("?")[0]
        assert result.url.split("/exports/")[1].split("?")[0] != old_token
        with pytest.raises(urllib.error.HTTPError) as gone:  # with its owner's key: gone
            urllib.request.urlopen(urllib.request.Request(
                f"{server.media_url}/exports/{old_token}",
                headers={"Authorization": f"Key {key}"}))
        assert gone.value.code == 404
        api.channel.close()


def test_export_answers_pending_then_success_as_the_sdk_polls(clarifai_raw, clarifai_app,
                                                               clarifai_server, monkeypatch):
    api, app = clarifai_raw, clarifai_app
    monkeypatch.setattr(archive, "EXPORT_WAIT_SECONDS", 0.01)
    assert post_datasets(api, app, "p").status.code == codes.SUCCESS
    post_inputs(api, app, [text_input(f"q{i}", f"pending {i}", ["p"]) for i in range(20)])
    create_version(api, app, "p", "v")
    # Keep every background worker busy so that the export job has to wait its turn.
    release = threading.Event()
    busy = [clarifai_server.background.submit(release.wait, 30)
            for _ in range(clarifai_server.background._max_workers)]
    try:
        first = export(api, app, "p", "v").exports[0]
        assert first.status.code == codes.DATASET_VERSION_EXPORT_PENDING
        assert not first.url
        again = export(api, app, "p", "v").exports[0]  # still queued: still pending
        assert again.status.code == codes.DATASET_VERSION_EXPORT_PENDING
    finally:
        release.set()
        for job in busy:
            job.result()
    inputs, _, result = exported_inputs(api, app, "p", "v")
    assert sorted(inputs) == sorted(f"q{i}" for i in range(20))
    assert result.size > 0


def test_version_leaves_out_inputs_that_failed_to_download(clarifai_raw, clarifai_app,
                                                           clarifai_server):
    api, app = clarifai_raw, clarifai_app
    assert post_datasets(api, app, "f").status.code == codes.SUCCESS
    post_inputs(api, app, [text_input("fine", "fine", ["f"])])
    broken = resources_pb2.Input(id="broken", dataset_ids=["f"], data=resources_pb2.Data(
        image=resources_pb2.Image(url=f"{clarifai_server.media_url}/no/such/image.png")))
    resp = api.call("PostInputs", service_pb2.PostInputsRequest(
        user_app_id=app.user_app_id, inputs=[broken]))
    assert resp.status.code == codes.SUCCESS, resp.status
    for _ in range(200):
        state = api.call("GetInput", service_pb2.GetInputRequest(
            user_app_id=app.user_app_id, input_id="broken")).input.status.code
        if state == codes.INPUT_DOWNLOAD_FAILED:
            break
        time.sleep(0.05)
    assert state == codes.INPUT_DOWNLOAD_FAILED
    version = create_version(api, app, "f", "v")
    assert version.metrics["/"].inputs_count.value == 1
    assert "1 not downloaded" in version.status.details
    inputs, _, _ = exported_inputs(api, app, "f", "v")
    assert list(inputs) == ["fine"]


def test_delete_app_removes_its_export_archives(clarifai_server, clarifai_raw):
    app = AppRef(TEST_USER, "doomed")
    assert clarifai_raw.call("PostApps", service_pb2.PostAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=app.user_id),
        apps=[resources_pb2.App(id=app.app_id)])).status.code == codes.SUCCESS
    post_datasets(clarifai_raw, app, "d")
    post_inputs(clarifai_raw, app, [text_input("t", "hi", dataset_ids=["d"])])
    version = create_version(clarifai_raw, app, "d")
    _, _, result = exported_inputs(clarifai_raw, app, "d", version.id)
    path = archive.archive_path(clarifai_server, result.url)
    assert path.exists()
    resp = clarifai_raw.call("DeleteApp", service_pb2.DeleteAppRequest(user_app_id=app.user_app_id))
    assert resp.status.code == codes.SUCCESS
    assert not path.exists()
