"""Wire compatibility: the official `clarifai` SDK, unchanged, against the local server.

The SDK is a test-only dependency (the `compat` extra). Each test drives a whole workflow
the way a user of the SDK would, then checks the result through the SDK's own readers.
"""

import io
import json
import zipfile

import pytest

pytestmark = pytest.mark.compat

clarifai_user = pytest.importorskip("clarifai.client.user", reason="install the compat extra")
from clarifai.client.input import Inputs  # noqa: E402
from clarifai.datasets.export.inputs_annotations import DatasetExportReader  # noqa: E402
from PIL import Image  # noqa: E402  (the SDK depends on Pillow)


def _png(color: tuple[int, int, int], size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def sdk_user(clarifai_server):
    return clarifai_user.User(user_id="sdk-user", base_url=clarifai_server.base_url,
                              pat=clarifai_server.add_key(f"sdk-user:{'s' * 32}"))


def test_sdk_upload_list_version_export_delete(sdk_user, tmp_path):
    app = sdk_user.create_app(app_id="sdk_round_trip")
    dataset = app.create_dataset(dataset_id="ds1")
    inputs = app.inputs()

    inputs.upload_text(input_id="t1", raw_text="hello world", dataset_id="ds1",
                       labels=["greeting"])
    red = _png((255, 0, 0))
    inputs.upload_from_bytes(input_id="img1", image_bytes=red, dataset_id="ds1", labels=["red"])
    bbox = Inputs.get_bbox_proto(input_id="img1", label="square", bbox=[0.1, 0.2, 0.5, 0.6])
    assert inputs.upload_annotations([bbox]) == []

    listed = list(inputs.list_inputs(dataset_id="ds1"))
    assert sorted(i.id for i in listed) == ["img1", "t1"]
    assert [i.id for i in inputs.list_inputs(input_type="image")] == ["img1"]
    annotations = list(inputs.list_annotations(batch_input=listed))
    boxes = [a.data.regions[0].region_info.bounding_box for a in annotations if a.data.regions]
    assert len(boxes) == 1
    assert boxes[0].left_col == pytest.approx(0.1) and boxes[0].bottom_row == pytest.approx(0.6)
    downloaded = inputs.download_inputs([i for i in listed if i.id == "img1"])
    assert downloaded == [red]

    version = dataset.create_version(description="first")
    assert version.version.id
    assert [v.version.id for v in dataset.list_versions()] == [version.version.id]

    archive_url = version.archive_zip()
    with DatasetExportReader(archive_url=archive_url) as reader:
        exported = {inp.id: inp for inp in reader}
    assert set(exported) == {"t1", "img1"}
    assert [c.id for c in exported["t1"].data.concepts] == ["greeting"]
    region = exported["img1"].data.regions[0]
    assert region.region_info.bounding_box.top_row == pytest.approx(0.2)
    assert region.data.concepts[0].id == "square"

    out = tmp_path / "export.zip"
    version.export(save_path=str(out))
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert {"all/inputs/t1.txt", "all/inputs/img1.png"} <= names
        assert z.read("all/inputs/t1.txt") == b"hello world"
        img = Image.open(io.BytesIO(z.read("all/inputs/img1.png")))
        assert img.size == (8, 6) and img.getpixel((0, 0))[:3] == (255, 0, 0)
        annots = json.loads(z.read("all/annotations/img1.json"))
        assert any("regionInfo" in a or "region_info" in a for a in annots)

    inputs.delete_inputs(listed)
    assert list(inputs.list_inputs()) == []
    dataset.delete_version(version.version.id)
    app.delete_dataset("ds1")
    assert [d.id for d in app.list_datasets()] == []
    sdk_user.delete_app("sdk_round_trip")
    assert "sdk_round_trip" not in [a.id for a in sdk_user.list_apps()]


def test_sdk_bulk_upload_from_folder(sdk_user, tmp_path):
    """upload_from_folder runs the SDK's bulk path: add-job polling, status-filtered listing."""
    app = sdk_user.create_app(app_id="sdk_bulk")
    dataset = app.create_dataset(dataset_id="folder_ds")
    colors = {"red": (255, 0, 0), "green": (0, 255, 0)}
    for label, color in colors.items():  # the SDK labels a folder's images by its name
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{label}_{i}.png").write_bytes(_png(color, size=(4 + i, 4)))
        dataset.upload_from_folder(folder_path=str(tmp_path / label), input_type="image",
                                   labels=True)

    listed = list(app.inputs().list_inputs(dataset_id="folder_ds"))
    assert sorted(i.id for i in listed) == sorted(f"{c}_{i}" for c in colors for i in range(3))
    for inp in listed:
        assert [c.id for c in inp.data.concepts] == [inp.id.split("_")[0]]
    sdk_user.delete_app("sdk_bulk")
