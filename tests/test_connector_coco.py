"""The COCO connector on Datumaro's real COCO files and on files built to hit each edge."""

from __future__ import annotations

import io
import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from clarifai_connect.plugins import PluginRegistry
from clarifai_connect.records import Problem, Record
from connectors.coco import CocoReader, split_of
from connectors.masks import encode_rle_string, png_to_rle


def read(uri, **options):
    items = list(CocoReader(str(uri), **options))
    records = [i for i in items if isinstance(i, Record)]
    problems = [i for i in items if isinstance(i, Problem)]
    return records, problems


def concept_ids(records):
    ids = {c.id for r in records for c in r.concepts}
    ids |= {c.id for r in records for reg in r.regions for c in reg.concepts}
    return ids


def kinds(record):
    return sorted(r.kind for r in record.regions)


def png(width, height):
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def write_coco(path: Path, images, annotations, categories, order=("images", "annotations",
                                                                    "categories")):
    parts = {"images": images, "annotations": annotations, "categories": categories}
    doc = {"info": {}, "licenses": []}
    doc.update({key: parts[key] for key in order})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# -- Datumaro's files ---------------------------------------------------------------------


def test_compat_instances(compat_dir):
    root = compat_dir / "datumaro/coco_dataset/coco_instances"
    records, problems = read(root)
    assert problems == []
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"train-a.jpg", "val-b.jpg"}
    assert sum(len(r.regions) for r in records) == 3
    assert concept_ids(records) == {"a", "b"}  # category 'c' (id 4) is never used
    train, val = by_id["train-a.jpg"], by_id["val-b.jpg"]
    assert train.media.uri == str(root / "images/train/a.jpg")
    assert Path(train.media.uri).exists() and Path(val.media.uri).exists()
    (box,) = train.regions
    # bbox [2, 2, 3, 1] in a 10×5 image
    assert (box.box.left_col, box.box.top_row, box.box.right_col, box.box.bottom_row) == \
        pytest.approx((0.2, 0.4, 0.5, 0.6))
    assert [c.id for c in box.concepts] == ["b"]
    assert kinds(val) == ["mask", "polygon"]
    polygon = next(r for r in val.regions if r.kind == "polygon")
    # [0,0, 1,0, 1,2, 0,2] in a 5×10 image
    assert [c for p in polygon.polygon for c in (p.col, p.row)] == pytest.approx(
        [0, 0, 0.2, 0, 0.2, 0.2, 0, 0.2])
    mask = next(r for r in val.regions if r.kind == "mask")
    assert png_to_rle(mask.mask.data) == ([0, 20, 30], 10, 5)
    meta = val.metadata["coco"]
    assert meta["split"] == "val" and meta["image_id"] == 40
    assert meta["annotations"][0]["attributes"] == {"x": 1, "y": "hello"}
    assert meta["annotations"][1]["iscrowd"] == 1


def test_compat_captions(compat_dir):
    records, problems = read(compat_dir / "datumaro/coco_dataset/coco_captions")
    assert problems == []
    assert len(records) == 2 and concept_ids(records) == set()
    assert sum(len(r.regions) for r in records) == 0
    captions = {r.id: [c["caption"] for c in r.metadata["coco"]["captions"]] for r in records}
    assert captions == {"train-a.jpg": ["hello"], "val-b.jpg": ["world", "text"]}


def test_compat_person_keypoints(compat_dir):
    records, problems = read(compat_dir / "datumaro/coco_dataset/coco_person_keypoints")
    assert problems == []
    by_id = {r.id: r for r in records}
    assert len(records) == 2
    # train: a box + 2 labelled keypoints (the v=0 one is skipped); val: polygon + mask + 3 + 3
    assert kinds(by_id["train-a.jpg"]) == ["box", "point", "point"]
    assert kinds(by_id["val-b.jpg"]) == ["mask", "point", "point", "point", "point", "point",
                                         "point", "polygon"]
    assert sum(len(r.regions) for r in records) == 11
    assert concept_ids(records) == {"a", "b", "a-keypoint-1", "a-keypoint-2", "a-keypoint-3",
                                    "b-keypoint-1", "b-keypoint-2", "b-keypoint-3"}
    point = next(r for r in by_id["train-a.jpg"].regions if r.kind == "point")
    assert (point.point.col, point.point.row) == pytest.approx((0.0, 0.4))  # (0, 2) in 10×5
    (ann,) = by_id["train-a.jpg"].metadata["coco"]["annotations"]
    assert [(k["name"], k["visibility"]) for k in ann["keypoints"]] == [
        ("b-keypoint-2", 1), ("b-keypoint-3", 2)]


