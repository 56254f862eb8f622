"""The local Clarifai-compatible API server (see DESIGN.md)."""

from .faults import FaultInjector
from .runtime import LocalServer, default_data_dir

__all__ = ["FaultInjector", "LocalServer", "default_data_dir"]
