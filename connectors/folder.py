"""The folder connector: media files in folders, labelled by the folders they sit in.

ImageNet-style class folders (``cat/1.jpg`` → concept ``cat``), nested class folders,
unlabelled media (files at the top level), and text folders (``*.txt`` become text inputs)
all read the same way. A file's kind comes from its extension, or from its first bytes
when the extension says nothing. The tree is walked one directory at a time (memory
bounded by the largest directory), in sorted order; a file that is not media, is empty or
cannot be read becomes a Problem. Hidden files and folders (``.name``) are not items; a
symlink is an item only when it points inside the folder (the folder's own symlinks are
not followed into other folders).
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from clarifai_connect.connector import (
    Reader,
    ReadItem,
    ReferenceRefused,
    display_uri,
    filesystem,
)
from clarifai_connect.engine.shards import ShardsByPosition
from clarifai_connect.errors import ConfigError, SourceError
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.mediatypes import SNIFF_BYTES, kind_from_extension, sniff_kind
from clarifai_connect.records import Concept, Media, Problem, Record, RecordError, fingerprint_of
from clarifai_connect.records import stable_id as make_id

from .folder_walk import local_walk
from .tabular import file_facts

LABEL_MODES = ("path", "leaf", "each", "none")
SNIFF_MODES = ("unknown", "always", "never")
ID_MODES = ("path", "stem")


class FolderReader(ShardsByPosition, Reader):
    """Reads a folder tree of media files, with labels from folder names.

    Parameters:
        labels: ``path`` (one concept per file from its folder path relative to the root, ``a/b``),
            ``leaf`` (the innermost folder's name), ``each`` (one concept per folder level) or
            ``none``.
        sniff: read the first bytes of files whose extension is ``unknown`` (default), of ``always``
            every file (catches misnamed files), or ``never``.
        ignore: glob patterns of relative paths that are not items (e.g. ``*.json``).
        id_from: ``path`` (the relative path; unique) or ``stem`` (the file name without extension;
            readable, but must be unique in the tree).
    """

    name = "folder"
    description = ("Folders of image/video/audio/text files; labels from (nested) folder "
                   "names, files at the top are unlabelled")
    looks_for = "image, video, audio and text files, labelled by the folders they sit in"

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 labels: str = "path", sniff: str = "unknown", ignore: tuple[str, ...] = (),
                 id_from: str = "path") -> None:
        super().__init__(uri, storage_options=storage_options)
        for option, value, allowed in (("labels", labels, LABEL_MODES),
                                       ("sniff", sniff, SNIFF_MODES),
                                       ("id_from", id_from, ID_MODES)):
            if value not in allowed:
                raise ConfigError(f"folder option {option}='{value}' is not one of "
                                  f"{', '.join(allowed)}")
        self.labels = labels
        self.sniff = sniff
        self.ignore = (ignore,) if isinstance(ignore, str) else tuple(ignore)
        self.id_from = id_from

    @classmethod
    def detect(cls, uri: str, storage_options: Mapping[str, Any] | None = None) -> bool:
        """Any directory (the fallback format: other formats are asked first)."""
        try:
            fs, path = filesystem(uri, storage_options)
            return bool(fs.isdir(path))
        except (OSError, SourceError):
            return False

    @classmethod
    def detect_reason(cls, uri: str, storage_options: Mapping[str, Any] | None = None
                      ) -> str | None:
        """Any folder: the fallback when no other format claims it."""
        return "a folder no other format claims (the fallback)" if cls.detect(
            uri, storage_options) else None

    def __iter__(self) -> Iterator[ReadItem]:
        from fsspec.implementations.local import LocalFileSystem

        fs, root = filesystem(self.uri, self.storage_options)
        root = root.rstrip("/") or "/"
        try:
            info = fs.info(root)
        except FileNotFoundError:
            raise SourceError(f"{display_uri(self.uri)} does not exist") from None
        except OSError as exc:
            raise SourceError(f"cannot open {display_uri(self.uri)}: {exc}") from None
        if info.get("type") != "directory":
            # A single file is a folder of one, unlabelled.
            yield self._item(fs, posixpath.dirname(root), info["name"], info)
            return
        errors: list[OSError] = []
        walk = local_walk(root, errors.append) if isinstance(fs, LocalFileSystem) else \
            fs.walk(root, detail=True, on_error=errors.append)
        for directory, dirs, files in walk:
            while errors:
                error = errors.pop(0)
                where = getattr(error, "filename", None) or directory
                yield Problem(self._display(fs, str(where)), f"cannot list the folder: {error}")
            kept = sorted((name, d) for name, d in dirs.items() if not self._skipped(
                fs, root, name, d))
            dirs.clear()
            dirs.update(kept)  # walk() descends into what is left, in this order
            for name in sorted(files):
                entry = files[name]
                if not self._skipped(fs, root, name, entry):
                    yield self._item(fs, root, entry["name"], entry)
        for error in errors:
            yield Problem(display_uri(self.uri), f"cannot list a folder: {error}")

    def _skipped(self, fs: Any, root: str, name: str, entry: Mapping[str, Any]) -> bool:
        if name.startswith("."):
            return True
        if not self.ignore:
            return False
        rel = _relative(root, entry["name"])
        return any(fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(name, pattern)
                   for pattern in self.ignore)

    def _item(self, fs: Any, root: str, path: str, info: Mapping[str, Any]) -> ReadItem:
        rel = _relative(root, path)
        item = self._read_item(fs, root, path, rel, info)
        if isinstance(item, Problem) and not item.id:  # the id it would have had
            try:
                item = replace(item, id=make_id(self._id_key(rel)))
            except RecordError:
                pass
        return item

    def _id_key(self, rel: str) -> str:
        return rel if self.id_from == "path" else posixpath.splitext(posixpath.basename(rel))[0]

    def _read_item(self, fs: Any, root: str, path: str, rel: str,
                   info: Mapping[str, Any]) -> ReadItem:
        uri = self._uri(fs, path)
        source = display_uri(uri)
        if info.get("islink"):
            # A symlink may point anywhere: it is an item only when its target is inside.
            try:
                self.media_uri(rel, self._uri(fs, root))
            except ReferenceRefused as exc:
                return Problem(source, f"a symlink: {exc}")
        if info.get("size") == 0:
            return Problem(source, "empty file")
        named = kind_from_extension(path)
        kind = named
        if self.sniff == "always" or (named is None and self.sniff == "unknown"):
            try:
                with fs.open(path, "rb") as handle:
                    kind = sniff_kind(handle.read(SNIFF_BYTES))
            except OSError as exc:
                return Problem(source, f"cannot read: {exc}")
            if named and kind != named:
                found = f"looks like {kind}" if kind else "is not recognisable"
                return Problem(source, f"named like {named} but the content {found}")
        extension = posixpath.splitext(path)[1] if kind == "text" and named is None else ""
        if extension:
            # A sidecar (.json, .xml, .csv) reads as text but is rarely meant as an input.
            return Problem(source, f"'{extension}' is not a media extension; rename it to .txt "
                                   f"to make it a text input, or skip it with ignore")
        if kind is None:
            return Problem(source, "not a recognised image, video, audio or text file")
        try:
            concepts = _folder_concepts(self.labels, rel.rpartition("/")[0])
            # The parts are of the record's types already (concepts checked when built).
            return Record.from_parts(
                make_id(self._id_key(rel)), Media(kind, uri,
                                                  storage_options=self.storage_options or None),
                concepts, source=source,
                fingerprint=fingerprint_of(rel, kind, file_facts(info), _ids(concepts)))
        except RecordError as exc:
            return Problem(source, str(exc).removeprefix(f"{source}: "))

    def _uri(self, fs: Any, path: str) -> str:
        if "://" in self.uri:
            return fs.unstrip_protocol(path)
        return path

    def _display(self, fs: Any, path: str) -> str:
        return display_uri(self._uri(fs, path))


@functools.lru_cache(maxsize=1024)
def _folder_concepts(labels: str, folder: str) -> tuple[Concept, ...]:
    """The concepts of the files in ``folder`` (relative to the root) under ``labels``:
    the same for every file of a folder, so built once per folder."""
    folders = [p for p in folder.split("/") if p]
    if not folders or labels == "none":
        return ()
    if labels == "path":
        return (Concept.named("/".join(folders)),)
    if labels == "leaf":
        return (Concept.named(folders[-1]),)
    return tuple({c.id: c for c in map(Concept.named, folders)}.values())


@functools.lru_cache(maxsize=1024)
def _ids(concepts: tuple[Concept, ...]) -> tuple[str, ...]:
    return tuple(c.id for c in concepts)  # a tuple encodes as the JSON list it was


def _relative(root: str, path: str) -> str:
    root = root.rstrip("/")
    if root and path.startswith(root + "/"):
        return path[len(root) + 1:]
    return path.lstrip("/")


@hookimpl
def register_connectors(register: Any) -> None:
    """Register the folder connector."""
    register(FolderReader)


@hookimpl(trylast=True)
def detect_format(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    """Claim any directory, after every other format had its say."""
    return FolderReader.name if FolderReader.detect(uri, storage_options) else None
