"""clarifai-connect: move annotated data into and out of Clarifai.

The public API grows here as the pieces land: the client classes live in
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
    Point,
    Problem,
    Record,
    RecordError,
    Region,
    stable_id,
)

__all__ = [
    "Box", "Concept", "GeoPoint", "Media", "Point", "Problem", "Reader", "Record",
    "RecordError", "Region", "Writer", "__version__", "hookimpl", "stable_id", "sync",
    "export",
]


def __getattr__(name: str):
    # ``sync`` pulls in the client (grpc): imported on first use, so that connector
    # authors importing the record types stay light.
    if name == "sync":
        from .engine.run import sync

        return sync
    if name == "export":
        from .exports.runner import export

        return export
    raise AttributeError(f"module 'clarifai_connect' has no attribute {name!r}")
