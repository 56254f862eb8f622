"""The upload engine: records in, inputs and annotations out, exactly once.

One thread pulls records from the connector and groups them into batches (≤128). For each
batch it consults the sync state (already acknowledged and unchanged: skipped; changed:
left alone, or replaced with ``update``; repeated within the source: failed) and hands the
rest to a worker. Workers read media (local or remote, through fsspec) and send: reading
overlaps with sending because there are more workers than RPC slots, and every RPC, inputs
and annotations alike, takes a slot of one shared concurrency budget (fixed, or adaptive:
it grows while the throughput grows with it, see :mod:`.concurrency`). At most ``2 ×``
the budget's limit batches are in flight, so memory is bounded by the batch size, never by
the source's size.

Per batch: (replaced inputs are forgotten by the state, then deleted) → PostInputs with
their ids (an id already in the app is "already synced") → state checkpoint → region
annotations for the inputs that landed → state checkpoint. A checkpoint is written only
after the server acknowledged, so a run killed at any moment and run again neither
duplicates nor loses anything: inputs it finds already there get their missing
annotations, identified by derived ids.

Ctrl-C stops reading and waits for the batches in flight; a second Ctrl-C stops waiting:
from then on no worker writes the state or the report, and each item still in flight is
counted as what the state holds for it (a rerun sends what was not acknowledged).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from ..client.record_upload import EXISTS, LANDED, MAX_BATCH, Prepared, RecordUploader
from ..client.utils import batched
from ..errors import ApiUnreachableError, ClarifaiConnectError, UserError, redact
from ..mediatypes import MediaContentError
from ..records import Notice, Problem, Record
from .concurrency import ConcurrencyLimit
from .report import Bucket, RunReport
from .state import DONE, INPUT, SyncState

__all__ = ["ANNOTATIONS_FAILED", "MAX_BATCH", "SyncOptions", "UploadEngine"]

log = logging.getLogger("clarifai_connect.engine")
Action = Literal["create", "update", "resume"]
"""What a planned record is sent for: a new item, a changed one replaced (``--update``), or
one a run interrupted before its annotations were acknowledged."""
CREATE: Action = "create"
UPDATE: Action = "update"
RESUME: Action = "resume"
ANNOTATIONS_FAILED = "input landed but its annotations did not: "
ABANDONED = "interrupted before the API acknowledged it: a rerun sends it"
Outcome = dict[str, tuple[Bucket, str]]  # input id → (bucket, reason), exactly once each


class _Abandoned(Exception):
    """A worker's batch was given up by a second Ctrl-C: it must write nothing more."""


@dataclass(frozen=True)
class SyncOptions:
    """How a sync runs: ``workers`` concurrent RPCs, ``batch_size`` inputs per request
    (≤128), ``update`` re-sends changed items, ``delete`` removes inputs gone from the
    source (refused after any failure, and when more than ``max_delete``), ``dry_run``
    only plans, ``dataset_id`` is the dataset every input joins."""

    workers: int = 4
    batch_size: int = MAX_BATCH
    update: bool = False
    delete: bool = False
    max_delete: int | None = 1000
    dry_run: bool = False
    dataset_id: str = ""
    check_media: bool = False  # decode images before sending (magic bytes are always checked)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ClarifaiConnectError(
                f"batch size must be between 1 and {MAX_BATCH}, got {self.batch_size}")
        if self.workers < 1:
            raise ClarifaiConnectError(f"workers must be 1 or more, got {self.workers}")
        if self.max_delete is not None and self.max_delete < 0:
            raise ClarifaiConnectError(f"max_delete must be 0 or more, got {self.max_delete}")