def test_compat_single_file_and_detection(compat_dir):
    path = compat_dir / "datumaro/coco_dataset/coco_instances/annotations/instances_val.json"
    registry = PluginRegistry().load()
    assert registry.detect_format(str(path)) == "coco"
    assert registry.detect_format(str(path.parent.parent)) == "coco"
    records, problems = read(path)
    assert problems == [] and [r.id for r in records] == ["val-b.jpg"]
    assert records[0].media.uri == str(path.parent.parent / "images/val/b.jpg")


def test_tasks_of_one_split_merge_into_one_record(compat_dir, tmp_path):
    src = compat_dir / "datumaro/coco_dataset"
    (tmp_path / "annotations").mkdir()
    for task in ("coco_instances", "coco_captions", "coco_person_keypoints"):
        for json_file in (src / task / "annotations").glob("*.json"):
            shutil.copy(json_file, tmp_path / "annotations" / json_file.name)
    shutil.copytree(src / "coco_instances/images", tmp_path / "images")
    records, problems = read(tmp_path)
    assert problems == []
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"train-a.jpg", "val-b.jpg"}
    assert sum(len(r.regions) for r in records) == 3 + 11
    assert len(by_id["val-b.jpg"].metadata["coco"]["captions"]) == 2
    assert len({reg.id for r in records for reg in r.regions}) == 14  # region ids are unique


def test_split_names():
    assert split_of("instances_val2017.json") == ("instances", "val2017")
    assert split_of("person_keypoints_train.json") == ("person_keypoints", "train")
    assert split_of("image_info_test-dev2017.json") == ("image_info", "test-dev2017")
    assert split_of("my_labels_extra.json") == ("my_labels", "extra")
    assert split_of("anything.json") == ("anything", "")


# -- edges ---------------------------------------------------------------------------------


@pytest.fixture
def dataset(tmp_path):
    """A COCO folder with non-contiguous ids, every geometry, and labels-only images."""
    images_dir = tmp_path / "images" / "train"
    images_dir.mkdir(parents=True)
    (images_dir / "one.png").write_bytes(png(20, 10))
    (images_dir / "nosize.png").write_bytes(png(40, 20))
    images = [
        {"id": 101, "file_name": "one.png", "width": 20, "height": 10},
        {"id": 7, "file_name": "nosize.png"},  # width/height read from the header
        {"id": 9, "file_name": "remote.jpg", "width": 8, "height": 8,
         "coco_url": "http://images.example/remote.jpg"},
    ]
    categories = [{"id": 17, "name": "golden retriever", "supercategory": "dog"},
                  {"id": 3, "name": "cat", "supercategory": "animal",
                   "keypoints": ["nose", "tail"]}]
    rle = [0, 5, 15, 5, 175]  # 20×10 mask, column-major
    annotations = [
        {"id": 1, "image_id": 101, "category_id": 17, "bbox": [0, 0, 10, 5], "iscrowd": 0,
         "segmentation": [[0, 0, 10, 0, 10, 5], [12, 1, 14, 1, 14, 3, 12, 3]], "score": 0.5},
        {"id": 2, "image_id": 101, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 2, 10],
         "segmentation": {"counts": rle, "size": [10, 20]}},
        {"id": 3, "image_id": 101, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 2, 10],
         "segmentation": {"counts": encode_rle_string(rle), "size": [10, 20]}},
        {"id": 4, "image_id": 7, "category_id": 3, "bbox": [20, 10, 20.5, 10],
         "keypoints": [4, 2, 2, 0, 0, 0], "num_keypoints": 1},
        {"id": 5, "image_id": 7, "category_id": 17},  # an image-level label
    ]
    write_coco(tmp_path / "annotations/instances_train.json", images, annotations, categories,
               order=("annotations", "categories", "images"))
    return tmp_path


