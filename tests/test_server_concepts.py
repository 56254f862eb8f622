"""Concepts over the raw gRPC stub: create, get, list (paged, fuzzy id), patch."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes


def _post(api, app, *concepts):
    return api.call("PostConcepts", s.PostConceptsRequest(
        user_app_id=app.user_app_id, concepts=list(concepts)))


def _get(api, app, concept_id):
    return api.call("GetConcept", s.GetConceptRequest(
        user_app_id=app.user_app_id, concept_id=concept_id))


def test_post_and_get(clarifai_raw, clarifai_app):
    resp = _post(clarifai_raw, clarifai_app, r.Concept(id="cat", name="Cat"), r.Concept(id="dog"))
    assert resp.status.code == codes.SUCCESS, resp.status
    assert [(c.id, c.name) for c in resp.concepts] == [("cat", "Cat"), ("dog", "dog")]
    assert resp.concepts[0].app_id == clarifai_app.app_id
    assert resp.concepts[0].created_at.seconds > 0
    got = _get(clarifai_raw, clarifai_app, "cat")
    assert got.status.code == codes.SUCCESS and got.concept.name == "Cat"
    missing = _get(clarifai_raw, clarifai_app, "cow")
    assert missing.status.code == codes.CONN_DOES_NOT_EXIST and "cow" in missing.status.details


def test_post_rejects_existing_invalid_and_repeated(clarifai_raw, clarifai_app):
    _post(clarifai_raw, clarifai_app, r.Concept(id="cat"))
    exists = _post(clarifai_raw, clarifai_app, r.Concept(id="new"), r.Concept(id="cat"))
    assert exists.status.code == codes.CONN_INVALID_REQUEST
    assert "'cat' already exists" in exists.status.details
    assert _get(clarifai_raw, clarifai_app, "new").status.code == codes.CONN_DOES_NOT_EXIST
    bad = _post(clarifai_raw, clarifai_app, r.Concept(id="two words"))
    assert bad.status.code == codes.CONN_INVALID_REQUEST
    assert "concepts[0]" in bad.status.details and "two words" in bad.status.details
    twice = _post(clarifai_raw, clarifai_app, r.Concept(id="x"), r.Concept(id="x"))
    assert "given twice" in twice.status.details
    assert _post(clarifai_raw, clarifai_app).status.code == codes.CONN_INVALID_REQUEST


def test_list_pages_and_fuzzy_id(clarifai_raw, clarifai_app):
    ids = [f"c{n:02d}" for n in range(9)] + ["tabby_cat", "cat-like"]
    assert _post(clarifai_raw, clarifai_app, *[r.Concept(id=i) for i in ids]).status.code \
        == codes.SUCCESS
    seen, page = [], 1
    while True:
        resp = clarifai_raw.call("ListConcepts", s.ListConceptsRequest(
            user_app_id=clarifai_app.user_app_id, page=page, per_page=4))
        assert resp.status.code == codes.SUCCESS
        if not resp.concepts:
            break
        assert {f.name for f, _ in resp.ListFields()} == {"status", "concepts"}
        seen += [c.id for c in resp.concepts]
        page += 1
    assert seen == ids and page == 4
    fuzzy = clarifai_raw.call("ListConcepts", s.ListConceptsRequest(
        user_app_id=clarifai_app.user_app_id, id="cat"))
    assert [c.id for c in fuzzy.concepts] == ["tabby_cat", "cat-like"]
    underscore = clarifai_raw.call("ListConcepts", s.ListConceptsRequest(
        user_app_id=clarifai_app.user_app_id, id="y_c"))
    assert [c.id for c in underscore.concepts] == ["tabby_cat"]  # '_' is literal, not a wildcard


def test_patch_concepts(clarifai_raw, clarifai_app):
    _post(clarifai_raw, clarifai_app, r.Concept(id="cat", name="Cat"))
    resp = clarifai_raw.call("PatchConcepts", s.PatchConceptsRequest(
        user_app_id=clarifai_app.user_app_id, action="overwrite",
        concepts=[r.Concept(id="cat", name="House cat", value=1)]))
    assert resp.status.code == codes.SUCCESS, resp.status
    assert resp.concepts[0].name == "House cat"
    assert _get(clarifai_raw, clarifai_app, "cat").concept.name == "House cat"
    missing = clarifai_raw.call("PatchConcepts", s.PatchConceptsRequest(
        user_app_id=clarifai_app.user_app_id, action="overwrite",
        concepts=[r.Concept(id="ghost", name="Ghost")]))
    assert missing.status.code == codes.CONN_DOES_NOT_EXIST and "ghost" in missing.status.details


def test_concepts_of_labels_are_created_once(clarifai_raw, clarifai_app):
    _post(clarifai_raw, clarifai_app, r.Concept(id="cat", name="Cat"))
    resp = clarifai_raw.call("PostInputs", s.PostInputsRequest(
        user_app_id=clarifai_app.user_app_id, inputs=[
            r.Input(id=f"i{n}", data=r.Data(text=r.Text(raw="t"), concepts=[
                r.Concept(id="cat", name="other name", value=1),
                r.Concept(id="pet", name="Pet", value=1)])) for n in range(3)]))
    assert resp.status.code == codes.SUCCESS
    listed = clarifai_raw.call("ListConcepts", s.ListConceptsRequest(
        user_app_id=clarifai_app.user_app_id))
    assert [(c.id, c.name) for c in listed.concepts] == [("cat", "Cat"), ("pet", "Pet")]
