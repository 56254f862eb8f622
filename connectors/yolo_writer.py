"""The yolo exporter: an Ultralytics dataset, ``images/<split>/`` + ``labels/<split>/*.txt``
+ ``data.yaml``, that ``yolo train data=data.yaml`` (and the yolo connector) reads.

Boxes become ``cls cx cy w h`` lines, polygons ``cls x1 y1 x2 y2 …`` (normalized, six
decimals). A label file holds boxes or polygons, not both (Ultralytics would read a box
line of a polygon file as two points): when an image has both, its boxes are written as
four-point polygons, with a warning. An image with no region gets an empty label file (a
negative). Masks, points, input-level labels and metadata are named in warnings.

The split of a record comes from its ``yolo`` metadata (a record read by the yolo
connector keeps its split, file name and class indices, so YOLO → Clarifai → YOLO gives
the same files back), else from its ``coco`` / ``voc`` metadata, else ``default_split``.
``data.yaml`` lists ``train`` / ``val`` / ``test`` (``valid`` and other names map onto
them; with no ``val`` split, ``val`` repeats ``train`` since Ultralytics needs one) and
``names`` as ``{index: name}``, indices 0..n-1 without gaps; on a local disk also ``path``,
the folder's absolute path (Ultralytics resolves a relative one elsewhere).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from clarifai_connect.exports.files import FileWriter
from clarifai_connect.exports.names import safe_part
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.records import Box, Record, Region

__all__ = ["YoloWriter"]

_SPLIT_KEYS = {"train": "train", "training": "train", "trainval": "train", "val": "val",
               "valid": "val", "validation": "val", "test": "test", "testing": "test"}


def _num(value: float) -> str:
    text = f"{min(max(float(value), 0.0), 1.0):.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _corners(box: Box) -> list[float]:
    return [box.left_col, box.top_row, box.right_col, box.top_row,
            box.right_col, box.bottom_row, box.left_col, box.bottom_row]


class YoloWriter(FileWriter):
    """Writes an Ultralytics YOLO dataset folder: images, label files, data.yaml.

    Its options besides :class:`~clarifai_connect.exports.files.FileWriter`'s (``workers``,
    ``spill_dir``):

    Parameters:
        default_split: the split of records that carry none (default ``train``).
    """

    name = "yolo"
    description = ("YOLO / Ultralytics: images/<split>/, labels/<split>/*.txt (boxes, "
                   "polygons) and data.yaml")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 workers: int = 8, default_split: str = "train", spill_dir: str = "") -> None:
        super().__init__(uri, storage_options=storage_options, workers=workers,
                         spill_dir=spill_dir)
        self.default_split = safe_part(default_split or "train")
        self.classes: dict[str, int] = {}  # concept name → class index
        self.splits: dict[str, None] = {}

    def _class(self, name: str, wanted: Any) -> int:
        index = self.classes.get(name)
        if index is None:
            taken = set(self.classes.values())
            if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted >= 0 \
                    and wanted not in taken:
                index = wanted  # the source's index, so its label files come back the same
            else:
                index = next(i for i in range(len(taken) + 1) if i not in taken)
            self.classes[name] = index
        return index

    def write_record(self, record: Record) -> None:
        """Write the record's image and label file."""
        if record.media.kind != "image":
            self.skip(record, f"YOLO holds images only; this is a {record.media.kind} input")
            return
        meta = _section(record, "yolo")
        split = str(meta.get("split") or _section(record, "coco").get("split")
                    or _section(record, "voc").get("split") or self.default_split)
        split = safe_part(split)
        self.splits[split] = None
        name = posixpath.basename(str(meta.get("path") or "")) or \
            posixpath.basename(str(_section(record, "coco").get("file_name") or "")) or record.id
        stem, ext = posixpath.splitext(safe_part(name))
        if not ext or len(ext) > 6:
            stem, ext = safe_part(name), self.media_bytes_ext(record)[1]
        label = self.claims.claim(f"labels/{split}/{stem}.txt", record.id)
        stem = posixpath.basename(label)[:-len(".txt")]
        data, _ = self.media_bytes_ext(record)
        self.dest.put(f"images/{split}/{stem}{ext}",
                      data if data is not None else record.media.read_bytes, owner=record.id)
        self.dest.put(label, self._lines(record, meta).encode("utf-8"), owner=record.id)

    def _lines(self, record: Record, meta: Mapping[str, Any]) -> str:
        wanted = meta.get("classes") if isinstance(meta.get("classes"), Mapping) else {}
        shapes: list[Region] = []
        lost: set[str] = set()
        for region in record.regions:
            if region.box is None and not region.polygon:
                lost.add(region.kind)
            elif not region.concepts:
                self.warn(record, "regions without a concept not written (a YOLO line "
                                  "needs a class)")
            else:
                shapes.append(region)
        for kind in sorted(lost):
            self.warn(record, f"{kind} regions not written (YOLO holds boxes and polygons)")
        if record.concepts:
            self.warn(record, "input-level labels not written (YOLO holds regions only)")
        if any(k != "yolo" for k in record.metadata):
            self.warn(record, "metadata other than 'yolo' not written (YOLO has no place "
                              "for it)")
        polygons = any(r.polygon for r in shapes)
        if polygons and any(r.box is not None for r in shapes):
            self.warn(record, "boxes written as 4-point polygons (a YOLO label file holds "
                              "boxes or polygons, not both)")
        lines = []
        for region in shapes:
            if len(region.concepts) > 1:
                self.warn(record, "concepts after a region's first not written (a YOLO "
                                  "line has one class)")
            concept = region.concepts[0]
            index = self._class(concept.name, wanted.get(concept.name))
            if region.box is not None and not polygons:
                b = region.box
                values = [(b.left_col + b.right_col) / 2, (b.top_row + b.bottom_row) / 2,
                          b.right_col - b.left_col, b.bottom_row - b.top_row]
            elif region.box is not None:
                values = _corners(region.box)
            else:
                values = [v for p in region.polygon for v in (p.col, p.row)]
            lines.append(" ".join([str(index), *map(_num, values)]))
        return "".join(line + "\n" for line in lines)

    def finish(self) -> None:
        """Write ``data.yaml``."""
        # Ultralytics resolves a relative root against its own datasets folder: an
        # absolute one trains from anywhere (the yolo connector reads it either way).
        root = self.dest.fs._strip_protocol(self.dest.root) if self.dest.local else None
        self.dest.write_now("data.yaml", _data_yaml(self.splits, self.default_split,
                                                    self.classes, root))

    @classmethod
    def merge_parts(cls, uris: list[str], to: str,
                    storage_options: Mapping[str, Any] | None = None) -> list[str]:
        """Merge the parts of a distributed export into ``to``: images and label files
        moved, one ``data.yaml``; classes are one list by name (the first part's indices
        kept), a later part's label files rewritten where its indices differ."""
        import yaml

        from clarifai_connect.exports.parts import PartFiles

        files = PartFiles(uris, to, storage_options)
        classes: dict[str, int] = {}
        maps: list[dict[int, int]] = []
        splits: dict[str, None] = {}
        default_split = "train"
        for index in range(len(uris)):
            path = files.path(index, "data.yaml")
            doc = yaml.safe_load(files.read(index, "data.yaml")) \
                if files.fs.exists(path) else {}
            mapping: dict[int, int] = {}
            for old, name in (doc.get("names") or {}).items():
                if name == f"unused-{old}":
                    continue
                if name not in classes:
                    taken = set(classes.values())
                    classes[name] = old if old not in taken else \
                        next(i for i in range(len(taken) + 1) if i not in taken)
                mapping[int(old)] = classes[name]
            maps.append(mapping)
            train = doc.get("train")
            if isinstance(train, str) and train.startswith("images/"):
                default_split = train[len("images/"):]
            for rel in files.files(index):
                if rel.startswith("images/") and rel.count("/") >= 2:
                    splits[rel.split("/")[1]] = None

        def relabel(index: int, rel: str) -> bytes | None:
            mapping = maps[index]
            if not rel.startswith("labels/") or all(k == v for k, v in mapping.items()):
                return None
            lines = files.read(index, rel).decode("utf-8").splitlines()
            out = []
            for line in lines:
                head, _, rest = line.partition(" ")
                out.append(f"{mapping.get(int(head), int(head))} {rest}" if head.isdigit()
                           else line)
            return "".join(line + "\n" for line in out).encode("utf-8")

        problems = files.move_all(keep=lambda rel: rel == "data.yaml", rewrite=relabel)
        root = files.root if "file" in files.fs.protocol else None
        with files.open("data.yaml") as handle:
            handle.write(_data_yaml(splits, default_split, classes, root))
        return problems


