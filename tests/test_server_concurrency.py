"""Many client threads posting at once: nothing lost, nothing duplicated."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

THREADS, BATCHES, BATCH = 8, 20, 16


def _all_ids(api, app) -> list[str]:
    ids, page = [], 1
    while True:
        resp = api.call("ListInputs", s.ListInputsRequest(
            user_app_id=app.user_app_id, page=page, per_page=1000))
        assert resp.status.code == codes.SUCCESS
        if not resp.inputs:
            return ids
        ids += [i.id for i in resp.inputs]
        page += 1


def test_eight_threads_posting_lose_and_duplicate_nothing(clarifai_raw, clarifai_app):
    def worker(t: int) -> list[str]:
        landed = []
        for b in range(BATCHES):
            inputs = [r.Input(id=f"t{t}-b{b}-i{i}", data=r.Data(
                text=r.Text(raw=f"{t}/{b}/{i}"), concepts=[r.Concept(id=f"c{i % 3}", value=1)]))
                for i in range(BATCH)]
            resp = clarifai_raw.call("PostInputs", s.PostInputsRequest(
                user_app_id=clarifai_app.user_app_id, inputs=inputs,
                inputs_add_job_id=f"job-{t}"))
            assert resp.status.code == codes.SUCCESS, resp.status
            landed += [i.id for i in resp.inputs]
        return landed

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    expected = sorted(i for ids in results for i in ids)
    assert len(expected) == THREADS * BATCHES * BATCH
    listed = _all_ids(clarifai_raw, clarifai_app)
    assert len(listed) == len(set(listed))
    assert sorted(listed) == expected
    count = clarifai_raw.call("GetInputCount", s.GetInputCountRequest(
        user_app_id=clarifai_app.user_app_id)).counts
    assert count.processed == len(expected)
    job = clarifai_raw.call("GetInputsAddJob", s.GetInputsAddJobRequest(
        user_app_id=clarifai_app.user_app_id, id="job-3")).inputs_add_job
    assert job.progress.success_count == BATCHES * BATCH
    concepts = clarifai_raw.call("ListConcepts", s.ListConceptsRequest(
        user_app_id=clarifai_app.user_app_id))
    assert sorted(c.id for c in concepts.concepts) == ["c0", "c1", "c2"]
    anns = clarifai_raw.call("ListAnnotations", s.ListAnnotationsRequest(
        user_app_id=clarifai_app.user_app_id, input_ids=listed[:50]))
    assert len(anns.annotations) == 50


def test_racing_duplicates_land_exactly_once(clarifai_raw, clarifai_app):
    ids = [f"same-{n}" for n in range(32)]

    def worker(t: int) -> list[str]:
        resp = clarifai_raw.call("PostInputs", s.PostInputsRequest(
            user_app_id=clarifai_app.user_app_id,
            inputs=[r.Input(id=i, data=r.Data(text=r.Text(raw=f"from {t}"))) for i in ids]))
        return [i.id for i in resp.inputs if i.status.code == codes.INPUT_DOWNLOAD_SUCCESS]

    with ThreadPoolExecutor(THREADS) as pool:
        winners = [i for landed in pool.map(worker, range(THREADS)) for i in landed]
    assert sorted(winners) == sorted(ids)  # each id won by exactly one thread
    assert sorted(_all_ids(clarifai_raw, clarifai_app)) == sorted(ids)
