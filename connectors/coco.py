"""The COCO connector: instances, captions, person keypoints and image labels, any fsspec URL.

The source is one annotation file or a dataset folder. In a folder the annotation files
are found by content (a JSON object whose first keys include ``images``, ``annotations``
or ``categories``: see :mod:`connectors.coco_files`) within three levels, whatever their
name: ``annotations/instances_val2017.json`` (COCO, Datumaro, the official SDK's example
data), ``annotations/instances_default.json`` or the same file at the root (CVAT),
``train/_annotations.coco.json`` and ``valid/``, ``test/`` (Roboflow), ``result.json``
(Label Studio), ``labels.json`` beside ``data/`` (FiftyOne). Other JSON files and other
files there (READMEs, scripts) are counted as ignored. A split comes from the file name
(``<task>_<split>.json``) or else from its folder (``train``, ``valid``…). Files of the
same split and folder are merged, so an image annotated in ``instances_train.json`` and
``captions_train.json`` is one record. Each file is streamed in one pass (a second one reads
annotations that came before the images: see :mod:`connectors.coco_stream`), annotations
grouped by image with bounded memory; a remote file is first copied to a local temporary
file so that it is downloaded once.

Images are found from ``file_name`` in the first of these folders where the first images
exist: the annotation file's folder, its ``images/``, the dataset's ``images/<split>/``,
``<split>/``, ``images/``, ``JPEGImages/``, ``data/``, the root; failing that, by the file
name's last part in the same folders (exports written on another machine). An explicit
``image_root`` replaces the search; ``coco_url``/``flickr_url`` are used when no local copy
is found.
"""

from __future__ import annotations

import marshal
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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
from clarifai_connect.mediatypes import kind_from_extension
from clarifai_connect.records import Media, Notice, Problem, Record, RecordError, stable_id

from .coco_annotations import Category, Converted, convert_annotation, needs_size
from .coco_files import is_coco_json, scan_tree
from .coco_stream import SECTIONS, AnnotationGroups, CocoSyntaxError, SectionReader
from .layout import DETECT_FOLDERS, DetectsByReason, relative, split_from_parts
from .options import option_bool, option_int

__all__ = ["CocoReader", "split_of"]

KNOWN_TASKS = ("instances", "person_keypoints", "captions", "labels", "image_info", "panoptic")
_TASK_FILE = re.compile(r"^(?P<task>[A-Za-z]+(?:_[A-Za-z]+)*?)_(?P<split>[^_]+)$")
# How many images are tried when looking for the folder that holds them.
_PROBES = 5


def split_of(json_name: str) -> tuple[str, str]:
    """``(task, split)`` of an annotation file name: ``instances_val2017.json`` →
    ``("instances", "val2017")``; a name without ``_`` is its own task with no split."""
    stem = posixpath.splitext(posixpath.basename(json_name))[0]
    for task in sorted(KNOWN_TASKS, key=len, reverse=True):
        if stem.startswith(task + "_") and len(stem) > len(task) + 1:
            return task, stem[len(task) + 1:]
    match = _TASK_FILE.match(stem)
    if match:
        return match["task"], match["split"]
    return stem, ""


@dataclass
class _File:
    path: str
    task: str
    split: str
    categories: dict[Any, Category] = field(default_factory=dict)


@dataclass(slots=True)
class _Image:
    """What is kept of an image until its record is built (one per image: kept small)."""

    file_name: str
    width: float | None
    height: float | None
    url: str
    image_id: Any
    file_index: int


