"""The Pascal VOC connector: ``Annotations/*.xml``, ``ImageSets`` splits and labels, masks.

A VOC root holds ``Annotations/<id>.xml`` (objects with boxes, ``difficult``/``truncated``/
``pose``/``occluded``, parts and actions), ``ImageSets/<task>/<split>.txt`` (which ids are in
which split), ``ImageSets/Main/<class>_<split>.txt`` (image-level labels: 1 present, -1
absent, 0 difficult), ``JPEGImages/``, and ``SegmentationObject/`` / ``SegmentationClass/``
PNGs (one colour or index per object, or per class). Every id listed in a split or owning
an XML file is one record; the XML files are listed lazily.

Without ``Annotations/``, the XML files are found by content (a root element
``<annotation>``) within two levels of the root: lowercase ``annotations/`` beside
``images/`` (the official SDK's example data), ``labels/`` beside ``data/`` (FiftyOne),
each XML beside its image (LabelImg), or in split folders (Roboflow's ``train/``,
``valid/``, ``test/``: the folder is the split). An image is found from ``<filename>``,
the basename of ``<path>`` (often an absolute path on the annotator's machine) or the XML's
own name, in the XML's folder, a sibling ``JPEGImages/``, ``images/`` or ``data/``, or the
root. Other files in those folders (and images no XML names) are counted as ignored.

XML is parsed with defusedxml: a file with entity declarations (billion laughs) or external
entities is a Problem naming the file, and the run goes on. Box coordinates are taken as
given (VOC pixel units) and divided by the image size; up to one pixel outside is clamped,
``xmin > xmax`` is swapped and a box past the edge clipped (both reported as repaired).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from clarifai_connect.connector import (
    Reader,
    ReadItem,
    ReferenceRefused,
    display_uri,
    filesystem,
)
from clarifai_connect.engine.shards import ShardsByPosition
from clarifai_connect.errors import SourceError
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.records import (
    Box,
    Concept,
    Media,
    Notice,
    Problem,
    Record,
    RecordError,
    Region,
    stable_id,
)

from .boxes import repair_box
from .layout import (
    DETECT_FOLDERS,
    DetectsByReason,
    is_image,
    relative,
    split_from_parts,
    walk_bounded,
)
from .listing import iter_files
from .masks import MaskError, colour_index, segmentation_layers
from .options import option_bool
from .voc_sets import ImageSets, read_image_sets

__all__ = ["VOC_CLASSES", "VocReader"]

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
# Index 255 in VOC masks is the "void" border around objects, never a class or object.
VOID = 255
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
# Folders that hold the XML files of a VOC set; their parent holds the images.
_XML_FOLDERS = ("Annotations", "annotations", "labels")
# An XML file whose root element is <annotation> (after a declaration, comments, a DOCTYPE).
_VOC_ROOT = re.compile(rb"^\s*(?:<\?xml[^>]*\?>\s*)?(?:(?:<!--.*?-->|<!DOCTYPE[^>]*>)\s*)*"
                       rb"<annotation[\s>/]", re.S)
_OBJECT_FLAGS = ("difficult", "truncated", "occluded")
# VOC annotations are a few KB; a much larger "annotation" is refused before parsing.
MAX_XML_BYTES = 16 << 20


class VocReader(DetectsByReason, ShardsByPosition, Reader):
    """Reads a Pascal VOC dataset folder into records.

    Parameters:
        negatives: keep ``-1`` image labels of ``ImageSets/Main/<class>_<split>.txt`` as concepts
            with value 0 (explicitly absent; default True).
        masks: read ``SegmentationObject``/``SegmentationClass`` PNGs (default True).
    """

    name = "voc"
    description = "Pascal VOC folder: Annotations/*.xml, ImageSets splits and labels, masks"
    looks_for = ("XML files with an <annotation> root in Annotations/, annotations/, "
                 "labels/ or beside the images, within 2 levels, and ImageSets/ lists")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 negatives: bool = True, masks: bool = True) -> None:
        super().__init__(uri, storage_options=storage_options)
        self.negatives = option_bool("voc", "negatives", negatives)
        self.masks = option_bool("voc", "masks", masks)

    @classmethod
    def detect_reason(cls, uri: str, storage_options: Mapping[str, Any] | None = None
                      ) -> str | None:
        """Why ``uri`` is a VOC set, or None: ``Annotations/`` beside ``ImageSets/`` or
        ``JPEGImages/``, or XML files with an ``<annotation>`` root within two levels."""
        try:
            fs, path = filesystem(uri, storage_options)
            path = path.rstrip("/")
            if fs.isdir(posixpath.join(path, "Annotations")):
                for other in ("ImageSets", "JPEGImages"):
                    if fs.isdir(posixpath.join(path, other)):
                        return f"Annotations/ beside {other}/"
            if not fs.isdir(path):
                return None
            for folder in xml_folders(fs, path, limit=1, max_folders=DETECT_FOLDERS):
                where = relative(path, folder)
                return ("Pascal VOC XML (<annotation>) "
                        + (f"in {where}/" if where else "beside the images"))
        except (OSError, SourceError, ValueError):
            return None
        return None

    # -- reading -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ReadItem]:
        fs, root = filesystem(self.uri, self.storage_options)
        root = root.rstrip("/") or "/"
        if not fs.isdir(root):
            raise SourceError(f"{display_uri(self.uri)} is not a VOC folder (no such directory)")
        self._fs, self._root = fs, root
        self._image_dirs: dict[str, list[str]] = {}
        self._listed: dict[str, set[str]] = {}  # names in folders listed whole (beside layouts)
        self._last_hit: dict[str, str] = {}
        problems: list[Problem] = []
        sets = read_image_sets(fs, root, self._show, problems)
        yield from problems
        self._classes, self._class_colours = self._label_map()
        standard = self._path("Annotations")
        done: set[str] = set()
        for image_id, image_sets in sets.splits.items():
            done.add(image_id)
            yield from self._item(image_id, standard, image_id, image_sets, sets)
        folders = [standard] if fs.isdir(standard) else list(xml_folders(fs, root))
        if folders and root not in folders and not fs.isdir(self._path("ImageSets")):
            yield from self._root_files()
        for folder in folders:
            yield from self._folder(folder, sets, done)

    def _root_files(self) -> Iterator[Notice]:
        """The files at the root of a set laid out by folders (a README, a script)."""
        for path in iter_files(self._fs, self._root):
            if posixpath.basename(path) not in ("labelmap.txt",):
                yield Notice("ignored", self._show(path), "not part of a VOC set")

    def _folder(self, folder: str, sets: ImageSets, done: set[str]) -> Iterator[ReadItem]:
        """The items of one folder of XML files (and the files in it that are none)."""
        parts = [p for p in relative(self._root, folder).split("/") if p and
                 p not in _XML_FOLDERS]
        split = split_from_parts(parts)
        paths: Any = iter_files(self._fs, folder)
        xml_stems: set[str] = set()
        if any(is_image(p) for p in self._peek(folder)):
            # XML beside the images: the whole listing tells images no XML names.
            paths = sorted(paths)
            self._listed[folder] = {posixpath.basename(p) for p in paths}
            xml_stems = {posixpath.splitext(p)[0] for p in paths if p.lower().endswith(".xml")}
        for path in paths:
            name = posixpath.basename(path)
            if not name.lower().endswith(".xml"):
                if is_image(name) and posixpath.splitext(path)[0] in xml_stems:
                    continue  # the image of the XML beside it
                yield Notice("ignored", self._show(path), "an image no VOC XML names"
                             if is_image(name) else "not a VOC annotation (.xml) or image")
                continue
            stem = name[:-len(".xml")]
            image_id = "-".join([*parts, stem])
            if image_id in done:
                continue
            done.add(image_id)
            yield from self._item(image_id, folder, stem, {}, sets, split)

    def _peek(self, folder: str) -> list[str]:
        try:
            return [e["name"] for e in self._fs.ls(folder, detail=True)[:200]
                    if e.get("type") != "directory"]
        except OSError:
            return []

    def _path(self, *parts: str) -> str:
        return posixpath.join(self._root, *parts)

    def _uri(self, path: str) -> str:
        return self._fs.unstrip_protocol(path) if "://" in self.uri else path

    def _show(self, path: str) -> str:
        return display_uri(self._uri(path))

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

    def _item(self, image_id: str, folder: str, stem: str, image_sets: dict[str, list[str]],
              sets: ImageSets, split: str = "") -> Iterator[ReadItem]:
        xml_path = posixpath.join(folder, stem + ".xml")
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
        if annotation is not None and annotation.tag != "annotation":
            yield Notice("ignored", where, f"XML whose root is <{annotation.tag}>, not a VOC "
                         "<annotation>")
            return
        try:
            yield from self._record(record_id, image_id, folder, stem, annotation, image_sets,
                                    sets, split, where)
        except RecordError as exc:
            yield Problem(where, str(exc).removeprefix(f"{where}: "), id=record_id)

    def _image_folders(self, folder: str) -> list[str]:
        """Where the images of the XML files in ``folder`` may be, in the order tried."""
        if folder not in self._image_dirs:
            apart = posixpath.basename(folder) in _XML_FOLDERS  # XML apart from the images
            parent = posixpath.dirname(folder) if apart else folder
            tried = [] if apart else [folder]
            tried += [posixpath.join(parent, n) for n in ("JPEGImages", "images", "data")]
            tried += [parent] + [self._path(n) for n in ("JPEGImages", "images")] + [self._root]
            tried += [folder] if apart else []
            self._image_dirs[folder] = [f for f in dict.fromkeys(tried)
                                        if f in self._listed or self._fs.isdir(f)]
        return self._image_dirs[folder]

    def _image_path(self, stem: str, annotation: Element | None, folder: str) -> str | None:
        """The path of the image: ``<filename>``, the basename of ``<path>``, or the XML's
        name with an image extension, in the first folder (see :meth:`_image_folders`)
        holding it; every name is checked to stay inside the root. None when not found;
        ReferenceRefused when the only names given point outside."""
        names = [_text(annotation, "filename")] if annotation is not None else []
        given = _text(annotation, "path").replace("\\", "/") if annotation is not None else ""
        names += [posixpath.basename(given)] if given else []
        names += [stem + ext for ext in _IMAGE_EXTENSIONS]
        names = [n for n in dict.fromkeys(names) if n]
        folders = self._image_folders(folder)
        hit = self._last_hit.get(folder)
        if hit in folders:  # images of one XML folder are in one place: try it first
            folders = [hit] + [f for f in folders if f != hit]
        refused: ReferenceRefused | None = None
        fallback = None
        root_uri = self._uri(self._root)
        for name in names:
            for candidate in folders:
                try:
                    uri = self.media_uri(name, self._uri(candidate), root=root_uri)
                except ReferenceRefused as exc:
                    refused = refused or exc
                    break
                path = self._fs._strip_protocol(uri) if "://" in self.uri else uri
                if fallback is None and name == names[0] and annotation is not None \
                        and _text(annotation, "filename"):
                    # Named but found nowhere: kept, so that reading it fails the item later
                    # with the file system's own error (as a listed image would).
                    fallback = path
                listed = self._listed.get(candidate)
                if (posixpath.basename(path) in listed and posixpath.dirname(path) == candidate
                        if listed is not None else self._fs.exists(path)):
                    self._last_hit[folder] = candidate
                    return path
        if refused is not None and fallback is None:
            raise refused
        return fallback

    def _record(self, record_id: str, image_id: str, folder: str, stem: str,
                annotation: Element | None, image_sets: dict[str, list[str]], sets: ImageSets,
                split: str, where: str) -> Iterator[ReadItem]:
        image_path = self._image_path(stem, annotation, folder)
        if image_path is None:
            yield Problem(where, f"no image JPEGImages/{stem}.(jpg|jpeg|png) and no "
                          "annotation naming one", id=record_id)
            return
        labels = sets.labels.get(image_id, {})
        metadata: dict[str, Any] = {"image_id": image_id}
        if image_sets:
            metadata["image_sets"] = image_sets
            if image_sets.get("Main"):
                metadata["split"] = image_sets["Main"][0]
        elif split:
            metadata["split"] = split
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
        problems: list[ReadItem] = []
        if annotation is not None:
            size = _size(annotation)
            if annotation.find("object") is not None and size is None:
                size = _header_size(self._fs, image_path)
            for key in ("folder", "segmented"):
                if _text(annotation, key):
                    metadata[key] = _text(annotation, key)
            for index, obj in enumerate(annotation.findall("object"), 1):
                mark = len(regions)
                repairs: list[str] = []
                try:
                    objects_meta.append(self._object(record_id, index, obj, size, regions,
                                                     repairs))
                except RecordError as exc:
                    del regions[mark:]  # none of a broken object's regions
                    objects_meta.append({"index": index, "name": _text(obj, "name"),
                                         "error": str(exc)})
                    problems.append(Problem(f"{where}: object {index}",
                                            f"{exc} (the rest of {stem} is kept)"))
                    continue
                problems.extend(Notice("repaired", f"{where}: object {index}", r,
                                       id=record_id) for r in repairs)
        if self.masks and (image_id in sets.segmented or metadata.get("segmented") == "1"):
            self._masks(record_id, image_id, annotation, regions, objects_meta, problems)
        if objects_meta:
            metadata["objects"] = objects_meta
        yield Record(id=record_id, media=Media(kind="image", uri=self._uri(image_path),
                                               storage_options=self.storage_options or None),
                     concepts=tuple(concepts.values()), regions=tuple(regions),
                     metadata={"voc": metadata}, source=where)
        yield from problems

    def _object(self, record_id: str, index: int, obj: Element,
                size: tuple[float, float] | None, regions: list[Region],
                repairs: list[str]) -> dict[str, Any]:
        name = _text(obj, "name")
        if not name:
            raise RecordError("no <name>")
        region_id = stable_id(f"{record_id}-obj{index}")
        meta: dict[str, Any] = {"index": index, "name": name}
        box = obj.find("bndbox")
        if box is not None:
            regions.append(Region(box=_box(box, size, repairs),
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
            regions.append(Region(box=_box(part_box, size, repairs, f"part {number} "),
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


def _box(element: Element, size: tuple[float, float] | None, repairs: list[str],
         what: str = "") -> Box:
    """A box from a ``<bndbox>`` (its repairs added to ``repairs``: xmin > xmax swapped, a
    box past the edge clipped); ``what`` prefixes the coordinate names in messages."""
    if size is None:
        raise RecordError(f"{what}the image size is unknown")
    width, height = size
    values = [_text(element, k) for k in ("xmin", "ymin", "xmax", "ymax")]
    box, made = repair_box(*values, width, height,
                           what=f"{what or 'box '}({', '.join(values)})".strip(),
                           names=tuple(f"{what}{k}" for k in ("xmin", "ymin", "xmax", "ymax")))
    repairs.extend(made)
    return box


def is_voc_xml(fs: Any, path: str) -> bool:
    """Whether the XML file at ``path`` has an ``<annotation>`` root (its first bytes)."""
    try:
        with fs.open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return bool(_VOC_ROOT.match(head.removeprefix(b"\xef\xbb\xbf")))


def xml_folders(fs: Any, root: str, limit: int | None = None,
                max_folders: int | None = None) -> Iterator[str]:
    """The folders within two levels of ``root`` whose XML files are VOC annotations (the
    first few of each folder are looked at), ``ImageSets`` and mask folders left out; at
    most ``limit`` of them, looking into at most ``max_folders`` folders."""
    found = 0
    for folder, _, files in walk_bounded(fs, root, 2, max_folders=max_folders):
        if relative(root, folder).split("/")[0] in ("ImageSets", "SegmentationObject",
                                                   "SegmentationClass"):
            continue
        xml = [f for f in files if f.lower().endswith(".xml")][:3]
        if any(is_voc_xml(fs, posixpath.join(folder, f)) for f in xml):
            yield folder
            found += 1
            if limit is not None and found >= limit:
                return


@hookimpl
def register_connectors(register: Any) -> None:
    """Register the voc connector."""
    register(VocReader)


@hookimpl
def detect_format(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    """Claim folders laid out like Pascal VOC."""
    return VocReader.name if VocReader.detect(uri, storage_options) else None