def test_edges(dataset):
    records, problems = read(dataset, include_boxes=True)
    assert problems == []
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"train-one.png", "train-nosize.png", "train-remote.jpg"}
    one = by_id["train-one.png"]
    assert kinds(one) == ["box", "box", "box", "mask", "mask", "polygon", "polygon"]
    assert {c.id for reg in one.regions for c in reg.concepts} == {"golden-retriever", "cat"}
    masks = [reg for reg in one.regions if reg.kind == "mask"]
    # the plain and the compressed RLE decode to the same mask
    assert png_to_rle(masks[0].mask.data) == png_to_rle(masks[1].mask.data) == \
        ([0, 5, 15, 5, 175], 10, 20)
    first = one.metadata["coco"]["annotations"][0]
    assert first["category_id"] == 17 and first["supercategory"] == "dog"
    assert first["extra"] == {"score": 0.5} and len(first["regions"]) == 3
    nosize = by_id["train-nosize.png"]
    assert nosize.metadata["coco"]["width"] == 40 and nosize.metadata["coco"]["height"] == 20
    assert [c.id for c in nosize.concepts] == ["golden-retriever"]
    box = next(r.box for r in nosize.regions if r.kind == "box")
    assert (box.right_col, box.bottom_row) == (1.0, 1.0)  # 40.5 px: clamped, within a pixel
    (point,) = [r for r in nosize.regions if r.kind == "point"]
    assert [c.id for c in point.concepts] == ["nose"]
    assert (point.point.col, point.point.row) == pytest.approx((0.1, 0.1))
    # the images folder was found, so it is used for every image (no per-image probing)
    assert by_id["train-remote.jpg"].media.uri == str(dataset / "images/train/remote.jpg")
    # ids and content are the same on every run
    again, _ = read(dataset, include_boxes=True)
    assert [(r.id, r.fingerprint) for r in again] == [(r.id, r.fingerprint) for r in records]


def test_spilling_to_disk_gives_the_same_records(dataset, tmp_path):
    path = dataset / "annotations/instances_train.json"
    doc = json.loads(path.read_text())
    more = [dict(a, id=1000 + n, image_id=101) for n, a in enumerate(doc["annotations"][:1] * 30)]
    doc["annotations"] += more
    random.Random(3).shuffle(doc["annotations"])
    path.write_text(json.dumps(doc))
    spill = tmp_path / "spill"
    spill.mkdir()
    in_memory, p1 = read(dataset)
    spilled, p2 = read(dataset, memory_annotations=2, spill_dir=str(spill))
    assert p1 == p2 == []
    # after a spill, images come bucket by bucket: the same records, in another fixed order
    assert sorted(spilled, key=lambda r: r.id) == sorted(in_memory, key=lambda r: r.id)
    assert sum(len(r.regions) for r in spilled) == 2 * 31 + 2 + 2  # polygons, masks, box+point
    assert list(spill.iterdir()) == []  # the spill file is removed


def test_bad_items_are_reported_and_the_rest_is_read(dataset):
    path = dataset / "annotations/instances_train.json"
    doc = json.loads(path.read_text())
    doc["annotations"] += [
        {"id": 50, "image_id": 999, "category_id": 3, "bbox": [0, 0, 1, 1]},
        {"id": 51, "image_id": 101, "category_id": 404, "bbox": [0, 0, 1, 1]},
        {"id": 52, "image_id": 101, "category_id": 3, "segmentation": [[0, 0, 1, 1]]},
        {"id": 53, "image_id": 101, "category_id": 3, "bbox": [0, 0, 500, 1]},
        {"id": 54, "image_id": 101, "category_id": 3,
         "segmentation": {"counts": [0, 3], "size": [10, 20]}},
    ]
    doc["images"].append({"id": 102, "file_name": "missing.png"})  # no size, no file
    doc["annotations"].append({"id": 55, "image_id": 102, "category_id": 3, "bbox": [0, 0, 1, 1]})
    path.write_text(json.dumps(doc))
    records, problems = read(dataset)
    assert {r.id for r in records} == {"train-one.png", "train-nosize.png", "train-remote.jpg"}
    text = [str(p) for p in problems]
    assert len(text) == 6
    shown = str(path)
    assert f"{shown}: annotation 50: image_id 999 is not in the file's images" in text
    assert any(t.startswith(f"{shown}: annotation 51: category_id 404") for t in text)
    assert any(t.startswith(f"{shown}: annotation 52: a polygon has 2 points") for t in text)
    assert any(t.startswith(f"{shown}: annotation 53: bbox right 500") for t in text)
    assert any(t.startswith(f"{shown}: annotation 54: RLE segmentation: RLE runs cover 3")
               for t in text)
    assert any("missing.png" in t and "header cannot be read" in t for t in text)
    # the good annotations of image 101 are all there
    one = next(r for r in records if r.id == "train-one.png")
    assert kinds(one) == ["mask", "mask", "polygon", "polygon"]


