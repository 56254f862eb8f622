"""The upload engine: records in, Clarifai inputs and annotations out, exactly once.

:func:`sync` is the entry point; :class:`UploadEngine` the pipeline, :class:`SyncState`
its resumable state, :class:`RunReport` what it did. See DESIGN.md (Contracts: Engine).
"""

from .pipeline import SyncOptions, UploadEngine
from .report import RunReport
from .run import sync
from .state import SyncState

__all__ = ["RunReport", "SyncOptions", "SyncState", "UploadEngine", "sync"]
