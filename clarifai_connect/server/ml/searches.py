"""Searches: PostInputsSearches and PostAnnotationsSearches — filter in SQL, then rank.

One ``Search`` per request. Its query compiles (:mod:`.search_query`) to one SQL condition
over the indexed search facts (:mod:`.search_index`, caught up for the app first); the
surviving rows are the candidates. Without a vector rank they are the hits, in creation
order, each with score 1. With one, every candidate that has a vector in the rank's
embedder is scored against the query vector by the app's :class:`~.vectors.VectorIndex`
(exact; ``metric`` EUCLIDEAN_DISTANCE or COSINE_DISTANCE, scores in [0, 1], 1 the most
alike) and the hits come best first; several ranks average their scores, a negated rank
counts ``1 - score``. A rank search first waits (up to :data:`EMBED_WAIT` seconds) for the
app's inputs still being embedded. ``min_value`` drops hits scoring less.

Paging: ``pagination.page`` (from 1) and ``per_page`` (up to 1000, default 20); like the
API, ``page × per_page`` may not pass :data:`MAX_RESULT_WINDOW` (CONN_INVALID_REQUEST,
"page * perPage cannot exceed …", which the official SDK turns into a UserError).
``only_count`` answers ``hit_counts[0].estimated_total`` and no hits.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from .. import downloads, media_blobs
from ..common import app_pk, invalid, not_found, user_app
from ..rpc import CallContext, rpc
from .search_query import Compiled, VectorRank, compile_query, register_functions
from .vectors import COSINE, EUCLIDEAN

__all__ = ["EMBED_WAIT", "MAX_RESULT_WINDOW"]

MAX_RESULT_WINDOW = 10_000
MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 20
EMBED_WAIT = 60.0
_METRICS = {resources_pb2.Search.METRIC_NOT_SET: EUCLIDEAN,
            resources_pb2.Search.EUCLIDEAN_DISTANCE: EUCLIDEAN,
            resources_pb2.Search.COSINE_DISTANCE: COSINE}
_ALGORITHMS = ("", "nearest_neighbor", "brute_force")  # both exact here


@rpc("PostInputsSearches")
def post_inputs_searches(ctx: CallContext, req: service_pb2.PostInputsSearchesRequest
                         ) -> service_pb2.MultiSearchResponse:
    """Inputs matching the search's filters, ranked by its ranks; paged, or only counted."""
    return _search(ctx, req, annotations=False, only_count=req.only_count)


@rpc("PostAnnotationsSearches")
def post_annotations_searches(ctx: CallContext, req: service_pb2.PostAnnotationsSearchesRequest
                              ) -> service_pb2.MultiSearchResponse:
    """Annotations matching the search (concepts of regions included), as annotation hits."""
    return _search(ctx, req, annotations=True, only_count=False)


def _window(req: Any) -> tuple[int, int]:
    page = req.pagination.page or 1
    per_page = req.pagination.per_page or DEFAULT_PER_PAGE
    if per_page > MAX_PER_PAGE:
        raise invalid(f"per_page must be between 1 and {MAX_PER_PAGE}")
    if page * per_page > MAX_RESULT_WINDOW:
        raise invalid(f"page * perPage cannot exceed {MAX_RESULT_WINDOW} "
                      f"(page {page} × per_page {per_page})")
    return per_page, (page - 1) * per_page


def _search(ctx: CallContext, req: Any, annotations: bool,
            only_count: bool) -> service_pb2.MultiSearchResponse:
    server = ctx.server
    user_id, app_id = user_app(req)
    if len(req.searches) != 1:
        raise invalid(f"give exactly one search (got {len(req.searches)})")
    search = req.searches[0]
    metric = _METRICS.get(search.metric)
    if metric is None:
        raise invalid(f"unknown search metric {search.metric}")
    if search.algorithm not in _ALGORITHMS:
        raise invalid(f"unknown search algorithm '{search.algorithm}' "
                      "(nearest_neighbor or brute_force)")
    limit, offset = _window(req)
    db = server.store.read()
    pk = app_pk(db, req)
    server.search_index.catch_up(pk)
    register_functions(db)
    compiled = compile_query(db, pk, search.query, annotations)
    table, alias, columns = (("annotations", "a", "a.id, a.input_id") if annotations
                             else ("inputs", "i", "i.id, i.id"))
    sql = f"FROM {table} {alias} WHERE {alias}.app_pk=? AND {compiled.where}"
    args = [pk, *compiled.args]

    if not compiled.ranks:  # every hit scores 1
        if search.min_value > 1:
            return _counted(0) if only_count else service_pb2.MultiSearchResponse()
        if only_count:
            count = db.execute(f"SELECT COUNT(*) {sql}", args).fetchone()[0]
            return _counted(count)
        rows = db.execute(f"SELECT {columns} {sql} ORDER BY {alias}.seq LIMIT ? OFFSET ?",
                          (*args, limit, offset)).fetchall()
        return _answer(server, pk, user_id, app_id, [(r[0], r[1], 1.0) for r in rows],
                       annotations)

    if not annotations and not only_count and len(compiled.ranks) == 1 and \
            not compiled.ranks[0].negate:
        # The common case: one rank over inputs; the index picks the page's best directly.
        among = [r[0] for r in db.execute(f"SELECT i.id {sql}", args)] \
            if compiled.filtered else None
        server.embeddings.wait(pk, timeout=EMBED_WAIT)
        embedder, vector = _query_vector(server, pk, compiled.ranks[0], "query.ranks[0]")
        best = server.embeddings.index(pk, embedder).search(
            vector, offset + limit, metric, among=among)
        page = [(i, i, score) for i, score in best[offset:] if score >= search.min_value]
        return _answer(server, pk, user_id, app_id, page, annotations)

    rows = db.execute(f"SELECT {columns} {sql} ORDER BY {alias}.seq", args).fetchall()
    scores = _rank_scores(server, pk, compiled, metric,
                          [r[1] for r in rows] if compiled.filtered else None)
    scored = [(row_id, input_id, scores[input_id]) for row_id, input_id in rows
              if input_id in scores]
    if search.min_value:
        scored = [hit for hit in scored if hit[2] >= search.min_value]
    if only_count:
        return _counted(len(scored))
    # Best first; stable, so equal scores keep creation order.
    scored.sort(key=lambda hit: -hit[2])
    return _answer(server, pk, user_id, app_id, scored[offset:offset + limit], annotations)