def test_broken_json_reports_the_file_and_keeps_what_came_before(tmp_path):
    images = [{"id": n, "file_name": f"{n}.jpg", "width": 10, "height": 10} for n in range(5)]
    categories = [{"id": 1, "name": "thing"}]
    annotations = [{"id": n, "image_id": n, "category_id": 1, "bbox": [1, 1, 2, 2]}
                   for n in range(5)]
    path = write_coco(tmp_path / "instances_x.json", images, annotations, categories,
                      order=("categories", "images", "annotations"))
    text = path.read_text()
    cut = text.index('{"id": 3, "image_id": 3')
    path.write_text(text[:cut] + '{"id": 3, "image_id": ]]')
    records, problems = read(path)
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{path}: broken JSON after ")
    assert "items after that point were not read" in str(problems[0])
    # every image came before the break; annotations 0-2 did too
    assert len(records) == 5
    assert sorted(len(r.regions) for r in records) == [0, 0, 1, 1, 1]


def test_not_json_at_all(tmp_path):
    path = tmp_path / "instances_y.json"
    path.write_bytes(b"\x00\x01 this is not json")
    records, problems = read(path)
    assert records == [] and len(problems) == 1 and "broken JSON" in str(problems[0])


def test_image_root_and_prefer_urls(dataset, tmp_path):
    elsewhere = tmp_path / "pictures"
    shutil.copytree(dataset / "images/train", elsewhere)
    records, _ = read(dataset, image_root=str(elsewhere))
    uris = {r.id: r.media.uri for r in records}
    assert uris["train-one.png"] == str(elsewhere / "one.png")
    records, _ = read(dataset, prefer_urls=True)
    assert {r.id: r.media.uri for r in records} == {
        "train-remote.jpg": "http://images.example/remote.jpg",
        "train-one.png": str(dataset / "images/train/one.png"),  # no URL: stays local
        "train-nosize.png": str(dataset / "images/train/nosize.png")}
    shutil.rmtree(dataset / "images")
    records, problems = read(dataset)  # no local images anywhere: URLs where there are some
    uris = {r.id: r.media.uri for r in records}
    assert uris["train-remote.jpg"] == "http://images.example/remote.jpg"
    assert uris["train-one.png"] == str(dataset / "images/train/one.png")
    # nosize.png has a labelled box, and without the file its size cannot be known
    assert [p.id for p in problems] == ["train-nosize.png"]


def test_large_file_streams_with_bounded_memory(tmp_path):
    """20k annotations read with a 1k in-memory budget: peak Python memory stays far below
    what json.load of the same file needs (bench/coco_read.py does this at 1M)."""
    import tracemalloc

    from bench.coco_read import generate

    path = tmp_path / "instances_big.json"
    generate(path, annotations=20_000, images=200)
    tracemalloc.start()
    count = 0
    for item in CocoReader(str(path), memory_annotations=1_000, spill_dir=str(tmp_path)):
        assert isinstance(item, Record)
        count += len(item.regions)
    _, reader_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    with open(path, "rb") as handle:
        json.load(handle)
    _, load_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 20_000
    assert reader_peak < load_peak / 3, (reader_peak, load_peak)


def test_keypoints_and_masks_land_in_the_server(compat_dir, clarifai_server, clarifai_app,
                                                clarifai_raw, tmp_path):
    """Synced into the real local server, the app holds the points, masks, polygons and
    boxes the reader produced, each once."""
    import clarifai_connect

    from .sync_support import app_content, source_content

    root = compat_dir / "datumaro/coco_dataset/coco_person_keypoints"
    report = clarifai_connect.sync(
        str(root), f"{clarifai_app.user_id}/{clarifai_app.app_id}",
        base_url=clarifai_server.base_url, pat=clarifai_server.keys[0],
        state=tmp_path / "state.sqlite")
    assert (report.created, report.failed) == (2, 0), report.summary()
    assert report.annotations == 11
    content = app_content(clarifai_raw, clarifai_app)
    assert content == source_content(str(root))
    assert sorted(k for v in content.values() for k, *_ in v["regions"]) == \
        ["box", "mask", "point", "point", "point", "point", "point", "point", "point", "point",
         "polygon"]


