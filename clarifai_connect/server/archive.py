"""Dataset-version export archives (format CLARIFAI_DATA_PROTOBUF).

An archive is a zip: an entry ``mimetype`` holding ``application/x.clarifai-data+protobuf``,
then entries that are serialized ``InputBatch`` messages of up to 128 inputs, named
``…_n<count>`` (the official SDK's reader sums those counts). It is written in the
background from the version's frozen copy, one batch in memory at a time, under
``exports_dir/<32-hex token>.zip`` and served by the media server at
``{media_url}/exports/<token>.zip`` (beside it ``<token>.owner`` names its app, whose
keys may fetch it; callers get the URL signed, see :func:`signed_export`). A call waits a few seconds for the job, so small
exports answer SUCCESS at once and large ones answer PENDING while the SDK polls.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
import zipfile
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

from .annotations import render_annotation
from .media_blobs import render_hosted
from .rpc import status

log = logging.getLogger("clarifai_connect.server.archive")
MIMETYPE = b"application/x.clarifai-data+protobuf"
ENTRY_BATCH = 128  # inputs per InputBatch entry
EXPORT_WAIT_SECONDS = 5.0  # how long a call waits for its job before answering PENDING
_TOKEN = re.compile(r"/exports/([0-9a-f]{32})\.zip$")
_PROTOBUF = resources_pb2.CLARIFAI_DATA_PROTOBUF

_jobs: dict[tuple, Future] = {}
# Reentrant: a job that finishes before add_done_callback runs its callback (which takes
# the lock) in the thread that still holds it.
_jobs_lock = threading.RLock()


def archive_path(server: Any, url: str) -> Path | None:
    """The file behind an export URL of this server, or None for a URL of another form."""
    match = _TOKEN.search(url.split("?", 1)[0])
    return Path(server.exports_dir) / f"{match.group(1)}.zip" if match else None


def remove_archives(server: Any, version: resources_pb2.DatasetVersion) -> None:
    """Delete the archive files a version's export_info points at."""
    for _, export in version.export_info.ListFields():
        path = archive_path(server, export.url)
        if path is not None:
            _remove(path)


def archive_owner(path: Path) -> str:
    """``USER/APP`` whose archive ``path`` is ("" when unknown: nobody's key opens it)."""
    try:
        return path.with_suffix(".owner").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_suffix(".owner").unlink(missing_ok=True)


def signed_export(server: Any, export: resources_pb2.DatasetVersionExport
                  ) -> resources_pb2.DatasetVersionExport:
    """``export`` as handed to a caller: its URL signed and expiring (an hour), so that a
    download without a key (as the official SDK's reader does) still works."""
    if not export.url or archive_path(server, export.url) is None:
        return export
    signed = resources_pb2.DatasetVersionExport()
    signed.CopyFrom(export)
    path = export.url[len(server.media_url):] if export.url.startswith(server.media_url) \
        else export.url
    signed.url = f"{export.url}?{server.auth.sign(path.split('?')[0])}"
    return signed


def _usable(server: Any, export: resources_pb2.DatasetVersionExport) -> bool:
    # An archive names hosted URLs of the media server that wrote it: after a restart on
    # another port, it is rebuilt rather than handed out with dead links.
    if export.status.code != status_code_pb2.DATASET_VERSION_EXPORT_SUCCESS:
        return False
    path = archive_path(server, export.url)
    return (export.url.startswith(f"{server.media_url}/exports/") and path is not None
            and path.exists())


def _load(db, pk: int, dataset_id: str, version_id: str):
    row = db.execute("SELECT proto FROM dataset_versions WHERE app_pk=? AND dataset_id=? AND id=?",
                     (pk, dataset_id, version_id)).fetchone()
    return resources_pb2.DatasetVersion.FromString(row[0]) if row else None


def _save(db, pk: int, version: resources_pb2.DatasetVersion) -> None:
    db.execute("UPDATE dataset_versions SET proto=? WHERE app_pk=? AND dataset_id=? AND id=?",
               (version.SerializeToString(), pk, version.dataset_id, version.id))


def _set_state(server: Any, pk: int, dataset_id: str, version_id: str, created_ns: int,
               export: resources_pb2.DatasetVersionExport) -> bool:
    """Store the protobuf export's state; False when the version is gone or was replaced."""
    with server.store.write() as db:
        version = _load(db, pk, dataset_id, version_id)
        if version is None or version.created_at.ToNanoseconds() != created_ns:
            return False
        old = version.export_info.clarifai_data_protobuf.url
        version.export_info.clarifai_data_protobuf.CopyFrom(export)
        _save(db, pk, version)
    if old and old != export.url:
        stale = archive_path(server, old)
        if stale is not None:
            _remove(stale)
    return True


