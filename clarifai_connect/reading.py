"""``read()`` and ``read_app()``: records out of a source or out of an app, for ETL code.

:func:`read` opens a source as ``sync`` would and hands back its reader: iterating it
yields the same :class:`~clarifai_connect.records.Record` and
:class:`~clarifai_connect.records.Problem` objects the engine consumes, lazily.
:func:`read_app` reads an app, a dataset or a dataset version the way ``export`` does and
wraps it in :class:`AppRecords`, which also turns the records into Arrow record batches
(:meth:`AppRecords.to_batches`), a ``pyarrow.Table`` or a pandas DataFrame.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .connector import Reader
from .errors import ConfigError
from .memory import open_source
from .records import Problem, Record, Region

if TYPE_CHECKING:
    import pyarrow

    from .plugins import PluginRegistry

__all__ = ["AppRecords", "read", "read_app", "record_row", "records_schema"]


def read(source: Any, format: str = "auto", *, source_id: str | None = None,
         storage_options: Mapping[str, Any] | None = None,
         allow_paths: Iterable[str] = (), registry: PluginRegistry | None = None,
         **options: Any) -> Reader:
    """The reader of ``source``: iterate it for its records (and a Problem per bad item).

    ``source`` is a path or fsspec URL (``format`` names the connector, ``auto`` detects
    it), or in-memory data as :func:`~clarifai_connect.sync` takes it (records, a pyarrow
    Table, a pandas DataFrame). ``options`` are the connector's (``columns=…``,
    ``labels=…``); ``allow_paths`` are folders outside the source that its media
    references may point into, as in ``sync``. A source that cannot be opened, or a bad
    option, raises :class:`~clarifai_connect.errors.UserError` here, before anything is
    read.
    """
    if source_id is None and not isinstance(source, (str, os.PathLike, Reader)):
        source_id = "data"  # reading keeps no state: the name only labels problems
    return open_source(source, source_id=source_id, format=format,
                       storage_options=storage_options, options=options,
                       registry=registry, allowed_paths=allow_paths).reader


def records_schema(media: bool = False) -> pyarrow.Schema:
    """The Arrow schema of :func:`record_row` rows: the parquet exporter's columns, with
    ``input`` holding the media URI or raw text (``media=False``) or the bytes."""
    import pyarrow as pa

    return pa.schema([
        ("inputid", pa.string()), ("input", pa.binary() if media else pa.string()),
        ("kind", pa.string()), ("concepts", pa.list_(pa.string())), ("metadata", pa.string()),
        ("geopoints", pa.list_(pa.float64())), ("dataset_ids", pa.list_(pa.string())),
        ("regions", pa.string()), ("labels", pa.string()),
    ])


def _region(region: Region, media: bool) -> dict[str, Any]:
    from connectors.parquet_writer import region_json  # one JSON shape for regions

    if region.mask is not None and not media:  # keep the mask where it is, unread
        return {"id": region.id, "kind": "mask", "mask_uri": region.mask.uri,
                "concepts": [{"id": c.id, "name": c.name, "value": c.value}
                             for c in region.concepts]}
    return region_json(region)


def record_row(record: Record, media: bool = False) -> dict[str, Any]:
    """A record as a row of :func:`records_schema`; ``media`` reads the media as bytes."""
    if media:
        value: Any = record.media.read_bytes()
    else:
        value = record.media.text if record.media.text is not None else record.media.uri
    return {
        "inputid": record.id, "input": value, "kind": record.media.kind,
        "concepts": [c.name for c in record.concepts if c.value > 0],
        "metadata": json.dumps(dict(record.metadata), sort_keys=True) if record.metadata
        else None,
        "geopoints": [record.geo.longitude, record.geo.latitude] if record.geo else None,
        "dataset_ids": list(record.dataset_ids),
        "regions": json.dumps([_region(r, media) for r in record.regions])
        if record.regions else None,
        "labels": json.dumps([{"id": c.id, "name": c.name, "value": c.value}
                              for c in record.concepts]) if record.concepts else None,
    }


class AppRecords:
    """The records of an app, a dataset or a dataset version, read lazily (see :func:`read_app`).

    Iterating yields a Record per input (a Problem for an input that cannot become one),
    reading the API page by page. The ``to_*`` helpers run through the same iteration;
    the inputs that could not be read are then kept in :attr:`problems`.
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self.problems: list[Problem] = []

    @property
    def name(self) -> str:
        """What is read: ``USER/APP``, with the dataset and version."""
        return self.source.name

    def __iter__(self) -> Iterator[Record | Problem]:
        return iter(self.source)

    def records(self) -> Iterator[Record]:
        """The records only; each Problem is kept in :attr:`problems` instead."""
        self.problems = []
        for item in self.source:
            if isinstance(item, Problem):
                self.problems.append(item)
            else:
                yield item

    def to_batches(self, batch_size: int = 1024, media: bool = False
                   ) -> pyarrow.RecordBatchReader:
        """A streaming ``pyarrow.RecordBatchReader`` of :func:`records_schema` rows,
        ``batch_size`` inputs a batch; ``media=True`` downloads each medium into ``input``."""
        import pyarrow as pa

        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        schema = records_schema(media)

        def batches() -> Iterator[pa.RecordBatch]:
            rows: list[dict[str, Any]] = []
            for record in self.records():
                if media:
                    from .exports.runner import resolve_media  # hosted media needs the key

                    record = resolve_media(record)
                rows.append(record_row(record, media))
                if len(rows) >= batch_size:
                    yield pa.RecordBatch.from_pylist(rows, schema=schema)
                    rows = []
            if rows:
                yield pa.RecordBatch.from_pylist(rows, schema=schema)

        return pa.RecordBatchReader.from_batches(schema, batches())

    def to_arrow(self, media: bool = False) -> pyarrow.Table:
        """Every record as one ``pyarrow.Table`` (in memory: mind the app's size)."""
        return self.to_batches(media=media).read_all()

    def to_pandas(self, media: bool = False) -> Any:
        """Every record as a pandas DataFrame (needs pandas installed)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise ConfigError("to_pandas() needs pandas: pip install pandas") from None
        return self.to_arrow(media=media).to_pandas()

    def __repr__(self) -> str:
        return f"AppRecords({self.name!r})"


def read_app(app: str, *, dataset: str | None = None, version: str | None = None,
             query: str | None = None, base_url: str | None = None,
             pat: str | None = None) -> AppRecords:
    """The records of an app, one of its datasets, or a version of a dataset (what
    ``export`` reads), for ETL the other way: iterate them, or call ``to_arrow()`` /
    ``to_pandas()``.

    Args:
        app: ``USER/APP`` or an app URL.
        dataset: Only this dataset's current inputs.
        version: This version of ``dataset``: its frozen inputs, from the export archive.
        query: Only the inputs a search finds, best first: a mapping of the reference's
            ``Search.query`` arguments, ``{"filters": [...], "ranks": [...]}`` (each a
            list of dicts: ``concepts``, ``metadata``, ``text_raw``, ``image_url``,
            ``input_types``…), with ``"top_k": N`` to keep the first N hits (default:
            every hit). With ``dataset``, only that dataset's inputs are searched.
        base_url: The API (``https://…``, ``http://host:port``, ``local[:PATH]``).
        pat: A personal access token (default env ``CLARIFAI_PAT``).

    An app, dataset or version that does not exist raises
    :class:`~clarifai_connect.errors.UserError` here, in one sentence.
    """
    from .client.auth import ClientAuth
    from .engine.run import parse_app
    from .exports.sources import SearchSource, check_target
    from .exports.sources import open_source as open_app_source
    from .records import id_problem

    user_id, app_id = parse_app(app)
    for value, what in ((dataset, "dataset"), (version, "version")):
        if value and id_problem(value):
            raise ConfigError(f"{what}: {id_problem(value)}")
    search = _search_terms(query) if query is not None else None
    if search is not None and version:
        raise ConfigError("read_app(query=…) searches the app's current inputs: it cannot "
                          "be combined with version=")
    auth = ClientAuth.resolve(user_id=user_id, app_id=app_id, base_url=base_url, pat=pat)
    if search is None:
        return AppRecords(open_app_source(auth, dataset or "", version or ""))
    check_target(auth, dataset or "")
    return AppRecords(SearchSource(auth, dataset_id=dataset or "", **search))


def _search_terms(query: Any) -> dict[str, Any]:
    """``query`` checked: a mapping with ``ranks``/``filters`` lists and ``top_k``."""
    if not isinstance(query, Mapping):
        raise ConfigError(f"query must be a mapping such as {{'filters': [{{'concepts': "
                          f"[{{'name': 'cat'}}]}}]}}, got {type(query).__name__}")
    unknown = sorted(set(query) - {"ranks", "filters", "top_k"})
    if unknown:
        raise ConfigError(f"query has unknown key(s) {', '.join(map(str, unknown))} "
                          "(known: ranks, filters, top_k)")
    terms: dict[str, Any] = {"top_k": query.get("top_k")}
    for key in ("ranks", "filters"):
        value = query.get(key) or []
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, Mapping)
                                                          for v in value):
            raise ConfigError(f"query['{key}'] must be a list of dicts")
        terms[key] = list(value)
    return terms
