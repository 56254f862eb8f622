"""The coco exporter: ``annotations/<task>_<split>.json`` and ``images/<split>/<file_name>``.

Regions become COCO annotations in pixels (each image's size is read from its header):
boxes as ``bbox``, polygons as ``segmentation`` polygons, masks as compressed RLE, points
as ``keypoints``; input-level concepts become image-level annotations (a category, the
whole image as geometry, and ``"image_label": true`` so that they are read back as labels),
captions kept in the record's ``coco`` metadata go to ``captions_<split>.json``.
When a record came from the coco connector its metadata says how regions were grouped into
annotations (several polygons of one object, a person's box and keypoints), which split and
file name it had, and its category ids: these are kept, so COCO → Clarifai → COCO gives the
same dataset back (ids included: image and annotation ids are kept where they are free).
Records from elsewhere go to split ``default_split`` under the name ``<input id><ext>``.

Streaming: the ``images`` and ``annotations`` arrays are spilled to a temporary file as
records arrive and the JSON files are assembled at the end; only the categories stay in
memory. What COCO cannot hold (non-image inputs, concepts with value 0, unlabeled regions,
a region's second concept, metadata of other formats) is named in warnings.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from clarifai_connect.exports.files import FileWriter, image_size
from clarifai_connect.exports.names import safe_part
from clarifai_connect.exports.spill import LineSpill, compact_json
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.records import Concept, Record, RecordError, Region

from .masks import MaskError, encode_rle_string, png_to_rle

__all__ = ["CocoWriter"]

_GEOMETRY_TASKS = ("instances", "person_keypoints")


def _num(value: float) -> float | int:
    """A pixel value rounded to 6 decimals, integral ones as ints (as COCO files write them)."""
    rounded = round(float(value), 6)
    return int(rounded) if rounded.is_integer() else rounded


class _Category:
    __slots__ = ("id", "name", "supercategory", "keypoints")

    def __init__(self, category_id: int, name: str, supercategory: str) -> None:
        self.id = category_id
        self.name = name
        self.supercategory = supercategory
        self.keypoints: dict[int, str] = {}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name,
                               "supercategory": self.supercategory}
        if self.keypoints:
            count = max(self.keypoints) + 1
            # Unnamed slots get the name the coco connector gives unnamed keypoints.
            out["keypoints"] = [self.keypoints.get(i, f"{self.name}-keypoint-{i + 1}")
                                for i in range(count)]
            out["skeleton"] = []
        return out


class CocoWriter(FileWriter):
    """Writes a COCO dataset folder: annotation files per task and split, images per split.

    Its options besides :class:`~clarifai_connect.exports.files.FileWriter`'s (``workers``,
    ``spill_dir``):

    Parameters:
        default_split: the split of records that carry none (default ``default``).
    """

    name = "coco"
    description = ("COCO: annotations/<task>_<split>.json (boxes, polygons, RLE masks, "
                   "keypoints, image labels, captions) and images/<split>/")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 workers: int = 8, default_split: str = "default", spill_dir: str = "") -> None:
        super().__init__(uri, storage_options=storage_options, workers=workers,
                         spill_dir=spill_dir)
        self.default_split = safe_part(default_split or "default")
        self.lines = LineSpill(self.spill_dir)
        self.categories: dict[str, _Category] = {}
        self._category_ids: set[int] = set()
        self._counters: dict[str, int] = {}
        self._wanted_scopes: set[str] = set()  # scopes where a source's id was kept
        self._files: dict[tuple[str, str], None] = {}

    # -- categories ------------------------------------------------------------------------

    def _category(self, concept: Concept, hint: Any = None, supercategory: str = "") -> _Category:
        found = self.categories.get(concept.id)
        if found is not None:
            return found
        if isinstance(hint, int) and not isinstance(hint, bool) and hint > 0 \
                and hint not in self._category_ids:
            category_id = hint  # the source's id: non-contiguous ids survive the trip
        else:
            category_id = max(self._category_ids, default=0) + 1
        self._category_ids.add(category_id)
        category = self.categories[concept.id] = _Category(category_id, concept.name,
                                                           supercategory)
        return category

    # -- one record ------------------------------------------------------------------------

    def write_record(self, record: Record) -> None:
        """Write the record's image and spill its image entry and annotations."""
        if record.media.kind != "image":
            self.skip(record, f"COCO holds images only; this is a {record.media.kind} input")
            return
        meta = record.metadata.get("coco") if isinstance(record.metadata.get("coco"),
                                                          Mapping) else {}
        if record.metadata and any(k != "coco" for k in record.metadata):
            self.warn(record, "metadata other than 'coco' not written (COCO has no place "
                              "for it)")
        if record.geo:
            self.warn(record, "geo point not written (COCO has no place for it)")
        data = record.media.read_bytes()
        try:
            width, height = image_size(data)
        except ValueError as exc:
            raise RecordError(f"input '{record.id}': {exc}") from exc
        declared = (meta.get("width"), meta.get("height"))
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
               for v in declared):
            # The source's size is the one its coordinates were normalized with.
            width, height = declared
        split = safe_part(str(meta.get("split") or "")) if meta.get("split") else \
            self.default_split
        file_name = meta.get("file_name") if isinstance(meta.get("file_name"), str) else ""
        folder = f"images/{split}"
        rel = self.write_media(record, folder, file_name or record.id)
        image_id = self._id(f"images/{split}", meta.get("image_id"))
        image = {"id": image_id, "width": width, "height": height,
                 "file_name": rel[len(folder) + 1:]}
        annotations = self._annotations(record, meta, split, image_id, width, height)
        tasks = {"instances"} | {task for task, _ in annotations}
        for caption in meta.get("captions") or ():
            if isinstance(caption, Mapping) and isinstance(caption.get("caption"), str):
                annotations.append(("captions", {"id": self._id(split, caption.get("id")),
                                                 "image_id": image_id,
                                                 "caption": caption["caption"]}))
                tasks.add("captions")
        image_line = compact_json(image)
        for task in sorted(tasks):
            self._files[(split, task)] = None
            self.lines.add(f"{split}\0{task}\0images", image_line)
        for task, annotation in annotations:
            self.lines.add(f"{split}\0{task}\0annotations", annotation
                           if type(annotation) is str else compact_json(annotation))

    def _id(self, scope: str, wanted: Any = None) -> int:
        """``wanted`` (the source's id) when it is a positive int still free in ``scope``,
        else the next free one: ids, and so the region ids the coco connector derives from
        them, survive the trip, and an exported dataset synced again changes nothing."""
        # Every number up to the scope's counter is taken (by the counter, or wanted
        # before it got there): only the wanted ids above it are claimed by name.
        counter = self._counters.get(scope, 0)
        if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > counter \
                and self.claims.take(f"#{scope}/{wanted}"):
            self._wanted_scopes.add(scope)
            return wanted
        number = counter + 1
        if scope in self._wanted_scopes:  # skip the wanted ids the counter reaches
            while not self.claims.take(f"#{scope}/{number}"):
                number += 1
        self._counters[scope] = number
        return number

    def _annotations(self, record: Record, meta: Mapping[str, Any], split: str, image_id: int,
                     width: int, height: int) -> list[tuple[str, dict[str, Any] | str]]:
        """The record's annotations by task: dicts, or the JSON line already (labels)."""
        out: list[tuple[str, dict[str, Any] | str]] = []
        entries = meta.get("annotations") or ()
        if record.regions:
            self._region_annotations(record, entries, split, image_id, width, height, out)
        if any(c.value <= 0 for c in record.concepts):
            self.warn(record, "concepts with value 0 not written (COCO holds positive "
                              "labels only)")
        label_ids: dict[Any, Any] = {}
        if entries:
            # Image labels carry no concept in the metadata, only their category ids: they
            # go, in order, to the labels whose category is not known yet.
            hints = [e.get("category_id") for e in entries
                     if isinstance(e, Mapping) and e.get("image_label")]
            unknown = [c for c in record.concepts
                       if c.value > 0 and c.id not in self.categories]
            for concept, hint in zip(unknown, [h for h in hints
                                               if h not in self._category_ids], strict=False):
                self._category(concept, hint)
            label_ids = {e.get("category_id"): e.get("id") for e in entries
                         if isinstance(e, Mapping) and e.get("image_label")}
        for concept in record.concepts:
            if concept.value > 0:
                category = self._category(concept)
                # its line at once: the geometry's JSON is the same for every image of
                # this size
                out.append(("instances", f'{{"id":{self._id(split, label_ids.get(category.id))}'
                                         f',"image_id":{image_id},"category_id":{category.id},'
                                         f'{_whole_image_json(width, height)}}}'))
        return out

    def _region_annotations(self, record: Record, entries: Any, split: str, image_id: int,
                            width: int, height: int,
                            out: list[tuple[str, dict[str, Any]]]) -> None:
        """The annotations of the record's regions, grouped as ``entries`` (the source's
        annotations, in its metadata) say, appended to ``out``."""
        by_id = {r.id: r for r in record.regions if r.id}
        used: set[int] = set()  # positions in record.regions
        position = {id(r): i for i, r in enumerate(record.regions)}
        for entry in entries:
            if not isinstance(entry, Mapping) or entry.get("image_label"):
                continue  # image labels are written from the record's concepts
            shapes = [by_id[r] for r in entry.get("regions") or () if r in by_id
                      and position[id(by_id[r])] not in used]
            points = []
            for kp in entry.get("keypoints") or ():
                region = by_id.get(kp.get("region")) if isinstance(kp, Mapping) else None
                if region is not None and region.point is not None \
                        and position[id(region)] not in used:
                    points.append((kp, region))
            if not shapes and not points:
                continue  # its regions were deleted since
            for region in shapes + [r for _, r in points]:
                used.add(position[id(region)])
            task = entry.get("task") if entry.get("task") in _GEOMETRY_TASKS else \
                ("person_keypoints" if points else "instances")
            annotation = self._annotation(record, entry, shapes, points, width, height)
            if annotation is not None:
                annotation.update(id=self._id(split, entry.get("id")), image_id=image_id)
                out.append((task, annotation))
        for index, region in enumerate(record.regions):
            if index in used:
                continue
            if region.point is not None:
                kp = {"name": region.concepts[0].name if region.concepts else "", "index": 0}
                annotation = self._annotation(record, {}, [], [(kp, region)], width, height)
                task = "person_keypoints"
            else:
                annotation = self._annotation(record, {}, [region], [], width, height)
                task = "instances"
            if annotation is not None:
                annotation.update(id=self._id(split), image_id=image_id)
                out.append((task, annotation))

    def _annotation(self, record: Record, entry: Mapping[str, Any], shapes: list[Region],
                    points: list[tuple[Mapping[str, Any], Region]], width: int,
                    height: int) -> dict[str, Any] | None:
        """One COCO annotation (without id and image_id) from regions of one object."""
        labelled = [r for r in shapes if r.concepts]
        if len(labelled) < len(shapes):
            self.warn(record, "regions without a concept not written (a COCO annotation "
                              "needs a category)")
        if any(len(r.concepts) > 1 for r in shapes):
            self.warn(record, "concepts after a region's first not written (a COCO "
                              "annotation has one category)")
        if labelled:
            concept = labelled[0].concepts[0]
        elif points:
            # Keypoints alone: the category is the source's, else the point's own label.
            concept = self._concept_of(entry.get("category_id")) or (
                points[0][1].concepts[0] if points[0][1].concepts else None)
            if concept is None:
                self.warn(record, "points without a concept not written")
                return None
        else:
            return None
        category = self._category(concept, entry.get("category_id"),
                                  str(entry.get("supercategory") or ""))
        annotation: dict[str, Any] = {"category_id": category.id}
        polygons = [r for r in labelled if r.polygon]
        masks = [r for r in labelled if r.mask is not None]
        boxes = [r for r in labelled if r.box is not None]
        extents: list[tuple[float, float, float, float]] = []
        area = 0.0
        if masks:
            if len(masks) > 1 or polygons:
                self.warn(record, "an annotation's extra masks/polygons beside its first mask "
                                  "not written (COCO holds one RLE per annotation)")
            counts, mask_h, mask_w, pixels, extent = _rle(masks[0].mask.read_bytes())
            annotation["segmentation"] = {"size": [mask_h, mask_w],
                                          "counts": encode_rle_string(counts)}
            area = float(pixels)
            if extent:
                extents.append(extent)
        elif polygons:
            flat_list = []
            for region in polygons:
                flat = []
                for p in region.polygon:
                    flat += [_num(p.col * width), _num(p.row * height)]
                flat_list.append(flat)
                xs, ys = flat[0::2], flat[1::2]
                extents.append((min(xs), min(ys), max(xs), max(ys)))
                area += _shoelace(xs, ys)
            annotation["segmentation"] = flat_list
        if boxes:
            b = boxes[0].box
            x, y = b.left_col * width, b.top_row * height
            w, h = (b.right_col - b.left_col) * width, (b.bottom_row - b.top_row) * height
            annotation["bbox"] = [_num(x), _num(y), _num(w), _num(h)]
            if "segmentation" not in annotation:
                area = w * h
            if len(boxes) > 1:
                self.warn(record, "an annotation's boxes after the first not written")
        elif extents:
            x0 = min(e[0] for e in extents)
            y0 = min(e[1] for e in extents)
            x1 = max(e[2] for e in extents)
            y1 = max(e[3] for e in extents)
            annotation["bbox"] = [_num(x0), _num(y0), _num(x1 - x0), _num(y1 - y0)]
        if points:
            slots: dict[int, list[float | int]] = {}
            for kp, region in points:
                index = kp.get("index") if isinstance(kp.get("index"), int) else len(slots)
                name = kp.get("name") or (region.concepts[0].name if region.concepts else "")
                if name:
                    category.keypoints.setdefault(index, name)
                visibility = kp.get("visibility") if kp.get("visibility") in (1, 2) else 2
                slots[index] = [_num(region.point.col * width), _num(region.point.row * height),
                                visibility]
            flat: list[float | int] = []
            for index in range(max(slots) + 1):
                flat += slots.get(index, [0, 0, 0])
            annotation["keypoints"] = flat
            annotation["num_keypoints"] = len(slots)
            if "bbox" not in annotation:
                xs = [v[0] for v in slots.values()]
                ys = [v[1] for v in slots.values()]
                annotation["bbox"] = [min(xs), min(ys), _num(max(xs) - min(xs)),
                                      _num(max(ys) - min(ys))]
        annotation["area"] = _num(area)
        annotation["iscrowd"] = int(entry.get("iscrowd") or 0)
        if isinstance(entry.get("attributes"), Mapping):
            annotation["attributes"] = dict(entry["attributes"])
        if isinstance(entry.get("extra"), Mapping):
            for key, value in entry["extra"].items():
                annotation.setdefault(key, value)
        return annotation

    def _concept_of(self, category_id: Any) -> Concept | None:
        if category_id is None:
            return None
        for concept_id, category in self.categories.items():
            if category.id == category_id:
                return Concept(id=concept_id, name=category.name)
        return None

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Assemble ``annotations/<task>_<split>.json`` from the spilled lines."""
        try:
            if not self._files:
                self._files[(self.default_split, "instances")] = None
            categories = compact_json(sorted((c.to_json() for c in self.categories.values()),
                                                key=lambda c: c["id"]))
            for split, task in self._files:
                rel = f"annotations/{task}_{split}.json"
                with self.dest.open(rel, "wb") as handle:
                    handle.write(b'{"info":{"description":"exported by clarifai-connect"},'
                                 b'"licenses":[],"categories":' + categories.encode("utf-8"))
                    for section in ("images", "annotations"):
                        handle.write(f',\n"{section}":['.encode())
                        first = True
                        for line in self.lines.lines(f"{split}\0{task}\0{section}"):
                            handle.write((line if first else ",\n" + line).encode("utf-8"))
                            first = False
                        handle.write(b"]")
                    handle.write(b"}\n")
        finally:
            self.lines.close()

    @classmethod
    def merge_parts(cls, uris: list[str], to: str,
                    storage_options: Mapping[str, Any] | None = None) -> list[str]:
        """Merge the parts of a distributed export into ``to``: images moved, each
        ``annotations/<task>_<split>.json`` made one. Categories are one list (by name and
        supercategory); image and annotation ids are kept where no earlier part used them
        in the split, else given the next free one (consistently across a part's files)."""
        from clarifai_connect.exports.parts import PartFiles

        files = PartFiles(uris, to, storage_options)
        index_files = sorted({rel for i in range(len(uris)) for rel in files.files(i)
                              if rel.startswith("annotations/") and rel.endswith(".json")})
        merged = _MergedIds()
        lines = LineSpill()
        try:
            for rel in index_files:
                split = _split_of(rel)
                for index in range(len(uris)):
                    if not files.fs.exists(files.path(index, rel)):
                        continue
                    doc = json.loads(files.read(index, rel))
                    categories = merged.categories_of(index, doc.get("categories") or ())
                    for image in doc.get("images") or ():
                        image["id"] = merged.id(("image", split), index, image["id"])
                        lines.add(f"{rel}\0images", compact_json(image))
                    for item in doc.get("annotations") or ():
                        item["id"] = merged.id(("annotation", split), index, item["id"])
                        item["image_id"] = merged.id(("image", split), index, item["image_id"])
                        if "category_id" in item:
                            item["category_id"] = categories.get(item["category_id"],
                                                                 item["category_id"])
                        lines.add(f"{rel}\0annotations", compact_json(item))
            head = compact_json(sorted(merged.categories.values(), key=lambda c: c["id"]))
            for rel in index_files:
                with files.open(rel) as handle:
                    handle.write(b'{"info":{"description":"exported by clarifai-connect"},'
                                 b'"licenses":[],"categories":' + head.encode("utf-8"))
                    for section in ("images", "annotations"):
                        handle.write(f',\n"{section}":['.encode())
                        for number, line in enumerate(lines.lines(f"{rel}\0{section}")):
                            handle.write((",\n" + line if number else line).encode("utf-8"))
                        handle.write(b"]")
                    handle.write(b"}\n")
        finally:
            lines.close()
        return files.move_all(keep=lambda rel: rel in index_files)


def _split_of(rel: str) -> str:
    """The split of ``annotations/<task>_<split>.json``."""
    stem = rel[len("annotations/"):-len(".json")]
    for task in ("person_keypoints", "instances", "captions"):
        if stem.startswith(task + "_"):
            return stem[len(task) + 1:]
    return stem.partition("_")[2]


class _MergedIds:
    """The ids of merged COCO parts: per scope (images or annotations of a split), a
    part's id is kept when free, else the next free one; categories by name."""

    def __init__(self) -> None:
        self.maps: dict[tuple[Any, int], dict[Any, int]] = {}
        self.used: dict[Any, set[int]] = {}
        self.categories: dict[tuple[str, str], dict[str, Any]] = {}
        self._by_part: dict[int, dict[int, int]] = {}

    def id(self, scope: Any, part: int, old: Any) -> int:
        mapping = self.maps.setdefault((scope, part), {})
        if old not in mapping:
            used = self.used.setdefault(scope, set())
            new = old if isinstance(old, int) and old not in used else max(used, default=0) + 1
            used.add(new)
            mapping[old] = new
        return mapping[old]

    def categories_of(self, part: int, categories: Any) -> dict[int, int]:
        """The map of ``part``'s category ids to the merged ones (made on first sight)."""
        if part in self._by_part:
            return self._by_part[part]
        mapping = self._by_part[part] = {}
        for category in categories:
            key = (category.get("name", ""), category.get("supercategory", ""))
            known = self.categories.get(key)
            if known is None:
                taken = {c["id"] for c in self.categories.values()}
                new_id = category["id"] if category["id"] not in taken else max(taken) + 1
                known = self.categories[key] = {**category, "id": new_id}
            elif len(category.get("keypoints") or ()) > len(known.get("keypoints") or ()):
                known.update(keypoints=category["keypoints"], skeleton=category.get("skeleton", []))
            mapping[category["id"]] = known["id"]
        return mapping


def _rle(png: bytes) -> tuple[list[int], int, int, int, tuple[int, int, int, int] | None]:
    """RLE counts, size, pixel count and pixel extent (x0, y0, x1, y1) of a mask PNG."""
    import io

    from PIL import Image

    try:
        counts, height, width = png_to_rle(png)
        with Image.open(io.BytesIO(png)) as image:
            gray = image.convert("L")
            extent = gray.getbbox()
            pixels = gray.width * gray.height - gray.histogram()[0]
    except (MaskError, OSError) as exc:
        raise RecordError(f"mask not readable: {exc}") from exc
    return counts, height, width, pixels, extent


def _whole_image(width: float, height: float) -> dict[str, Any]:
    """The geometry of an image-level label: the whole image, so that every COCO tool
    (pycocotools' annToMask, COCOeval) finds the keys it requires; ``image_label`` tells
    the coco connector to read it back as a label of the input, not as a box."""
    w, h = _num(width), _num(height)
    return {"segmentation": [[0, 0, w, 0, w, h, 0, h]], "area": _num(width * height),
            "bbox": [0, 0, w, h], "iscrowd": 0, "image_label": True}


@functools.lru_cache(maxsize=256, typed=True)
def _whole_image_json(width: float, height: float) -> str:
    """The JSON of :func:`_whole_image`'s keys (no braces), as they follow an image label's
    ids in its line (images of a dataset share a few sizes)."""
    return compact_json(_whole_image(width, height))[1:-1]


def _shoelace(xs: list[float], ys: list[float]) -> float:
    total = 0.0
    for i in range(len(xs)):
        j = (i + 1) % len(xs)
        total += xs[i] * ys[j] - xs[j] * ys[i]
    return abs(total) / 2.0


@hookimpl
def register_exporters(register: Any) -> None:
    """Register the coco exporter."""
    register(CocoWriter)

