"""The Pascal VOC connector on Datumaro's VOC folder, on hostile XML and on broken items."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from clarifai_connect.plugins import PluginRegistry
from clarifai_connect.records import Problem, Record
from connectors.masks import png_to_rle, voc_colormap
from connectors.voc import VocReader

POSITIVE = {"aeroplane", "sheep", "train", "bird", "horse", "bottle", "diningtable", "person",
            "chair", "car", "ignored"}
NEGATIVE = {"background", "bus", "cat", "motorbike", "tvmonitor", "boat", "cow", "pottedplant",
            "sofa", "bicycle", "dog"}

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotation><filename>laughs.jpg</filename><object><name>&lol9;</name></object></annotation>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotation><filename>external.jpg</filename><object><name>&secret;</name></object></annotation>
"""


def read(uri, **options):
    items = list(VocReader(str(uri), **options))
    return ([i for i in items if isinstance(i, Record)],
            [i for i in items if isinstance(i, Problem)])


def jpeg(width, height):
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 10)).save(out, format="JPEG")
    return out.getvalue()


def xml(filename, objects, size=(40, 20)):
    size_xml = (f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth>"
                "</size>") if size else ""
    body = "".join(
        f"<object><name>{name}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, b, d in objects)
    return f"<annotation><filename>{filename}</filename>{size_xml}{body}</annotation>".encode()


def test_compat_voc(compat_dir):
    root = compat_dir / "datumaro/voc_dataset/voc_dataset1"
    assert PluginRegistry().load().detect_format(str(root)) == "voc"
    records, problems = read(root)
    assert problems == []
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"2007_000001", "2007_000002"}
    one, two = by_id["2007_000001"], by_id["2007_000002"]
    assert one.media.uri == str(root / "JPEGImages/2007_000001.jpg")
    assert two.media.uri == str(root / "JPEGImages/2007_000002.jpg")
    # image-level labels from ImageSets/Main/<class>_train.txt: 1 present, -1 absent
    assert {c.id for c in one.concepts if c.value == 1} == POSITIVE
    assert {c.id for c in one.concepts if c.value == 0} == NEGATIVE
    assert two.concepts == () and two.regions == ()
    # two object boxes, one part box, the object mask of object 1, the class mask (bicycle)
    assert sorted((r.kind, r.concepts[0].id) for r in one.regions) == [
        ("box", "cat"), ("box", "head"), ("box", "person"), ("mask", "bicycle"),
        ("mask", "cat")]
    regions = {r.id: r for r in one.regions}
    cat = regions["2007_000001-obj1"].box
    # xmin 1, ymin 2, xmax 3, ymax 4 in a 20×10 image
    assert (cat.left_col, cat.top_row, cat.right_col, cat.bottom_row) == pytest.approx(
        (0.05, 0.2, 0.15, 0.4))
    head = regions["2007_000001-obj2-part1"].box
    assert (head.left_col, head.right_col) == pytest.approx((5.5 / 20, 7.5 / 20))
    assert png_to_rle(regions["2007_000001-obj1-mask"].mask.data) == ([0, 200], 10, 20)
    meta = one.metadata["voc"]
    assert meta["split"] == "train" and meta["image_sets"]["Segmentation"] == ["train"]
    first, second = meta["objects"]
    assert (first["pose"], first["truncated"], first["difficult"]) == ("Unspecified", 1, 0)
    assert first["mask_region"] == "2007_000001-obj1-mask"
    assert second["actions"]["phoning"] == 1 and second["actions"]["jumping"] == 0
    assert second["parts"] == [{"name": "head", "region": "2007_000001-obj2-part1"}]
    assert two.metadata["voc"]["split"] == "test"
    # no negatives when asked
    records, _ = read(root, negatives=False)
    assert {c.id for r in records for c in r.concepts} == POSITIVE


@pytest.fixture
def voc(tmp_path):
    """A small VOC folder: a good image, an image without <size>, no ImageSets lists."""
    for folder in ("Annotations", "JPEGImages", "SegmentationObject", "SegmentationClass"):
        (tmp_path / folder).mkdir()
    (tmp_path / "JPEGImages/good.jpg").write_bytes(jpeg(40, 20))
    (tmp_path / "JPEGImages/nosize.jpg").write_bytes(jpeg(50, 10))
    (tmp_path / "Annotations/good.xml").write_bytes(
        xml("good.jpg", [("dog", (4, 2, 20, 10), 1), ("cat", (20, 10, 40, 20), 0)]))
    (tmp_path / "Annotations/nosize.xml").write_bytes(
        xml("nosize.jpg", [("dog", (0, 0, 25, 5), 0)], size=None))
    return tmp_path


def test_xml_without_image_sets_and_size_from_header(voc):
    records, problems = read(voc)
    assert problems == []
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"good", "nosize"}
    assert [o["difficult"] for o in by_id["good"].metadata["voc"]["objects"]] == [1, 0]
    (box,) = by_id["nosize"].regions
    assert (box.box.right_col, box.box.bottom_row) == pytest.approx((0.5, 0.5))  # 50×10 image


