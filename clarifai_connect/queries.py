"""A search in readable form — CLI options, a ``query.yaml``, or ``export(query=…)`` — and
the rank and filter dicts of ``Search.query`` it becomes.

The readable keys (dashes or underscores alike), each optional:

=================  ==============================================================
``concept``        a name or id, or a list: each entry is a filter of its own (AND);
                   ``dog,puppy`` in one entry means either (OR)
``not_concept``    the same, negated: inputs not labelled with it
``metadata``       a dict matched partially (``{"breed": "Saint Bernard"}``)
``type``           image, video, text, audio (a list is OR)
``dataset``        dataset ids (a list is OR)
``status``         an input status code (30000: media stored)
``near``           ``LAT,LON`` (or ``{latitude, longitude}``), with ``within_km``
``like``           an image to look like: a local path or an http(s) URL
``like_text``      a text to read like
``like_input``     the id of a stored input to look like
``top_k``          at most this many hits (default: 10 for ``search``, all for export)
``metric``         cosine (default) or euclidean
``filters``        further filter dicts exactly as ``Search.query`` takes them
``ranks``          further rank dicts likewise
=================  ==============================================================

A concept given by the word matches a concept of that id or of that name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["SearchQuery", "load_query", "merge"]

_KEYS = ("concept", "not_concept", "metadata", "type", "dataset", "status", "near",
         "within_km", "like", "like_text", "like_input", "top_k", "metric", "filters", "ranks")
_NAME = re.compile(r"^[0-9A-Za-z]+([-_][0-9A-Za-z]+)*$")


@dataclass
class SearchQuery:
    """The rank and filter dicts of one search, with its ``top_k`` and ``metric``."""

    filters: list[dict[str, Any]] = field(default_factory=list)
    ranks: list[dict[str, Any]] = field(default_factory=list)
    top_k: int | None = None
    metric: str = "cosine"

    @property
    def empty(self) -> bool:
        """True when nothing narrows or ranks (every input matches)."""
        return not self.filters and not self.ranks

    def describe(self) -> str:
        """A short, readable summary (for reports), without media bytes."""
        def short(term: dict[str, Any]) -> dict[str, Any]:
            return {k: (f"<{len(v)} bytes>" if isinstance(v, bytes) else v)
                    for k, v in term.items()}

        parts = [f"filters={[short(f) for f in self.filters]}" if self.filters else "",
                 f"ranks={[short(r) for r in self.ranks]}" if self.ranks else "",
                 f"top_k={self.top_k}" if self.top_k else ""]
        return " ".join(p for p in parts if p) or "everything"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "query",
                     base_dir: str | os.PathLike | None = None) -> SearchQuery:
        """Build from the readable keys; ``base_dir`` resolves a relative ``like`` path."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: a query is a mapping of keys "
                              f"({', '.join(_KEYS)}), got {type(data).__name__}")
        values = {str(k).replace("-", "_"): v for k, v in data.items() if v is not None}
        unknown = sorted(set(values) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(_KEYS)})")
        query = cls(metric=str(values.get("metric", "cosine")))
        for entry in _listed(values.get("concept")):
            query.filters.append({"concepts": _concepts(entry, f"{where}.concept")})
        for entry in _listed(values.get("not_concept")):
            query.filters.append({"concepts": _concepts(entry, f"{where}.not_concept"),
                                  "negate": True})
        if values.get("metadata"):
            query.filters.append({"metadata": values["metadata"]})
        if values.get("type"):
            query.filters.append({"input_types": [str(t) for t in _listed(values["type"])]})
        if values.get("dataset"):
            query.filters.append({"input_dataset_ids": [str(d)
                                                        for d in _listed(values["dataset"])]})
        if "status" in values:
            query.filters.append({"input_status_code": _int(values["status"],
                                                            f"{where}.status")})
        if "near" in values or "within_km" in values:
            query.filters.append({"geo_point": _geo(values.get("near"), values.get("within_km"),
                                                    where)})
        _ranks(query, values, where, base_dir)
        for key in ("filters", "ranks"):
            extra = values.get(key, [])
            if not isinstance(extra, list):
                raise ConfigError(f"{where}.{key} must be a list of dicts")
            getattr(query, key).extend(dict(term) if isinstance(term, Mapping) else term
                                       for term in extra)
        if "top_k" in values:
            query.top_k = _int(values["top_k"], f"{where}.top_k")
            if query.top_k < 1:
                raise ConfigError(f"{where}.top_k must be 1 or more")
        return query

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> SearchQuery:
        """Read a ``query.yaml`` (or JSON) file of the readable keys."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read the query {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{line}: not valid YAML "
                              f"({getattr(exc, 'problem', '') or exc})") from None
        return cls.from_mapping(data, where=str(path), base_dir=path.parent)


def load_query(value: SearchQuery | Mapping[str, Any] | str | os.PathLike) -> SearchQuery:
    """A :class:`SearchQuery` from itself, a mapping of the readable keys, or a file path."""
    if isinstance(value, SearchQuery):
        return value
    if isinstance(value, Mapping):
        return SearchQuery.from_mapping(value)
    if isinstance(value, str | os.PathLike):
        return SearchQuery.from_file(value)
    raise ConfigError(f"query must be a mapping, a query file or a SearchQuery, "
                      f"not {type(value).__name__}")


def merge(first: SearchQuery, second: SearchQuery) -> SearchQuery:
    """Both queries at once: filters and ranks of both; ``second``'s top_k and metric win."""
    return SearchQuery(filters=[*first.filters, *second.filters],
                       ranks=[*first.ranks, *second.ranks],
                       top_k=second.top_k or first.top_k,
                       metric=second.metric if second.metric != "cosine" else first.metric)