def test_files_that_are_not_coco_annotations_are_reported(tmp_path):
    (tmp_path / "annotations").mkdir()
    results = tmp_path / "annotations/instances_results.json"
    results.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                                    "score": 0.9}]))
    panoptic = write_coco(tmp_path / "annotations/panoptic_val.json",
                          [{"id": 1, "file_name": "p.jpg", "width": 4, "height": 4}],
                          [{"image_id": 1, "file_name": "p.png", "segments_info": []}],
                          [{"id": 1, "name": "thing"}])
    records, problems = read(tmp_path)
    assert [r.id for r in records] == ["val-p.jpg"]  # the image itself is still an input
    assert sorted(str(p) for p in problems) == sorted([
        f"{panoptic}: annotation None: panoptic annotations (segments_info) are not read: use "
        "the instances file of the same split (the rest of image p.jpg is kept)",
        f"{results}: no 'images', 'annotations' or 'categories' in this file: "
        "not a COCO annotation file"])


@pytest.mark.slow
def test_bench_one_million_annotations():
    """bench/coco_read.py at full size: every annotation read, far less memory than json.load.
    (Times are printed, never asserted.)"""
    import contextlib

    from bench.coco_read import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([])
    report = json.loads(out.getvalue())
    print(report)
    assert report["annotations"] == 1_000_000
    assert report["reader_peak_rss_mb"] < report["json_load_peak_rss_mb"] / 2


def test_malformed_values_become_problems_never_exceptions(tmp_path):
    weird = [None, [], {}, "x", -5, 1e308, [1, 2], {"a": 1}, True]
    images = [{"id": 1, "file_name": "ok.jpg", "width": 10, "height": 10}]
    images += [{"id": w, "file_name": w} for w in weird]
    categories = [{"id": 1, "name": "ok"}] + [{"id": w, "name": w, "keypoints": w}
                                              for w in weird]
    annotations = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}]
    for n, w in enumerate(weird):
        for key in ("image_id", "category_id", "bbox", "segmentation", "keypoints", "iscrowd",
                    "attributes", "caption"):
            annotations.append({"id": 100 + n, "image_id": 1, "category_id": 1, key: w})
    annotations.append("not an object")
    path = write_coco(tmp_path / "instances_w.json", images, annotations, categories)
    records, problems = read(path)
    # Only the good image and the one weird value that is a valid id and file name ("x")
    # become records; the good image keeps its one good box.
    assert [(r.id, len(r.regions)) for r in records] == [("w-ok.jpg", 1), ("w-x", 0)]
    assert records[0].regions[0].box is not None
    # Each broken item is one problem naming the file and the item: the 8 other weird
    # categories and images, the not-an-object, and the broken annotation fields.
    shown = str(path)
    assert all(p.source.startswith(shown) for p in problems)
    kinds = Counter(p.source[len(shown):].split(" ")[1] for p in problems if p.source != shown)
    assert kinds == {"category": 8, "image": 8, "annotation": 43}
    assert [p.reason for p in problems if p.source == shown] == [
        "an item of 'annotations' is not an object: 'not an object'"]


def test_options_from_text_are_checked(compat_dir):
    from clarifai_connect.errors import ConfigError

    root = str(compat_dir / "datumaro/coco_dataset/coco_instances")
    assert CocoReader(root, include_boxes="false").include_boxes is False
    assert CocoReader(root, include_boxes="yes", memory_annotations="10").memory_annotations == 10
    with pytest.raises(ConfigError, match="include_boxes='maybe' is not true or false"):
        CocoReader(root, include_boxes="maybe")
    with pytest.raises(ConfigError, match="memory_annotations=0 must be a whole number"):
        CocoReader(root, memory_annotations=0)


def test_nesting_bomb_is_refused_and_what_came_before_is_kept(tmp_path):
    """100,000 nested arrays: refused with the bytes of the item that holds them (a
    streaming parser keeping a path per level would take tens of GB)."""
    filler = ", ".join(json.dumps({"id": n, "file_name": f"{n}.jpg", "width": 4, "height": 4})
                       for n in range(3000))  # more than one 64 KB chunk of good images
    path = tmp_path / "instances_bomb.json"
    path.write_text('{"categories": [{"id": 1, "name": "c"}], "images": [' + filler +
                    '], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "x": ' +
                    "[" * 100_000 + "]" * 100_000 + "}]}")
    records, problems = read(path)
    assert len(problems) == 1
    start = path.read_text().index('{"id": 1, "image_id"')
    assert f"JSON nested deeper than 512 levels within bytes {start}-" in str(problems[0])
    assert len(records) == 3000  # every image came before the bomb
