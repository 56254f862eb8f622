"""Dataset against the real local server: versions, bulk uploads from CSV, folders and data
loaders (bad rows reported, failed downloads cleaned up, re-runs idempotent), upload
status, and exports of a version read back input by input."""

import functools
import json
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clarifai_connect.client import (
    App,
    ClarifaiDataLoader,
    Dataset,
    ExportArchiveReader,
    TextFeatures,
    VisualDetectionFeatures,
)
from clarifai_connect.errors import UserError
from tests.test_client_inputs import png


@pytest.fixture
def app(clarifai_server, clarifai_pat, clarifai_app):
    return App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
               base_url=clarifai_server.base_url, pat=clarifai_pat)


@pytest.fixture
def dataset(app):
    return app.create_dataset("ds")


@pytest.fixture
def web(tmp_path):
    """A plain HTTP server on loopback serving ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class Boxes(ClarifaiDataLoader):
    """Three images with one or two labelled boxes each."""

    task = "visual_detection"

    def __init__(self, folder):
        self.items = []
        for i in range(3):
            path = folder / f"img{i}.png"
            path.write_bytes(png(10 + i))
            labels = ["cat"] if i != 1 else ["cat", "dog"]
            boxes = [[0.1, 0.1, 0.5, 0.5]] if i != 1 else [[0.1, 0.1, 0.5, 0.5],
                                                            [0.5, 0.5, 0.9, 0.95]]
            self.items.append(VisualDetectionFeatures(str(path), labels, boxes, id=f"i{i}",
                                                      metadata={"n": i}))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def test_versions(app, dataset):
    dataset.input_object.upload_text("v-in", "text", dataset_id="ds")
    first = dataset.create_version(description="first", metadata={"k": "v"})
    assert isinstance(first, Dataset) and first.version.id and first.id == "ds"
    assert first.version.description == "first"
    second = dataset.create_version(id="v-two")
    assert second.version.id == "v-two"
    # newest first, as the API lists versions
    assert [v.version.id for v in dataset.list_versions()] == ["v-two", first.version.id]
    assert len(list(dataset.list_versions(page_no=1, per_page=1))) == 1
    assert app.dataset("ds").version.id == "v-two"  # a dataset carries its newest version
    assert app.dataset("ds", dataset_version_id=first.version.id).version.id == first.version.id
    dataset.delete_version("v-two")
    assert [v.version.id for v in dataset.list_versions()] == [first.version.id]


def test_upload_from_csv_reports_bad_rows_and_is_idempotent(dataset, tmp_path):
    csv_path = tmp_path / "texts.csv"
    csv_path.write_text('inputid,input,concepts,metadata\n'
                        'a,"good one","pos",\n'
                        'b,"bad metadata","neg","{broken"\n'
                        'c,"good two","neg","{\'lang\': \'en\'}"\n'
                        'bad id!,"bad id","pos",\n', encoding="utf-8")
    summary = dataset.upload_from_csv(str(csv_path), input_type="text", csv_type="raw",
                                      labels=True)
    assert (summary.total, summary.uploaded, summary.already_present) == (4, 2, 0)
    failures = {f.item: f.reason for f in summary.failed}
    assert any(item.endswith("texts.csv:3") and "metadata" in reason
               for item, reason in failures.items())
    assert any("bad id!" in item and "texts.csv:5" in item for item in failures)
    listed = {i.id: i for i in dataset.list_inputs()}
    assert set(listed) == {"a", "c"}
    assert listed["c"].data.metadata["lang"] == "en"
    assert [c.id for c in listed["a"].data.concepts] == ["pos"]

    again = dataset.upload_from_csv(str(csv_path), input_type="text", csv_type="raw")
    assert (again.uploaded, again.already_present, len(again.failed)) == (0, 2, 2)
    with pytest.raises(UserError, match="csv_type"):
        dataset.upload_from_csv(str(csv_path), csv_type="tsv")


def test_failed_url_downloads_are_retried_then_deleted(dataset, tmp_path, web):
    root, base = web
    (root / "ok.png").write_bytes(png(20))
    csv_path = tmp_path / "urls.csv"
    csv_path.write_text(f'inputid,input\nok,{base}/ok.png\nmissing,{base}/missing.png\n')
    summary = dataset.upload_from_csv(str(csv_path), input_type="image", csv_type="url",
                                      labels=False)
    assert summary.uploaded == 1 and [f.item for f in summary.failed] == \
        [f"input 'missing' ({csv_path}:3)"]
    assert "404" in summary.failed[0].reason
    assert [i.id for i in dataset.input_object.list_inputs()] == ["ok"]  # failed one removed
    assert dataset.input_object.download_inputs(list(dataset.list_inputs())) == [png(20)]


def test_upload_from_csv_of_file_paths(dataset, tmp_path):
    (tmp_path / "media").mkdir()
    for i in range(3):
        (tmp_path / "media" / f"p{i}.png").write_bytes(png(40 + i))
    csv_path = tmp_path / "files.csv"
    csv_path.write_text("inputid,input,concepts\n" + "".join(
        f"p{i},media/p{i}.png,shape\n" for i in range(3)) + "p9,media/absent.png,shape\n")
    summary = dataset.upload_from_csv(str(csv_path), input_type="image", csv_type="file_path",
                                      batch_size=2)
    assert summary.uploaded == 3 and summary.failed[0].item == f"{csv_path}:5"
    assert "absent.png" in summary.failed[0].reason
    listed = sorted(dataset.list_inputs(), key=lambda i: i.id)
    assert dataset.input_object.download_inputs(listed) == [png(40), png(41), png(42)]


def test_upload_from_folder(dataset, tmp_path):
    folder = tmp_path / "dogs"
    folder.mkdir()
    for i in range(5):
        (folder / f"dog{i}.png").write_bytes(png(30 + i))
    (folder / "broken.txt").write_bytes(b"\xff\xfe not utf-8")
    summary = dataset.upload_from_folder(str(folder), input_type="image", labels=True)
    assert (summary.uploaded, len(summary.failed)) == (5, 0)
    listed = list(dataset.list_inputs(input_type="image"))
    assert sorted(i.id for i in listed) == [f"dog{i}" for i in range(5)]
    assert all([c.id for c in i.data.concepts] == ["dogs"] for i in listed)
    texts = dataset.upload_from_folder(str(folder), input_type="text")
    assert texts.uploaded == 0 and "broken.txt" in texts.failed[0].item
    assert "UTF-8" in texts.failed[0].reason


def test_upload_dataset_and_status(dataset, tmp_path, capsys):
    loader = Boxes(tmp_path)
    summary = dataset.upload_dataset(loader, batch_size=2, get_upload_status=True)
    assert (summary.uploaded, summary.annotations_uploaded, summary.ok) == (3, 4, True)
    annotations = list(dataset.input_object.list_annotations(list(dataset.list_inputs())))
    assert sum(len(a.data.regions) for a in annotations) == 4
    assert "Upload status" in capsys.readouterr().err
    inputs, annots = dataset.get_upload_status(dataloader=loader, delete_version=True)
    assert inputs["total"] == 3 and annots["bboxes"] == 4
    assert list(dataset.list_versions()) == []  # status versions were deleted

    class BadTexts(ClarifaiDataLoader):
        task = "text_classification"

        def __len__(self):
            return 2

        def __getitem__(self, index):
            if index == 1:
                raise ValueError("row 1 is corrupt")
            return TextFeatures("hello", labels=["greeting"], id="t0")

    summary = dataset.upload_dataset(BadTexts())
    assert summary.uploaded == 1 and summary.failed[0].item == "dataloader item 1"
    assert "corrupt" in summary.failed[0].reason
    with pytest.raises(UserError, match="task"):
        dataset.upload_dataset(type("L", (BadTexts,), {"task": "juggling"})())


def _read_export(path):
    """{input id: (media bytes, annotation records)} from an export folder or zip."""
    if str(path).endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
    else:
        files = {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    out = {}
    for name, body in files.items():
        split, kind, file_name = name.split("/")
        assert split == "all"
        input_id = file_name.rsplit(".", 1)[0]
        media, records = out.get(input_id, (None, None))
        if kind == "inputs":
            media = body
        else:
            records = json.loads(body)
        out[input_id] = (media, records)
    return out


def test_export_of_a_version_reads_back_input_by_input(dataset, tmp_path):
    loader = Boxes(tmp_path)
    dataset.upload_dataset(loader)
    dataset.input_object.upload_text("ds-text", "plain words", dataset_id="ds", labels=["txt"])
    version = dataset.create_version(description="for export")

    folder_summary = version.export(str(tmp_path / "out"), num_workers=3)
    assert (folder_summary.inputs, folder_summary.ok) == (4, True)
    zip_summary = version.export(str(tmp_path / "out.zip"), num_workers=1)
    assert zip_summary.inputs == 4
    for exported in (_read_export(tmp_path / "out"), _read_export(tmp_path / "out.zip")):
        assert set(exported) == {"ds-i0", "ds-i1", "ds-i2", "ds-text"}
        for i in range(3):
            media, records = exported[f"ds-i{i}"]
            assert media == png(10 + i)
            assert {"metadata": {"n": i}} in records
            boxes = [r["regionInfo"]["boundingBox"] for r in records if "regionInfo" in r]
            assert len(boxes) == (2 if i == 1 else 1)
            assert boxes[0]["leftCol"] == pytest.approx(0.1)
        media, records = exported["ds-text"]
        assert media == b"plain words" and [r["id"] for r in records] == ["txt"]

    url = version.archive_zip()
    local = tmp_path / "archive.zip"
    from clarifai_connect.client.http import fetch
    local.write_bytes(fetch(url)[0])
    with ExportArchiveReader(local) as reader:
        assert len(reader) == 4 and sorted(i.id for i in reader) == \
            ["ds-i0", "ds-i1", "ds-i2", "ds-text"]
    from_local = dataset.export(str(tmp_path / "from-local"), local_archive_path=str(local),
                                split="train")
    from_url = dataset.export(str(tmp_path / "from-url"), archive_url=url)
    assert from_local.inputs == from_url.inputs == 4
    assert (tmp_path / "from-local" / "train" / "inputs" / "ds-i0.png").read_bytes() == png(10)

    with pytest.raises(UserError, match="no version"):
        dataset.export(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="does not exist"):
        dataset.export(str(tmp_path / "nope"), local_archive_path=str(tmp_path / "none.zip"))
    (tmp_path / "fake.zip").write_bytes(b"PK not really")
    with pytest.raises(UserError, match="export archive"):
        dataset.export(str(tmp_path / "nope"), local_archive_path=str(tmp_path / "fake.zip"))
