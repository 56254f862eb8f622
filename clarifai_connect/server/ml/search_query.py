"""A search ``Query`` → one SQL condition over the search facts, and the vector ranks.

The semantics the official SDK relies on (its own tests state them):

- within one ``Filter`` every part is OR: each concept of the list, the metadata, the geo
  limit, the input types, the dataset ids, the status code, an input id;
- separate filters are AND; ``Filter.negate`` negates the whole filter;
- an empty ``Filter`` or ``Rank`` matches everything;
- a concept matches by ``id`` or by ``name``; ``value`` 1 matches inputs labelled with
  it, ``value`` 0 inputs labelled *not* it (an explicit negative label; use ``negate`` for
  "not labelled with it");
- metadata is a partial JSON match: every leaf of the query (nested keys, list items,
  numbers, booleans, strings) must be in the input's metadata;
- ``GeoLimit`` (kilometres, miles, degrees or radians; kilometres when unset) keeps
  inputs within that great-circle distance of the point; two ``geo_box`` points a box.

A ``Rank``'s image (bytes or URL), text or video/audio, or its ``annotation.input_id``
becomes a :class:`VectorRank`; its concepts, metadata and geo act as one more filter.
Conditions are written against ``i`` (a row of ``inputs``) or, for annotation search,
``a`` (a row of ``annotations``): input facts through ``a.input_id``, concepts through the
annotation's own id.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf import json_format

from ...embedder import MEDIA_KINDS
from ..common import invalid
from .search_index import metadata_leaves

__all__ = ["Compiled", "VectorRank", "compile_query", "register_functions"]

EARTH_KM = 6371.0088
_KM_PER_UNIT = {"": 1.0, "withinkilometers": 1.0, "withinmiles": 1.609344,
                "withindegrees": math.pi / 180 * EARTH_KM,
                "withinradians": EARTH_KM}


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The haversine distance in kilometres between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def register_functions(db: sqlite3.Connection) -> None:
    """Give ``db`` the SQL functions the compiled conditions call (cheap; idempotent)."""
    db.create_function("cc_km", 4, great_circle_km, deterministic=True)


@dataclass(frozen=True)
class VectorRank:
    """Rank by likeness: to media (``kind`` + ``item``) or to a stored input's vector."""

    kind: str = ""
    item: Any = None  # str for text, bytes for media, None with input_id or url
    url: str = ""  # media to fetch first
    input_id: str = ""
    negate: bool = False


@dataclass
class Compiled:
    """What a query became: a SQL condition (with its arguments) and the vector ranks."""

    where: str = "1"
    args: list[Any] = field(default_factory=list)
    ranks: list[VectorRank] = field(default_factory=list)

    @property
    def filtered(self) -> bool:
        """Whether anything narrows the rows (else every row of the app is a candidate)."""
        return self.where != "1"


