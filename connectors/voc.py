"""The Pascal VOC connector: ``Annotations/*.xml``, ``ImageSets`` splits and labels, masks.

A VOC root holds ``Annotations/<id>.xml`` (objects with boxes, ``difficult``/``truncated``/
``pose``/``occluded``, parts and actions), ``ImageSets/<task>/<split>.txt`` (which ids are in
which split), ``ImageSets/Main/<class>_<split>.txt`` (image-level labels: 1 present, -1
absent, 0 difficult), ``JPEGImages/``, and ``SegmentationObject/`` / ``SegmentationClass/``
PNGs (one colour or index per object, or per class). Every id listed in a split or owning
an XML file is one record; the XML files are listed lazily.

XML is parsed with defusedxml: a file with entity declarations (billion laughs) or external
entities is a Problem naming the file, and the run goes on. Box coordinates are taken as
given (VOC pixel units) and divided by the image size; up to one pixel outside is clamped.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from clarifai_connect.connector import Reader, ReadItem, display_uri, filesystem
from clarifai_connect.errors import SourceError
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.records import (
    Box,
    Concept,
    Media,
    Problem,
    Record,
    RecordError,
    Region,
    stable_id,
)

from .coco_annotations import normalize
from .listing import iter_files
from .masks import MaskError, colour_index, segmentation_layers
from .options import option_bool

__all__ = ["VOC_CLASSES", "VocReader"]

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
# Index 255 in VOC masks is the "void" border around objects, never a class or object.
VOID = 255
_TASKS = ("Main", "Segmentation", "Action", "Layout")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_OBJECT_FLAGS = ("difficult", "truncated", "occluded")
# VOC annotations are a few KB; a much larger "annotation" is refused before parsing.
MAX_XML_BYTES = 16 << 20


class VocReader(Reader):
    """Reads a Pascal VOC dataset folder into records.

    Options: ``negatives`` — keep ``-1`` image labels of ``ImageSets/Main/<class>_<split>.txt``
    as concepts with value 0 (explicitly absent; default True); ``masks`` — read
    ``SegmentationObject``/``SegmentationClass`` PNGs (default True).
    """

    name = "voc"
    description = "Pascal VOC folder: Annotations/*.xml, ImageSets splits and labels, masks"

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 negatives: bool = True, masks: bool = True) -> None:
        super().__init__(uri, storage_options=storage_options)
        self.negatives = option_bool("voc", "negatives", negatives)
        self.masks = option_bool("voc", "masks", masks)

    @classmethod
    def detect(cls, uri: str, storage_options: Mapping[str, Any] | None = None) -> bool:
        """A folder with an ``Annotations/`` folder beside ``ImageSets/`` or ``JPEGImages/``."""
        try:
            fs, path = filesystem(uri, storage_options)
            path = path.rstrip("/")
            return fs.isdir(posixpath.join(path, "Annotations")) and (
                fs.isdir(posixpath.join(path, "ImageSets"))
                or fs.isdir(posixpath.join(path, "JPEGImages")))
        except (OSError, SourceError, ValueError):
            return False

    # -- reading -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ReadItem]:
        fs, root = filesystem(self.uri, self.storage_options)
        root = root.rstrip("/") or "/"
        if not fs.isdir(root):
            raise SourceError(f"{display_uri(self.uri)} is not a VOC folder (no such directory)")
        self._fs, self._root = fs, root
        problems: list[Problem] = []
        splits, labels, segmented = self._image_sets(problems)
        yield from problems
        self._classes, self._class_colours = self._label_map()
        done: set[str] = set()
        for image_id, image_sets in splits.items():
            done.add(image_id)
            yield from self._item(image_id, image_sets, labels.get(image_id, {}),
                                  image_id in segmented)
        annotations = posixpath.join(root, "Annotations")
        if fs.isdir(annotations):
            for path in iter_files(fs, annotations, (".xml",)):
                image_id = posixpath.splitext(posixpath.basename(path))[0]
                if image_id not in done:
                    done.add(image_id)
                    yield from self._item(image_id, {}, labels.get(image_id, {}),
                                          image_id in segmented)

    def _path(self, *parts: str) -> str:
        return posixpath.join(self._root, *parts)

    def _uri(self, path: str) -> str:
        return self._fs.unstrip_protocol(path) if "://" in self.uri else path

    def _show(self, path: str) -> str:
        return display_uri(self._uri(path))

    def _read_lines(self, path: str, problems: list[Problem]) -> list[str]:
        try:
            with self._fs.open(path, "rb") as handle:
                return handle.read().decode("utf-8", "replace").splitlines()
        except OSError as exc:
            problems.append(Problem(self._show(path), f"cannot read: {exc}"))
            return []

    def _image_sets(self, problems: list[Problem]):
        """Split membership, image-level labels and the ids with segmentation masks."""
        splits: dict[str, dict[str, list[str]]] = {}
        labels: dict[str, dict[str, int]] = {}
        segmented: set[str] = set()
        for task in _TASKS:
            folder = self._path("ImageSets", task)
            if not self._fs.isdir(folder):
                continue
            names = sorted(posixpath.basename(p) for p in iter_files(self._fs, folder, (".txt",)))
            split_names = {n[:-4] for n in names if "_" not in n[:-4]}
            for name in names:
                stem = name[:-4]
                path = posixpath.join(folder, name)
                klass, _, split = stem.rpartition("_")
                if stem in split_names or not klass:
                    for number, line in enumerate(self._read_lines(path, problems), 1):
                        image_id = line.strip()
                        if not image_id:
                            continue
                        if len(image_id.split()) != 1:
                            problems.append(Problem(f"{self._show(path)}:{number}",
                                                    f"expected one image id, got {line!r}"))
                            continue
                        sets = splits.setdefault(image_id, {}).setdefault(task, [])
                        if stem not in sets:
                            sets.append(stem)
                        if task == "Segmentation":
                            segmented.add(image_id)
                elif task == "Main":
                    self._class_file(path, klass, labels, problems)
        return splits, labels, segmented

    def _class_file(self, path: str, klass: str, labels: dict[str, dict[str, int]],
                    problems: list[Problem]) -> None:
        for number, line in enumerate(self._read_lines(path, problems), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                if len(parts) != 2:
                    raise ValueError
                value = int(parts[1])
                if value not in (-1, 0, 1):
                    raise ValueError
            except ValueError:
                problems.append(Problem(f"{self._show(path)}:{number}",
                                        f"expected '<image id> <1|0|-1>', got {line!r}"))
                continue
            labels.setdefault(parts[0], {})[klass] = value

    def _label_map(self) -> tuple[tuple[str, ...], dict[tuple[int, int, int], str]]:
        """Class names by index and by colour: ``labelmap.txt`` (Datumaro style) or VOC's."""
        path = self._path("labelmap.txt")
        try:
            if not self._fs.exists(path):
                return VOC_CLASSES, {}
            with self._fs.open(path, "rb") as handle:
                lines = handle.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return VOC_CLASSES, {}
        names: list[str] = []
        colours: dict[tuple[int, int, int], str] = {}
        for line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, _, rest = line.partition(":")
            names.append(name.strip())
            colour = rest.partition(":")[0].split(",")
            if len(colour) == 3 and all(c.strip().isdigit() for c in colour):
                colours[tuple(int(c) for c in colour)] = name.strip()
        return tuple(names) or VOC_CLASSES, colours

    # -- one image -----------------------------------------------------------------------

    def _item(self, image_id: str, image_sets: dict[str, list[str]], labels: dict[str, int],
              segmented: bool) -> Iterator[ReadItem]:
        xml_path = self._path("Annotations", image_id + ".xml")
        where = self._show(xml_path)
        try:
            record_id = stable_id(image_id)
        except RecordError as exc:
            yield Problem(where, str(exc))
            return
        annotation: Element | None = None
        try:
            # Opening directly (not exists() first): one request per file on object stores.
            with self._fs.open(xml_path, "rb") as handle:
                data = handle.read(MAX_XML_BYTES + 1)
            if len(data) > MAX_XML_BYTES:
                yield Problem(where, f"larger than {MAX_XML_BYTES >> 20} MB: not a VOC "
                              "annotation", id=record_id)
                return
            annotation = SafeET.fromstring(data)
        except FileNotFoundError:
            annotation = None  # an id listed in a split without an annotation file
        except defusedxml.DefusedXmlException as exc:
            yield Problem(where, f"unsafe XML rejected ({type(exc).__name__}: {exc})",
                          id=record_id)
            return
        except ParseError as exc:
            yield Problem(where, f"broken XML: {exc}", id=record_id)
            return
        except OSError as exc:
            yield Problem(where, f"cannot read: {exc}", id=record_id)
            return
        try:
            yield from self._record(record_id, image_id, annotation, image_sets, labels,
                                    segmented, where)
        except RecordError as exc:
            yield Problem(where, str(exc).removeprefix(f"{where}: "), id=record_id)

    def _image_path(self, image_id: str, annotation: Element | None) -> str | None:
        file_name = _text(annotation, "filename") if annotation is not None else ""
        if file_name:
            # The annotation names the image: it must stay inside the VOC folder.
            uri = self.media_uri(file_name, self._uri(self._path("JPEGImages")),
                                 root=self._uri(self._root))
            return self._fs._strip_protocol(uri) if "://" in self.uri else uri
        for ext in _IMAGE_EXTENSIONS:
            candidate = self._path("JPEGImages", image_id + ext)
            if self._fs.exists(candidate):
                return candidate
        return None

    def _record(self, record_id: str, image_id: str, annotation: Element | None,
                image_sets: dict[str, list[str]], labels: dict[str, int], segmented: bool,
                where: str) -> Iterator[ReadItem]:
        image_path = self._image_path(image_id, annotation)
        if image_path is None:
            yield Problem(where, f"no image JPEGImages/{image_id}.(jpg|jpeg|png) and no "
                          "annotation naming one", id=record_id)
            return
        metadata: dict[str, Any] = {"image_id": image_id}
        if image_sets:
            metadata["image_sets"] = image_sets
            if image_sets.get("Main"):
                metadata["split"] = image_sets["Main"][0]
        concepts: dict[str, Concept] = {}
        difficult = []
        for klass, value in labels.items():
            if value == 0:
                difficult.append(klass)
            if value >= 0 or self.negatives:
                concept = Concept.named(klass, value=1.0 if value >= 0 else 0.0)
                concepts[concept.id] = concept
        if difficult:
            metadata["difficult_labels"] = difficult
        regions: list[Region] = []
        objects_meta: list[dict[str, Any]] = []
        size = None
        problems: list[Problem] = []
        if annotation is not None:
            size = _size(annotation)
            if annotation.find("object") is not None and size is None:
                size = _header_size(self._fs, image_path)
            for key in ("folder", "segmented"):
                if _text(annotation, key):
                    metadata[key] = _text(annotation, key)
            for index, obj in enumerate(annotation.findall("object"), 1):
                mark = len(regions)
                try:
                    objects_meta.append(self._object(record_id, index, obj, size, regions))
                except RecordError as exc:
                    del regions[mark:]  # none of a broken object's regions
                    objects_meta.append({"index": index, "name": _text(obj, "name"),
                                         "error": str(exc)})
                    problems.append(Problem(f"{where}: object {index}",
                                            f"{exc} (the rest of {image_id} is kept)"))
        if self.masks and (segmented or metadata.get("segmented") == "1"):
            self._masks(record_id, image_id, annotation, regions, objects_meta, problems)
        if objects_meta:
            metadata["objects"] = objects_meta
        yield Record(id=record_id, media=Media(kind="image", uri=self._uri(image_path),
                                               storage_options=self.storage_options or None),
                     concepts=tuple(concepts.values()), regions=tuple(regions),
                     metadata={"voc": metadata}, source=where)
        yield from problems

    def _object(self, record_id: str, index: int, obj: Element,
                size: tuple[float, float] | None, regions: list[Region]) -> dict[str, Any]:
        name = _text(obj, "name")
        if not name:
            raise RecordError("no <name>")
        region_id = stable_id(f"{record_id}-obj{index}")
        meta: dict[str, Any] = {"index": index, "name": name}
        box = obj.find("bndbox")
        if box is not None:
            regions.append(Region(box=_box(box, size),
                                  concepts=(Concept.named(name),), id=region_id))
            meta["region"] = region_id
        if _text(obj, "pose"):
            meta["pose"] = _text(obj, "pose")
        for flag in _OBJECT_FLAGS:
            value = _text(obj, flag)
            if value:
                meta[flag] = _flag(value)
        actions = obj.find("actions")
        if actions is not None:
            meta["actions"] = {child.tag: _flag((child.text or "").strip()) for child in actions}
        attributes = obj.find("attributes")
        if attributes is not None:
            meta["attributes"] = {(_text(a, "name") or a.tag): _text(a, "value")
                                  for a in attributes}
        parts = []
        for number, part in enumerate(obj.findall("part"), 1):
            part_name = _text(part, "name")
            part_box = part.find("bndbox")
            if not part_name or part_box is None:
                raise RecordError(f"part {number} needs <name> and <bndbox>")
            part_id = stable_id(f"{record_id}-obj{index}-part{number}")
            regions.append(Region(box=_box(part_box, size, f"part {number} "),
                                  concepts=(Concept.named(part_name),), id=part_id))
            parts.append({"name": part_name, "region": part_id})
        if parts:
            meta["parts"] = parts
        return meta

    def _masks(self, record_id: str, image_id: str, annotation: Element | None,
               regions: list[Region], objects_meta: list[dict[str, Any]],
               problems: list[Problem]) -> None:
        for folder in ("SegmentationObject", "SegmentationClass"):
            path = self._path(folder, image_id + ".png")
            try:
                with self._fs.open(path, "rb") as handle:
                    _, layers = segmentation_layers(handle.read())
            except FileNotFoundError:
                continue  # test splits list ids without ground-truth masks
            except (OSError, MaskError) as exc:
                problems.append(Problem(self._show(path), f"mask not read: {exc}"))
                continue
            for key, png in layers.items():
                if isinstance(key, int):
                    index = key
                elif folder == "SegmentationClass" and key in self._class_colours:
                    index = self._classes.index(self._class_colours[key])
                else:
                    index = colour_index(key)
                if index in (0, VOID):
                    continue  # background, and the void border around objects
                if folder == "SegmentationObject":
                    if index is None or index > len(objects_meta):
                        problems.append(Problem(self._show(path), f"mask colour {key} is not "
                                                f"an object of {image_id}.xml"))
                        continue
                    meta = objects_meta[index - 1]
                    name, region_id = meta["name"], stable_id(f"{record_id}-obj{index}-mask")
                    meta["mask_region"] = region_id
                else:
                    name = (self._classes[index]
                            if index is not None and index < len(self._classes) else None)
                    if name is None:
                        problems.append(Problem(self._show(path),
                                                f"mask colour {key} is not a known class"))
                        continue
                    region_id = stable_id(f"{record_id}-class-{name}")
                regions.append(Region(mask=png, concepts=(Concept.named(name),), id=region_id))


