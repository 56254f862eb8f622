"""Annotations over the raw gRPC stub: shapes, validation, listing, patching, deleting."""

from __future__ import annotations

import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00mask-body"


@pytest.fixture
def two_inputs(clarifai_raw, clarifai_app):
    """An app holding the text inputs 'in-a' and 'in-b'."""
    resp = clarifai_raw.call("PostInputs", s.PostInputsRequest(
        user_app_id=clarifai_app.user_app_id,
        inputs=[r.Input(id=i, data=r.Data(text=r.Text(raw=i))) for i in ("in-a", "in-b")]))
    assert resp.status.code == codes.SUCCESS
    return clarifai_app


def _concept(cid: str) -> r.Concept:
    return r.Concept(id=cid, name=cid, value=1)


def _box(top=0.1, left=0.1, bottom=0.5, right=0.5, concept="dog") -> r.Region:
    return r.Region(region_info=r.RegionInfo(bounding_box=r.BoundingBox(
        top_row=top, left_col=left, bottom_row=bottom, right_col=right)),
        data=r.Data(concepts=[_concept(concept)]))


def _ann(input_id: str, *regions, ann_id: str = "", concepts=()) -> r.Annotation:
    return r.Annotation(id=ann_id, input_id=input_id,
                        data=r.Data(regions=list(regions), concepts=list(concepts)))


def _post(api, app, *annotations):
    return api.call("PostAnnotations", s.PostAnnotationsRequest(
        user_app_id=app.user_app_id, annotations=list(annotations)))


def _list(api, app, **fields):
    resp = api.call("ListAnnotations", s.ListAnnotationsRequest(
        user_app_id=app.user_app_id, **fields))
    assert resp.status.code == codes.SUCCESS, resp.status
    return resp


def _own(annotations) -> list:
    """The annotations a test posted: without the empty input-level annotation PostInputs
    creates for every input (as the API does)."""
    return [a for a in annotations if not (a.input_level and not a.data.ListFields())]


def test_every_posted_input_gets_its_input_level_annotation(clarifai_raw, two_inputs):
    listed = _list(clarifai_raw, two_inputs).annotations
    assert [a.input_id for a in listed] == ["in-a", "in-b"]
    assert all(a.input_level and a.status.code == codes.ANNOTATION_SUCCESS for a in listed)
    assert _own(listed) == []


def test_post_every_region_shape(clarifai_raw, two_inputs):
    polygon = r.Region(region_info=r.RegionInfo(polygon=r.Polygon(points=[
        r.Point(row=0.1, col=0.1), r.Point(row=0.2, col=0.8), r.Point(row=0.9, col=0.4)])),
        data=r.Data(concepts=[_concept("road")]))
    point = r.Region(region_info=r.RegionInfo(point=r.Point(row=0.3, col=0.7)),
                     data=r.Data(concepts=[_concept("eye")]))
    mask = r.Region(region_info=r.RegionInfo(mask=r.Mask(image=r.Image(base64=PNG))),
                    data=r.Data(concepts=[_concept("sky")]))
    resp = _post(clarifai_raw, two_inputs,
                 _ann("in-a", _box(), ann_id="box-1"), _ann("in-a", polygon),
                 _ann("in-b", point), _ann("in-b", mask),
                 _ann("in-b", concepts=[_concept("outdoor")]))
    assert resp.status.code == codes.SUCCESS, resp.status
    assert [a.status.code for a in resp.annotations] == [codes.ANNOTATION_SUCCESS] * 5
    assert resp.annotations[0].id == "box-1"
    assert all(a.id for a in resp.annotations)
    assert resp.annotations[4].input_level and not resp.annotations[0].input_level
    image = resp.annotations[3].data.regions[0].region_info.mask.image
    assert not image.base64 and image.hosted.suffix
    assert image.url == f"{image.hosted.prefix}/orig/{image.hosted.suffix}"

    listed = _list(clarifai_raw, two_inputs)
    assert {f.name for f, _ in listed.ListFields()} == {"status", "annotations"}
    # The two inputs' own input-level annotations (created by PostInputs) come first.
    assert len(listed.annotations) == 2 + len(resp.annotations)
    posted = _own(listed.annotations)
    assert [a.id for a in posted] == [a.id for a in resp.annotations]
    box = posted[0].data.regions[0].region_info.bounding_box
    assert (box.top_row, box.right_col) == (pytest.approx(0.1), pytest.approx(0.5))
    assert len(posted[1].data.regions[0].region_info.polygon.points) == 3
    assert not posted[3].data.regions[0].region_info.mask.image.base64
    concepts = clarifai_raw.call("ListConcepts", s.ListConceptsRequest(
        user_app_id=two_inputs.user_app_id))
    assert {c.id for c in concepts.concepts} == {"dog", "road", "eye", "sky", "outdoor"}

    got = clarifai_raw.call("GetAnnotation", s.GetAnnotationRequest(
        user_app_id=two_inputs.user_app_id, input_id="in-a", annotation_id="box-1"))
    assert got.annotation.data.regions[0].data.concepts[0].id == "dog"


