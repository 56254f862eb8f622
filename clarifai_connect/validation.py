"""Checking a source without sending it: what ``clarifai-connect validate`` runs.

Reads every record of a source through its connector, counts what it finds and reports
each problem as it is met (the reader's own, duplicate ids, and, when asked, media that
cannot be opened or is not the kind it claims to be).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SourceError
from .mediatypes import SNIFF_BYTES, sniff_kind
from .plugins import PluginRegistry, get_registry
from .records import Media, Notice, Problem, Record
from .unread import nothing_read

__all__ = ["ValidationReport", "check_media", "validate_source"]


@dataclass
class ValidationReport:
    """What a validation found: counts of records, problems, media kinds, concepts, regions."""

    source: str
    format: str
    records: int = 0
    problems: int = 0
    kinds: Counter = field(default_factory=Counter)
    concepts: Counter = field(default_factory=Counter)
    regions: Counter = field(default_factory=Counter)
    region_concepts: Counter = field(default_factory=Counter)
    with_metadata: int = 0
    total: int | None = None
    chosen: str = ""  # why this connector: detected (and why), or given
    ignored: int = 0  # files of the source that are no item of its format
    repaired: int = 0  # values the connector made valid (reported, not problems)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return self.problems == 0

    def summary(self) -> str:
        """A few lines for the terminal."""
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.kinds.items())) or "none"
        regions = ", ".join(f"{n} {k}" for k, n in sorted(self.regions.items())) or "none"
        return "\n".join([
            f"source:   {self.source} (format: {self.format})",
            *([f"chosen:   {self.format}: {self.chosen}"] if self.chosen else []),
            f"records:  {self.records} ({kinds})",
            f"labels:   {len(self.concepts)} distinct concepts, "
            f"{sum(self.concepts.values())} input labels",
            f"regions:  {regions}"
            + (f" ({len(self.region_concepts)} distinct concepts)" if self.region_concepts
               else ""),
            f"metadata: {self.with_metadata} records with metadata",
            f"problems: {self.problems}",
            *([f"ignored:  {self.ignored} files that are not items of this format"]
              if self.ignored else []),
            *([f"repaired: {self.repaired} values"] if self.repaired else []),
        ])


def check_media(media: Media) -> str | None:
    """Open ``media`` and look at its first bytes; why it is unusable, or None when it is fine."""
    if media.text is not None:
        return None if media.text.strip() else "empty text"
    try:
        if media.data is not None:
            head = media.data[:SNIFF_BYTES]
        else:
            import fsspec

            with fsspec.open(media.uri, "rb", **dict(media.storage_options or {})) as handle:
                head = handle.read(SNIFF_BYTES)
    except FileNotFoundError:
        return "media not found"
    except Exception as exc:  # any fsspec backend error: report it, go on
        return f"cannot read the media: {type(exc).__name__}: {exc}"
    if not head:
        return "empty media"
    found = sniff_kind(head)
    if found is None:
        return f"the content is not a recognisable {media.kind}"
    if found != media.kind:
        return f"declared {media.kind} but the content looks like {found}"
    return None


def validate_source(uri: str, format: str = "auto", *, options: Mapping[str, Any] | None = None,
                    storage_options: Mapping[str, Any] | None = None, media: bool = False,
                    on_problem: Callable[[Problem], None] | None = None,
                    registry: PluginRegistry | None = None,
                    allowed_paths: Iterable[str] = (),
                    on_notice: Callable[[Notice], None] | None = None) -> ValidationReport:
    """Read ``uri`` with its connector and check it; ``on_problem`` sees each problem as found,
    ``on_notice`` each file ignored and value repaired. Nothing read from a folder that holds
    files is a SourceError naming what it holds (see :mod:`clarifai_connect.unread`).

    Media references may point outside the source only into ``allowed_paths``.
    With ``media=True`` every media item (and mask) is opened and sniffed. Duplicate ids are
    problems (the second would never land); tracking them costs one set of ids.
    """
    registry = registry or get_registry()
    if not format or format.strip().lower() == "auto":
        format = registry.detect_format(uri, storage_options)
        chosen = "detected: " + registry.explain_format(uri, format, storage_options)
    else:
        chosen = "given with --format"
    reader = registry.open_reader(uri, format, storage_options, allowed_paths=allowed_paths,
                                  **dict(options or {}))
    report = ValidationReport(source=uri, format=format, total=reader.count(), chosen=chosen)
    seen: dict[str, str] = {}

    def problem(item: Problem) -> None:
        report.problems += 1
        if on_problem:
            on_problem(item)

    for item in reader:
        if isinstance(item, Problem):
            problem(item)
            continue
        if isinstance(item, Notice):
            setattr(report, item.kind, getattr(report, item.kind) + 1)
            if on_notice:
                on_notice(item)
            continue
        if not isinstance(item, Record):
            problem(Problem(uri, f"the {format} connector yielded {type(item).__name__}, "
                                 "not a Record or Problem"))
            continue
        if item.id in seen:
            problem(Problem(item.source, f"id '{item.id}' was already used by {seen[item.id]}",
                            item.id))
            continue
        seen[item.id] = item.source
        if media:
            reason = check_media(item.media) or next(
                (f"mask: {r}" for r in (check_media(g.mask) for g in item.regions if g.mask)
                 if r), None)
            if reason:
                problem(Problem(item.source, reason, item.id))
                continue
        report.records += 1
        report.kinds[item.media.kind] += 1
        report.concepts.update(c.id for c in item.concepts)
        report.regions.update(r.kind for r in item.regions)
        report.region_concepts.update(c.id for r in item.regions for c in r.concepts)
        report.with_metadata += bool(item.metadata)
    if not report.records and not report.problems:
        message = nothing_read(uri, format, storage_options, registry)
        if message:
            raise SourceError(message)
    return report
