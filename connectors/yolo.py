"""The YOLO connector: Ultralytics (YOLOv5/v8/11) datasets and the older Darknet layouts.

Layouts read (the source is the dataset folder or its YAML file):

- ``data.yaml`` (or ``dataset.yaml``, or the YAML given): ``path`` (the root; an absolute
  path from another machine falls back to the YAML's folder), ``train`` / ``val`` / ``test``
  each a folder of images, a ``.txt`` list of image paths or a list of those (Roboflow's
  ``../train/images`` is read as ``train/images``), ``names`` as a list or
  ``{index: name}`` (or only ``nc``);
- without YAML: ``images/<split>/`` + ``labels/<split>/`` (CVAT, FiftyOne), ``<split>/images/``
  + ``<split>/labels/`` (Roboflow), ``images/`` + ``labels/`` + ``classes.txt`` (Label Studio),
  and label files beside their images with ``classes.txt`` / ``obj.names`` (Darknet,
  FiftyOne's YOLOv4) or with no names at all (the official SDK's example data): the class
  index is then the concept.

An image's label file follows Ultralytics' rule: the last ``images`` folder of its path
becomes ``labels`` and the extension ``.txt``; with no ``images`` folder it sits beside the
image. Lines ``cls cx cy w h`` (normalized) are boxes, ``cls x1 y1 x2 y2 …`` (three points
or more) polygons. An image with no label file or an empty one is a negative (no regions).
A broken line is a Problem naming ``file:line`` and the rest of the image is kept; a box
that is unambiguous but invalid (negative size, past the edge) is repaired and reported.
Files in the image folders and at the root that are none of these are counted as ignored.
"""

from __future__ import annotations