@pytest.mark.parametrize("bad, words", [
    (_ann("nope", _box()), ["input 'nope' does not exist"]),
    (_ann("in-a", _box(right=1.2)), ["right_col", "outside 0..1"]),
    (_ann("in-a", _box(left=0.7, right=0.3)), ["left_col", "not left of"]),
    (_ann("in-a", r.Region(region_info=r.RegionInfo(polygon=r.Polygon(points=[
        r.Point(row=0.1, col=0.1), r.Point(row=0.2, col=0.2)])))), ["polygon has 2 points"]),
    (_ann("in-a", r.Region(region_info=r.RegionInfo(point=r.Point(row=-0.1, col=0.5)))),
     ["point", "outside 0..1"]),
    (_ann("in-a", r.Region(region_info=r.RegionInfo(mask=r.Mask()))), ["mask has no image"]),
    (_ann("in-a", _box(concept="bad concept")), ["concept id 'bad concept'"]),
    (_ann("in-a", _box(), ann_id="bad/id"), ["annotation id 'bad/id'"]),
])
def test_invalid_annotations_get_per_item_errors(clarifai_raw, two_inputs, bad, words):
    resp = _post(clarifai_raw, two_inputs, bad, _ann("in-b", _box()))
    assert resp.status.code == codes.MIXED_STATUS
    failed, ok = resp.annotations
    assert failed.status.code == codes.ANNOTATION_INVALID_ARGUMENT
    assert failed.status.description.startswith("annotations[0]")
    for word in words:
        assert word in failed.status.description
    assert ok.status.code == codes.ANNOTATION_SUCCESS
    assert [a.input_id for a in _own(_list(clarifai_raw, two_inputs).annotations)] == ["in-b"]


def test_duplicate_annotation_id_and_all_failing(clarifai_raw, two_inputs):
    assert _post(clarifai_raw, two_inputs, _ann("in-a", _box(), ann_id="same")).status.code \
        == codes.SUCCESS
    resp = _post(clarifai_raw, two_inputs, _ann("in-b", _box(), ann_id="same"),
                 _ann("ghost", _box()))
    assert resp.status.code == codes.FAILURE
    assert "annotation id 'same' already exists" in resp.annotations[0].status.description
    empty = _post(clarifai_raw, two_inputs)
    assert empty.status.code == codes.CONN_INVALID_REQUEST


def test_list_by_ids_inputs_and_pages(clarifai_raw, two_inputs):
    anns = [_ann("in-a" if n % 2 else "in-b", _box(), ann_id=f"a{n:02d}") for n in range(11)]
    assert _post(clarifai_raw, two_inputs, *anns).status.code == codes.SUCCESS
    seen, page = [], 1
    while True:
        resp = _list(clarifai_raw, two_inputs, page=page, per_page=4)
        if not resp.annotations:
            break
        seen += [a.id for a in resp.annotations]
        page += 1
    # 2 input-level annotations (one per input, from PostInputs) + 11 posted = 13, in pages
    # of 4: pages 1-4 hold them, page 5 is the first empty one.
    assert len(seen) == 13 and page == 5
    assert seen[2:] == [f"a{n:02d}" for n in range(11)]

    of_a = _list(clarifai_raw, two_inputs, input_ids=["in-a"], list_all_annotations=True)
    assert [a.id for a in of_a.annotations] == [seen[0]] + [f"a{n:02d}" for n in range(1, 11, 2)]
    by_ids = _list(clarifai_raw, two_inputs, ids=["a03", "a04"])
    assert [a.id for a in by_ids.annotations] == ["a03", "a04"]
    paired = _list(clarifai_raw, two_inputs, ids=["a03", "a04"], input_ids=["in-a", "in-a"])
    assert [a.id for a in paired.annotations] == ["a03"]  # a04 belongs to in-b
    mismatch = clarifai_raw.call("ListAnnotations", s.ListAnnotationsRequest(
        user_app_id=two_inputs.user_app_id, ids=["a03"], input_ids=["in-a", "in-b"]))
    assert mismatch.status.code == codes.CONN_INVALID_REQUEST
    other_status = _list(clarifai_raw, two_inputs, statuses=[
        r.Annotation().status.__class__(code=codes.ANNOTATION_AWAITING_REVIEW)])
    assert not other_status.annotations


