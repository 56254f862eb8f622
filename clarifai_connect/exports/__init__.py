"""Exports: datasets, dataset versions and apps back out as COCO, VOC, CSV, Parquet, folders.

:func:`export` is the entry point (``clarifai-connect export`` runs it); the sources read
the API into records, :class:`ExportRunner` feeds them to a writer with media downloaded in
parallel, and :class:`ExportReport` accounts for every input. :class:`FileWriter` is the
base of the built-in writers (in ``connectors/*_writer.py``).
"""

from .files import Destination, ExportError, FileWriter, Outcome
from .names import NameClaims, safe_part, safe_relpath
from .report import ExportReport

__all__ = [
    "Destination", "ExportError", "ExportReport", "ExportRunner", "FileWriter", "ListingSource",
    "NameClaims", "Outcome", "SearchSource", "VersionArchiveSource", "check_target", "export",
    "open_source", "resolve_media", "safe_part", "safe_relpath",
]

# The runner and the sources pull in the client (grpc): imported on first use, so that
# loading the writer plugins stays light.
_LAZY = {"ExportRunner": "runner", "export": "runner", "resolve_media": "runner",
         "ListingSource": "sources", "SearchSource": "sources",
         "VersionArchiveSource": "sources",
         "check_target": "sources", "open_source": "sources"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