def request_export(server: Any, pk: int, version: resources_pb2.DatasetVersion
                   ) -> resources_pb2.DatasetVersionExport:
    """The protobuf export of ``version``: ready, or started (or still running) in the
    background; waits up to EXPORT_WAIT_SECONDS for a running job."""
    key = (str(server.data_dir), pk, version.dataset_id, version.id)
    with _jobs_lock:
        job = _jobs.get(key)
        if job is None:
            if _usable(server, version.export_info.clarifai_data_protobuf):
                return signed_export(server, version.export_info.clarifai_data_protobuf)
            created_ns = version.created_at.ToNanoseconds()
            pending = resources_pb2.DatasetVersionExport(
                format=_PROTOBUF, status=status(status_code_pb2.DATASET_VERSION_EXPORT_PENDING))
            _set_state(server, pk, version.dataset_id, version.id, created_ns, pending)
            job = server.background.submit(_build, server, pk, version.dataset_id, version.id,
                                           created_ns)
            _jobs[key] = job
            job.add_done_callback(lambda _f: _forget(key))
    try:
        job.result(timeout=EXPORT_WAIT_SECONDS)
    except FutureTimeout:
        pass
    current = _load(server.store.read(), pk, version.dataset_id, version.id)
    if current is None:
        return resources_pb2.DatasetVersionExport(
            format=_PROTOBUF, status=status(status_code_pb2.DATASET_VERSION_EXPORT_FAILED,
                                            details="the dataset version was deleted"))
    return signed_export(server, current.export_info.clarifai_data_protobuf)


def _forget(key: tuple) -> None:
    with _jobs_lock:
        _jobs.pop(key, None)


def _build(server: Any, pk: int, dataset_id: str, version_id: str, created_ns: int) -> None:
    running = resources_pb2.DatasetVersionExport(
        format=_PROTOBUF, status=status(status_code_pb2.DATASET_VERSION_EXPORT_IN_PROGRESS))
    if not _set_state(server, pk, dataset_id, version_id, created_ns, running):
        return
    token = uuid.uuid4().hex
    target = Path(server.exports_dir) / f"{token}.zip"
    partial = target.with_name(f".{token}.zip.partial")
    try:
        count = write_archive(server, pk, dataset_id, version_id, partial)
        owner = server.store.read().execute("SELECT user_id, id FROM apps WHERE pk=?",
                                            (pk,)).fetchone()
        target.with_suffix(".owner").write_text("/".join(owner) if owner else "",
                                                encoding="utf-8")
        os.replace(partial, target)
        done = resources_pb2.DatasetVersionExport(
            format=_PROTOBUF, url=f"{server.media_url}/exports/{token}.zip",
            size=target.stat().st_size,
            status=status(status_code_pb2.DATASET_VERSION_EXPORT_SUCCESS,
                          details=f"{count} inputs"))
        if not _set_state(server, pk, dataset_id, version_id, created_ns, done):
            _remove(target)  # the version went away while we wrote
    except Exception as exc:
        log.exception("export of dataset version %s/%s failed", dataset_id, version_id)
        partial.unlink(missing_ok=True)
        _remove(target)
        failed = resources_pb2.DatasetVersionExport(
            format=_PROTOBUF, status=status(status_code_pb2.DATASET_VERSION_EXPORT_FAILED,
                                            details=f"{type(exc).__name__}: {exc}"))
        _set_state(server, pk, dataset_id, version_id, created_ns, failed)


def write_archive(server: Any, pk: int, dataset_id: str, version_id: str, path: Path) -> int:
    """Write the archive of a version's frozen inputs to ``path``; returns the input count."""
    db = server.store.read()
    count, entry, last = 0, 0, -1
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        while True:
            rows = db.execute(
                "SELECT pos, proto FROM dataset_version_inputs WHERE app_pk=? AND dataset_id=? "
                "AND version_id=? AND pos>? ORDER BY pos LIMIT ?",
                (pk, dataset_id, version_id, last, ENTRY_BATCH)).fetchall()
            if not rows:
                return count
            last = rows[-1][0]
            batch = resources_pb2.InputBatch()
            for _, proto in rows:
                item = batch.inputs.add()
                item.MergeFromString(proto)
                render_hosted(item, server.media_url)
                render_annotation(item, server.media_url)  # mask images of its regions
            zf.writestr(f"inputbatch-{entry:06d}_n{len(rows)}", batch.SerializeToString())
            entry += 1
            count += len(rows)
