"""Reading an app in parts, one per read task (Ray) or partition (Spark).

A listing is split by its pages (part ``i`` of ``n`` reads pages ``i + 1``, ``i + 1 + n``,
…: :class:`~clarifai_connect.exports.sources.ListingSource`), so the parts need no count
up front and read each input once; a search is one part (its hits are ranked as one
stream). :func:`check_app` runs once, on the driver; :func:`read_part` runs in each task.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_PARTS", "check_app", "part_count", "read_part"]

DEFAULT_PARTS = 4  # enough to overlap the listing's round trips; empty parts cost one call


def part_count(wanted: int | str | None, query: Any = None) -> int:
    """How many parts to read in: ``wanted`` (≥ 1), or :data:`DEFAULT_PARTS`; one for a
    search. A bad number is a ConfigError."""
    from ..errors import ConfigError

    if query is not None:
        return 1
    try:
        count = int(wanted) if wanted not in (None, "", 0) else DEFAULT_PARTS
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"the number of read parts must be 1 or more, got {wanted!r}")
    return count


def check_app(app: str, *, dataset: str | None = None, query: Any = None,
              base_url: str | None = None, pat: str | None = None) -> None:
    """Fail fast, on the driver, when the app or dataset does not exist (or the query is
    bad): one sentence, before any task starts."""
    from ..reading import read_app

    read_app(app, dataset=dataset, query=query, base_url=base_url, pat=pat)


def read_part(app: str, part: tuple[int, int], *, dataset: str | None = None,
              query: Any = None, base_url: str | None = None, pat: str | None = None) -> Any:
    """The records of part ``part = (index, count)`` of the app (or dataset, or search) as
    :class:`~clarifai_connect.reading.AppRecords`."""
    from ..client.auth import ClientAuth
    from ..engine.run import parse_app
    from ..exports.sources import ListingSource
    from ..reading import AppRecords, read_app

    if query is not None or part[1] == 1:
        return read_app(app, dataset=dataset, query=query, base_url=base_url, pat=pat)
    user_id, app_id = parse_app(app)
    auth = ClientAuth.resolve(user_id=user_id, app_id=app_id, base_url=base_url, pat=pat)
    return AppRecords(ListingSource(auth, dataset or "", part))
