"""Search: filter and rank the inputs of an app (``PostInputsSearches``), lazily, page by page.

``Search(user_id, app_id, top_k=10, metric="cosine")`` as in the reference; ``query``
checks the rank and filter dicts (:mod:`.search_terms`), sends one search and yields the
responses page after page (each a ``MultiSearchResponse`` whose ``hits`` carry ``score``
and ``input``), stopping at ``top_k`` hits — or, with ``pagination=True``, the page asked
for (or every page). :meth:`Search.hits` yields the hits one by one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from google.protobuf import json_format

from ..errors import ApiError, UserError
from .auth import ClientAuth
from .base import resolve_auth
from .lister import Lister
from .search_terms import filter_proto, rank_proto

__all__ = ["Search", "hit_summary"]

METRICS = {"cosine": resources_pb2.Search.COSINE_DISTANCE,
           "euclidean": resources_pb2.Search.EUCLIDEAN_DISTANCE}
ALGORITHMS = ("nearest_neighbor", "brute_force")
DEFAULT_TOP_K = 10
PAGE_SIZE = 1000  # the API's largest page
_WINDOW_LIMIT = "page * perPage cannot exceed"


def _terms(value: Any, name: str) -> Sequence[Any]:
    if value is None:
        return [{}]
    if not isinstance(value, list | tuple):
        raise UserError(f"{name} must be a list of dicts, got {type(value).__name__}.")
    return value


class Search(Lister):
    """Searches the inputs of one app by filters (concepts, metadata, types, datasets,
    status, place) and ranks (likeness to an image, a text or an input)."""

    def __init__(self, user_id: str = "", app_id: str = "", top_k: int | None = None,
                 metric: str = "cosine", algorithm: str = "nearest_neighbor",
                 pagination: bool = False, base_url: str | None = None, pat: str = "",
                 token: str = "", root_certificates_path: str = "",
                 auth: ClientAuth | None = None) -> None:
        """Initialize the Search object.

        Args:
            user_id: User ID (default: env ``CLARIFAI_USER_ID``).
            app_id: App ID (default: env ``CLARIFAI_APP_ID``).
            top_k: Top K results to retrieve (default 10; not with ``pagination``).
            metric: Similarity metric, 'cosine' or 'euclidean' (default 'cosine').
            algorithm: 'nearest_neighbor' or 'brute_force' (default 'nearest_neighbor').
            pagination: Page with ``query(page_no=, per_page=)`` instead of ``top_k``.
            base_url: The API: ``https://…``, ``http://host:port`` or ``local[:PATH]``.
            pat: A personal access token (default: env ``CLARIFAI_PAT``).
            token: A session token (default: env ``CLARIFAI_SESSION_TOKEN``).
            root_certificates_path: PEM roots for TLS channels.
            auth: An already resolved connection (used by ``App.search``).
        """
        if metric not in METRICS:
            raise UserError(f"metric must be 'cosine' or 'euclidean', got {metric!r}.")
        if algorithm not in ALGORITHMS:
            raise UserError(f"algorithm must be 'nearest_neighbor' or 'brute_force', got "
                            f"{algorithm!r}.")
        if top_k is not None and pagination:
            raise UserError("top_k and pagination cannot be used together: leave top_k out "
                            "when pagination=True.")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool)
                                  or top_k < 1):
            raise UserError(f"top_k must be a positive int, got {top_k!r}.")
        Lister.__init__(self, page_size=PAGE_SIZE)
        self._init_client(resolve_auth(auth, user_id=user_id, app_id=app_id, base_url=base_url,
                                       pat=pat, token=token,
                                       root_certificates_path=root_certificates_path))
        if not self.user_id or not self.app_id:
            raise UserError("Search needs a user_id and an app_id (or set CLARIFAI_USER_ID "
                            "and CLARIFAI_APP_ID).")
        self.top_k = None if pagination else (top_k or DEFAULT_TOP_K)
        self.metric = metric
        self.algorithm = algorithm
        self.pagination = pagination

    def __repr__(self) -> str:
        return (f"Search(user_id={self.user_id!r}, app_id={self.app_id!r}, "
                f"top_k={self.top_k!r}, metric={self.metric!r})")

    def request(self, ranks: Sequence[Any] | None = None,
                filters: Sequence[Any] | None = None) -> service_pb2.PostInputsSearchesRequest:
        """The request ``query`` sends (without paging): the dicts checked and converted."""
        ranks, filters = _terms(ranks, "ranks"), _terms(filters, "filters")
        query = resources_pb2.Query(
            ranks=[rank_proto(r, f"ranks[{n}]") for n, r in enumerate(ranks)],
            filters=[filter_proto(f, f"filters[{n}]") for n, f in enumerate(filters)])
        return service_pb2.PostInputsSearchesRequest(
            user_app_id=self.user_app_id,
            searches=[resources_pb2.Search(query=query, algorithm=self.algorithm,
                                           metric=METRICS[self.metric])])

    def query(self, ranks: Sequence[Any] | None = None, filters: Sequence[Any] | None = None,
              page_no: int | None = None, per_page: int | None = None
              ) -> Iterator[service_pb2.MultiSearchResponse]:
        """Perform a query with rank and filters; yields one response per page, lazily.

        Args:
            ranks: Rank dicts (default ``[{}]``: no ranking).
            filters: Filter dicts (default ``[{}]``: everything); the keys of one dict are
                OR, separate dicts are AND.
            page_no: The page to list (``pagination=True`` only).
            per_page: The number of hits per page (``pagination=True`` only).

        The dicts are checked now (UserError naming the bad key); nothing is sent until
        the generator is iterated.
        """
        if not self.pagination and (page_no is not None or per_page is not None):
            raise UserError("page_no and per_page need Search(pagination=True).")
        for name, value in (("page_no", page_no), ("per_page", per_page)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"{name} must be a positive int, got {value!r}.")
        request = self.request(ranks, filters)
        if self.pagination:
            single = page_no is not None or per_page is not None
            return self._pages(request, page_no or 1, per_page or PAGE_SIZE, None, single)
        return self._pages(request, 1, min(self.top_k, PAGE_SIZE), self.top_k, False)

    def hits(self, ranks: Sequence[Any] | None = None,
             filters: Sequence[Any] | None = None) -> Iterator[resources_pb2.Hit]:
        """The hits of :meth:`query`, one at a time, best first."""
        query = self.query(ranks, filters)
        for response in query:
            yield from response.hits

    def count(self, filters: Sequence[Any] | None = None) -> int:
        """How many inputs the filters match (``only_count``: no hits are sent)."""
        request = self.request(None, filters)
        request.only_count = True
        response = self._search(request)
        return response.hit_counts[0].estimated_total if response.hit_counts else 0

    def _pages(self, request: service_pb2.PostInputsSearchesRequest, page: int,
               per_page: int, top_k: int | None, single: bool
               ) -> Iterator[service_pb2.MultiSearchResponse]:
        seen = 0
        while True:
            request.pagination.CopyFrom(service_pb2.Pagination(page=page, per_page=per_page))
            response = self._search(request)
            if not response.hits:
                return
            if top_k is not None and seen + len(response.hits) > top_k:
                del response.hits[top_k - seen:]
            seen += len(response.hits)
            yield response
            if single or (top_k is not None and seen >= top_k) or \
                    len(response.hits) < per_page:
                return
            page += 1

    def _search(self, request: service_pb2.PostInputsSearchesRequest
                ) -> service_pb2.MultiSearchResponse:
        try:
            return self._call("PostInputsSearches", request)
        except ApiError as err:
            if _WINDOW_LIMIT in err.details:
                raise UserError(f"the search asks for more hits than the API pages through "
                                f"({err.details}): ask for an earlier page or fewer hits."
                                ) from None
            raise


def hit_summary(hit: resources_pb2.Hit) -> dict[str, Any]:
    """A hit as plain data: input ``id``, ``score``, media ``type``, ``labels`` (its
    concepts of value 1), ``dataset_ids``, ``metadata`` and the media ``url``."""
    data = hit.input.data
    kind = next((k for k in ("image", "video", "audio", "text") if data.HasField(k)), "")
    return {"id": hit.input.id, "score": round(float(hit.score), 6), "type": kind,
            "labels": [c.name or c.id for c in data.concepts if c.value > 0],
            "dataset_ids": list(hit.input.dataset_ids),
            "metadata": json_format.MessageToDict(data.metadata) if data.metadata.fields else {},
            "url": getattr(data, kind).url if kind else ""}
