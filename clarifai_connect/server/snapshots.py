"""Dataset-version snapshots and their metrics.

A version freezes its dataset at the moment it is created: each usable input is copied,
with its annotations merged into ``input.data`` (input-level concepts into
``data.concepts``, regions into ``data.regions``) — the shape the export archive carries
and the official SDK's export reader expects. Later edits of inputs or annotations never
reach the copy. Metrics are counted in the same pass and stored beside it.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import struct_pb2

from .datasets import dataset_ids_of
from .media_blobs import MEDIA_KINDS

SNAPSHOT_BATCH = 256  # inputs read, merged and written per step: bounds memory
ROOT = "/"

# The DatasetVersionMetrics counters every group carries (set even when zero, since the
# SDK reads some of them by key from the JSON form).
COUNTERS = ("inputs_count", "unlabeled_inputs_count", "inputs_with_metadata_count",
            "inputs_with_geo_count", "regions_count", "region_inputs_count",
            "bounding_boxes_count", "polygons_count", "points_count", "masks_count",
            "positive_input_tags_count", "positive_region_tags_count")
_SHAPES = (("bounding_box", "bounding_boxes_count"), ("polygon", "polygons_count"),
           ("point", "points_count"), ("mask", "masks_count"))
_HISTOGRAMS = (
    (resources_pb2.CONCEPTS_COUNT, "concepts"),
    (resources_pb2.BOUNDING_BOXES_COUNT, "bounding_boxes_count"),
    (resources_pb2.POLYGONS_COUNT, "polygons_count"),
    (resources_pb2.POINTS_COUNT, "points_count"),
    (resources_pb2.MASKS_COUNT, "masks_count"),
)


def merge_annotations(stored: resources_pb2.Input, annotations: list[resources_pb2.Annotation],
                      dataset_id: str) -> resources_pb2.Input:
    """The export form of an input: a copy whose data holds every annotation's concepts and
    regions (deduplicated by concept id and region id) and that names ``dataset_id``."""
    merged = resources_pb2.Input()
    merged.CopyFrom(stored)
    data = merged.data
    concept_ids = {c.id for c in data.concepts}
    region_ids = {r.id for r in data.regions if r.id}
    for annotation in annotations:
        for concept in annotation.data.concepts:
            if concept.id not in concept_ids:
                concept_ids.add(concept.id)
                data.concepts.add().CopyFrom(concept)
        for region in annotation.data.regions:
            if region.id and region.id in region_ids:
                continue
            copy = data.regions.add()
            copy.CopyFrom(region)
            if not copy.id:  # a region needs an id to be told apart: its annotation's will do
                copy.id = annotation.id
            region_ids.add(copy.id)
        for frame in annotation.data.frames:
            data.frames.add().CopyFrom(frame)
    if dataset_id not in merged.dataset_ids:
        merged.dataset_ids.append(dataset_id)
    return merged


def _with_memberships(merged: resources_pb2.Input, dataset_ids: list[str]) -> None:
    # The stored input keeps the dataset_ids it was posted with; membership may have
    # changed since (dataset_inputs is the truth).
    merged.dataset_ids[:] = dataset_ids


def input_kind(item: resources_pb2.Input) -> str:
    """image, video, audio or text: the media an input holds ("unknown" when none)."""
    for kind in MEDIA_KINDS:
        if item.data.HasField(kind):
            return kind
    return "unknown"


def has_labels(item: resources_pb2.Input) -> bool:
    """Whether a merged input carries any concept or region."""
    return bool(item.data.concepts or item.data.regions or item.data.frames)


@dataclass
class _Counts:
    values: Counter = field(default_factory=Counter)

    def to_proto(self) -> resources_pb2.DatasetVersionMetrics:
        metrics = resources_pb2.DatasetVersionMetrics()
        for name in COUNTERS:
            getattr(metrics, name).value = self.values[name]
        return metrics


class MetricsTally:
    """Counts inputs, concepts and region shapes of merged inputs, one input at a time."""

    def __init__(self) -> None:
        self.total = _Counts()
        self.by_kind: dict[str, _Counts] = defaultdict(_Counts)
        self.by_concept: dict[str, _Counts] = defaultdict(_Counts)
        self.histograms: dict[int, Counter] = {kind: Counter() for kind, _ in _HISTOGRAMS}

    def add(self, item: resources_pb2.Input) -> None:
        """Count one merged input."""
        own = Counter()
        own["inputs_count"] = 1
        data = item.data
        if not has_labels(item):
            own["unlabeled_inputs_count"] = 1
        if data.HasField("metadata") and data.metadata.fields:
            own["inputs_with_metadata_count"] = 1
        if data.HasField("geo"):
            own["inputs_with_geo_count"] = 1
        per_concept: dict[str, Counter] = defaultdict(Counter)
        positive_tags = {c.id for c in data.concepts if c.value > 0}
        own["positive_input_tags_count"] = len(positive_tags)
        for concept_id in positive_tags:
            per_concept[concept_id]["positive_input_tags_count"] += 1
        for region in data.regions:
            shape = self._shape(region)
            own["regions_count"] += 1
            if shape:
                own[shape] += 1
            for concept in region.data.concepts:
                if concept.value <= 0:
                    continue
                own["positive_region_tags_count"] += 1
                counts = per_concept[concept.id]
                counts["positive_region_tags_count"] += 1
                counts["regions_count"] += 1
                if shape:
                    counts[shape] += 1
        if data.regions:
            own["region_inputs_count"] = 1
        self.total.values.update(own)
        self.by_kind[input_kind(item)].values.update(own)
        for concept_id, counts in per_concept.items():
            counts["inputs_count"] = 1
            if counts["regions_count"]:
                counts["region_inputs_count"] = 1
            self.by_concept[concept_id].values.update(counts)
        for kind, name in _HISTOGRAMS:
            value = len(positive_tags) if name == "concepts" else own[name]
            self.histograms[kind][value] += 1

    @staticmethod
    def _shape(region: resources_pb2.Region) -> str | None:
        for part, counter in _SHAPES:
            if region.region_info.HasField(part):
                return counter
        return None

    def overall(self) -> resources_pb2.DatasetVersionMetrics:
        """The metrics of the whole version."""
        return self.total.to_proto()

    def groups(self) -> list[resources_pb2.DatasetVersionMetricsGroup]:
        """Metrics groups in a stable order: input types (``total`` first), concepts, then
        per-input count histograms (value = count, metrics.inputs_count = inputs)."""
        out = [_group(resources_pb2.INPUT_TYPE, struct_pb2.Value(string_value="total"),
                      self.total.to_proto())]
        for kind in sorted(self.by_kind):
            out.append(_group(resources_pb2.INPUT_TYPE, struct_pb2.Value(string_value=kind),
                              self.by_kind[kind].to_proto()))
        for concept_id in sorted(self.by_concept):
            out.append(_group(resources_pb2.CONCEPT_ID,
                              struct_pb2.Value(string_value=concept_id),
                              self.by_concept[concept_id].to_proto()))
        for kind, _ in _HISTOGRAMS:
            for value in sorted(self.histograms[kind]):
                metrics = resources_pb2.DatasetVersionMetrics()
                metrics.inputs_count.value = self.histograms[kind][value]
                out.append(_group(kind, struct_pb2.Value(number_value=value), metrics))
        return out


def _group(kind: int, value: struct_pb2.Value, metrics) -> resources_pb2.DatasetVersionMetricsGroup:
    return resources_pb2.DatasetVersionMetricsGroup(parent_path=ROOT, type=kind, value=value,
                                                    metrics=metrics)


@dataclass
class Snapshot:
    """What a snapshot took: inputs copied, inputs left out (not downloaded, or unlabeled
    when the version ignores empty inputs), and the metrics."""

    copied: int = 0
    not_ready: int = 0
    unlabeled_skipped: int = 0
    tally: MetricsTally = field(default_factory=MetricsTally)


def take_snapshot(db: sqlite3.Connection, pk: int, dataset_id: str, version_id: str,
                  ignore_empty_inputs: bool = False) -> Snapshot:
    """Copy the dataset's inputs and annotations into the version's tables (inside the
    caller's write transaction, so the copy is consistent), batch by batch."""
    snap = Snapshot()
    last_seq = -1
    while True:
        rows = db.execute(
            "SELECT d.seq, i.id, i.status, i.proto FROM dataset_inputs d JOIN inputs i "
            "ON i.app_pk=d.app_pk AND i.id=d.input_id "
            "WHERE d.app_pk=? AND d.dataset_id=? AND d.seq>? ORDER BY d.seq LIMIT ?",
            (pk, dataset_id, last_seq, SNAPSHOT_BATCH)).fetchall()
        if not rows:
            return snap
        last_seq = rows[-1][0]
        ready = [(r[1], r[3]) for r in rows if r[2] == status_code_pb2.INPUT_DOWNLOAD_SUCCESS]
        snap.not_ready += len(rows) - len(ready)
        ready_ids = [input_id for input_id, _ in ready]
        annotations = _annotations_of(db, pk, ready_ids)
        memberships = dataset_ids_of(db, pk, ready_ids)
        copies = []
        for input_id, proto in ready:
            merged = merge_annotations(resources_pb2.Input.FromString(proto),
                                       annotations.get(input_id, []), dataset_id)
            _with_memberships(merged, memberships[input_id])
            if ignore_empty_inputs and not has_labels(merged):
                snap.unlabeled_skipped += 1
                continue
            snap.tally.add(merged)
            copies.append((pk, dataset_id, version_id, snap.copied, input_id,
                           merged.SerializeToString()))
            snap.copied += 1
        db.executemany("INSERT INTO dataset_version_inputs(app_pk, dataset_id, version_id, pos, "
                       "input_id, proto) VALUES (?,?,?,?,?,?)", copies)


def _annotations_of(db: sqlite3.Connection, pk: int,
                    input_ids: list[str]) -> dict[str, list[resources_pb2.Annotation]]:
    found: dict[str, list[resources_pb2.Annotation]] = defaultdict(list)
    if not input_ids:
        return found
    marks = ",".join("?" * len(input_ids))
    for input_id, proto in db.execute(
            f"SELECT input_id, proto FROM annotations WHERE app_pk=? AND input_id IN ({marks}) "
            "ORDER BY seq", (pk, *input_ids)):
        found[input_id].append(resources_pb2.Annotation.FromString(proto))
    return found


def store_metrics(db: sqlite3.Connection, pk: int, dataset_id: str, version_id: str,
                  tally: MetricsTally) -> None:
    """Keep a version's metrics groups for ListDatasetVersionMetricsGroups."""
    db.executemany(
        "INSERT INTO dataset_version_metrics(app_pk, dataset_id, version_id, pos, proto) "
        "VALUES (?,?,?,?,?)",
        [(pk, dataset_id, version_id, pos, group.SerializeToString())
         for pos, group in enumerate(tally.groups())])