class _Compiler:
    def __init__(self, db: sqlite3.Connection, pk: int, annotations: bool) -> None:
        self.db, self.pk, self.annotations = db, pk, annotations
        self.input_col = "a.input_id" if annotations else "i.id"
        self._names: dict[str, list[str]] | None = None

    # -- terms: (sql, args), each true for the rows that match ----------------------------

    def _input_in(self, sub: str, args: list[Any]) -> tuple[str, list[Any]]:
        return f"{self.input_col} IN ({sub})", args

    def concept(self, concept: resources_pb2.Concept, where: str) -> tuple[str, list[Any]]:
        if not (concept.id or concept.name):
            raise invalid(f"{where}: a concept needs an id or a name")
        if concept.value not in (0.0, 1.0):
            raise invalid(f"{where}: concept value must be 0 or 1, not {concept.value:g}")
        value = "value > 0" if concept.value else "value = 0"
        if concept.id:
            match, args = "concept_id = ?", [concept.id]
        else:
            ids = self._ids_named(concept.name)
            match = "(name = ? OR concept_id IN (SELECT value FROM json_each(?)))"
            args = [concept.name, json.dumps(ids)]
        column = "annotation_id" if self.annotations else "input_id"
        own = "a.id" if self.annotations else "i.id"
        return (f"{own} IN (SELECT {column} FROM search_concepts WHERE app_pk=? AND {match} "
                f"AND {value})", [self.pk, *args])

    def _ids_named(self, name: str) -> list[str]:
        if self._names is None:  # the app's concepts: few, read once per query
            self._names = {}
            for concept_id, proto in self.db.execute(
                    "SELECT id, proto FROM concepts WHERE app_pk=?", (self.pk,)):
                label = resources_pb2.Concept.FromString(proto).name
                self._names.setdefault(label, []).append(concept_id)
        return self._names.get(name, [])

    def metadata(self, struct: Any) -> tuple[str, list[Any]] | None:
        leaves = sorted(set(metadata_leaves(json_format.MessageToDict(struct))))
        if not leaves:
            return None
        parts, args = [], []
        for path, value in leaves:
            sub, sub_args = self._input_in(
                "SELECT input_id FROM search_metadata WHERE app_pk=? AND path=? AND value=?",
                [self.pk, path, value])
            parts.append(sub)
            args += sub_args
        return "(" + " AND ".join(parts) + ")", args

    def geo(self, geo: resources_pb2.Geo, where: str) -> tuple[str, list[Any]] | None:
        if len(geo.geo_box) >= 2:
            lats = sorted(p.geo_point.latitude for p in geo.geo_box[:2])
            lons = sorted(p.geo_point.longitude for p in geo.geo_box[:2])
            return self._input_in(
                "SELECT input_id FROM search_inputs WHERE app_pk=? AND lat BETWEEN ? AND ? "
                "AND lon BETWEEN ? AND ?", [self.pk, *lats, *lons])
        if not geo.HasField("geo_point"):
            return None
        unit = geo.geo_limit.type.lower()
        if unit not in _KM_PER_UNIT:
            raise invalid(f"{where}: geo_limit type '{geo.geo_limit.type}' is not one of "
                          "withinKilometers, withinMiles, withinDegrees, withinRadians")
        km = geo.geo_limit.value * _KM_PER_UNIT[unit]
        if km <= 0:
            raise invalid(f"{where}: geo_limit value must be more than 0")
        lat, lon = geo.geo_point.latitude, geo.geo_point.longitude
        span = km / 111.0 + 0.01  # degrees of latitude: an indexed box first, then the circle
        return self._input_in(
            "SELECT input_id FROM search_inputs WHERE app_pk=? AND lat BETWEEN ? AND ? "
            "AND cc_km(lat, lon, ?, ?) <= ?",
            [self.pk, lat - span, lat + span, lat, lon, km])

    def data(self, data: resources_pb2.Data, where: str,
             kinds: bool) -> list[tuple[str, list[Any]]]:
        terms = [self.concept(c, f"{where}.concepts[{n}]") for n, c in enumerate(data.concepts)]
        if data.metadata.fields:
            term = self.metadata(data.metadata)
            if term:
                terms.append(term)
        if data.HasField("geo"):
            term = self.geo(data.geo, f"{where}.geo")
            if term:
                terms.append(term)
        present = [k for k in MEDIA_KINDS if data.HasField(k)]
        if kinds and present:
            terms.append(self._input_in(
                "SELECT input_id FROM search_inputs WHERE app_pk=? AND kind IN "
                "(SELECT value FROM json_each(?))", [self.pk, json.dumps(present)]))
        return terms

    def input(self, inp: resources_pb2.Input, where: str) -> list[tuple[str, list[Any]]]:
        terms = self.data(inp.data, f"{where}.data", kinds=True)
        if inp.id:
            terms.append((f"{self.input_col} = ?", [inp.id]))
        if inp.dataset_ids:
            terms.append(self._input_in(
                "SELECT input_id FROM dataset_inputs WHERE app_pk=? AND dataset_id IN "
                "(SELECT value FROM json_each(?))", [self.pk, json.dumps(list(inp.dataset_ids))]))
        if inp.status.code:
            if self.annotations:
                terms.append(self._input_in("SELECT id FROM inputs WHERE app_pk=? AND status=?",
                                            [self.pk, inp.status.code]))
            else:
                terms.append(("i.status = ?", [inp.status.code]))
        return terms

    def annotation(self, ann: resources_pb2.Annotation, where: str,
                   kinds: bool) -> list[tuple[str, list[Any]]]:
        terms = self.data(ann.data, f"{where}.data", kinds=kinds)
        if ann.input_id:
            terms.append((f"{self.input_col} = ?", [ann.input_id]))
        if ann.id and self.annotations:
            terms.append(("a.id = ?", [ann.id]))
        return terms


def _any(terms: list[tuple[str, list[Any]]], negate: bool) -> tuple[str, list[Any]] | None:
    if not terms:
        return None
    sql = " OR ".join(t[0] for t in terms)
    args = [a for t in terms for a in t[1]]
    return (f"NOT ({sql})" if negate else f"({sql})"), args


def _vector_rank(rank: resources_pb2.Rank, where: str) -> VectorRank | None:
    data = rank.annotation.data
    if rank.annotation.input_id:
        return VectorRank(input_id=rank.annotation.input_id, negate=rank.negate)
    for kind in MEDIA_KINDS:
        if not data.HasField(kind):
            continue
        part = getattr(data, kind)
        if kind == "text" and part.raw:
            return VectorRank(kind=kind, item=part.raw, negate=rank.negate)
        if kind != "text" and part.base64:
            return VectorRank(kind=kind, item=bytes(part.base64), negate=rank.negate)
        if part.url:
            return VectorRank(kind=kind, url=part.url, negate=rank.negate)
        raise invalid(f"{where}: the {kind} to rank by is empty: give bytes, a URL or text")
    return None


def compile_query(db: sqlite3.Connection, pk: int, query: resources_pb2.Query,
                  annotations: bool = False) -> Compiled:
    """Compile ``query`` for app ``pk`` (annotation search when ``annotations``)."""
    compiler = _Compiler(db, pk, annotations)
    conditions: list[tuple[str, list[Any]]] = []
    # Query.ands is the older form of a filter: the same fields, the same meaning.
    filters = ([(f"query.filters[{n}]", f) for n, f in enumerate(query.filters)]
               + [(f"query.ands[{n}]", f) for n, f in enumerate(query.ands)])
    for where, flt in filters:
        terms = compiler.annotation(flt.annotation, f"{where}.annotation", kinds=True)
        terms += compiler.input(flt.input, f"{where}.input")
        condition = _any(terms, flt.negate)
        if condition:
            conditions.append(condition)
    ranks = []
    for n, rank in enumerate(query.ranks):
        where = f"query.ranks[{n}]"
        vector = _vector_rank(rank, where)
        if vector:
            ranks.append(vector)
        # What a rank holds besides media (concepts, metadata, geo) narrows like a filter.
        condition = _any(compiler.data(rank.annotation.data, f"{where}.annotation.data",
                                       kinds=False), False)
        if condition:
            conditions.append(condition)
    if not conditions:
        return Compiled(ranks=ranks)
    return Compiled(where=" AND ".join(c[0] for c in conditions),
                    args=[a for c in conditions for a in c[1]], ranks=ranks)