def _text(element: Element | None, tag: str) -> str:
    if element is None:
        return ""
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


def _flag(value: str) -> Any:
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def _size(annotation: Element) -> tuple[float, float] | None:
    size = annotation.find("size")
    try:
        width, height = float(_text(size, "width")), float(_text(size, "height"))
    except ValueError:
        return None
    return (width, height) if width > 0 and height > 0 else None


def _header_size(fs: Any, path: str) -> tuple[float, float]:
    from PIL import Image, UnidentifiedImageError

    try:
        with fs.open(path, "rb", block_size=1 << 16) as handle, Image.open(handle) as image:
            return float(image.size[0]), float(image.size[1])
    except (OSError, UnidentifiedImageError) as exc:
        raise RecordError(f"<size> is missing and the image header cannot be read: {exc}") \
            from exc


def _box(element: Element, size: tuple[float, float] | None, what: str = "") -> Box:
    """A box from a ``<bndbox>``; ``what`` prefixes the coordinate names in errors."""
    if size is None:
        raise RecordError(f"{what}the image size is unknown")
    width, height = size
    return Box(top_row=normalize(_text(element, "ymin"), height, f"{what}ymin"),
               left_col=normalize(_text(element, "xmin"), width, f"{what}xmin"),
               bottom_row=normalize(_text(element, "ymax"), height, f"{what}ymax"),
               right_col=normalize(_text(element, "xmax"), width, f"{what}xmax"))


@hookimpl
def register_connectors(register: Any) -> None:
    """Register the voc connector."""
    register(VocReader)


@hookimpl
def detect_format(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    """Claim folders laid out like Pascal VOC."""
    return VocReader.name if VocReader.detect(uri, storage_options) else None
