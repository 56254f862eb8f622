"""Upload status of a dataset: counts from a dataset version's metrics, shown with rich."""

from __future__ import annotations

import sys
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2

#: (inputs by type, with "total"; annotations by kind: concepts, bboxes, polygons)
UploadStats = tuple[dict[str, int], dict[str, int]]
_ANNOTATION_FIELD = {"visual_detection": "bboxes", "visual_segmentation": "polygons"}


def _count(value: Any) -> int:
    return int(getattr(value, "value", value))  # the counts are UInt64Value wrappers


def parse_metrics(response: Any) -> UploadStats:
    """Counts from a ListDatasetVersionMetricsGroups response."""
    inputs: dict[str, int] = {}
    annotations = {"concepts": 0, "bboxes": 0, "polygons": 0}
    for group in response.dataset_version_metrics_groups:
        value = group.value.string_value if group.value.HasField("string_value") else ""
        metrics = group.metrics
        if group.type == resources_pb2.INPUT_TYPE and value:
            inputs[value] = _count(metrics.inputs_count)
        elif group.type == resources_pb2.CONCEPT_ID:
            annotations["concepts"] += _count(metrics.positive_input_tags_count)
            annotations["bboxes"] += _count(metrics.bounding_boxes_count)
            annotations["polygons"] += _count(metrics.polygons_count)
    inputs.setdefault("total", sum(v for k, v in inputs.items() if k != "total"))
    return inputs, annotations


def dataloader_stats(dataloader: Any) -> tuple[int, dict[str, int]]:
    """(number of items, annotations by kind) that a ClarifaiDataLoader holds."""
    counts = {"concepts": 0, "bboxes": 0, "polygons": 0}
    kind = _ANNOTATION_FIELD.get(dataloader.task, "concepts")
    attribute = {"concepts": "labels", "bboxes": "bboxes", "polygons": "polygons"}[kind]
    for index in range(len(dataloader)):
        counts[kind] += len(getattr(dataloader[index], attribute) or ())
    return len(dataloader), counts


def show_upload_status(dataset_id: str, stats: UploadStats,
                       local: tuple[int, dict[str, int]] | None = None) -> None:
    """Print a table of the stored counts (and the loader's, when given) to stderr."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Upload status of dataset '{dataset_id}'")
    table.add_column("")
    if local is not None:
        table.add_column("in the dataloader", justify="right")
    table.add_column("uploaded", justify="right")
    rows = [("inputs", local[0] if local else None, stats[0].get("total", 0))]
    for kind in ("concepts", "bboxes", "polygons"):
        rows.append((kind, local[1][kind] if local else None, stats[1][kind]))
    for name, expected, uploaded in rows:
        cells = [name] + ([str(expected)] if local is not None else []) + [str(uploaded)]
        table.add_row(*cells)
    Console(file=sys.stderr).print(table)