def _data_yaml(splits: Mapping[str, None], default_split: str, classes: Mapping[str, int],
               root: str | None) -> bytes:
    """``data.yaml`` of a dataset with these split folders and classes (``root``: the
    absolute ``path`` to write, on a local disk)."""
    import yaml

    keys: dict[str, list[str]] = {}
    for split in splits:
        keys.setdefault(_SPLIT_KEYS.get(split.lower(), "train"), []).append(f"images/{split}")
    keys.setdefault("train", keys.get("val") or [f"images/{default_split}"])
    keys.setdefault("val", keys["train"])  # Ultralytics needs a val split
    doc: dict[str, Any] = {}
    if root is not None:
        doc["path"] = root
    for key in ("train", "val", "test"):
        if key in keys:
            doc[key] = keys[key][0] if len(keys[key]) == 1 else keys[key]
    by_index = {i: n for n, i in classes.items()}
    # Indices must run 0..n-1: a gap (a source class no exported image uses) gets a name.
    doc["names"] = {i: by_index.get(i, f"unused-{i}")
                    for i in range(max(by_index, default=-1) + 1)}
    text = ("# Written by clarifai-connect; train with: yolo train data=data.yaml\n"
            + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return text.encode("utf-8")


def _section(record: Record, name: str) -> Mapping[str, Any]:
    value = record.metadata.get(name)
    return value if isinstance(value, Mapping) else {}


@hookimpl
def register_exporters(register: Any) -> None:
    """Register the yolo exporter."""
    register(YoloWriter)