class CocoReader(DetectsByReason, ShardsByPosition, Reader):
    """Reads COCO annotation files (one file or a dataset folder) into records.

    Parameters:
        image_root: where the images are: a folder or URL prefix (default: found next to the
            annotations).
        prefer_urls: use each image's ``coco_url``/``flickr_url`` even when a local copy exists.
        include_boxes: also send the ``bbox`` of annotations that have a segmentation (by default
            the polygon or mask stands for the object).
        memory_annotations: how many annotations are grouped in memory before spilling to a
            temporary file.
        spill_dir: the folder of that temporary file (default: the system's temporary folder).
    """

    name = "coco"
    description = ("COCO JSON (instances, captions, person keypoints, image labels): "
                   "a file or a folder of annotation files")
    looks_for = ("JSON files whose first keys include images, annotations or categories, "
                 "within 3 levels")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 image_root: str = "", prefer_urls: bool = False, include_boxes: bool = False,
                 memory_annotations: int = 50_000, spill_dir: str = "") -> None:
        super().__init__(uri, storage_options=storage_options)
        self.image_root = str(image_root or "")
        self.prefer_urls = option_bool("coco", "prefer_urls", prefer_urls)
        self.include_boxes = option_bool("coco", "include_boxes", include_boxes)
        self.memory_annotations = option_int("coco", "memory_annotations", memory_annotations)
        self.spill_dir = spill_dir or None

    # -- detection -----------------------------------------------------------------------

    @classmethod
    def detect_reason(cls, uri: str, storage_options: Mapping[str, Any] | None = None
                      ) -> str | None:
        """Why ``uri`` is COCO, or None: a JSON file that starts like a COCO annotation
        file, or a folder with one within two levels (image folders not entered)."""
        try:
            fs, path = filesystem(uri, storage_options)
            path = path.rstrip("/")
            if path.lower().endswith(".json"):
                if split_of(path)[0] in KNOWN_TASKS or is_coco_json(fs, path):
                    return "a COCO annotation file (images, annotations, categories)"
                return None
            looked = 0
            for found, kind in scan_tree(fs, path, 2, DETECT_FOLDERS):
                if kind == "coco":
                    return f"COCO annotations in {relative(path, found)}"
                looked += kind == "json"
                if looked >= 12:  # detection stays cheap
                    return None
        except (OSError, SourceError, ValueError):
            return None
        return None

    # -- reading -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ReadItem]:
        fs, path = filesystem(self.uri, self.storage_options)
        path = path.rstrip("/") or "/"
        files, root, ignored = self._files(fs, path)
        yield from ignored
        groups: dict[tuple[str, str], list[_File]] = {}
        for item in files:
            groups.setdefault((item.split, posixpath.dirname(item.path)), []).append(item)
        seen_ids: dict[str, str] = {}
        for (split, _), members in groups.items():
            yield from self._read_split(fs, root, split, members, seen_ids)

    def _files(self, fs: Any, path: str) -> tuple[list[_File], str, list[Notice]]:
        """The annotation files, the dataset root and the files found that are not ones."""
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise SourceError(f"{display_uri(self.uri)} does not exist") from None
        except OSError as exc:
            raise SourceError(f"cannot open {display_uri(self.uri)}: {exc}") from None
        if info.get("type") != "directory":
            folder = posixpath.dirname(path)
            root = posixpath.dirname(folder) if posixpath.basename(folder) == "annotations" \
                else folder
            # The file's own folder may name the split (Roboflow's train/…coco.json).
            return [_File(path, *_task_split(posixpath.dirname(folder), path))], root, []
        files, ignored = [], []
        for found, kind in scan_tree(fs, path):
            # A JSON named like a COCO task file is read (and said to be broken) all the same.
            if kind == "coco" or (kind == "json" and split_of(found)[0] in KNOWN_TASKS):
                files.append(_File(found, *_task_split(path, found)))
            else:
                ignored.append(Notice("ignored", self._show(fs, found), "JSON that is not a "
                                      "COCO annotation file" if kind == "json" else
                                      "not a COCO annotation file or an image"))
        # No file found reads nothing: the run then says what the folder holds instead
        # (clarifai_connect.unread), and which format it looks like.
        return files, path, ignored

    def _show(self, fs: Any, path: str) -> str:
        return display_uri(fs.unstrip_protocol(path) if "://" in self.uri else path)

    def _uri(self, fs: Any, path: str) -> str:
        return fs.unstrip_protocol(path) if "://" in self.uri else path

    def _read_split(self, fs: Any, root: str, split: str, members: list[_File],
                    seen_ids: dict[str, str]) -> Iterator[ReadItem]:
        images: dict[str, _Image] = {}
        with AnnotationGroups(self.memory_annotations, self.spill_dir) as groups:
            for index, item in enumerate(members):
                yield from self._scan_file(fs, index, item, images, groups)
            locate = self._locator(fs, root, split, images, posixpath.dirname(members[0].path))
            for key, anns in groups.groups(list(images)):
                yield from self._record(fs, split, key, images[key],
                                        [marshal.loads(a) for a in anns], members, locate,
                                        seen_ids)

    def _scan_file(self, fs: Any, index: int, item: _File, images: dict[str, _Image],
                   groups: AnnotationGroups) -> Iterator[ReadItem]:
        shown = self._show(fs, item.path)
        try:
            local, temporary = self._local_copy(fs, item.path)
        except OSError as exc:
            yield Problem(shown, f"cannot read: {exc}")
            return
        ids: dict[Any, str] = {}
        broken = False
        found = 0
        try:
            deferred = _Deferred()
            for wanted in (deferred.first_pass, deferred.second_pass):
                if wanted == deferred.second_pass and not deferred.waiting:
                    break
                with open(local, "rb") as raw:
                    try:
                        for section, obj in SectionReader(raw).items(SECTIONS, wanted):
                            found += 1
                            yield from self._take(section, obj, index, item, shown, ids,
                                                  images, groups)
                    except CocoSyntaxError as exc:
                        if not broken:  # every pass meets the same break: report it once
                            broken = True
                            yield Problem(shown, f"{exc}; items after that point were not read")
        finally:
            if temporary:
                os.unlink(local)
        if not found and not broken:
            # e.g. a results file (a bare list of detections): say so rather than read nothing
            yield Problem(shown, "no 'images', 'annotations' or 'categories' in this file: "
                          "not a COCO annotation file")

    def _take(self, section: str, obj: Any, index: int, item: _File, shown: str,
              ids: dict[Any, str], images: dict[str, _Image],
              groups: AnnotationGroups) -> Iterator[ReadItem]:
        """File one object of ``section``; a Problem for one that is broken."""
        if type(obj) is not dict and not isinstance(obj, Mapping):
            problem = Problem(shown, f"an item of '{section}' is not an object: {obj!r:.60}")
        elif section == "categories":
            problem = _take_category(obj, item, shown)
        elif section == "images":
            problem = _take_image(obj, index, shown, ids, images)
        else:
            problem = _take_annotation(obj, index, shown, ids, groups)
        if problem is not None:
            yield problem

    def _local_copy(self, fs: Any, path: str) -> tuple[str, bool]:
        if "file" in _protocols(fs):
            return path, False
        # One download instead of one per streaming pass; disk, not memory, holds it.
        fd, local = tempfile.mkstemp(prefix="coco-", suffix=".json", dir=self.spill_dir)
        try:
            with os.fdopen(fd, "wb") as out, fs.open(path, "rb") as remote:
                shutil.copyfileobj(remote, out, 1 << 20)
        except BaseException:
            os.unlink(local)
            raise
        return local, True

    # -- images --------------------------------------------------------------------------

    def _locator(self, fs: Any, root: str, split: str, images: dict[str, _Image],
                 folder: str):
        """How an image of the annotation files in ``folder`` is found (see the module)."""
        if self.image_root:
            base_fs, base = filesystem(self.image_root, self.storage_options)
            candidates = [base.rstrip("/")] + ([posixpath.join(base, split)] if split else [])
            fallback = candidates[0]
        else:
            base_fs = fs
            parent = posixpath.dirname(folder) if posixpath.basename(folder) == "annotations" \
                else folder
            candidates = [folder, posixpath.join(folder, "images")]
            for top in dict.fromkeys((parent, root)):
                candidates += ([posixpath.join(top, "images", split), posixpath.join(top, split)]
                               if split else [])
                candidates += [posixpath.join(top, n) for n in ("images", "JPEGImages", "data")]
                candidates.append(top)
            candidates = list(dict.fromkeys(candidates))
            # Where a missing image is looked for (and named when it is not there).
            fallback = posixpath.join(parent, "images", *([split] if split else []))
        # Probed with plain names only: one that climbs out (../) must not pick the folder.
        names = [i.file_name for i in images.values() if not _absolute(i.file_name)
                 and ".." not in i.file_name.replace("\\", "/").split("/")
                 and "%" not in i.file_name][:_PROBES]
        chosen, short = None, False
        for use_basename in (False, True):
            probes = [_basename(n) for n in names] if use_basename else names
            if use_basename and probes == names:
                break
            for candidate in candidates:
                if any(base_fs.exists(posixpath.join(candidate, n)) for n in probes):
                    chosen, short = candidate, use_basename
                    break
            if chosen is not None:
                break
        remote = "://" in (self.image_root or self.uri)

        def as_uri(path: str) -> str:
            return base_fs.unstrip_protocol(path) if remote else path

        # References stay inside the images folder the user named, else the dataset root.
        bound = as_uri(candidates[0] if self.image_root else root)

        def locate(image: _Image) -> str:
            """The checked URI of the image (ReferenceRefused when it points outside)."""
            if _absolute(image.file_name):
                return self.media_uri(image.file_name, bound)
            if image.url and (self.prefer_urls or chosen is None):
                return self.media_uri(image.url, bound)
            where = chosen if chosen is not None else fallback
            name = _basename(image.file_name) if short else image.file_name
            return self.media_uri(name, as_uri(where), root=bound)

        return locate

    def _record(self, fs: Any, split: str, key: str, image: _Image, anns: list[Any],
                members: list[_File], locate, seen_ids: dict[str, str]) -> Iterator[ReadItem]:
        name = image.file_name.replace("\\", "/").replace("/", "-")
        record_id = stable_id(f"{split}-{name}" if split else name)
        where = (f"{self._show(fs, members[image.file_index].path)}: image "
                 f"{image.image_id!r} ({image.file_name})")
        try:
            uri = locate(image)
        except ReferenceRefused as exc:
            yield Problem(where, str(exc), id=record_id)
            return
        if record_id in seen_ids:
            yield Problem(where, f"gives the input id '{record_id}' that "
                          f"{seen_ids[record_id]} already has", id=record_id)
            return
        seen_ids[record_id] = image.file_name
        width, height = image.width, image.height
        if (not width or not height) and any(needs_size(a) for _, a in anns):
            try:
                width, height = _image_size(uri, self.storage_options)
            except (OSError, ValueError) as exc:
                yield Problem(where, f"width/height are missing and the image header cannot "
                              f"be read: {exc}", id=record_id)
                return
        out = Converted()
        problems = []
        for index, ann in anns:
            try:
                convert_annotation(ann, task=members[index].task, record_id=record_id,
                                   categories=members[index].categories, width=width,
                                   height=height, include_boxes=self.include_boxes, out=out)
            except (RecordError, TypeError, ValueError) as exc:  # any malformed value
                problems.append(Problem(
                    f"{self._show(fs, members[index].path)}: annotation {ann.get('id')!r}",
                    f"{exc} (the rest of image {image.file_name} is kept)"))
        coco: dict[str, Any] = {"split": split, "file_name": image.file_name,
                                "image_id": image.image_id}
        if width and height:
            coco["width"], coco["height"] = width, height
        if image.url:
            coco["url"] = image.url
        if out.annotations:
            coco["annotations"] = out.annotations
        if out.captions:
            coco["captions"] = out.captions
        kind = kind_from_extension(uri) or "image"
        concepts = tuple(out.concepts.values())
        metadata = {"coco": coco}
        try:
            yield Record(id=record_id, media=Media(kind=kind, uri=uri,
                                                   storage_options=self.storage_options or None),
                         concepts=concepts, regions=tuple(out.regions), metadata=metadata,
                         source=where)
        except RecordError as exc:
            yield Problem(where, str(exc).removeprefix(f"{where}: "), id=record_id)
            yield from problems
            return
        for ann_id, repair in out.repairs:
            yield Notice("repaired", f"{where}: annotation {ann_id!r}", repair, id=record_id)
        yield from problems


