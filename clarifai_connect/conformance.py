"""The conformance kit: does a reader or a writer honour the connector contract?

Plugin authors call these in their tests (they are also in :mod:`clarifai_connect.testing`)::

    def test_my_reader_conforms(tmp_path):
        check_reader(MyReader, str(make_source(tmp_path)), expect_problems=1)

    def test_my_writer_conforms(tmp_path):
        check_writer(MyWriter, str(tmp_path / "out"))

:func:`check_reader` reads the source three times, each through a fresh reader, and checks
that ids (and fingerprints) are the same on every read, that bad items come as Problems
and never as exceptions, that the first item arrives before every record of the source
was built (laziness), that ``count()`` (when given) is the number of items, and that media
references stay inside the source. :func:`check_writer` writes records and reads the
output back with the format's reader. Each returns what it saw, or raises
:class:`ConformanceError` (an ``AssertionError``) listing every rule broken.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .connector import Reader, ReferenceRefused, Writer, display_uri, filesystem, media_uri
from .errors import SourceError
from .records import Box, Concept, Media, Notice, Problem, Record, Region

__all__ = ["ConformanceError", "ReaderCheck", "WriterCheck", "check_reader", "check_writer",
           "sample_records"]

class ConformanceError(AssertionError):
    """A reader or writer broke the contract; ``failures`` holds one sentence per rule."""

    def __init__(self, subject: str, failures: Sequence[str]) -> None:
        self.subject = subject
        self.failures = list(failures)
        super().__init__(f"{subject} does not conform:\n" + "\n".join(
            f"  - {failure}" for failure in self.failures))


@dataclass
class ReaderCheck:
    """What :func:`check_reader` saw: the items of one read and the rules checked."""

    reader: str
    records: list[Record] = field(default_factory=list, repr=False)
    problems: list[Problem] = field(default_factory=list, repr=False)
    notices: list[Notice] = field(default_factory=list, repr=False)
    count: int | None = None
    built_before_first: int = 0  # records built when the first item arrived
    checked: list[str] = field(default_factory=list)


@dataclass
class WriterCheck:
    """What :func:`check_writer` saw: the records written and those read back."""

    writer: str
    written: list[Record] = field(default_factory=list, repr=False)
    read_back: list[Record] = field(default_factory=list, repr=False)
    checked: list[str] = field(default_factory=list)


class _RecordCounter:
    """Counts the records built while it is active (wrapping ``Record.__post_init__``),
    so laziness is judged by what a reader made, whatever it reads with."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> _RecordCounter:
        original = Record.__post_init__
        counter = self

        def counted(record: Record) -> None:
            original(record)
            with counter._lock:
                counter.count += 1

        self._original = original
        Record.__post_init__ = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc_info: object) -> None:
        Record.__post_init__ = self._original  # type: ignore[method-assign]


def _read(reader: Reader) -> tuple[list[Any], BaseException | None]:
    items: list[Any] = []
    try:
        for item in reader:
            items.append(item)
    except Exception as exc:  # what the check is about: report it, do not propagate
        return items, exc
    return items, None


def _source_root(uri: str, storage_options: Mapping[str, Any] | None) -> str:
    try:
        fs, path = filesystem(uri, storage_options)
        is_dir = fs.isdir(path)
    except (OSError, SourceError):
        is_dir = False
    if is_dir:
        return uri.rstrip("/")
    return uri.rstrip("/").rsplit("/", 1)[0] if "/" in uri.rstrip("/") else "."


def _outside(ref: str, root: str, allowed: tuple[str, ...]) -> str | None:
    """Why the media reference ``ref`` (as a record holds it) leaves ``root``, or None:
    the connector contract's own check (:func:`~clarifai_connect.connector.media_uri`)."""
    try:
        media_uri(ref, root, allowed=allowed)
    except ReferenceRefused as exc:
        return str(exc)
    return None


def _media_refs(record: Record) -> Iterator[str]:
    if record.media.uri is not None:
        yield record.media.uri
    for region in record.regions:
        if region.mask is not None and region.mask.uri is not None:
            yield region.mask.uri


