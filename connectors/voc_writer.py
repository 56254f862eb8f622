"""The voc exporter: a Pascal VOC folder the voc connector (and VOC tools) read back.

Writes ``JPEGImages/<id><ext>``, ``Annotations/<id>.xml`` (size, objects with their box,
flags, parts, actions and attributes), ``ImageSets/<task>/<split>.txt`` lists,
``ImageSets/Main/<class>_<split>.txt`` image labels (1 present, -1 absent, 0 difficult),
``SegmentationObject/<id>.png`` (each object's mask in its own index),
``SegmentationClass/<id>.png`` (masks by class) and ``labelmap.txt`` (class names and
colours, VOC's 21 classes first). Box regions become objects; a record read by the voc
connector keeps its objects' order, flags and parts through its ``voc`` metadata, so
VOC → Clarifai → VOC gives the same dataset back.

VOC cannot hold polygons or points: they are named in warnings. Masks not tied to an object
are merged by class into the class mask. Split lists and label files are spilled to a
temporary file and written at the end; XML, images and masks are written as records come.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

from clarifai_connect.exports.files import FileWriter, image_size, media_ext
from clarifai_connect.exports.names import safe_part
from clarifai_connect.exports.spill import LineSpill
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.records import Box, Record, RecordError, Region

from .masks import voc_colormap
from .voc import VOC_CLASSES

__all__ = ["VocWriter"]

MAX_INDEX = 254  # 0 is background, 255 VOC's "void" border
_FLAGS = ("truncated", "difficult", "occluded")


def _num(value: float) -> str:
    rounded = round(float(value), 6)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)


def _sub(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


def _bndbox(parent: ET.Element, box: Box, width: int, height: int) -> None:
    element = _sub(parent, "bndbox")
    _sub(element, "xmin", _num(box.left_col * width))
    _sub(element, "ymin", _num(box.top_row * height))
    _sub(element, "xmax", _num(box.right_col * width))
    _sub(element, "ymax", _num(box.bottom_row * height))


class VocWriter(FileWriter):
    """Writes a Pascal VOC folder: images, XML annotations, split lists, labels, masks.

    Its options besides :class:`~clarifai_connect.exports.files.FileWriter`'s (``workers``,
    ``spill_dir``):

    Parameters:
        default_split: the split of records that carry none (default ``default``).
    """

    name = "voc"
    description = ("Pascal VOC: JPEGImages, Annotations/*.xml, ImageSets splits and labels, "
                   "SegmentationObject/Class masks")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 workers: int = 8, default_split: str = "default", spill_dir: str = "") -> None:
        super().__init__(uri, storage_options=storage_options, workers=workers,
                         spill_dir=spill_dir)
        self.default_split = safe_part(default_split or "default")
        self.lines = LineSpill(self.spill_dir)
        self.classes: list[str] = list(VOC_CLASSES)
        self._class_index = {name: i for i, name in enumerate(self.classes)}
        self._palette = [v for colour in voc_colormap() for v in colour]

    def write_record(self, record: Record) -> None:
        """Write the record's image, XML and masks; spill its split and label lines."""
        if record.media.kind != "image":
            self.skip(record, f"VOC holds images only; this is a {record.media.kind} input")
            return
        voc = record.metadata.get("voc") if isinstance(record.metadata.get("voc"),
                                                        Mapping) else {}
        if any(k != "voc" for k in record.metadata):
            self.warn(record, "metadata other than 'voc' not written (VOC has no place for it)")
        if record.geo:
            self.warn(record, "geo point not written (VOC has no place for it)")
        data = record.media.read_bytes()
        try:
            width, height = image_size(data)
        except ValueError as exc:
            raise RecordError(f"input '{record.id}': {exc}") from exc
        wanted = voc.get("image_id") if isinstance(voc.get("image_id"), str) else record.id
        xml_rel = self.claims.claim(f"Annotations/{safe_part(wanted)}.xml", record.id)
        image_id = xml_rel[len("Annotations/"):-len(".xml")]
        ext = media_ext("image", data)
        file_name = f"{image_id}{ext}"
        self.dest.put(f"JPEGImages/{file_name}", data, owner=record.id)

        objects, class_masks = self._objects(record, voc)
        object_masks = [(index, obj["mask"]) for index, obj in enumerate(objects, 1)
                        if obj.get("mask") is not None]
        segmented = bool(object_masks or class_masks)
        if object_masks:
            self.dest.put(f"SegmentationObject/{image_id}.png",
                          self._mask_png(record, object_masks, width, height), owner=record.id)
        if class_masks:
            indexed = []
            for name, regions in class_masks.items():
                index = self._class(name)
                if index is None:
                    self.warn(record, f"class masks beyond {MAX_INDEX} classes not written")
                    continue
                indexed += [(index, region) for region in regions]
            self.dest.put(f"SegmentationClass/{image_id}.png",
                          self._mask_png(record, indexed, width, height), owner=record.id)
        # An image the source listed without an XML file (a test split) gets none back.
        no_xml = bool(voc) and not objects and not segmented and not (
            {"folder", "segmented", "objects"} & set(voc))
        if not no_xml:
            xml = self._xml(voc, file_name, width, height, objects, segmented)
            self.dest.put(f"Annotations/{image_id}.xml", xml, owner=record.id)
        self._lists(record, voc, image_id, segmented)

    # -- objects and masks -----------------------------------------------------------------

    def _objects(self, record: Record, voc: Mapping[str, Any]
                 ) -> tuple[list[dict[str, Any]], dict[str, list[Region]]]:
        by_id = {r.id: r for r in record.regions if r.id}
        used: set[str] = set()
        objects: list[dict[str, Any]] = []
        for meta in voc.get("objects") or ():
            if not isinstance(meta, Mapping) or meta.get("error"):
                continue  # an object the connector could not read never became regions
            box = by_id.get(meta.get("region"))
            mask = by_id.get(meta.get("mask_region"))
            box = box if box is not None and box.box is not None else None
            mask = mask if mask is not None and mask.mask is not None else None
            if box is None and mask is None:
                continue  # its regions were deleted since
            parts = []
            for part in meta.get("parts") or ():
                region = by_id.get(part.get("region")) if isinstance(part, Mapping) else None
                if region is not None and region.box is not None:
                    parts.append(region)
                    used.add(region.id)
            shown = box or mask
            name = shown.concepts[0].name if shown.concepts else str(meta.get("name") or "")
            used.update(r.id for r in (box, mask) if r is not None)
            objects.append({"meta": meta, "name": name, "box": box, "mask": mask,
                            "parts": parts})
        class_masks: dict[str, list[Region]] = {}
        lost: dict[str, int] = {}
        for region in record.regions:
            if region.id and region.id in used:
                continue
            if region.polygon or region.point is not None:
                lost[region.kind] = lost.get(region.kind, 0) + 1
                continue
            if not region.concepts:
                self.warn(record, "regions without a concept not written (a VOC object "
                                  "needs a name)")
                continue
            if len(region.concepts) > 1:
                self.warn(record, "concepts after a region's first not written (a VOC "
                                  "object has one name)")
            if region.box is not None:
                objects.append({"meta": {}, "name": region.concepts[0].name, "box": region,
                                "mask": None, "parts": []})
            else:
                class_masks.setdefault(region.concepts[0].name, []).append(region)
        for kind in sorted(lost):
            self.warn(record, f"{kind} regions not written (VOC holds boxes and masks)")
        masked = [o for o in objects if o.get("mask") is not None]
        if len(objects) > MAX_INDEX and masked:
            self.warn(record, f"object masks beyond object {MAX_INDEX} not written")
            for obj in objects[MAX_INDEX:]:
                obj["mask"] = None
        if sum(len(v) for v in class_masks.values()) > len(class_masks):
            self.warn(record, "masks of the same class merged into one class mask")
        return objects, class_masks

    def _class(self, name: str) -> int | None:
        index = self._class_index.get(name)
        if index is None:
            if len(self.classes) > MAX_INDEX:
                return None
            index = self._class_index[name] = len(self.classes)
            self.classes.append(name)
        return index

    def _mask_png(self, record: Record, layers: list[tuple[int, Region]], width: int,
                  height: int) -> bytes:
        from PIL import Image

        canvas = Image.new("P", (width, height), 0)
        canvas.putpalette(self._palette)
        for index, region in layers:
            try:
                with Image.open(io.BytesIO(region.mask.read_bytes())) as image:
                    layer = image.convert("L")
            except OSError as exc:
                raise RecordError(f"mask of region '{region.id}' not readable: {exc}") from exc
            if layer.size != (width, height):
                self.warn(record, "masks of another size than their image resized to it")
                layer = layer.resize((width, height), Image.Resampling.NEAREST)
            canvas.paste(index, (0, 0, width, height), layer.point([0] + [255] * 255))
        out = io.BytesIO()
        canvas.save(out, format="PNG")
        return out.getvalue()

    # -- XML and lists ---------------------------------------------------------------------

    def _xml(self, voc: Mapping[str, Any], file_name: str, width: int, height: int,
             objects: list[dict[str, Any]], segmented: bool) -> bytes:
        # Written as the source had them; a record from elsewhere gets VOC's usual ones.
        root = ET.Element("annotation")
        if voc.get("folder") or not voc:
            _sub(root, "folder", voc.get("folder") or "VOC")
        _sub(root, "filename", file_name)
        size = _sub(root, "size")
        _sub(size, "width", width)
        _sub(size, "height", height)
        _sub(size, "depth", 3)
        if segmented or "segmented" in voc or not voc:
            _sub(root, "segmented", 1 if segmented else 0)
        for obj in objects:
            meta = obj["meta"]
            element = _sub(root, "object")
            _sub(element, "name", obj["name"])
            if meta.get("pose"):
                _sub(element, "pose", meta["pose"])
            for flag in _FLAGS:
                if flag in meta:
                    _sub(element, flag, meta[flag])
                elif not meta and flag != "occluded":
                    _sub(element, flag, 0)  # a new object: VOC tools expect these two
            if obj["box"] is not None:
                _bndbox(element, obj["box"].box, width, height)
            for part in obj["parts"]:
                part_element = _sub(element, "part")
                _sub(part_element, "name", part.concepts[0].name if part.concepts else "part")
                _bndbox(part_element, part.box, width, height)
            if isinstance(meta.get("actions"), Mapping):
                actions = _sub(element, "actions")
                for action, value in meta["actions"].items():
                    _sub(actions, safe_part(action).replace("~", "_"), value)
            if isinstance(meta.get("attributes"), Mapping):
                attributes = _sub(element, "attributes")
                for key, value in meta["attributes"].items():
                    attribute = _sub(attributes, "attribute")
                    _sub(attribute, "name", key)
                    _sub(attribute, "value", value)
        ET.indent(root)
        return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"

    def _lists(self, record: Record, voc: Mapping[str, Any], image_id: str,
               segmented: bool) -> None:
        image_sets = voc.get("image_sets") if isinstance(voc.get("image_sets"), Mapping) else {}
        sets: dict[str, list[str]] = {}
        for task, splits in image_sets.items():
            if isinstance(splits, list):
                sets[safe_part(task)] = [safe_part(str(s)) for s in splits]
        if not sets.get("Main"):
            sets["Main"] = [safe_part(str(voc["split"]))] if voc.get("split") else \
                [self.default_split]
        if segmented and not sets.get("Segmentation"):
            sets["Segmentation"] = sets["Main"][:1]
        for task, splits in sets.items():
            for split in splits:
                self.lines.add(f"ImageSets/{task}/{split}.txt", image_id)
        difficult = set(voc.get("difficult_labels") or ())
        split = sets["Main"][0]
        for concept in record.concepts:
            name = safe_part(concept.name)
            if name != concept.name:
                self.warn(record, "label names that are not safe file names written escaped")
            value = "-1" if concept.value <= 0 else ("0" if concept.name in difficult else "1")
            self.lines.add(f"ImageSets/Main/{name}_{split}.txt", f"{image_id} {value:>2}")

    def finish(self) -> None:
        """Write the split lists, label files and ``labelmap.txt``."""
        try:
            for key in self.lines.keys():
                with self.dest.open(key, "wb") as handle:
                    for line in self.lines.lines(key):
                        handle.write(line.encode("utf-8") + b"\n")
            colours = voc_colormap()
            text = "# label:color_rgb:parts:actions\n" + "".join(
                f"{name}:{','.join(map(str, colours[i]))}::\n"
                for i, name in enumerate(self.classes))
            self.dest.write_now("labelmap.txt", text.encode("utf-8"))
        finally:
            self.lines.close()

    @classmethod
    def merge_parts(cls, uris: list[str], to: str,
                    storage_options: Mapping[str, Any] | None = None) -> list[str]:
        """Merge the parts of a distributed export into ``to``: images, XML and masks
        moved, each ``ImageSets`` list the parts' lines one after the other, one
        ``labelmap.txt``; a part whose classes have other indices than the merged ones gets
        its ``SegmentationClass`` masks re-indexed."""
        from clarifai_connect.exports.parts import PartFiles

        files = PartFiles(uris, to, storage_options)
        classes = list(VOC_CLASSES)
        maps: list[bytes | None] = []
        for index in range(len(uris)):
            names = [line.split(":", 1)[0] for line in files.lines(index, "labelmap.txt")
                     if line and not line.startswith("#")]
            for name in names:
                if name not in classes:
                    classes.append(name)
            table = list(range(256))
            for old, name in enumerate(names):
                table[old] = classes.index(name)
            maps.append(None if table == list(range(256)) else bytes(table))
        lists = sorted({rel for i in range(len(uris)) for rel in files.files(i)
                        if rel.startswith("ImageSets/") and rel.endswith(".txt")})
        for rel in lists:
            with files.open(rel) as handle:
                for index in range(len(uris)):
                    for line in files.lines(index, rel):
                        handle.write(line.encode("utf-8") + b"\n")
        colours = voc_colormap()
        with files.open("labelmap.txt") as handle:
            handle.write(("# label:color_rgb:parts:actions\n" + "".join(
                f"{name}:{','.join(map(str, colours[i % 256]))}::\n"
                for i, name in enumerate(classes))).encode("utf-8"))

        def reindex(index: int, rel: str) -> bytes | None:
            if maps[index] is None or not rel.startswith("SegmentationClass/"):
                return None
            from PIL import Image

            with Image.open(io.BytesIO(files.read(index, rel))) as image:
                out = Image.frombytes("P", image.size, image.tobytes().translate(maps[index]))
            out.putpalette([v for colour in colours for v in colour])
            buffer = io.BytesIO()
            out.save(buffer, format="PNG")
            return buffer.getvalue()

        return files.move_all(keep=lambda rel: rel in lists or rel == "labelmap.txt",
                              rewrite=reindex)


@hookimpl
def register_exporters(register: Any) -> None:
    """Register the voc exporter."""
    register(VocWriter)