class _Deferred:
    """Which ``annotations`` arrays of a file wait for a second pass: those met before any
    ``images`` (an annotation is filed under its image, which must be known by then)."""

    def __init__(self) -> None:
        self.waiting: set[int] = set()
        self._images = False
        self._counts = [0, 0]  # annotations arrays met in each pass

    def first_pass(self, section: str) -> bool:
        """Read ``section`` in the first pass? Not annotations before images."""
        self._images = self._images or section == "images"
        if section != "annotations":
            return True
        self._counts[0] += 1
        if not self._images:
            self.waiting.add(self._counts[0])
        return self._images

    def second_pass(self, section: str) -> bool:
        """Read ``section`` in the second pass? Only the annotations left by the first."""
        if section != "annotations":
            return False
        self._counts[1] += 1
        return self._counts[1] in self.waiting


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _task_split(root: str, path: str) -> tuple[str, str]:
    """``(task, split)`` of an annotation file: from its name (``instances_train.json``),
    else the split is its folder's (Roboflow's ``train/_annotations.coco.json``)."""
    task, split = split_of(path)
    if not split:
        split = split_from_parts(relative(root, posixpath.dirname(path)).split("/"))
    return task, split


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _absolute(name: str) -> bool:
    return "://" in name or name.startswith("/")


