"""An export in parts: shards that export independently (on any worker), merged at the end.

:func:`plan_export` splits what an export reads the way the sources can be split: a
listing by its pages (part ``i`` of ``n`` reads pages ``i + 1``, ``i + 1 + n``, …), a
dataset version by the entries of its archive, a search not at all (one part: its hits are
ranked as one stream). :func:`run_export_part` exports one part with today's runner into
its own folder, ``<to>.parts/<index>/<name>`` (one part: ``to`` itself) — the same shape as ``to``, so the writer
needs nothing new to write it, and a part run again (a task retried) writes the same
files again. :func:`merge_export_parts` then asks the writer class to merge the parts into
``to`` (``merge_parts``): media files are moved, index files merged (COCO JSON with ids
kept where free, VOC ImageSets and label map, YOLO ``data.yaml`` with class indices made
one, CSV rows, a Parquet dataset of parts). A writer without ``merge_parts`` cannot be
exported in parts (a ConfigError, before anything runs).

Two parts may give different inputs the same file name (names come from the data): the
merge does not rename across parts, it leaves the later file in the parts folder and says
so in the report (an error: a local export renames such clashes).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..connector import display_uri, filesystem
from ..errors import ConfigError
from .report import ExportReport

__all__ = ["ExportPart", "PartFiles", "merge_export_parts", "part_uris", "plan_export",
           "run_export_part"]


@dataclass(frozen=True)
class ExportPart:
    """Part ``index`` of ``count`` of an export, written to ``uri`` (plain data: it travels
    to a worker)."""

    index: int
    count: int
    uri: str


def part_uris(to: str, count: int) -> list[str]:
    """Where the ``count`` parts of an export to ``to`` are written:
    ``<to>.parts/<index>/<last name of to>``."""
    base = to.rstrip("/") or to
    name = base.rpartition("/")[2] or "export"
    return [f"{base}.parts/{i:05d}/{name}" for i in range(count)]


def parts_root(to: str) -> str:
    """The folder that holds the parts of an export to ``to``."""
    return f"{to.rstrip('/') or to}.parts"


def plan_export(app: str, to: str, format: str, *, parts: int, dataset: str | None = None,
                version: str | None = None, query: Any = None, registry: Any = None
                ) -> list[ExportPart]:
    """The parts of an export (``parts`` of them; one for a search). Fails fast, in one
    sentence, for an exporter that cannot merge parts."""
    from ..plugins import get_registry

    if parts < 1:
        raise ConfigError(f"an export needs 1 part or more, got {parts}")
    writer = (registry or get_registry()).exporter(format).cls
    if parts > 1 and not callable(getattr(writer, "merge_parts", None)):
        raise ConfigError(f"the {format} exporter cannot merge parts: export it with the "
                          "local engine")
    if query is not None or parts == 1:  # one part: written where the export goes
        return [ExportPart(0, 1, to)]
    return [ExportPart(i, parts, uri) for i, uri in enumerate(part_uris(to, parts))]


def run_export_part(app: str, part: ExportPart, format: str,
                    **settings: Any) -> dict[str, Any]:
    """Export one part (``settings``: what :func:`~clarifai_connect.export` takes) into its
    own folder; returns its report summary (plain data)."""
    from ..engine.shards import report_summary
    from .runner import export

    report = export(app, part.uri, format, part=(part.index, part.count), **settings)
    return report_summary(report)


def merge_export_parts(parts: list[ExportPart], to: str, format: str,
                       summaries: list[Mapping[str, Any]], *, source: str = "",
                       storage_options: Mapping[str, Any] | None = None,
                       registry: Any = None) -> ExportReport:
    """The parts' reports added up, and the parts merged into ``to`` by the writer's
    ``merge_parts(uris, to, storage_options)`` (which returns what it could not merge).
    With a part missing (its task failed for good: its summary says ``"missing": True``)
    nothing is merged: the report says so."""
    from ..engine.shards import merge_reports
    from ..plugins import get_registry

    report = merge_reports(summaries, into=ExportReport(
        source=source, destination=display_uri(to), format=format))
    if len(summaries) < len(parts) or any(s.get("missing") for s in summaries):
        report.error(f"not every part was exported: the parts stay in "
                     f"{display_uri(parts_root(to))}; run the same command again")
        return report
    if len(parts) == 1 and parts[0].uri == to:
        return report  # written in place
    writer = (registry or get_registry()).exporter(format).cls
    for problem in writer.merge_parts([p.uri for p in parts], to, storage_options):
        report.error(problem)
    return report


@dataclass
class PartFiles:
    """The files of an export's parts, moved into the destination (``root_of`` maps an
    export URI to the folder its files are in, e.g. the folder of a ``.csv`` file).

    :meth:`move` refuses a name that an earlier part's file took (compared as a
    case-insensitive filesystem would): the file stays in its part, :attr:`clashes` counts
    it. :meth:`done` says what could not be merged, and removes the parts folder when
    everything was."""

    uris: list[str]
    to: str
    storage_options: Mapping[str, Any] | None = None
    root_of: Callable[[str], str] = staticmethod(lambda uri: uri)
    clashes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fs, root = filesystem(self.root_of(self.to), self.storage_options)
        self.root = root.rstrip("/") or "/"
        self.roots = [filesystem(self.root_of(uri), self.storage_options)[1].rstrip("/")
                      for uri in self.uris]
        self._taken: set[str] = set()
        self.fs.makedirs(self.root, exist_ok=True)

    def files(self, index: int) -> list[str]:
        """The paths of part ``index``'s files, relative to its folder, sorted."""
        root = self.roots[index]
        if not self.fs.exists(root):
            return []
        return sorted(posixpath.relpath(self.fs._strip_protocol(path), root)
                      for path in self.fs.find(root))

    def path(self, index: int | None, relpath: str) -> str:
        """The full path of ``relpath`` in part ``index`` (None: in the destination)."""
        return posixpath.join(self.root if index is None else self.roots[index], relpath)

    def read(self, index: int, relpath: str) -> bytes:
        """The bytes of a part's file."""
        return self.fs.cat_file(self.path(index, relpath))

    def lines(self, index: int, relpath: str) -> Iterator[str]:
        """The lines of a part's text file (none when it has no such file)."""
        path = self.path(index, relpath)
        if not self.fs.exists(path):
            return
        with self.fs.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                yield line.rstrip("\n")

    def open(self, relpath: str, mode: str = "wb") -> Any:
        """A file of the destination, opened for writing."""
        path = self.path(None, relpath)
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        return self.fs.open(path, mode)

    def claim(self, relpath: str) -> bool:
        """Take ``relpath`` in the destination; False when an earlier part took it."""
        key = relpath.casefold()
        if key in self._taken:
            return False
        self._taken.add(key)
        return True

    def move(self, index: int, relpath: str, data: bytes | None = None) -> bool:
        """Move a part's file to the same place in the destination (``data``: write these
        bytes there instead, and drop the part's file); False on a clash (see the class)."""
        if not self.claim(relpath):
            self.clashes.append(f"{relpath} (part {index})")
            return False
        target = self.path(None, relpath)
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        if data is None:
            self.fs.mv(self.path(index, relpath), target)
        else:
            self.fs.pipe_file(target, data)
            self.fs.rm(self.path(index, relpath))
        return True

    def move_all(self, keep: Callable[[str], bool] = lambda rel: False,
                 rewrite: Callable[[int, str], bytes | None] | None = None) -> list[str]:
        """Move every part's files but the ``keep`` ones (index files, merged by the caller;
        ``rewrite(index, relpath)`` may give new bytes for a file), then :meth:`done`."""
        for index in range(len(self.uris)):
            for relpath in self.files(index):
                if not keep(relpath):
                    self.move(index, relpath, rewrite(index, relpath) if rewrite else None)
        return self.done()

    def done(self) -> list[str]:
        """What could not be merged (one sentence), the parts folder removed when nothing."""
        if self.clashes:
            return [f"{len(self.clashes)} file(s) of the parts have the name of an earlier "
                    f"part's file and stay in {display_uri(parts_root(self.to))} (first: "
                    f"{self.clashes[0]}); export with the local engine to have them renamed"]
        parts = parts_root(self.to)
        fs, folder = filesystem(parts, self.storage_options)
        if fs.exists(folder):
            fs.rm(folder, recursive=True)
        return []
