"""The connector contract: readers turn a source into records, writers turn records into files.

A :class:`Reader` is built from a source URI (any fsspec URL), ``storage_options`` passed
through to fsspec, and keyword options of its own; iterating it lazily yields
:class:`~clarifai_connect.records.Record` for good items and
:class:`~clarifai_connect.records.Problem` for broken ones, and goes on after a problem.
A :class:`Writer` is built from a destination URI the same way and is fed records.
Plugins register reader and writer classes through the hooks in :mod:`clarifai_connect.hookspecs`.

A source never makes a run read outside itself: every media reference found in a dataset
file (a COCO ``file_name``, a CSV path, a symlink in a folder…) goes through
:func:`media_uri` (``Reader.media_uri`` in a reader), which refuses what points elsewhere.
"""

from __future__ import annotations

import errno
import functools
import os.path
import posixpath
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import unquote

from .errors import ConfigError, SourceError
from .records import Notice, Problem, Record, RecordError

__all__ = ["Reader", "Writer", "ReadItem", "ReferenceRefused", "allowed_folders", "filesystem",
           "media_uri", "resolve_uri", "display_uri"]


# Notices (ignored files, repaired values) come beside records and problems, never instead.
ReadItem = Record | Problem | Notice

def filesystem(uri: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem and the path within it for ``uri`` (local paths included)."""
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(uri, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise SourceError(f"cannot open {display_uri(uri)}: {exc}") from None


def display_uri(uri: str) -> str:
    """``uri`` safe to show: any ``user:password@`` part of a URL is removed."""
    if "://" in uri and "@" in uri.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = uri.split("://", 1)
        host_part, _, path = rest.partition("/")
        return f"{scheme}://{host_part.rsplit('@', 1)[1]}/{path}"
    return uri


def resolve_uri(base_uri: str, ref: str) -> str:
    """Resolve ``ref`` (a URL, an absolute path or a path relative to the file ``base_uri``).

    ``https://…`` and other URLs are kept; a relative path is joined to the directory of
    ``base_uri`` keeping its protocol, so ``img/a.jpg`` in ``s3://b/data.csv`` becomes
    ``s3://b/img/a.jpg``.
    """
    if "://" in ref or ref.startswith("/"):
        return ref
    if "://" in base_uri:
        scheme, rest = base_uri.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join(posixpath.dirname(rest), ref))}"
    return os.path.normpath(os.path.join(os.path.dirname(base_uri), ref))


# -- media references ---------------------------------------------------------------------

#: URL schemes whose references are kept as URLs (remote media, fetched where they live).
REMOTE_SCHEMES = frozenset({"http", "https", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
_LOCAL_SCHEMES = frozenset({"", "file", "local"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]|^//|^\\\\")
MAX_NAME_BYTES = 255  # one path component (NAME_MAX on Linux and most filesystems)
MAX_PATH_BYTES = 4096  # a whole reference (PATH_MAX)


class ReferenceRefused(RecordError):
    """A media reference that would read outside the source (or is no usable path at all)."""


def media_uri(ref: str, base: str, *, root: str | None = None,
              allowed: Iterable[str] = ()) -> str:
    """Where the media reference ``ref`` of a source points, checked to stay inside it.

    ``base`` is the folder (path or fsspec URL) a relative ``ref`` is joined to; ``root``
    is the folder the result must stay inside (default ``base``); ``allowed`` are further
    folders the user opened to the run (``--allow-path``). ``http(s)://``, ``s3://``,
    ``gs://`` and ``az://`` URLs are returned as they are. Anything else must end up inside
    ``root`` or an allowed folder after normalization (``..``, backslashes, percent-encoding)
    and, on the local disk, after resolving symlinks; an absolute path or ``file://`` URL
    counts only there too. The result keeps ``base``'s protocol (``img/a.jpg`` against
    ``s3://b/data`` is ``s3://b/data/img/a.jpg``).

    Raises :class:`ReferenceRefused` with the reason otherwise: readers turn it into a
    :class:`~clarifai_connect.records.Problem` of that item and go on.
    """
    if not isinstance(ref, str) or not ref:
        raise ReferenceRefused("an empty media reference")
    shown = _short(ref)
    if "\x00" in ref:
        raise ReferenceRefused(f"media reference {shown} contains a NUL byte")
    size = len(ref.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES or any(len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES
                                    for p in re.split(r"[/\\]", ref)):
        raise ReferenceRefused(f"media reference {shown} is too long ({size} bytes; at most "
                               f"{MAX_NAME_BYTES} per name, {MAX_PATH_BYTES} in all)")
    match = _SCHEME.match(ref)
    scheme = match.group(1).lower() if match else ""
    if scheme in REMOTE_SCHEMES and "::" not in ref:
        return ref
    if "::" in ref:  # fsspec chaining (simplecache::file://…) would reopen any filesystem
        raise ReferenceRefused(f"media reference {shown} chains filesystems ('::')")
    if scheme not in _LOCAL_SCHEMES:
        raise ReferenceRefused(f"media reference {shown}: '{scheme}://' is not read (media "
                               "are paths inside the source or http(s)/s3/gs/az URLs)")
    protocol, base_path = _split(base)
    local = protocol in _LOCAL_SCHEMES
    if scheme:  # file:// or local://: an absolute local path
        if not local:
            raise ReferenceRefused(f"media reference {shown} is a local file of a remote source")
        path, absolute = unquote(ref[match.end():]), True
        if not path.startswith("/"):
            raise ReferenceRefused(f"media reference {shown} is not a file:///absolute/path")
    else:
        if _WINDOWS_ABSOLUTE.match(ref):
            raise ReferenceRefused(f"media reference {shown} is an absolute Windows path")
        path = ref.replace("\\", "/")  # Windows-made datasets separate with backslashes
        absolute = path.startswith("/")
    joined = path if absolute else posixpath.join(base_path, path)
    forms = [joined]
    if unquote(joined) != joined:  # a server or filesystem may decode %2e%2e%2f on the way
        forms.append(unquote(joined))
    family = "" if local else protocol
    bounds = [_split(folder) for folder in (base if root is None else root, *allowed)]
    folders = [_resolve_folder(path_, local) for p, path_ in bounds
               if ("" if p in _LOCAL_SCHEMES else p) == family]
    for form in forms:
        resolved = _resolve(form, local, shown)
        if not any(_within(resolved, folder) for folder in folders):
            how = "an absolute path" if absolute else "a path"
            raise ReferenceRefused(
                f"media reference {shown} is {how} outside the source "
                f"({display_uri(base if root is None else root)}); allow its folder with "
                "--allow-path DIR if it is meant")
    normal = posixpath.normpath(joined)
    if not protocol:
        return normal
    return f"{protocol}://{normal if local else normal.lstrip('/')}"


def allowed_folders(folders: Iterable[str] | str | None) -> tuple[str, ...]:
    """``--allow-path`` folders checked: local ones made absolute and required to exist
    (a typo must not silently allow nothing), URLs kept; ConfigError otherwise."""
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    checked = []
    for folder in folders or ():
        text = os.fspath(folder).strip()
        if not text:
            raise ConfigError("--allow-path needs a folder")
        if _SCHEME.match(text) and _SCHEME.match(text).group(1).lower() not in ("file", "local"):
            checked.append(text.rstrip("/"))
            continue
        path = _split(text)[1]
        if not os.path.isdir(path):
            raise ConfigError(f"--allow-path {text}: no such folder")
        checked.append(path)
    return tuple(checked)


def _short(ref: str) -> str:
    return repr(ref if len(ref) <= 80 else ref[:60] + "…" + ref[-12:])


def _split(uri: str) -> tuple[str, str]:
    """``(protocol, absolute path)`` of a folder given as a path or a URL."""
    match = _SCHEME.match(uri)
    if not match:
        return "", os.path.abspath(os.path.expanduser(uri or "."))
    return match.group(1).lower(), "/" + uri[match.end():].lstrip("/")


def _resolve(path: str, local: bool, shown: str) -> str:
    """``path`` normalized; on the local disk with its symlinks resolved."""
    if not local:
        return posixpath.normpath("/" + path.lstrip("/"))
    try:
        return os.path.realpath(path, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ReferenceRefused(f"media reference {shown} runs into a symlink loop") from exc
        if exc.errno == errno.ENAMETOOLONG:
            raise ReferenceRefused(f"media reference {shown} is too long") from exc
        # A missing file is reported when it is read; its folders' symlinks still count.
        return os.path.realpath(path)


@functools.lru_cache(maxsize=64)
def _resolve_folder(path: str, local: bool) -> str:
    # The source root and the allowed folders are the same for every reference of a run.
    return os.path.realpath(path) if local else posixpath.normpath(path)


def _within(path: str, folder: str) -> bool:
    folder = folder.rstrip("/")
    return path == folder or path.startswith(folder + "/") or folder == ""


class Reader(ABC):
    """Reads one source lazily into records.

    Subclasses set ``name`` (the format name users type: ``csv``, ``folder``…) and a one-line
    ``description``, take their own options as keyword-only ``__init__`` parameters (so an
    unknown option fails fast), list them under ``Parameters:`` in the class docstring
    (``name: what it does``, the options ``clarifai-connect plugins`` shows) and implement
    :meth:`__iter__`. They never read the whole
    source into memory and never stop at a broken item: it becomes a :class:`Problem`.
    A source that cannot be opened at all raises :class:`~clarifai_connect.errors.SourceError`.

    Every media reference read from the source (a file name in an annotation file, a path
    in a table) goes through :meth:`media_uri`, which keeps it inside the source.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: What the connector looks for in a folder, said when it reads nothing from one
    #: ("XML files with an <annotation> root in Annotations/ …").
    looks_for: ClassVar[str] = ""
    #: Folders outside the source that media references may point into (``--allow-path``);
    #: set by whoever opens the reader (``sync()``, ``validate``), empty by default.
    allowed_paths: tuple[str, ...] = ()

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        self.uri = uri
        # May hold credentials: kept out of reprs and errors.
        self.storage_options: dict[str, Any] = dict(storage_options or {})

    def media_uri(self, ref: str, base: str, *, root: str | None = None) -> str:
        """:func:`media_uri` with this run's allowed folders: the checked URI of ``ref``
        (relative to the folder ``base``, staying inside ``root``, default ``base``);
        raises :class:`ReferenceRefused`, which the reader yields as a Problem of the item.
        """
        return media_uri(ref, base, root=root, allowed=self.allowed_paths)

    @abstractmethod
    def __iter__(self) -> Iterator[ReadItem]:
        """Yield a Record or a Problem per source item, lazily."""

    def count(self) -> int | None:
        """How many items the source holds when that is cheap to know (for progress), else None."""
        return None

    @classmethod
    def detect(cls, uri: str, storage_options: Mapping[str, Any] | None = None) -> bool:
        """Whether ``uri`` looks like this format (used by format detection); False by default."""
        return False

    @classmethod
    def detect_reason(cls, uri: str, storage_options: Mapping[str, Any] | None = None
                      ) -> str | None:
        """Why ``uri`` looks like this format, in a few words (``validate`` prints it), or
        None when it does not; by default whatever :meth:`detect` says."""
        return f"the {cls.name} connector claims it" if cls.detect(uri, storage_options) \
            else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_uri(self.uri)!r})"


class Writer(ABC):
    """Writes records to a destination (an exporter): a context manager fed with :meth:`write`.

    Subclasses set ``name`` and ``description``, take their options as keyword-only
    ``__init__`` parameters (listed under ``Parameters:`` in the class docstring, as for
    :class:`Reader`), implement :meth:`write` and, when they buffer, :meth:`close`
    (which must leave a complete, valid output). Media is read through
    ``record.media.read_bytes()`` only when the format stores it.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        self.uri = uri
        self.storage_options: dict[str, Any] = dict(storage_options or {})

    @abstractmethod
    def write(self, record: Record) -> None:
        """Write one record."""

    def close(self) -> None:
        """Finish the output (indexes, footers); called once, also after an error."""
        return None

    def write_all(self, records: Iterable[Record]) -> int:
        """Write every record and close; returns how many were written."""
        written = 0
        with self:
            for record in records:
                self.write(record)
                written += 1
        return written

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_uri(self.uri)!r})"
