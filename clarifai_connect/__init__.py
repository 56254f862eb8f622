"""clarifai-connect: move annotated data into and out of Clarifai.

The three ways in: :func:`sync` (a source URI or data in memory → an app), :func:`read`
(a source → records), :func:`read_app` (an app → records, Arrow, pandas) and
:func:`export` for ETL code; :class:`Reader`, :class:`Writer`, the record types and
:data:`hookimpl` for connector authors (with :mod:`clarifai_connect.testing`); and the
``clarifai-connect`` command line. The client classes live in
:mod:`clarifai_connect.client`, the local API server in :mod:`clarifai_connect.server`.
"""

__version__ = "0.1.0"

# The record model and the plugin marker: what connector and exporter authors import.
from .connector import Reader, Writer  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .records import (  # noqa: E402
    Box,
    Concept,
    GeoPoint,
    Media,
    Notice,
    Point,
    Problem,
    Record,
    RecordError,
    Region,
    stable_id,
)

__all__ = [
    "AppRecords", "Box", "Concept", "GeoPoint", "Media", "Notice", "Point", "Problem",
    "Reader", "Record", "RecordError", "Region", "Writer", "__version__", "export", "hookimpl",
    "read", "read_app", "stable_id", "sync",
]

# Pulled in on first use (they import the client, grpc), so that connector authors
# importing the record types stay light.
_LAZY = {"sync": "engine.run", "export": "exports.runner", "read": "reading",
         "read_app": "reading", "AppRecords": "reading"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'clarifai_connect' has no attribute {name!r}")
