"""The client API: User, App, Dataset, Inputs, Model, Search, Lister and Chunker, as the seed's reference
names them (``shared/spec/sdk-api-reference.md``), on the official protos.

Small at the top, layered underneath: ``auth`` (credentials, base URL, channels), ``base``
(one ``_call`` with retries and typed errors), ``lister`` (lazy paging), then one module per
resource. Protobufs stay inside this package and ``server``.
"""

from ..errors import ApiClientError, ApiError, UserError
from .app import App
from .auth import ClientAuth
from .base import BaseClient, RetryPolicy
from .dataloader import (
    ClarifaiDataLoader,
    MultiModalFeatures,
    TextFeatures,
    VisualClassificationFeatures,
    VisualDetectionFeatures,
    VisualSegmentationFeatures,
)
from .dataset import Dataset
from .export_archive import ExportArchiveReader, ExportSummary
from .input import Inputs
from .lister import Lister
from .model import Model
from .module import Module
from .runner import Runner
from .search import Search
from .upload import UploadSummary
from .user import User
from .utils import Chunker, ClarifaiUrl, parse_clarifai_url
from .workflow import Workflow

__all__ = [
    "ApiClientError", "ApiError", "App", "BaseClient", "Chunker", "ClarifaiDataLoader",
    "ClarifaiUrl", "ClientAuth", "Dataset", "ExportArchiveReader", "ExportSummary", "Inputs",
    "Lister", "Model", "Module", "MultiModalFeatures", "RetryPolicy", "Runner", "Search",
    "TextFeatures", "UploadSummary", "User", "Workflow",
    "UserError", "VisualClassificationFeatures", "VisualDetectionFeatures",
    "VisualSegmentationFeatures", "parse_clarifai_url",
]