import posixpath
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
from clarifai_connect.records import (
    Box,
    Concept,
    Media,
    Notice,
    Point,
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

__all__ = ["YoloReader", "label_path"]

YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
NAME_FILES = ("classes.txt", "obj.names", "labels/classes.txt")
# Files of a YOLO dataset that are not items and not worth a notice.
KNOWN_FILES = frozenset({*YAML_NAMES, "classes.txt", "obj.names", "obj.data", "notes.json",
                         "train.txt", "val.txt", "valid.txt", "test.txt", "images.txt",
                         "dataset_meta.json"})
SPLIT_KEYS = ("train", "val", "test")
MAX_YAML_BYTES = 1 << 20
MAX_LABEL_BYTES = 16 << 20
# Normalized coordinates this close past the edge are rounding, clamped without a notice.
TOLERANCE = 1e-4


def label_path(rel_image: str) -> str:
    """The label file of an image (paths relative to the dataset root), Ultralytics' rule."""
    parts = rel_image.split("/")
    stem = posixpath.splitext(parts[-1])[0] + ".txt"
    folders = parts[:-1]
    for index in range(len(folders) - 1, -1, -1):
        if folders[index] == "images":
            folders[index] = "labels"
            break
    return "/".join([*folders, stem])


@dataclass
class _Source:
    """Where one split's images are: folders to walk and ``.txt`` lists to read."""

    split: str
    folders: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    # A folder of the "images/" layout: the split is the first subfolder below it.
    split_below: bool = False


class YoloReader(DetectsByReason, ShardsByPosition, Reader):
    """Reads a YOLO dataset (Ultralytics or Darknet layout) into records with box and
    polygon regions.

    Parameters:
        data: the YAML file, relative to the source folder (default: found).
        names: class names in index order, when the dataset has none (default: the class index is
            the concept's name).
    """

    name = "yolo"
    description = ("YOLO / Ultralytics: data.yaml, images/<split>/ + labels/<split>/*.txt "
                   "(boxes, polygons), classes.txt layouts")
    looks_for = ("images with an image extension under data.yaml's train/val/test, "
                 "images/, <split>/images/, or beside their label .txt files")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 data: str = "", names: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(uri, storage_options=storage_options)
        self.data = str(data or "")
        self.names = tuple(str(n) for n in (names or ()))

    # -- detection -----------------------------------------------------------------------

    @classmethod
    def detect_reason(cls, uri: str, storage_options: Mapping[str, Any] | None = None
                      ) -> str | None:
        """Why ``uri`` is a YOLO dataset, or None: a YAML with ``names``/``nc``, an
        ``images/`` + ``labels/`` pair, or label files beside images."""
        try:
            fs, path = filesystem(uri, storage_options)
            path = path.rstrip("/")
            if path.lower().endswith((".yaml", ".yml")):
                return "a YAML file with names and train/val" if _yaml_doc(fs, path) else None
            if not fs.isdir(path):
                return None
            for name in YAML_NAMES:
                if _yaml_doc(fs, posixpath.join(path, name)):
                    return f"{name} with names and train/val"
            top = _subfolders(fs, path)
            if "images" in top and "labels" in top:
                return "images/ and labels/ folders"
            for sub in top[:DETECT_FOLDERS]:
                inner = _subfolders(fs, posixpath.join(path, sub))
                if "images" in inner and "labels" in inner:
                    return f"{sub}/images/ and {sub}/labels/ folders"
            for folder, _, files in walk_bounded(fs, path, 2, max_folders=DETECT_FOLDERS):
                found = _beside_label(fs, folder, files)
                if found:
                    return f"YOLO label files beside images ({relative(path, found)})"
        except (OSError, SourceError, ValueError):
            return None
        return None

    # -- reading -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ReadItem]:
        fs, path = filesystem(self.uri, self.storage_options)
        path = path.rstrip("/") or "/"
        if not fs.exists(path):
            raise SourceError(f"{display_uri(self.uri)} does not exist")
        self._fs = fs
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        self._local = "file" in protocols
        yaml_path = ""
        if path.lower().endswith((".yaml", ".yml")):
            yaml_path, root = path, posixpath.dirname(path)
        else:
            root = path
            if self.data:
                yaml_path = posixpath.join(root, self.data)
            else:
                yaml_path = next((p for p in (posixpath.join(root, n) for n in YAML_NAMES)
                                  if fs.exists(p)), "")
        self._root = root
        problems: list[Problem] = []
        names: dict[int, str] = {}
        lists: set[str] = set()
        if yaml_path:
            doc = _yaml_doc(fs, yaml_path, problems=problems, show=self._show(yaml_path))
            if doc is None:
                yield from problems
                raise SourceError(f"{self._show(yaml_path)} is not a YOLO data YAML "
                                  "(it needs names or nc, and train or val)")
            names = _names(doc.get("names"), doc.get("nc"))
            sources = self._yaml_sources(doc, yaml_path, problems)
            lists = {p for s in sources for p in s.lists}
        else:
            sources = self._guessed_sources()
            names = self._name_file()
        if self.names and not names:
            names = dict(enumerate(self.names))
        yield from problems
        walked_root = any(folder == root for s in sources for folder in s.folders)
        if not walked_root:
            yield from self._root_files(lists, {posixpath.basename(yaml_path)})
        seen: set[str] = set()
        for source in sources:
            for folder in source.folders:
                yield from self._walk(folder, source, names, seen)
            for list_path in source.lists:
                yield from self._listed(list_path, source, names, seen)

    def _show(self, path: str) -> str:
        return display_uri(self._uri(path))

    def _uri(self, path: str) -> str:
        return self._fs.unstrip_protocol(path) if "://" in self.uri else path

    # -- where the images are ------------------------------------------------------------

    def _yaml_sources(self, doc: Mapping[str, Any], yaml_path: str,
                      problems: list[Problem]) -> list[_Source]:
        fs, folder = self._fs, posixpath.dirname(yaml_path)
        base = folder
        given = doc.get("path")
        if isinstance(given, str) and given.strip() and not given.startswith("/"):
            candidate = posixpath.normpath(posixpath.join(folder, given))
            if _inside(self._root, candidate) and fs.isdir(candidate):
                base = candidate
        sources = []
        for key in SPLIT_KEYS:
            entries = doc.get(key)
            if not entries:
                continue
            source = _Source(split=key)
            for entry in entries if isinstance(entries, list) else [entries]:
                found = self._entry(str(entry), base, folder)
                if found is None:
                    problems.append(Problem(f"{self._show(yaml_path)}: {key}",
                                            f"{entry!r} is not a folder or .txt list inside "
                                            f"{self._show(self._root)}"))
                elif fs.isdir(found):
                    source.folders.append(found)
                else:
                    source.lists.append(found)
            sources.append(source)
        return sources

    def _entry(self, entry: str, base: str, folder: str) -> str | None:
        """A ``train``/``val``/``test`` entry as a path inside the root, or None."""
        entry = entry.strip().replace("\\", "/")
        tries = [posixpath.join(base, entry), posixpath.join(folder, entry)]
        stripped = entry
        while stripped.startswith("../"):  # Roboflow: paths relative to a folder above
            stripped = stripped[3:]
        if stripped != entry:
            tries += [posixpath.join(base, stripped), posixpath.join(folder, stripped)]
        for candidate in tries:
            candidate = posixpath.normpath(candidate)
            if _inside(self._root, candidate) and self._fs.exists(candidate):
                return candidate
        return None

    def _guessed_sources(self) -> list[_Source]:
        fs, root = self._fs, self._root
        top = _subfolders(fs, root)
        if "images" in top:
            return [_Source(split="", folders=[posixpath.join(root, "images")],
                            split_below=True)]
        split_folders = [sub for sub in top
                         if fs.isdir(posixpath.join(root, sub, "images"))]
        if split_folders:
            return [_Source(split=sub, folders=[posixpath.join(root, sub, "images")])
                    for sub in split_folders]
        return [_Source(split="", folders=[root])]

    def _name_file(self) -> dict[int, str]:
        for name in NAME_FILES:
            path = posixpath.join(self._root, name)
            try:
                with self._fs.open(path, "rb") as handle:
                    lines = handle.read(MAX_YAML_BYTES).decode("utf-8-sig", "replace")
            except (FileNotFoundError, IsADirectoryError):
                continue
            names = [line.strip() for line in lines.splitlines()]
            return {i: n for i, n in enumerate(names) if n}
        return {}

    def _root_files(self, lists: set[str], known: set[str]) -> Iterator[Notice]:
        try:
            entries = self._fs.ls(self._root, detail=True)
        except OSError:
            return
        for entry in sorted(entries, key=lambda e: e["name"]):
            name = posixpath.basename(entry["name"])
            if entry.get("type") == "directory" or name in KNOWN_FILES or name in known \
                    or entry["name"] in lists:
                continue
            yield Notice("ignored", self._show(entry["name"]), "not part of a YOLO dataset")

    # -- images --------------------------------------------------------------------------

    def _walk(self, folder: str, source: _Source, names: dict[int, str],
              seen: set[str]) -> Iterator[ReadItem]:
        beside = folder == self._root or "images" not in relative(self._root, folder
                                                                    ).split("/")
        root_uri = self._uri(self._root)
        for directory, dirs, files in self._fs.walk(folder, detail=True):
            kept = sorted((n, d) for n, d in dirs.items() if not n.startswith(".")
                          and not (beside and n == "labels" and directory == folder))
            dirs.clear()
            dirs.update(kept)  # walk() descends into what is left, in this order
            try:  # a symlinked folder may lead outside the dataset: checked once per folder
                self.media_uri(relative(self._root, directory) or ".", root_uri)
                inside = True
            except ReferenceRefused:
                inside = False
            stems = {posixpath.splitext(f)[0] for f in files if is_image(f)}
            for name in sorted(files):
                path = posixpath.join(directory, name)
                if is_image(name):
                    split = source.split
                    if source.split_below:
                        inner = relative(folder, directory)
                        split = inner.split("/")[0] if inner else ""
                    elif not split and beside:
                        split = split_from_parts(relative(self._root, directory).split("/"))
                    # A file that is no symlink in a folder inside the root stays inside.
                    checked = inside and not files[name].get("islink")
                    yield from self._image(path, split, relative(folder, path), names, seen,
                                           checked)
                elif beside and name.lower().endswith(".txt") and \
                        posixpath.splitext(name)[0] in stems:
                    continue  # the label file of the image beside it
                elif directory == self._root and name in KNOWN_FILES:
                    continue
                else:
                    yield Notice("ignored", self._show(path), "not an image or a YOLO label "
                                 "file")

    def _listed(self, list_path: str, source: _Source, names: dict[int, str],
                seen: set[str]) -> Iterator[ReadItem]:
        shown = self._show(list_path)
        try:
            with self._fs.open(list_path, "rb") as handle:
                text = handle.read().decode("utf-8-sig", "replace")
        except OSError as exc:
            yield Problem(shown, f"cannot read: {exc}")
            return
        folder = posixpath.dirname(list_path)
        for number, line in enumerate(text.splitlines(), 1):
            ref = line.strip()
            if not ref or ref.startswith("#"):
                continue
            try:
                path = self._reference(ref, folder)
            except ReferenceRefused as exc:
                yield Problem(f"{shown}:{number}", str(exc))
                continue
            parts = relative(self._root, path).split("/")
            if "images" in parts:  # images/train/a.jpg: the key is train/a.jpg
                parts.remove("images")
            yield from self._image(path, source.split, "/".join(parts), names, seen)

    def _reference(self, ref: str, folder: str) -> str:
        """The path of an image named in a ``.txt`` list (``./x`` relative to the list's
        folder, anything else to the root), checked by :meth:`media_uri` to stay inside the
        root; ReferenceRefused otherwise (a URL too: its label file has no place)."""
        base = folder if ref.startswith("./") else self._root
        uri = self.media_uri(ref, self._uri(base), root=self._uri(self._root))
        path = self._fs._strip_protocol(uri)
        if "://" in uri and not uri.startswith(self._fs.unstrip_protocol(self._root)):
            raise ReferenceRefused(f"media reference {ref!r} is a URL: a YOLO list names "
                                   "files of the dataset")
        return path

    def _image(self, path: str, split: str, key: str, names: dict[int, str],
               seen: set[str], checked: bool = False) -> Iterator[ReadItem]:
        """One image's record. ``key`` is its path below its split's folder, so that
        ``images/train/a.jpg`` and Roboflow's ``train/images/a.jpg`` are both ``train-a.jpg``
        (the id survives a trip through the yolo exporter). ``checked``: the path is known
        to stay inside the root (else :meth:`media_uri` checks it)."""
        rel = relative(self._root, path)
        where = self._show(path)
        if path in seen:  # data.yaml may list a folder twice (val: images/train)
            yield Notice("ignored", where, f"listed again for {split or 'another split'}: "
                         "read once, with its first split")
            return
        seen.add(path)
        key_parts = key.split("/")
        if split and key_parts[0] != split:
            key_parts.insert(0, split)
        try:
            record_id = stable_id("-".join(key_parts))
            uri = self._uri(path) if checked else self.media_uri(rel, self._uri(self._root))
        except (RecordError, ReferenceRefused) as exc:
            yield Problem(where, str(exc))
            return
        if record_id in seen:
            yield Problem(where, f"gives the input id '{record_id}' that another image "
                          "already has", id=record_id)
            return
        seen.add(record_id)
        label_rel = label_path(rel)
        label = posixpath.join(self._root, label_rel)
        regions: list[Region] = []
        notes: list[ReadItem] = []
        classes: dict[str, int] = {}
        labelled = True
        try:
            # The builtin open on the local disk: a label file is one small read, and
            # fsspec's file object costs more than the read itself.
            with (open(label, "rb") if self._local else self._fs.open(label, "rb")) as handle:
                data = handle.read(MAX_LABEL_BYTES + 1)
        except FileNotFoundError:
            data, labelled = b"", False
        except OSError as exc:
            yield Problem(self._show(label), f"cannot read: {exc}", id=record_id)
            return
        if len(data) > MAX_LABEL_BYTES:
            yield Problem(self._show(label), f"larger than {MAX_LABEL_BYTES >> 20} MB: not a "
                          "YOLO label file", id=record_id)
            return
        shown_label = self._show(label)
        for number, line in enumerate(data.decode("utf-8-sig", "replace").splitlines(), 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            at = f"{shown_label}:{number}"
            try:
                region, name, index, repairs = _region(fields, names,
                                                       stable_id(f"{record_id}-{number}"))
            except RecordError as exc:
                notes.append(Problem(at, f"{exc} (the rest of {rel} is kept)", id=record_id))
                continue
            regions.append(region)
            classes.setdefault(name, index)
            notes.extend(Notice("repaired", at, r, id=record_id) for r in repairs)
        metadata: dict[str, Any] = {"split": split, "path": rel}
        if labelled:
            metadata["labels"] = label_rel
        if classes:
            metadata["classes"] = classes
        try:
            yield Record(id=record_id, media=Media(kind="image", uri=uri,
                                                   storage_options=self.storage_options or None),
                         regions=tuple(regions), metadata={"yolo": metadata}, source=where)
        except RecordError as exc:
            yield Problem(where, str(exc).removeprefix(f"{where}: "), id=record_id)
            return
        yield from notes


def _region(fields: list[str], names: Mapping[int, str], region_id: str
            ) -> tuple[Region, str, int, list[str]]:
    """One label line → (region, class name, class index, repairs); RecordError if broken."""
    index = _class_index(fields[0])
    if names and index not in names:
        raise RecordError(f"class {index} is not in the dataset's names (0..{len(names) - 1})")
    name = names.get(index, str(index))
    concept = Concept.named(name)
    values = fields[1:]
    if len(values) == 4:
        try:
            cx, cy, w, h = (float(v) for v in values)
        except ValueError as exc:
            raise RecordError(f"box {' '.join(values)!r} has a value that is not a number") \
                from exc
        left, top, right, bottom = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        if 0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0:  # the usual case
            box = Box(top_row=top, left_col=left, bottom_row=bottom, right_col=right)
            return Region(box=box, concepts=(concept,), id=region_id), name, index, []
        box, repairs = repair_box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 1.0, 1.0,
                                  what=f"box {' '.join(values)}", tolerance=TOLERANCE,
                                  names=("left", "top", "right", "bottom"))
        return Region(box=box, concepts=(concept,), id=region_id), name, index, repairs
    if len(values) < 6 or len(values) % 2:
        raise RecordError(f"expected 'cls cx cy w h' or 'cls x1 y1 x2 y2 x3 y3 …', got "
                          f"{len(fields)} values")
    try:
        coords = [float(v) for v in values]
    except ValueError as exc:
        raise RecordError("a polygon has a value that is not a number") from exc
    if any(c != c for c in coords):
        raise RecordError("a polygon has a value that is not a number")
    xs, ys = coords[0::2], coords[1::2]
    repairs = []
    if min(xs) < -TOLERANCE or min(ys) < -TOLERANCE or max(xs) > 1 + TOLERANCE \
            or max(ys) > 1 + TOLERANCE:
        if max(xs) <= 0 or min(xs) >= 1 or max(ys) <= 0 or min(ys) >= 1:
            raise RecordError("polygon is wholly outside the image")
        repairs.append("polygon: points past the image's edge clipped")
    points = tuple(Point(row=min(max(y, 0.0), 1.0), col=min(max(x, 0.0), 1.0))
                   for x, y in zip(xs, ys, strict=True))
    return Region(polygon=points, concepts=(concept,), id=region_id), name, index, repairs


def _class_index(text: str) -> int:
    """A line's class index: ``3``, or ``3.0`` as some converters write it."""
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not number.is_integer() or number < 0:
        raise RecordError(f"class {text!r} is not a class index")
    return int(number)


def _names(names: Any, count: Any) -> dict[int, str]:
    if isinstance(names, Mapping):
        out = {}
        for key, value in names.items():
            try:
                out[int(key)] = str(value)
            except (TypeError, ValueError):
                continue
        return out
    if isinstance(names, (list, tuple)):
        return {i: str(n) for i, n in enumerate(names)}
    if isinstance(count, int) and count > 0:
        return {i: str(i) for i in range(count)}
    return {}


def _yaml_doc(fs: Any, path: str, problems: list[Problem] | None = None,
              show: str = "") -> dict[str, Any] | None:
    """The YAML at ``path`` when it is a YOLO data file (``names`` or ``nc``, and a split)."""
    import yaml

    try:
        with fs.open(path, "rb") as handle:
            text = handle.read(MAX_YAML_BYTES)
        doc = yaml.safe_load(text)
    except (FileNotFoundError, IsADirectoryError):
        return None
    except (OSError, yaml.YAMLError) as exc:
        if problems is not None:
            problems.append(Problem(show or path, f"not a readable YAML file: {exc}"))
        return None
    if not isinstance(doc, dict) or not ("names" in doc or "nc" in doc):
        return None
    if not any(doc.get(k) for k in SPLIT_KEYS):
        return None
    return doc


def _subfolders(fs: Any, path: str) -> list[str]:
    try:
        return sorted(posixpath.basename(e["name"].rstrip("/"))
                      for e in fs.ls(path, detail=True) if e.get("type") == "directory")
    except (OSError, ValueError):
        return []


def _beside_label(fs: Any, folder: str, names: list[str]) -> str | None:
    """A ``.txt`` among the files ``names`` of ``folder``, beside an image of the same
    name, whose first line reads as a YOLO label; or None."""
    files = [posixpath.join(folder, n) for n in names]
    stems = {posixpath.splitext(f)[0] for f in files if is_image(f)}
    for path in files[:2000]:
        if path.lower().endswith(".txt") and posixpath.splitext(path)[0] in stems:
            try:
                with fs.open(path, "rb") as handle:
                    first = handle.read(4096).decode("utf-8", "replace").strip().splitlines()
            except OSError:
                return None
            if not first:
                continue  # an empty label file (a negative) says nothing: try the next
            fields = first[0].split()
            try:
                ok = (len(fields) >= 5 and len(fields) % 2 == 1 and int(fields[0]) >= 0
                      and all(-0.01 <= float(v) <= 1.01 for v in fields[1:]))
            except ValueError:
                ok = False
            return path if ok else None
    return None


def _inside(root: str, path: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/") or root == ""


@hookimpl
def register_connectors(register: Any) -> None:
    """Register the yolo connector."""
    register(YoloReader)


@hookimpl
def detect_format(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    """Claim YOLO datasets (data.yaml, images/ + labels/, labels beside images)."""
    return YoloReader.name if YoloReader.detect(uri, storage_options) else None