def _size(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not number > 0:
        return None
    return int(number) if number.is_integer() else number


def _image_size(uri: str, storage_options: Mapping[str, Any]) -> tuple[float, float]:
    """Width and height from the image header (Pillow reads only the first bytes it needs)."""
    import fsspec
    from PIL import Image, UnidentifiedImageError

    try:
        # A small block: on object stores only the first bytes are fetched, not 50 MB.
        with fsspec.open(uri, "rb", block_size=1 << 16, **dict(storage_options or {})) as handle:
            with Image.open(handle) as image:
                width, height = image.size
    except UnidentifiedImageError as exc:
        raise ValueError(str(exc)) from exc
    return width, height


@hookimpl
def register_connectors(register: Any) -> None:
    """Register the coco connector."""
    register(CocoReader)


@hookimpl
def detect_format(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    """Claim COCO task files (``instances_*.json``…) and folders with ``annotations/``."""
    return CocoReader.name if CocoReader.detect(uri, storage_options) else None


def _take_category(obj: Mapping, item: _File, shown: str) -> Problem | None:
    """Keep a category of the file by its id."""
    try:
        if not isinstance(obj.get("id"), (int, str)):
            raise RecordError("a category needs an 'id' (number or text)")
        item.categories[obj["id"]] = Category.from_json(obj)
    except (RecordError, TypeError, ValueError) as exc:
        return Problem(f"{shown}: category {obj.get('id')!r}", str(exc))
    return None


def _take_image(obj: Mapping, index: int, shown: str, ids: dict[Any, str],
                images: dict[str, _Image]) -> Problem | None:
    """Keep an image: ``ids`` maps its id to its file name, the key of ``images`` (an image
    listed by several files of a split is one record)."""
    image_id, file_name = obj.get("id"), obj.get("file_name")
    where = f"{shown}: image {image_id!r}"
    if not isinstance(image_id, (int, str)) or not isinstance(file_name, str) \
            or not file_name:
        return Problem(where, "an image needs an 'id' (number or text) and a 'file_name'")
    if image_id in ids:
        return Problem(where, "image id appears twice in the file")
    ids[image_id] = file_name
    image = images.get(file_name)
    if image is None:
        images[file_name] = _Image(
            file_name=file_name, width=_size(obj.get("width")),
            height=_size(obj.get("height")),
            url=str(obj.get("coco_url") or obj.get("flickr_url") or ""),
            image_id=image_id, file_index=index)
    elif image.width is None and _size(obj.get("width")):
        image.width, image.height = _size(obj.get("width")), _size(obj.get("height"))
    return None


def _take_annotation(obj: Mapping, index: int, shown: str, ids: dict[Any, str],
                     groups: AnnotationGroups) -> Problem | None:
    """Group an annotation under its image's file name (it needs an image of the file)."""
    image_id = obj.get("image_id")
    image_key = ids.get(image_id) if isinstance(image_id, (int, str)) else None
    if image_key is None:
        return Problem(f"{shown}: annotation {obj.get('id')!r}",
                       f"image_id {obj.get('image_id')!r} is not in the file's images")
    # Held as bytes: one object the garbage collector never scans, where the parsed dict is
    # dozens (measured: ~10 s of GC saved per 1M). marshal: plain JSON values, made and read
    # back in this process, faster than pickle both ways.
    groups.add(image_key, marshal.dumps((index, obj)))
    return None