def check_reader(reader_cls: type[Reader], uri: str, *,
                 storage_options: Mapping[str, Any] | None = None,
                 expect_problems: int | None = None, media_root: str | None = None,
                 **options: Any) -> ReaderCheck:
    """Check that ``reader_cls`` reading ``uri`` (built with ``options``) honours the
    contract; returns a :class:`ReaderCheck`, or raises :class:`ConformanceError`.

    Args:
        reader_cls: The Reader subclass.
        uri: A source of at least two items, and more than the reader builds ahead in
            one go (to tell lazy from eager); include bad items to check that they
            become Problems.
        storage_options: fsspec options for the source.
        expect_problems: How many Problems the source should give (None: any number).
        media_root: The folder media references must stay inside (default: ``uri`` when
            it is a folder, else the folder holding it).
        options: The reader's own options.
    """
    name = f"{reader_cls.__name__}({display_uri(uri)!r})"
    result = ReaderCheck(reader=name)
    failures: list[str] = []

    def build() -> Reader:
        return reader_cls(uri, storage_options=dict(storage_options or {}), **options)

    try:
        first = build()
    except Exception as exc:
        raise ConformanceError(name, [f"cannot be built: {type(exc).__name__}: {exc}"]) from exc

    # 1. Problems, not exceptions.
    items, error = _read(first)
    if error is not None:
        where = f"after {len(items)} item(s)" if items else "before the first item"
        failures.append(f"problems, not exceptions: reading raised {type(error).__name__}: "
                        f"{error} {where} (a bad item must be yielded as a Problem, and "
                        "reading go on)")
    for index, item in enumerate(items):
        if isinstance(item, Record):
            result.records.append(item)
        elif isinstance(item, Problem):
            result.problems.append(item)
            if not item.source or not item.reason:
                failures.append(f"problems, not exceptions: item {index} is a Problem "
                                "without a source location or a reason")
        elif isinstance(item, Notice):
            result.notices.append(item)
        else:
            failures.append(f"items: item {index} is a {type(item).__name__}, not a Record, "
                            "a Problem or a Notice")
    result.checked.append("problems-not-exceptions")
    if expect_problems is not None and len(result.problems) != expect_problems:
        shown = "; ".join(str(p) for p in result.problems[:3])
        failures.append(f"problems: expected {expect_problems} Problem(s), got "
                        f"{len(result.problems)}" + (f" ({shown})" if shown else ""))
    if error is not None or len(result.records) < 2:
        if error is None:
            failures.append(f"the source gave {len(result.records)} record(s): give one of "
                            "at least 2 items so the other rules can be checked")
        raise ConformanceError(name, failures)

    # 2. Stable ids: a second, fresh reader gives the same ids for the same items.
    again, error = _read(build())
    keys = sorted((r.source, r.id, r.fingerprint) for r in result.records)
    keys_again = sorted((r.source, r.id, r.fingerprint) for r in again if isinstance(r, Record))
    if error is not None or keys != keys_again:
        changed = sorted(set(keys) ^ set(keys_again))[:3]
        failures.append("stable ids: a second read gave other ids or fingerprints"
                        + (f" (e.g. {', '.join(f'{s or i}: {i}' for s, i, _ in changed)})"
                           if changed else f" ({error})"))
    result.checked.append("stable-ids")

    # 3. Laziness: the first item comes before every record is built.
    reader = build()
    with _RecordCounter() as built:
        iterator = iter(reader)
        try:
            next(iterator)
            result.built_before_first = built.count
            for _ in iterator:
                pass
        except Exception as exc:  # seen in the first read already, unless it is flaky
            failures.append(f"laziness: reading raised {type(exc).__name__}: {exc}")
        total = built.count
    if total >= 2 and result.built_before_first >= total:
        failures.append(f"laziness: all {total} records were built before the first item "
                        "was yielded (read the source as you go: yield each record when "
                        "it is made)")
    result.checked.append("laziness")

    # 4. An honest count.
    try:
        result.count = build().count()
    except Exception as exc:
        failures.append(f"count: count() raised {type(exc).__name__}: {exc} (return None "
                        "when the count is not cheap to know)")
    yielded = len(result.records) + len(result.problems)  # notices are beside the items
    if result.count is not None and result.count != yielded:
        failures.append(f"count: count() says {result.count}, the reader yielded "
                        f"{yielded} item(s)")
    result.checked.append("count")

    # 5. Media references stay inside the source.
    root = media_root or _source_root(uri, storage_options)
    allowed = tuple(getattr(first, "allowed_paths", ()) or ())
    outside = [(r, why) for r in result.records for ref in _media_refs(r)
               if (why := _outside(ref, root, allowed))]
    if outside:
        record, why = outside[0]
        failures.append(f"media inside the source: {len(outside)} reference(s) leave "
                        f"{display_uri(root)} (e.g. {record.source or record.id}: {why})")
    result.checked.append("media-inside-source")

    if failures:
        raise ConformanceError(name, failures)
    return result