def _listed(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a whole number, got {value!r}") from None


def _concepts(entry: Any, where: str) -> list[dict[str, Any]]:
    """One entry (``dog`` or ``dog,puppy``) → concept dicts matching by id or by name."""
    words = [w.strip() for w in str(entry).split(",") if w.strip()]
    if not words:
        raise ConfigError(f"{where}: an empty concept")
    out: list[dict[str, Any]] = []
    for word in words:
        out.append({"id": word, "value": 1})
        if _NAME.match(word):
            out.append({"name": word, "value": 1})
    return out


def _geo(near: Any, within_km: Any, where: str) -> dict[str, Any]:
    if near is None or within_km is None:
        raise ConfigError(f"{where}: near and within_km go together (near LAT,LON, "
                          "within_km KILOMETRES)")
    if isinstance(near, Mapping):
        lat, lon = near.get("latitude"), near.get("longitude")
    else:
        parts = str(near).split(",")
        lat, lon = (parts + [None])[:2] if len(parts) == 2 else (None, None)
    try:
        lat, lon, km = float(lat), float(lon), float(within_km)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: near must be LAT,LON and within_km a number of "
                          f"kilometres (got near={near!r}, within_km={within_km!r})") from None
    return {"longitude": lon, "latitude": lat, "geo_limit": km}


def _ranks(query: SearchQuery, values: Mapping[str, Any], where: str,
           base_dir: str | os.PathLike | None) -> None:
    like = values.get("like")
    if like:
        like = str(like)
        if re.match(r"^https?://", like):
            query.ranks.append({"image_url": like})
        else:
            path = Path(like).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = Path(base_dir) / path
            try:
                query.ranks.append({"image_bytes": path.read_bytes()})
            except OSError as exc:
                raise ConfigError(f"{where}.like: cannot read {path}: "
                                  f"{exc.strerror or exc}") from None
    if values.get("like_text"):
        query.ranks.append({"text_raw": str(values["like_text"])})
    if values.get("like_input"):
        query.ranks.append({"input_id": str(values["like_input"])})
