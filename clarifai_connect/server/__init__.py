"""The local Clarifai-compatible API server (see DESIGN.md)."""

from typing import Any

__all__ = ["FaultInjector", "LocalServer", "default_data_dir"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the built-in embedder plugin lives in server.ml, and loading
    # plugins must not pull in grpc and the whole server.
    if name == "FaultInjector":
        from .faults import FaultInjector

        return FaultInjector
    if name in ("LocalServer", "default_data_dir"):
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