def test_hostile_xml_is_rejected_and_the_run_goes_on(voc):
    (voc / "Annotations/laughs.xml").write_bytes(BILLION_LAUGHS)
    (voc / "Annotations/external.xml").write_bytes(EXTERNAL_ENTITY)
    (voc / "Annotations/broken.xml").write_bytes(b"<annotation><object><name>x</name>")
    records, problems = read(voc)
    assert {r.id for r in records} == {"good", "nosize"}
    reasons = {p.id: str(p) for p in problems}
    assert set(reasons) == {"laughs", "external", "broken"}
    assert reasons["laughs"].startswith(f"{voc / 'Annotations/laughs.xml'}: unsafe XML rejected")
    assert reasons["external"].startswith(
        f"{voc / 'Annotations/external.xml'}: unsafe XML rejected")
    assert "root:" not in reasons["external"]  # /etc/passwd was never read
    assert reasons["broken"].startswith(f"{voc / 'Annotations/broken.xml'}: broken XML")


def test_bad_objects_and_missing_images_are_problems(voc):
    (voc / "Annotations/good.xml").write_bytes(xml("good.jpg", [
        ("dog", (4, 2, 20, 10), 0), ("far", (4, 2, 400, 10), 0), ("", (1, 1, 2, 2), 0)]))
    (voc / "ImageSets/Main").mkdir(parents=True)
    (voc / "ImageSets/Main/train.txt").write_text("good\nghost\nnosize\n")
    (voc / "ImageSets/Main/dog_train.txt").write_text("good 1\nnosize 2\n")
    records, problems = read(voc)
    assert [r.id for r in records] == ["good", "nosize"]
    good = records[0]
    assert [r.concepts[0].id for r in good.regions] == ["dog"]  # the two bad objects dropped
    assert [c.id for c in good.concepts] == ["dog"]
    text = sorted(str(p) for p in problems)
    assert len(text) == 4
    dog_file = voc / "ImageSets/Main/dog_train.txt"
    assert f"{dog_file}:2: expected '<image id> <1|0|-1>', got 'nosize 2'" in text
    annotations = voc / "Annotations"
    assert any(t.startswith(f"{annotations / 'good.xml'}: object 2: xmax 400 is outside")
               for t in text)
    assert f"{annotations / 'good.xml'}: object 3: no <name> (the rest of good is kept)" in text
    assert any(t.startswith(f"{annotations / 'ghost.xml'}: no image JPEGImages/ghost")
               for t in text)


def test_palette_masks_and_labelmap(voc):
    (voc / "Annotations/good.xml").write_bytes(
        xml("good.jpg", [("dog", (4, 2, 20, 10), 0), ("cat", (20, 10, 40, 20), 0)]))
    (voc / "Annotations/good.xml").write_bytes(
        (voc / "Annotations/good.xml").read_bytes().replace(
            b"</size>", b"</size><segmented>1</segmented>"))
    objects = Image.new("P", (40, 20), 0)
    objects.putpalette([c for colour in voc_colormap() for c in colour])
    objects.paste(1, (4, 2, 20, 10))
    objects.paste(2, (20, 10, 40, 20))
    objects.paste(255, (0, 19, 40, 20))  # the void border is not an object
    objects.save(voc / "SegmentationObject/good.png")
    classes = Image.new("RGB", (40, 20), (0, 0, 0))
    classes.paste((10, 20, 30), (4, 2, 20, 10))
    classes.save(voc / "SegmentationClass/good.png")
    (voc / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n"
                                      "background:0,0,0::\nhound:10,20,30::\n")
    records, problems = read(voc)
    assert problems == []
    good = next(r for r in records if r.id == "good")
    masks = {r.id: r for r in good.regions if r.kind == "mask"}
    assert sorted(masks) == ["good-class-hound", "good-obj1-mask", "good-obj2-mask"]
    assert masks["good-obj2-mask"].concepts[0].id == "cat"
    counts, height, width = png_to_rle(masks["good-obj1-mask"].mask.data)
    assert (height, width) == (20, 40) and sum(counts[1::2]) == 16 * 8
    assert png_to_rle(masks["good-class-hound"].mask.data) == \
        png_to_rle(masks["good-obj1-mask"].mask.data)
    # masks off
    records, _ = read(voc, masks=False)
    assert all(r.kind == "box" for rec in records for r in rec.regions)


def test_copy_of_compat_detected_through_registry(compat_dir, tmp_path):
    root = tmp_path / "voc"
    shutil.copytree(compat_dir / "datumaro/voc_dataset/voc_dataset1", root)
    items = list(PluginRegistry().load().open_reader(str(root), "auto"))
    assert sorted(i.id for i in items if isinstance(i, Record)) == ["2007_000001",
                                                                      "2007_000002"]
    assert Path(items[0].media.uri).exists()


def test_compat_voc_lands_in_the_server(compat_dir, clarifai_server, clarifai_app, clarifai_raw,
                                        tmp_path):
    """Synced into the real local server, the app holds exactly what the reader read:
    boxes, part boxes, masks, positive and negative image labels."""
    import clarifai_connect

    from .sync_support import app_content, source_content

    root = compat_dir / "datumaro/voc_dataset/voc_dataset1"
    report = clarifai_connect.sync(
        str(root), f"{clarifai_app.user_id}/{clarifai_app.app_id}",
        base_url=clarifai_server.base_url, pat=clarifai_server.keys[0],
        state=tmp_path / "state.sqlite")
    assert (report.created, report.failed) == (2, 0), report.summary()
    assert report.annotations == 5
    content = app_content(clarifai_raw, clarifai_app)
    assert content == source_content(str(root))
    assert sorted(k for k, *_ in content["2007_000001"]["regions"]) == [
        "box", "box", "box", "mask", "mask"]
