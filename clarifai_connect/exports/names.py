"""File names that can never escape an export's destination.

Names in an export come from data: input ids, COCO ``file_name``s, VOC image ids, concept
names for class folders, split names. Any of them may be ``../x``, ``/etc/passwd``, hold a
NUL or a backslash, or be a name Windows reserves (``CON``, ``nul.txt``). A *plain* name
(letters, digits and ``_ . , + = @ ( ) -`` and spaces, not starting with a dot or ending
with a dot or space) is kept as it is; anything else is cleaned and given ``~`` and a hash
of the original. ``~`` never occurs in a plain name, so an escaped name can never equal a
kept one, and two originals share an escaped name only if their hashes collide: the
mapping is deterministic and injective.

:class:`NameClaims` remembers which names an export already used (past a bound, on disk, so
memory does not grow with the dataset), for formats whose names come from metadata that two inputs
may share.
"""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
import re
import sqlite3
import tempfile
import threading

__all__ = ["NameClaims", "file_name_of", "safe_part", "safe_relpath"]

_PLAIN = re.compile(r"^[A-Za-z0-9_(@][A-Za-z0-9_.,+=@() \-]*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.,+=@()\-]+")
_PLAIN_EXT = re.compile(r"^\.[A-Za-z0-9]{1,10}$")
_RESERVED = frozenset({"con", "prn", "aux", "nul", "clock$", "conin$", "conout$",
                       *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})
MAX_PART = 180  # bytes per path part: well under the 255 most filesystems allow
_HASH = 12


# An id that stable_id derived from a key it had to clean: ``cat_cat0.png-35ed649838``.
_DERIVED_ID = re.compile(r"^(?P<key>.+\.[A-Za-z0-9]{1,10})-[0-9a-f]{10}$")


def file_name_of(input_id: str) -> str:
    """The file name to export an input under when the source's own is not known: the
    file name its id was derived from (``cat_cat0.png-35ed649838`` → ``cat_cat0.png``), else
    the id. A clash with another input's name is settled by :class:`NameClaims`."""
    match = _DERIVED_ID.match(input_id)
    return match.group("key") if match else input_id


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH]


def _is_plain(name: str) -> bool:
    if len(name) > MAX_PART or _PLAIN.fullmatch(name) is None or name[-1] in ". ":
        return False  # (a plain name is ASCII: its length is its length in bytes)
    stem = name.partition(".")[0]
    # Reserved names are short: a longer stem not ending in a space is none of them.
    return (len(stem) > 8 and stem[-1] != " ") or stem.strip().lower() not in _RESERVED


@functools.lru_cache(maxsize=4096)  # labels and splits name many inputs' folders
def _safe_part(name: str) -> str:
    if _is_plain(name):
        return name
    stem, ext = posixpath.splitext(name.replace("\\", "/").rsplit("/", 1)[-1])
    ext = ext if _PLAIN_EXT.match(ext) else ""
    # The cleaned stem is only for people reading the listing: the hash makes it unique.
    clean = _UNSAFE.sub("_", name[: len(name) - len(ext)]).strip("_. ")[:MAX_PART - 40]
    return f"{clean or 'name'}~{_digest(name)}{ext}"


def safe_part(name: str) -> str:
    """One path part (a file or folder name) made safe; plain names are kept as they are.

    ``../x.jpg`` becomes ``x~<hash>.jpg``: the extension is kept when it is a plain one,
    so the file still opens with the right program.
    """
    return _safe_part(str(name))


def safe_relpath(path: str) -> str:
    """A relative path (``sub/a.jpg``) made safe: kept when every part is plain, else
    flattened into one escaped part, so ``..``, absolute paths and drive letters never
    survive."""
    path = str(path)
    parts = path.split("/")
    if parts and all(_is_plain(p) for p in parts):
        return path
    return safe_part(path)


class NameClaims:
    """The relative paths an export has used: the first ``in_memory`` in a dict, the rest
    in a temporary SQLite file (so memory stays bounded on any dataset size, and a common
    export never pays a query per name).

    :meth:`claim` returns ``path`` the first time, and for a later owner of the same path
    (compared case-insensitively, since macOS and Windows compare names that way) the path
    with ``~`` and a hash of that owner before the extension.
    """

    def __init__(self, spill_dir: str | None = None, in_memory: int = 100_000) -> None:
        self.spill_dir = spill_dir
        self.in_memory = in_memory
        self._used: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None
        self._path = ""
        self._lock = threading.Lock()

    def _spilled(self) -> sqlite3.Connection:
        if self._db is None:
            fd, self._path = tempfile.mkstemp(prefix="export-names-", suffix=".sqlite",
                                              dir=self.spill_dir)
            os.close(fd)
            self._db = sqlite3.connect(self._path, isolation_level=None,
                                       check_same_thread=False)
            self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                                   "PRAGMA locking_mode=EXCLUSIVE;"
                                   "CREATE TABLE used (key TEXT PRIMARY KEY, owner TEXT)")
            # One transaction for the whole export: a throwaway file needs no commit per
            # name; SQLite spills pages to the file, memory stays bounded.
            self._db.execute("BEGIN")
        return self._db

    def _owner(self, key: str) -> str | None:
        owner = self._used.get(key)
        if owner is None and self._db is not None:
            row = self._db.execute("SELECT owner FROM used WHERE key=?", (key,)).fetchone()
            owner = row[0] if row else None
        return owner

    def _add(self, key: str, owner: str) -> None:
        if len(self._used) < self.in_memory:
            self._used[key] = owner
        else:
            self._spilled().execute("INSERT INTO used VALUES (?, ?)", (key, owner))

    def claim(self, path: str, owner: str) -> str:
        """``path`` if free (or already ``owner``'s), else a variant unique to ``owner``."""
        candidate = path
        with self._lock:
            for _ in range(3):
                found = self._owner(candidate.casefold())
                if found is None:
                    self._add(candidate.casefold(), owner)
                    return candidate
                if found == owner:
                    return candidate
                folder, name = posixpath.split(path)
                stem, ext = posixpath.splitext(name)
                candidate = posixpath.join(folder,
                                           f"{stem}~{_digest(owner + '|' + candidate)}{ext}")
        raise RuntimeError(f"no free name for '{path}' (owner '{owner}')")  # 3 hash collisions

    def take(self, key: str) -> bool:
        """Claim ``key`` (any string, e.g. an id in a scope) if nobody has; True if taken now."""
        with self._lock:
            if self._owner(key) is not None:
                return False
            self._add(key, "")
            return True

    def close(self) -> None:
        """Forget every claim and delete the temporary file."""
        self._used.clear()
        if self._db is not None:
            self._db.close()
            self._db = None
            try:
                os.unlink(self._path)
            except OSError:
                pass