class UploadEngine:
    """Runs one sync of a record stream into one app (see the module doc).

    ``uploader`` may be None for a dry run (nothing is sent). ``on_progress(n)`` is called
    from worker threads as items are done. ``concurrency`` is the budget the uploader's
    calls take (default: the uploader's own when it is a :class:`ConcurrencyLimit`, else a
    fixed one of ``options.workers``); it also bounds the batches read ahead.
    """

    def __init__(self, uploader: RecordUploader | None, state: SyncState, report: RunReport,
                 options: SyncOptions = SyncOptions(),
                 on_progress: Callable[[int], None] | None = None,
                 concurrency: ConcurrencyLimit | None = None) -> None:
        if uploader is None and not options.dry_run:
            raise ClarifaiConnectError("an uploader is needed unless it is a dry run")
        self.uploader = uploader
        self.state = state
        self.report = report
        self.options = options
        self.on_progress = on_progress or (lambda n: None)
        if concurrency is None:
            budget = getattr(uploader, "budget", None)
            concurrency = budget if isinstance(budget, ConcurrencyLimit) else \
                ConcurrencyLimit(options.workers)
        self.concurrency = concurrency
        self._running = 0  # batches handed to workers and not finished (read-ahead bound)
        self._flight = threading.Condition()
        self._pulled = 0  # items read from the source so far
        self._unreachable = threading.Event()  # the API stopped answering: send no more
        self._stop_lock = threading.Lock()
        # Batches handed to workers and not yet reported, with their outcomes so far; the
        # commit lock orders every worker write (state, report) against a second Ctrl-C.
        self._in_flight: dict[int, tuple[list[tuple[Record, Action]], Outcome]] = {}
        self._keys = itertools.count()
        self._commit_lock = threading.Lock()
        self.abandoned = False  # a second Ctrl-C gave up the batches in flight

    # -- reading and planning (one thread) -------------------------------------------------

    def run(self, items: Iterable[Record | Problem | Notice]) -> RunReport:
        """Sync every item; failures end up in the report, never raised.

        Ctrl-C stops reading; the batches in flight finish (what the API acknowledged is
        counted and checkpointed) before KeyboardInterrupt is raised again; a second Ctrl-C
        stops waiting for them (``abandoned``, see the module doc). When the API
        stops answering (:class:`~clarifai_connect.errors.ApiUnreachableError`), sending
        stops: what was read and not sent is ``not_attempted``, and ``report.unreachable``
        says why.
        """
        pool = ThreadPoolExecutor(2 * self.concurrency.maximum, thread_name_prefix="sync")
        try:
            return self._run(pool, items)
        except KeyboardInterrupt:  # wherever it struck: no worker writes after we leave
            if self._in_flight and not self.abandoned:
                pool.shutdown(wait=False, cancel_futures=True)
                self._abandon()
            raise

    def _run(self, pool: ThreadPoolExecutor, items: Iterable[Record | Problem | Notice]
             ) -> RunReport:
        opts = self.options
        finished = interrupted = False
        batch: list[Record] = []
        try:
            for record in self._records(items):
                batch.append(record)
                if len(batch) >= opts.batch_size:
                    self._dispatch(pool, batch)
                    batch = []
                if self._unreachable.is_set():
                    break
            else:
                finished = True
        except KeyboardInterrupt:
            interrupted, batch = True, []
            self._say_interrupted()
        except ClarifaiConnectError as exc:
            if isinstance(exc, UserError) and not self._pulled:
                self._drain(pool, False)
                raise  # the source cannot be opened at all: fail fast, nothing was sent
            self.report.error(f"reading {self.report.source} stopped: {exc}")
        except Exception as exc:  # a connector bug must not lose what was sent so far
            log.exception("reading %s failed", self.report.source)
            self.report.error(f"reading {self.report.source} stopped: "
                              f"{type(exc).__name__}: {exc}")
        try:
            if batch:  # what was read before the end (or before the source broke) still goes
                self._dispatch(pool, batch)
        except KeyboardInterrupt:
            if not interrupted:
                self._say_interrupted()
            interrupted = True
        interrupted = self._drain(pool, interrupted)
        if interrupted:
            raise KeyboardInterrupt
        if self.report.unreachable:
            self.report.stop(f"sending stopped, {self.report.unreachable}")
        elif finished:
            self.report.gone = self.state.count_gone()
        if (opts.delete or opts.dry_run) and not self.report.unreachable:
            self._delete_gone(finished)
        return self.report

    def _dispatch(self, pool: ThreadPoolExecutor, batch: list[Record]) -> None:
        """Plan a batch and hand what must be sent to a worker (waiting for a free slot)."""
        work = self._plan(batch)
        if work and not self.options.dry_run:
            if self._unreachable.is_set():
                self._not_attempted(work)
                return
            if self.options.dataset_id:  # created with the first batch to send (then cached)
                self.uploader.ensure_datasets([self.options.dataset_id])
            ready = self._prepare_local(work)
            with self._flight:
                while self._running >= 2 * self.concurrency.limit:
                    self._flight.wait()
                self._running += 1
            key = next(self._keys)
            self._in_flight[key] = (work, {})
            future = pool.submit(self._send, key, ready)
            future.add_done_callback(self._landed)

    def _landed(self, _future: object) -> None:
        """A batch is finished: one more may be read ahead."""
        with self._flight:
            self._running -= 1
            self._flight.notify()

    def _not_attempted(self, work: list[tuple[Record, Action]],
                       outcome: Outcome | None = None) -> None:
        """Items that were read but not sent (or whose sending never got an answer)."""
        reason = f"not attempted: {self.report.unreachable}"
        outcome = outcome if outcome is not None else {}
        for record, _ in work:
            outcome.setdefault(record.id, ("not_attempted", reason))
        self._report(work, outcome)

    def _records(self, items: Iterable[Record | Problem | Notice]) -> Iterator[Record]:
        for item in items:
            self._pulled += 1
            if isinstance(item, (Record, Prepared)):  # Prepared: protos the client built
                yield item
            elif isinstance(item, Problem):
                self.report.problem(item.source, item.reason, item.id)
                self.on_progress(1)
            elif isinstance(item, Notice):  # beside the items (no bucket, no progress step)
                self.report.notice(item.kind, item.source, item.reason, item.id)
            else:
                self.report.problem(self.report.source, f"the connector yielded "
                                    f"{type(item).__name__}, not a Record or Problem")
                self.on_progress(1)

    def _plan(self, batch: list[Record]) -> list[tuple[Record, Action]]:
        """Decide per record: skip, fail (repeated id) or send (create, update, resume)."""
        earlier = self.state.mark_seen([r.id for r in batch])
        known = self.state.lookup(r.id for r in batch)
        work, here, done = [], set(), 0
        for record in batch:
            if record.id in earlier or record.id in here:
                self.report.add("failed", record.id, record.source,
                                f"the id '{record.id}' was already read from an earlier item "
                                "of this source")
                done += 1
                continue
            here.add(record.id)
            state = known.get(record.id)
            if state is None:
                work.append((record, CREATE))
            elif state[0] == record.fingerprint:
                if state[1] == DONE:
                    self.report.add("skipped", record.id, record.source, line=False)
                    done += 1
                else:
                    work.append((record, RESUME))
            elif self.options.update:
                work.append((record, UPDATE))
            else:
                self.report.add("skipped", record.id, record.source,
                                "changed in the source since it was synced: "
                                "sync with --update to send the change")
                self.report.changed += 1  # one thread plans: no lock needed
                done += 1
        if self.options.dry_run:
            for record, action in work:
                bucket = "updated" if action == UPDATE else "created"
                self.report.add(bucket, record.id, record.source)
            done += len(work)
            work = []
        self.on_progress(done)
        return work

    def _prepare(self, record: Record) -> Prepared | str:
        """The record's protos (its media read), or why its media cannot be read."""
        dataset = [self.options.dataset_id] if self.options.dataset_id else []
        try:
            return self.uploader.prepare(record, dataset, self.options.check_media)
        except Exception as exc:  # media unreadable: this record fails, the rest goes on
            return _media_reason(exc)

    def _prepare_local(self, work: list[tuple[Record, Action]]) -> dict[str, Prepared | str]:
        """Prepare the records whose media is local (or inline) right here: that is cheap
        CPU work, and doing it in this one thread keeps the workers from fighting over the
        GIL. Remote media (latency-bound) is read by the workers, in parallel."""
        return {record.id: self._prepare(record) for record, _ in work if _is_local(record)}

    # -- sending (worker threads) ----------------------------------------------------------

    def _send(self, key: int, ready: dict[str, Prepared | str]) -> None:
        work, outcome = self._in_flight[key]
        actions = {record.id: action for record, action in work}
        try:
            try:
                if self._unreachable.is_set():
                    raise ApiUnreachableError(self.report.unreachable)
                self._send_batch(work, actions, ready, outcome)
                self.concurrency.done(len(work))
            except ApiUnreachableError as exc:  # the circuit is open: stop sending, say it once
                with self._stop_lock:
                    if not self.report.unreachable:
                        self.report.unreachable = redact(str(exc))
                    self._unreachable.set()
                with self._committing():
                    self._not_attempted(work, outcome)
                    del self._in_flight[key]
                return
            except _Abandoned:
                raise
            except Exception as exc:  # an unexpected API or client error: fail what is left
                if self.abandoned:
                    return
                log.warning("a batch failed: %s", redact(str(exc)))
                for record, _ in work:
                    outcome.setdefault(record.id, ("failed", f"{type(exc).__name__}: {exc}"))
            with self._committing():
                self._report(work, outcome)
                del self._in_flight[key]
        except _Abandoned:  # the main thread counted this batch: write nothing more
            return

    def _report(self, work: list[tuple[Record, Action]], outcome: Outcome) -> None:
        """Count each item of a batch in its bucket (one JSON line each unless plainly
        skipped)."""
        done = []
        for record, _ in work:
            bucket, reason = outcome[record.id]
            done.append((bucket, record.id, record.source, reason,
                         bucket != "skipped" or bool(reason)))
        self.report.add_many(done)
        self.on_progress(len(work))

    @contextmanager
    def _committing(self) -> Iterator[None]:
        """Hold the commit lock for a worker's write; _Abandoned once a second Ctrl-C
        gave up the batches in flight (the state and the report are being closed)."""
        with self._commit_lock:
            if self.abandoned:
                raise _Abandoned
            yield

    def _send_batch(self, work: list[tuple[Record, Action]], actions: dict[str, Action],
                    ready: dict[str, Prepared | str], outcome: Outcome) -> None:
        """Read media → replace changed items → post inputs → post their annotations; each
        item's outcome is set in ``outcome`` as soon as it is known."""
        prepared = self._read_media(work, ready, outcome)
        self._forget_replaced([p.id for p in prepared if actions[p.id] == UPDATE])
        if not prepared:
            return
        annotate, check = self._post_inputs(prepared, actions, outcome)
        if annotate:
            self._post_annotations(annotate, check, outcome)

    def _read_media(self, work: list[tuple[Record, Action]], ready: dict[str, Prepared | str],
                    outcome: Outcome) -> list[Prepared]:
        """The batch's protos (prepared here unless ``ready`` has them); unreadable media
        fail their record."""
        prepared: list[Prepared] = []
        for record, _ in work:
            item = ready[record.id] if record.id in ready else self._prepare(record)
            if isinstance(item, str):
                outcome[record.id] = ("failed", item)
            else:
                prepared.append(item)
        return prepared

    def _forget_replaced(self, replaced: list[str]) -> None:
        """Delete the old inputs of items sent again with ``update``."""
        if replaced:
            # Forget first: if the run dies between the delete and the re-post, the next
            # run sees the item as new and sends it again (in any mode).
            with self._committing():
                self.state.forget(replaced)
            self.uploader.delete_inputs(replaced)

    def _post_inputs(self, prepared: list[Prepared], actions: dict[str, Action],
                     outcome: Outcome) -> tuple[list[Prepared], set[str]]:
        """PostInputs, then a state checkpoint of what landed. Returns the landed items with
        annotations to send, and those of them that were already in the app (which may hold
        some of their annotations already)."""
        results = self.uploader.post_inputs(prepared)
        acked, annotate, check = [], [], set()
        for item in prepared:
            result, reason = results[item.id]
            action = actions[item.id]
            if result not in (LANDED, EXISTS):
                outcome[item.id] = ("failed", reason)
                continue
            if result == EXISTS and action == UPDATE:
                outcome[item.id] = ("failed", "the old input could not be replaced: it is "
                                              "still in the app")
                continue
            if result == LANDED:
                bucket: Bucket = "updated" if action == UPDATE else "created"
                outcome[item.id] = (bucket, "")
            else:  # already in the app: synced before, perhaps by an interrupted run
                outcome[item.id] = ("created", "") if action == RESUME else \
                    ("skipped", "already in the app")
                check.add(item.id)
            if item.annotations:
                acked.append((item.id, item.fingerprint, INPUT, item.source))
                annotate.append(item)
            else:
                acked.append((item.id, item.fingerprint, DONE, item.source))
        with self._committing():
            self.state.acknowledge(acked)
        return annotate, check

    def _post_annotations(self, annotate: list[Prepared], check: set[str],
                          outcome: Outcome) -> None:
        """The region annotations of inputs that landed, then a state checkpoint of the
        items now done; an item whose annotations failed fails (the next run resumes it)."""
        try:
            failures = self.uploader.post_annotations(annotate, check)
        except ClarifaiConnectError as exc:  # the inputs stay half done: the next run resumes
            failures = {item.id: str(exc) for item in annotate}
        done = []
        for item in annotate:
            if item.id in failures:
                outcome[item.id] = ("failed", f"{ANNOTATIONS_FAILED}{failures[item.id]}")
            else:
                done.append((item.id, item.fingerprint, DONE, item.source))
        with self._committing():
            self.state.acknowledge(done)
            self.report.count_annotations(sum(len(i.annotations) for i in annotate
                                              if i.id not in failures))

    # -- Ctrl-C ----------------------------------------------------------------------------

    def _say_interrupted(self) -> None:
        log.warning("interrupted: finishing the %d batches in flight (Ctrl-C again to stop "
                    "at once; a rerun sends what the API did not acknowledge)",
                    len(self._in_flight))

    def _drain(self, pool: ThreadPoolExecutor, interrupted: bool) -> bool:
        """Wait for the batches in flight, so that what the API acknowledged is counted and
        checkpointed before the state closes; returns whether Ctrl-C was pressed (before or
        meanwhile). After a Ctrl-C, batches not yet started are cancelled; a second one
        stops waiting (:meth:`_abandon`)."""
        while True:
            try:
                pool.shutdown(wait=True, cancel_futures=interrupted)
                break
            except KeyboardInterrupt:
                if interrupted:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._abandon()
                    return True
                interrupted = True
                self._say_interrupted()
        with self._commit_lock:  # cancelled batches: nothing of them was sent
            self._settle_in_flight()
        return interrupted

    def _abandon(self) -> None:
        """Give up the batches in flight: no worker writes the state or the report from
        now on, and each of their items is counted from what the state holds."""
        with self._commit_lock:
            self.abandoned = True
            self._settle_in_flight()
        log.warning("stopped at once: %d items in flight are not attempted (a rerun sends "
                    "them)", self.report.not_attempted)

    def _settle_in_flight(self) -> None:
        """Count the items of the batches handed to workers and not reported (the caller
        holds the commit lock): done in the state, their outcome; failed, failed; else not
        attempted."""
        for work, outcome in self._in_flight.values():
            known = self.state.lookup(record.id for record, _ in work)
            for record, _ in work:
                bucket, reason = outcome.get(record.id, ("not_attempted", ABANDONED))
                if bucket != "failed" and known.get(record.id) != (record.fingerprint, DONE):
                    bucket, reason = "not_attempted", ABANDONED
                outcome[record.id] = (bucket, reason)
            self._report(work, outcome)
        self._in_flight.clear()

    # -- deleting what is gone from the source -------------------------------------------------

    def _delete_gone(self, finished: bool) -> None:
        report, opts = self.report, self.options
        report.to_delete = self.state.count_gone() if finished else 0
        if opts.dry_run or not opts.delete or not report.to_delete:
            return
        if not finished or report.failed or report.errors:
            report.error(f"--delete refused: the run had {report.failed} failed items"
                         + (" and did not read the whole source" if not finished else "")
                         + f"; none of the {report.to_delete} inputs gone from the source "
                           "was deleted")
            return
        if opts.max_delete is not None and report.to_delete > opts.max_delete:
            report.error(f"--delete refused: {report.to_delete} inputs are gone from the "
                         f"source, more than --max-delete {opts.max_delete}; nothing was "
                         "deleted (raise --max-delete to allow it)")
            return
        for chunk in batched(self.state.gone(), MAX_BATCH):
            ids = [input_id for input_id, _ in chunk]
            try:
                self.uploader.delete_inputs(ids)
            except ClarifaiConnectError as exc:
                report.error(f"deleting inputs gone from the source failed: {exc}")
                return
            self.state.forget(ids)
            for input_id, source in chunk:
                report.add("deleted", input_id, source, "gone from the source")


def _is_local(record: Record | Prepared) -> bool:
    if isinstance(record, Prepared):
        return True  # nothing left to read
    if not record.regions:  # the common case, without building a list
        uri = record.media.uri
        return uri is None or "://" not in uri or uri.startswith("file://")
    media = [record.media, *(r.mask for r in record.regions if r.mask is not None)]
    return all(m.uri is None or ("://" not in m.uri or m.uri.startswith("file://"))
               for m in media)


def _media_reason(exc: BaseException) -> str:
    if isinstance(exc, MediaContentError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"media not found: {exc.filename or exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"text is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    return f"cannot read the media: {type(exc).__name__}: {redact(str(exc))}"