def _patch(api, app, annotations, action, **fields):
    return api.call("PatchAnnotations", s.PatchAnnotationsRequest(
        user_app_id=app.user_app_id, annotations=annotations, action=action, **fields))


def test_patch_annotations_merge_overwrite_remove(clarifai_raw, two_inputs):
    first = _box(concept="dog")
    first.id = "r1"
    _post(clarifai_raw, two_inputs, _ann("in-a", first, ann_id="p1"))

    moved = _box(top=0.2, concept="dog")
    moved.id = "r1"
    resp = _patch(clarifai_raw, two_inputs, [_ann("in-a", moved, ann_id="p1")], "merge")
    assert resp.status.code == codes.SUCCESS, resp.status
    regions = resp.annotations[0].data.regions
    assert [reg.id for reg in regions] == ["r1"]
    assert regions[0].region_info.bounding_box.top_row == pytest.approx(0.2)

    # A region without an id replaces the annotation's region: an annotation holds one.
    resp = _patch(clarifai_raw, two_inputs, [_ann("in-a", _box(concept="cat"), ann_id="p1")],
                  "merge")
    regions = resp.annotations[0].data.regions
    assert len(regions) == 1 and regions[0].id != "r1"
    assert [c.id for c in regions[0].data.concepts] == ["cat"]
    assert regions[0].region_info.bounding_box.top_row == pytest.approx(0.1)
    assert "cat" in {c.id for c in clarifai_raw.call("ListConcepts", s.ListConceptsRequest(
        user_app_id=two_inputs.user_app_id)).concepts}

    again = _box(top=0.3, concept="cat")
    again.id = regions[0].id
    _patch(clarifai_raw, two_inputs, [_ann("in-a", again, ann_id="p1")], "merge")
    second = _box(concept="cow")
    second.id = "r2"
    resp = _patch(clarifai_raw, two_inputs, [_ann("in-a", second, ann_id="p1")], "merge")
    assert [reg.id for reg in resp.annotations[0].data.regions] == [again.id, "r2"]

    removal = r.Region(id="r2")
    resp = _patch(clarifai_raw, two_inputs, [_ann("in-a", removal, ann_id="p1")], "remove")
    assert [reg.region_info.bounding_box.top_row for reg in resp.annotations[0].data.regions] \
        == [pytest.approx(0.3)]

    _patch(clarifai_raw, two_inputs, [_ann("in-a", ann_id="p1", concepts=[_concept("x")])],
           "merge")
    resp = _patch(clarifai_raw, two_inputs,
                  [_ann("in-a", _box(bottom=0.9, concept="bird"), ann_id="p1")], "overwrite")
    data = _list(clarifai_raw, two_inputs, ids=["p1"]).annotations[0].data
    assert len(data.regions) == 1 and data.regions[0].data.concepts[0].id == "bird"
    assert [c.id for c in data.concepts] == ["x"]  # not named by the patch: kept
    regions = data.regions
    _patch(clarifai_raw, two_inputs, [_ann("in-a", ann_id="p1", concepts=[_concept("x")])],
           "remove")

    last = r.Region(id=regions[0].id)
    _patch(clarifai_raw, two_inputs, [_ann("in-a", last, ann_id="p1")], "remove",
           delete_if_empty_data=True)
    assert not _list(clarifai_raw, two_inputs, ids=["p1"]).annotations

    resp = _patch(clarifai_raw, two_inputs, [_ann("in-a", _box(), ann_id="ghost"),
                                             _ann("in-b", _box(top=2), ann_id="ghost")], "merge")
    assert resp.status.code == codes.FAILURE
    assert "'ghost' does not exist" in resp.annotations[0].status.description