def _counted(count: int) -> service_pb2.MultiSearchResponse:
    return service_pb2.MultiSearchResponse(hit_counts=[resources_pb2.HitCount(
        estimated_total=count)])


def _rank_scores(server: Any, pk: int, compiled: Compiled, metric: str,
                 among: list[str] | None) -> dict[str, float]:
    """Every candidate's score (candidates without a vector for some rank are left out)."""
    server.embeddings.wait(pk, timeout=EMBED_WAIT)
    combined: dict[str, float] | None = None
    for n, rank in enumerate(compiled.ranks):
        embedder, vector = _query_vector(server, pk, rank, f"query.ranks[{n}]")
        index = server.embeddings.index(pk, embedder)
        hits = index.search(vector, len(index), metric,
                            among=dict.fromkeys(among) if among is not None else None)
        scores = {i: (1.0 - s if rank.negate else s) for i, s in hits}
        combined = scores if combined is None else {
            i: combined[i] + s for i, s in scores.items() if i in combined}
    count = len(compiled.ranks)
    return {i: s / count for i, s in (combined or {}).items()}


def _query_vector(server: Any, pk: int, rank: VectorRank, where: str) -> tuple[str, np.ndarray]:
    """(embedder name, unit vector) of what a rank compares with."""
    if rank.input_id:
        db = server.store.read()
        row = db.execute("SELECT embedder, vector FROM embeddings WHERE app_pk=? AND "
                         "input_id=?", (pk, rank.input_id)).fetchone()
        if row is None:
            if db.execute("SELECT 1 FROM inputs WHERE app_pk=? AND id=?",
                          (pk, rank.input_id)).fetchone() is None:
                raise not_found("input", rank.input_id)
            raise invalid(f"{where}: input '{rank.input_id}' has no embedding (its media "
                          "kind has no embedder in this app, or it could not be read)")
        return row[0], np.frombuffer(row[1], dtype=np.float32)
    item = rank.item
    if rank.url:
        data = _fetch(server, rank.url, where)
        item = data.decode("utf-8", errors="replace") if rank.kind == "text" else data
    embedder = server.embeddings.embedder_name(pk, rank.kind)
    if embedder is None:
        raise invalid(f"{where}: this app has no embedder for {rank.kind}, so it cannot "
                      f"rank by {rank.kind}")
    try:
        return embedder, server.embeddings.embed(pk, rank.kind, item)
    except ValueError as exc:
        raise invalid(f"{where}: {exc}") from None


def _fetch(server: Any, url: str, where: str) -> bytes:
    digest = media_blobs.own_digest(server, url)
    if digest:
        return media_blobs.read(server, digest)
    problem = downloads.url_problem(url)
    if problem:
        raise invalid(f"{where}: {problem}")
    try:
        return downloads.fetch(url, server.download_timeout)
    except downloads.DownloadError as exc:
        raise invalid(f"{where}: cannot fetch the media to rank by: {exc}") from None


def _answer(server: Any, pk: int, user_id: str, app_id: str,
            hits: list[tuple[str, str, float]], annotations: bool
            ) -> service_pb2.MultiSearchResponse:
    """Hits for (row id, input id, score) triples: inputs rendered, annotations attached."""
    db = server.store.read()
    input_ids = list(dict.fromkeys(h[1] for h in hits))
    inputs = {i: resources_pb2.Input.FromString(p) for i, p in db.execute(
        "SELECT id, proto FROM inputs WHERE app_pk=? AND id IN (SELECT value FROM "
        "json_each(?))", (pk, json.dumps(input_ids)))}
    found = {}
    if annotations:
        found = {i: resources_pb2.Annotation.FromString(p) for i, p in db.execute(
            "SELECT id, proto FROM annotations WHERE app_pk=? AND id IN (SELECT value FROM "
            "json_each(?))", (pk, json.dumps([h[0] for h in hits])))}
    out = service_pb2.MultiSearchResponse()
    media_url = server.media_url
    for row_id, input_id, score in hits:
        if input_id not in inputs:
            continue  # deleted since the candidates were read
        hit = out.hits.add(score=score, user_id=user_id, app_id=app_id)
        hit.input.CopyFrom(media_blobs.render_hosted(inputs[input_id], media_url))
        if annotations and row_id in found:
            hit.annotation.CopyFrom(found[row_id])
    return out
