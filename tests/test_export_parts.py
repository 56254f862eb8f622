"""An export in parts (what ``export --engine ray`` runs, here part after part in this
process): the listing split by its pages, each part exported into its own folder, the
parts merged by the writer — and the result read back equal to a local export's, for
every built-in format, with an exact merged report."""

from __future__ import annotations

import io
import json
import uuid

import pytest

import clarifai_connect
from clarifai_connect.errors import ConfigError
from clarifai_connect.exports.parts import (
    PartFiles,
    merge_export_parts,
    part_uris,
    plan_export,
    run_export_part,
)
from clarifai_connect.exports.sources import PAGE, ListingSource
from clarifai_connect.records import Box, Concept, Media, Record, Region

from .export_support import assert_same_records, export_from, files_under, read_all

ROWS = 2 * PAGE + 4  # three listing pages: each of three parts gets one
NAMES = ("alpha", "beta", "gamma")  # not VOC's classes: their indices depend on the order


def _png(size: int, seed: int, mode: str = "RGB") -> bytes:
    from PIL import Image

    image = Image.new(mode, (size, size), (seed % 250, 30, 60) if mode == "RGB" else 0)
    if mode == "L":
        for x in range(2, 5):
            for y in range(1, 4):
                image.putpixel((x, y), 255)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _records():
    mask = Media(kind="image", data=_png(8, 0, "L"))
    for i in range(ROWS):
        # Each page meets the classes in another order: the parts number them differently.
        name = NAMES[(i + 2 * (i // PAGE)) % 3]
        concept = Concept(id=name, name=name)
        yield Record(id=f"img{i:03d}", media=Media(kind="image", data=_png(8, i)),
                     concepts=(concept,),
                     regions=(Region(box=Box(0.1, 0.2, 0.6, 0.9), concepts=(concept,)),
                              Region(mask=mask, concepts=(concept,))))


@pytest.fixture(scope="module")
def parted_app(clarifai_server, tmp_path_factory):
    """An app of ROWS small images (all in dataset ``all``), synced in order (one worker:
    the listing's order)."""
    from clarifai_connect.testing import TEST_USER

    app = f"{TEST_USER}/parts-{uuid.uuid4().hex[:8]}"
    state = tmp_path_factory.mktemp("state") / "s.sqlite"
    report = clarifai_connect.sync(_records(), app, dataset="all", source_id="parts", workers=1,
                                   base_url=clarifai_server.base_url,
                                   pat=clarifai_server.keys[0], state=state)
    assert report.created == ROWS and report.ok, report.summary()
    return app


def _in_parts(server, app, to, fmt, parts=3):
    planned = plan_export(app, str(to), fmt, parts=parts)
    settings = {"base_url": server.base_url, "pat": server.keys[0]}
    summaries = [run_export_part(app, part, fmt, **settings) for part in planned]
    return merge_export_parts(planned, str(to), fmt, summaries, source=app)


def test_listing_parts_read_every_input_once(clarifai_server, parted_app):
    from clarifai_connect.client.auth import ClientAuth

    user, app = parted_app.split("/")
    auth = ClientAuth.resolve(user_id=user, app_id=app, base_url=clarifai_server.base_url,
                              pat=clarifai_server.keys[0])
    whole = [r.id for r in ListingSource(auth)]
    parts = [[r.id for r in part] for part in ListingSource(auth).parts(3)]
    assert [len(p) for p in parts] == [PAGE, PAGE, 4]
    assert sorted(i for p in parts for i in p) == sorted(whole) and len(whole) == ROWS
    assert [len(list(p)) for p in ListingSource(auth).parts(5)] == [PAGE, PAGE, 4, 0, 0]


@pytest.mark.parametrize("fmt,to", [("coco", "out"), ("voc", "out"), ("yolo", "out"),
                                    ("csv", "out/table.csv"), ("parquet", "out/all.parquet"),
                                    ("parquet", "out"), ("folder", "out")])
def test_parts_merge_into_what_a_local_export_writes(clarifai_server, parted_app, tmp_path,
                                                     fmt, to):
    local = export_from(clarifai_server, _App(parted_app), tmp_path / "local" / to, fmt)
    merged = _in_parts(clarifai_server, parted_app, tmp_path / "parts" / to, fmt)
    assert merged.ok, merged.summary()
    assert (merged.read, merged.exported, merged.skipped, merged.failed) == \
        (local.read, local.exported, local.skipped, 0) == (ROWS, ROWS, 0, 0)
    assert dict(merged.warnings) == dict(local.warnings)
    assert not (tmp_path / "parts" / (to + ".parts")).exists()  # merged, then removed
    base_local, base_parts = tmp_path / "local" / "out", tmp_path / "parts" / "out"
    if fmt == "parquet" and to == "out":  # a dataset of parts
        assert files_under(base_parts) == [f"part-{i:05d}.parquet" for i in range(3)]
    else:
        assert files_under(base_parts) == files_under(base_local)
    before, _ = read_all(tmp_path / "local" / to, fmt)
    after, problems = read_all(tmp_path / "parts" / to, fmt)
    assert not problems and len(before) == ROWS
    assert_same_records(before, after)
    if fmt == "coco":
        doc = json.loads((base_parts / "annotations" / "instances_default.json").read_text())
        assert sorted(c["name"] for c in doc["categories"]) == list(NAMES)
        ids = [a["id"] for a in doc["annotations"]]
        assert len(set(ids)) == len(ids) and len({i["id"] for i in doc["images"]}) == ROWS
    if fmt in ("voc", "yolo"):  # one class list, the same as a local export's
        index = "labelmap.txt" if fmt == "voc" else "data.yaml"
        assert (base_parts / index).read_text().replace(str(base_parts), "") == \
            (base_local / index).read_text().replace(str(base_local), "")


class _App:
    def __init__(self, target: str) -> None:
        self.user_id, self.app_id = target.split("/")


def test_a_missing_part_merges_nothing_and_says_so(clarifai_server, parted_app, tmp_path):
    to = str(tmp_path / "out")
    planned = plan_export(parted_app, to, "csv", parts=2)
    done = run_export_part(parted_app, planned[0], "csv", base_url=clarifai_server.base_url,
                           pat=clarifai_server.keys[0])
    report = merge_export_parts(planned, to, "csv", [done, {"errors": ["part 2/2 was not "
                                                                       "exported"],
                                                           "missing": True}])
    assert not report.ok and "run the same command again" in report.errors[-1]
    assert (tmp_path / "out.parts").exists() and not (tmp_path / "out" / "inputs.csv").exists()


def test_a_file_name_two_parts_use_stays_in_its_part(tmp_path):
    uris = part_uris(str(tmp_path / "out"), 2)
    for number, uri in enumerate(uris):
        (tmp_path / uri / "cat").mkdir(parents=True)
        (tmp_path / uri / "cat" / "A.jpg").write_bytes(b"part %d" % number)
    (tmp_path / uris[1] / "cat" / "b.jpg").write_bytes(b"only")
    problems = PartFiles(uris, str(tmp_path / "out")).move_all()
    assert (tmp_path / "out" / "cat" / "A.jpg").read_bytes() == b"part 0"
    assert (tmp_path / "out" / "cat" / "b.jpg").read_bytes() == b"only"
    assert len(problems) == 1 and "cat/A.jpg (part 1)" in problems[0]
    assert (tmp_path / uris[1] / "cat" / "A.jpg").read_bytes() == b"part 1"  # kept


def test_plan_export_refuses_a_writer_that_cannot_merge(tmp_path):
    from clarifai_connect.exports.files import FileWriter
    from clarifai_connect.plugins import PluginRegistry

    class NoMerge(FileWriter):
        name = "nomerge"

        def write_record(self, record):
            pass

    class Plugin:
        @clarifai_connect.hookimpl
        def register_exporters(self, register):
            register(NoMerge)

    registry = PluginRegistry(entry_points=False)
    registry.add_plugin(Plugin(), name="nomerge")
    with pytest.raises(ConfigError, match="cannot merge parts"):
        plan_export("me/app", str(tmp_path), "nomerge", parts=2, registry=registry)
    assert plan_export("me/app", str(tmp_path), "nomerge", parts=1,
                       registry=registry)[0].uri == str(tmp_path)  # one part: in place


def test_a_version_exports_in_parts_of_its_archive_entries(clarifai_server, parted_app,
                                                           tmp_path):
    from clarifai_connect.client import Dataset

    user, app = parted_app.split("/")
    dataset = Dataset(dataset_id="all", user_id=user, app_id=app,
                      base_url=clarifai_server.base_url, pat=clarifai_server.keys[0])
    version = dataset.create_version().version.id
    to = tmp_path / "parts" / "v.csv"
    planned = plan_export(parted_app, str(to), "csv", parts=2, dataset="all", version=version)
    settings = {"base_url": clarifai_server.base_url, "pat": clarifai_server.keys[0],
                "dataset": "all", "version": version}
    summaries = [run_export_part(parted_app, part, "csv", **settings) for part in planned]
    assert [s["exported"] for s in summaries] == [PAGE + 4, PAGE]  # entries 1, 3 | entry 2
    merged = merge_export_parts(planned, str(to), "csv", summaries)
    assert merged.ok and merged.exported == ROWS and merged.total == ROWS
    local = export_from(clarifai_server, _App(parted_app), tmp_path / "local" / "v.csv",
                        "csv", dataset="all", version=version)
    assert local.exported == ROWS
    before, _ = read_all(tmp_path / "local" / "v.csv", "csv")
    after, problems = read_all(to, "csv")
    assert not problems
    assert_same_records(before, after)