def test_delete_annotations_by_ids_and_inputs(clarifai_raw, two_inputs):
    _post(clarifai_raw, two_inputs, *[_ann(i, _box(), ann_id=f"{i}-{n}")
                                      for i in ("in-a", "in-b") for n in range(3)])

    def delete(**fields):
        return clarifai_raw.call("DeleteAnnotations", s.DeleteAnnotationsRequest(
            user_app_id=two_inputs.user_app_id, **fields))

    assert delete(ids=["in-a-0"]).status.code == codes.SUCCESS
    assert delete(ids=["in-a-1", "in-b-1"], input_ids=["in-a", "in-a"]).status.code \
        == codes.SUCCESS  # the second pair does not match: nothing happens to in-b-1
    assert [a.id for a in _own(_list(clarifai_raw, two_inputs).annotations)] == [
        "in-a-2", "in-b-0", "in-b-1", "in-b-2"]
    assert delete(input_ids=["in-b"]).status.code == codes.SUCCESS  # its input-level one too
    left = _list(clarifai_raw, two_inputs).annotations
    assert [(a.input_id, a.input_level) for a in left] == [("in-a", True), ("in-a", False)]
    assert [a.id for a in _own(left)] == ["in-a-2"]
    assert delete().status.code == codes.CONN_INVALID_REQUEST
    one = clarifai_raw.call("DeleteAnnotation", s.DeleteAnnotationRequest(
        user_app_id=two_inputs.user_app_id, input_id="in-a", annotation_id="in-a-2"))
    assert one.status.code == codes.SUCCESS
    again = clarifai_raw.call("DeleteAnnotation", s.DeleteAnnotationRequest(
        user_app_id=two_inputs.user_app_id, input_id="in-a", annotation_id="in-a-2"))
    assert again.status.code == codes.CONN_DOES_NOT_EXIST


def _input_concepts(api, app, input_id):
    got = api.call("GetInput", s.GetInputRequest(user_app_id=app.user_app_id, input_id=input_id))
    return [c.id for c in got.input.data.concepts]


def test_input_labels_follow_input_level_annotations(clarifai_raw, clarifai_app):
    api, app = clarifai_raw, clarifai_app
    api.call("PostInputs", s.PostInputsRequest(user_app_id=app.user_app_id, inputs=[
        r.Input(id="lab", data=r.Data(text=r.Text(raw="t"), concepts=[_concept("a")]))]))
    assert _post(api, app, _ann("lab", concepts=[_concept("b")], ann_id="extra"),
                 _ann("lab", _box(concept="boxed"))).status.code == codes.SUCCESS
    assert _input_concepts(api, app, "lab") == ["a", "b"]  # region concepts are not labels

    # PatchInputs removes 'b': the annotation that held only 'b' goes with it.
    api.call("PatchInputs", s.PatchInputsRequest(user_app_id=app.user_app_id, action="remove",
                                                 inputs=[r.Input(id="lab", data=r.Data(
                                                     concepts=[r.Concept(id="b")]))]))
    assert _input_concepts(api, app, "lab") == ["a"]
    anns = _list(api, app, input_ids=["lab"]).annotations
    assert [a.id for a in anns if a.id == "extra"] == []
    level = [a for a in anns if a.input_level]
    assert [[c.id for c in a.data.concepts] for a in level] == [["a"]]

    # Patching the input-level annotation changes the input's labels.
    patch = _ann("lab", ann_id=level[0].id, concepts=[_concept("c")])
    _patch(api, app, [patch], "overwrite")
    assert _input_concepts(api, app, "lab") == ["c"]

    # Deleting the annotations of the input removes its labels.
    api.call("DeleteAnnotations", s.DeleteAnnotationsRequest(user_app_id=app.user_app_id,
                                                             input_ids=["lab"]))
    assert _input_concepts(api, app, "lab") == []
