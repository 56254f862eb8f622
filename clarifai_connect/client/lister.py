"""Lister: lazy paging over the API's ``page``/``per_page`` list calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import UserError
from .base import BaseClient


def listed_field(response: Any) -> str:
    """The name of the repeated field a list response carries its items in."""
    for field in response.DESCRIPTOR.fields:
        if field.is_repeated and field.message_type is not None and field.name != "status":
            return field.name
    raise UserError(f"{type(response).__name__} is not a list response.")


class Lister(BaseClient):
    """Paginated listing: ``list_pages_generator`` asks for page after page, lazily."""

    #: per_page sent when listing every page; None lets the server choose (128 on the API).
    full_listing_page_size: int | None = None

    def __init__(self, page_size: int = 16) -> None:
        """``page_size`` is the per_page used when a page number is given without one."""
        if page_size < 1:
            raise UserError(f"page_size must be 1 or more, got {page_size}.")
        self.default_page_size = page_size

    def list_pages_generator(self, endpoint: str | Callable[[Any], Any],
                             proto_message: type, request_data: dict[str, Any],
                             page_no: int | None = None,
                             per_page: int | None = None) -> Iterator[Any]:
        """Yield the items (protos) of a listing, one page request at a time.

        ``endpoint`` is a V2 method name (or a callable taking the request and returning the
        response; a Lister made on its own, without a connection, needs the callable). With neither ``page_no`` nor ``per_page`` every page is listed until an
        empty one; otherwise only page ``page_no`` (default 1) of ``per_page`` items (default
        ``page_size``). Failure statuses raise ApiError.
        """
        if page_no is not None and page_no < 1:
            raise UserError(f"page_no must be 1 or more, got {page_no}.")
        if per_page is not None and per_page < 1:
            raise UserError(f"per_page must be 1 or more, got {per_page}.")
        single_page = page_no is not None or per_page is not None
        page = page_no or 1
        if single_page:
            per_page = per_page or getattr(self, "default_page_size", 16)
        else:
            per_page = self.full_listing_page_size
        call = (lambda req: self._call(endpoint, req)) if isinstance(endpoint, str) else endpoint
        return self._pages(call, proto_message, request_data, page, per_page, single_page)

    @staticmethod
    def _pages(call: Callable[[Any], Any], proto_message: type, request_data: dict[str, Any],
               page: int, per_page: int | None, single_page: bool) -> Iterator[Any]:
        while True:
            request = proto_message(**request_data, page=page, per_page=per_page or 0)
            response = call(request)
            items = getattr(response, listed_field(response))
            if not items:
                return
            yield from items
            if single_page:
                return
            page += 1
