"""The export runner: media downloaded in parallel by a bounded pool, a bounded window of
records ahead of the writer, the source's order kept, and every record in one bucket —
with a built-in file writer and with a plain third-party Writer."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from clarifai_connect.connector import Writer
from clarifai_connect.exports import ExportReport, ExportRunner
from clarifai_connect.records import Concept, Media, Problem, Record
from connectors.folder_writer import FolderWriter

from .export_support import read_all


def _png(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (3, 3), (n % 256, 0, 0)).save(out, format="PNG")
    return out.getvalue()


class _MediaServer:
    """Serves /<n>.png, counting concurrent requests; /missing is 404.

    The first request is held until a second one is in flight (``overlapped`` is set), so
    downloads that really run in parallel are seen overlapping with no sleep; a client that
    downloads one at a time never sets it, and its first request is let go after
    ``HOLD_SECONDS`` with ``peak`` still 1.
    """

    HOLD_SECONDS = 10.0

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.headers_seen: list[str] = []
        self.overlapped = threading.Event()
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with lock:
                    outer.active += 1
                    outer.peak = max(outer.peak, outer.active)
                    outer.headers_seen.append(self.headers.get("Authorization", ""))
                    if outer.active > 1:
                        outer.overlapped.set()
                outer.overlapped.wait(outer.HOLD_SECONDS)
                with lock:  # counted before answering: the client cannot go on earlier
                    outer.active -= 1
                name = self.path.strip("/")
                if not name.endswith(".png"):
                    self.send_error(404)
                    return
                body = _png(int(name[:-4]))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def media_server():
    server = _MediaServer()
    yield server
    server.close()


def _records(url: str, count: int, hosted_every: int = 3):
    for n in range(count):
        # Hosted media carry the key in storage_options; third-party URLs do not.
        options = {"headers": {"Authorization": "Key secret-key"}} if n % hosted_every == 0 \
            else None
        yield Record(id=f"img-{n:03d}", media=Media(kind="image", uri=f"{url}/{n}.png",
                                                    storage_options=options),
                     concepts=(Concept.named(f"label{n % 2}"),), source=f"row {n}")


def test_downloads_run_in_parallel_within_the_bound(media_server, tmp_path):
    workers = 4
    pulled = written = 0
    ahead = []

    def source():
        nonlocal pulled
        for record in _records(media_server.url, 40):
            pulled += 1
            ahead.append(pulled - written)
            yield record
        yield Problem("row 40", "unreadable row")
        yield Record(id="gone", media=Media(kind="image", uri=f"{media_server.url}/missing"))

    class CountingWriter(FolderWriter):
        def write_record(self, record):
            nonlocal written
            written += 1
            super().write_record(record)

    report = ExportReport(source="test", destination=str(tmp_path), format="folder")
    ExportRunner(CountingWriter(str(tmp_path / "out"), workers=2), report, workers).run(source())
    assert media_server.overlapped.is_set() and 1 < media_server.peak <= workers
    assert max(ahead) <= 2 * workers + 2  # a bounded window, not the whole source
    assert (report.exported, report.skipped, report.failed) == (40, 0, 2)
    assert {f["id"] for f in report.failures} == {"", "gone"}
    assert "HTTP 404" in next(f["reason"] for f in report.failures if f["id"] == "gone")
    # The key went only with the hosted media (every third), never to the others.
    assert media_server.headers_seen.count("Key secret-key") == 14
    records, problems = read_all(tmp_path / "out", "folder", id_from="stem")
    assert len(records) == 40 and not problems
    assert records["img-007"].media.read_bytes() == _png(7)


class _ListWriter(Writer):
    """A third-party style writer: plain Writer, raises for what it refuses."""

    name = "list"

    def __init__(self, uri: str, *, storage_options=None) -> None:
        super().__init__(uri, storage_options=storage_options)
        self.ids: list[str] = []

    def write(self, record: Record) -> None:
        if record.id.endswith("3"):
            raise ValueError("ids ending in 3 are refused")
        self.ids.append(record.id)


def test_a_plain_writer_gets_bytes_in_source_order(media_server):
    writer = _ListWriter("memory://")
    report = ExportReport(source="test", destination="memory://", format="list")
    ExportRunner(writer, report, workers=3).run(_records(media_server.url, 12))
    assert writer.ids == [f"img-{n:03d}" for n in range(12) if n % 10 != 3]
    assert (report.exported, report.failed) == (11, 1)
    assert report.failures[0]["reason"] == "ValueError: ids ending in 3 are refused"
    assert report.failures[0]["source"] == "row 3"


def test_a_source_that_breaks_off_leaves_every_read_input_accounted(media_server, tmp_path):
    def source():
        yield from _records(media_server.url, 7)
        raise RuntimeError("listing failed on page 2")

    report = ExportReport(source="test", destination=str(tmp_path), format="folder")
    runner = ExportRunner(FolderWriter(str(tmp_path / "out"), workers=2), report, workers=2)
    with pytest.raises(RuntimeError, match="page 2"):
        runner.run(source())
    assert report.read == 7
    stopped = [f for f in report.failures if "stopped" in f["reason"]]
    assert report.exported + len(stopped) == 7 and report.failed == len(stopped)
    records, problems = read_all(tmp_path / "out", "folder", id_from="stem")
    assert len(records) == report.exported and not problems


def test_public_export_is_the_function_not_the_package() -> None:
    # Importing the exports package (as the writers do) must not shadow the function.
    import importlib
    import inspect

    import clarifai_connect
    from clarifai_connect.exports import runner

    importlib.import_module("clarifai_connect.exports.files")
    assert inspect.isfunction(clarifai_connect.export)
    assert clarifai_connect.export is runner.export