# -- writers -----------------------------------------------------------------------------

def _png(n: int, size: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" + bytes([n * 40 & 255, n * 90 & 255, n * 20 & 255]) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b""))


def sample_records(count: int = 4) -> list[Record]:
    """Distinct small PNG images, each with one concept (``cat``/``dog``) and one box of
    the same concept: what every built-in format can hold."""
    out = []
    for i in range(count):
        label = Concept.named("cat" if i % 2 == 0 else "dog")
        box = Box(0.125, 0.25, 0.625 + 0.125 * (i % 2), 0.75)
        out.append(Record(id=f"sample-{i}", media=Media(kind="image", data=_png(i)),
                          concepts=(label,), regions=(Region(box=box, concepts=(label,)),)))
    return out


def _digest(record: Record) -> str:
    return hashlib.sha256(record.media.read_bytes()).hexdigest()


def _aspect(record: Record, what: str) -> Any:
    if what == "media":
        return _digest(record)
    if what == "concepts":
        return tuple(sorted(c.name for c in record.concepts if c.value > 0))
    if what == "regions":
        return tuple(sorted(
            (tuple(round(v, 2) for v in (r.box.top_row, r.box.left_col, r.box.bottom_row,
                                         r.box.right_col)) if r.box else r.kind,
             tuple(sorted(c.name for c in r.concepts))) for r in record.regions))
    raise ValueError(f"cannot compare '{what}' (media, concepts, regions)")


def check_writer(writer_cls: type[Writer], uri: str, *,
                 reader: type[Reader] | str | None = None,
                 records: Iterable[Record] | None = None, read_uri: str | None = None,
                 storage_options: Mapping[str, Any] | None = None,
                 reader_options: Mapping[str, Any] | None = None,
                 compare: Sequence[str] = ("media", "concepts"),
                 **options: Any) -> WriterCheck:
    """Check that ``writer_cls`` writing to ``uri`` (built with ``options``) makes an output
    its reader reads back: the same number of records, with the same ``compare`` aspects
    (``media`` bytes, positive ``concepts``, box ``regions``), as multisets.

    Args:
        writer_cls: The Writer subclass.
        uri: Where to write (a fresh folder or file).
        reader: The Reader class, or a connector name (default: the connector of the
            writer's name, from the plugin registry).
        records: What to write (default: :func:`sample_records`; media as bytes).
        read_uri: Where the reader reads (default: ``uri``).
        storage_options: fsspec options for ``uri`` (and ``read_uri``).
        reader_options: Options of the reader.
        compare: The aspects that must survive the round trip.
        options: The writer's own options.
    """
    name = f"{writer_cls.__name__}({display_uri(uri)!r})"
    written = list(records if records is not None else sample_records())
    result = WriterCheck(writer=name, written=written)
    if reader is None or isinstance(reader, str):
        from .plugins import get_registry

        reader = get_registry().connector(reader or writer_cls.name).cls
    failures: list[str] = []
    try:
        writer = writer_cls(uri, storage_options=dict(storage_options or {}), **options)
        writer.write_all(written)
    except Exception as exc:
        raise ConformanceError(name, [f"writing: {type(exc).__name__}: {exc}"]) from exc
    result.checked.append("writes")
    back, error = _read(reader(read_uri or uri, storage_options=dict(storage_options or {}),
                               **dict(reader_options or {})))
    problems = [item for item in back if isinstance(item, Problem)]
    result.read_back = [item for item in back if isinstance(item, Record)]
    if error is not None:
        failures.append(f"read back: {reader.__name__} raised {type(error).__name__}: {error}")
    if problems:
        failures.append(f"read back: {len(problems)} problem(s), e.g. {problems[0]}")
    if len(result.read_back) != len(written):
        failures.append(f"read back: {len(written)} record(s) written, "
                        f"{len(result.read_back)} read back")
    for what in compare:
        want = Counter(_aspect(r, what) for r in written)
        got = Counter(_aspect(r, what) for r in result.read_back)
        if want != got:
            missing, extra = list((want - got).elements())[:2], list((got - want).elements())[:2]
            failures.append(f"read back: the {what} differ (written, not read: {missing}; "
                            f"read, not written: {extra})")
        result.checked.append(what)
    if failures:
        raise ConformanceError(name, failures)
    return result
