"""ClarifaiDataLoader: the small dataset interface ``Dataset.upload_dataset`` reads from.

A loader says which ``task`` it serves, how many items it has (``__len__``) and returns
one feature object per index (``__getitem__``), as in the official SDK. Feature objects
are turned into an input and its annotations by :func:`features_to_item`.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2

from ..errors import UserError
from .input_protos import InputProtoBuilders
from .upload import UploadItem

DATASET_UPLOAD_TASKS = ("visual_classification", "text_classification", "visual_detection",
                        "visual_segmentation", "visual_captioning", "multimodal_dataset")


@dataclass
class TextFeatures:
    """A text with its labels."""

    text: str
    labels: list[str | int] | None = None
    id: int | str | None = None
    metadata: dict | None = None
    label_ids: list[str] | None = None


@dataclass
class VisualClassificationFeatures:
    """An image (path or bytes) with its labels."""

    image_path: str | None
    labels: list[str | int] | None
    geo_info: list[float] | None = None
    id: int | str | None = None
    metadata: dict | None = None
    image_bytes: bytes | None = None
    label_ids: list[str] | None = None


@dataclass
class VisualDetectionFeatures:
    """An image with one label per bounding box ``[xmin, ymin, xmax, ymax]`` (0..1)."""

    image_path: str | None
    labels: list[str | int]
    bboxes: list[list[float]]
    geo_info: list[float] | None = None
    id: int | str | None = None
    metadata: dict | None = None
    image_bytes: bytes | None = None
    label_ids: list[str] | None = None


@dataclass
class VisualSegmentationFeatures:
    """An image with one label per polygon ``[[x, y], …]`` (0..1)."""

    image_path: str | None
    labels: list[str | int]
    polygons: list[list[list[float]]]
    geo_info: list[float] | None = None
    id: int | str | None = None
    metadata: dict | None = None
    image_bytes: bytes | None = None
    label_ids: list[str] | None = None


@dataclass
class MultiModalFeatures:
    """A text and an image (bytes) with labels."""

    text: str
    image_bytes: bytes
    labels: list[str | int] | None = None
    id: int | str | None = None
    metadata: dict | None = None


class ClarifaiDataLoader(abc.ABC):
    """Base class of data loaders: subclasses give ``task``, ``__len__`` and ``__getitem__``."""

    @property
    @abc.abstractmethod
    def task(self) -> str:
        """One of DATASET_UPLOAD_TASKS."""

    def load_data(self) -> None:  # noqa: B027 (optional hook: most loaders load lazily)
        """Optional: load or index the data before use."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of items."""

    @abc.abstractmethod
    def __getitem__(self, index: int) -> Any:
        """The feature object of item ``index`` (a *Features dataclass of the task)."""


def _labels(features: Any) -> list[str]:
    labels = features.labels
    if labels is None:
        return []
    return [str(label) for label in (labels if isinstance(labels, (list, tuple)) else [labels])]


def features_to_item(task: str, features: Any, dataset_id: str, index: int) -> UploadItem:
    """The input (and annotations) for one loader item; UserError when it is malformed.

    The input id is ``{dataset_id}-{features.id}``, or ``{dataset_id}-{index}`` without an
    id: the same loader gives the same ids on every run, so a re-run finds them present.
    """
    input_id = f"{dataset_id}-{features.id if features.id is not None else index}"
    labels = _labels(features)
    metadata = dict(features.metadata) if features.metadata is not None else None
    image_path = getattr(features, "image_path", None)
    if metadata is None and image_path:
        metadata = {"filename": os.path.basename(image_path)}
    label_ids = getattr(features, "label_ids", None)
    geo = getattr(features, "geo_info", None)
    if task == "text_classification":
        return UploadItem(InputProtoBuilders.get_text_input(
            input_id, features.text, dataset_id, labels=labels or None, label_ids=label_ids,
            metadata=metadata))
    if task == "multimodal_dataset":
        return UploadItem(InputProtoBuilders.get_multimodal_input(
            input_id, raw_text=features.text, image_bytes=features.image_bytes,
            dataset_id=dataset_id, labels=labels or None, metadata=metadata))
    media: dict[str, Any] = {"dataset_id": dataset_id, "geo_info": geo, "metadata": metadata}
    if task in ("visual_classification", "visual_captioning"):
        media.update(labels=labels or None, label_ids=label_ids)
    if features.image_bytes is not None:
        proto = InputProtoBuilders.get_input_from_bytes(input_id,
                                                        image_bytes=features.image_bytes, **media)
    elif image_path:
        proto = InputProtoBuilders.get_input_from_file(input_id, image_file=image_path, **media)
    else:
        raise UserError("the item has neither image_path nor image_bytes")
    annotations: list[resources_pb2.Annotation] = []
    if task in ("visual_detection", "visual_segmentation"):
        shapes = features.bboxes if task == "visual_detection" else features.polygons
        if len(shapes) != len(labels):
            raise UserError(f"the item has {len(labels)} labels for {len(shapes)} "
                            f"{'boxes' if task == 'visual_detection' else 'polygons'}")
        if label_ids is not None and len(label_ids) != len(labels):
            raise UserError("labels and label_ids must have the same length")
        build = InputProtoBuilders.get_bbox_proto if task == "visual_detection" else \
            InputProtoBuilders.get_mask_proto
        for i, shape in enumerate(shapes):
            annotations.append(build(input_id, labels[i], shape,
                                     label_id=label_ids[i] if label_ids else None))
    return UploadItem(proto, annotations)
