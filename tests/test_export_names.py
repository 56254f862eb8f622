"""Names that try to escape the destination stay inside it: unit rules, then hostile file
names, split names, image ids and labels carried through the real server into every
exporter's output."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from clarifai_connect.exports.names import NameClaims, safe_part, safe_relpath

from .export_support import export_from, files_under, read_all, sync_into

HOSTILE = ["../x", "..", ".", "/etc/passwd", "a/../../b", "a\\..\\b", "C:\\win", "a\x00b",
           "CON", "nul.txt", "Lpt1.jpg", "com9", "x" * 400, "", " ", "trailing.", "~", "a~b",
           "sp ace/..", "..\\..\\x.jpg", "\u202eevil", "tab\there", "new\nline", "trailing\n"]


def test_plain_names_are_kept():
    for name in ("a.jpg", "2007_000001", "golden retriever", "img-01.png", "A(1),b+c=d@e"):
        assert safe_part(name) == name
    assert safe_relpath("sub/dir/a.jpg") == "sub/dir/a.jpg"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_made_safe(name):
    safe = safe_part(name)
    assert safe and safe not in (".", "..")
    assert not any(c in safe for c in "/\\\x00\n\t")
    assert len(safe.encode()) <= 200
    assert safe.split(".", 1)[0].lower() not in ("con", "nul", "lpt1", "com9")
    assert not safe.endswith((".", " ")) and not safe.startswith(".")
    # The documented rule: cleaned, then "~" and a hash of the original (so the same name
    # always gives the same safe name); a plain extension stays last.
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    ext = os.path.splitext(name.replace("\\", "/").rsplit("/", 1)[-1])[1]
    plain_ext = re.fullmatch(r"\.[A-Za-z0-9]{1,10}", ext) is not None
    assert safe.endswith(f"~{digest}{ext if plain_ext else ''}"), (safe, digest)
    relative = safe_relpath(name)
    assert not relative.startswith("/") and ".." not in relative.split("/")


def test_escaped_names_never_collide():
    names = HOSTILE + ["a_b", "a b", "a/b", "a\\b", "a:b", "x~0123456789ab", "CON.jpg"]
    safe = [safe_part(n) for n in names]
    assert len(set(safe)) == len(set(names))
    # A kept (plain) name never contains "~": no escaped name can equal one.
    assert all("~" in s for n, s in zip(names, safe, strict=True) if s != n)
    assert safe_part("a.jpg/../b.jpg").endswith(".jpg")  # the extension still says the kind


def test_name_claims_give_distinct_names_to_distinct_owners(tmp_path):
    claims = NameClaims(str(tmp_path))
    try:
        first = claims.claim("images/a.jpg", "one")
        assert first == "images/a.jpg"
        assert claims.claim("images/a.jpg", "one") == first  # same owner, same name
        second = claims.claim("images/A.JPG", "two")  # equal on case-insensitive disks
        third = claims.claim("images/a.jpg", "three")
        assert len({first.lower(), second.lower(), third.lower()}) == 3
        assert second.startswith("images/A~") and second.endswith(".JPG")
    finally:
        claims.close()
    assert not list(tmp_path.iterdir())  # the spill file is gone


def test_name_claims_spill_past_their_memory_bound(tmp_path):
    claims = NameClaims(str(tmp_path), in_memory=2)
    try:
        names = [claims.claim(f"x/{i % 3}.png", f"owner{i}") for i in range(6)]
        assert len({n.lower() for n in names}) == 6 and names[:3] == ["x/0.png", "x/1.png",
                                                                        "x/2.png"]
        assert claims.claim("x/2.png", "owner2") == "x/2.png"  # found on disk, same owner
        assert claims.take("#scope/1") and not claims.take("#scope/1")
        assert list(tmp_path.iterdir())  # past two names, they went to the spill file
    finally:
        claims.close()
    assert not list(tmp_path.iterdir())


def _hostile_source(root: Path) -> Path:
    from PIL import Image

    root.mkdir(parents=True)
    rows = []
    hostile = {"coco": {"file_name": "../../../evil.png", "split": "../../up"},
               "voc": {"image_id": "../../voc-evil", "image_sets": {"../Main": ["../x"]}}}
    same = {"coco": {"file_name": "same.png", "split": "train"}, "voc": {"image_id": "same"}}
    for n, (metadata, labels) in enumerate([(hostile, "../../etc/passwd"),
                                            (hostile, "/abs,..\\win"),
                                            (same, "CON"), (same, "nul.txt")]):
        Image.new("RGB", (8, 6), (n * 50, 0, 0)).save(root / f"img{n}.png")
        rows.append({"inputid": f"in-{n}", "input": f"img{n}.png", "concepts": labels,
                     "metadata": json.dumps(metadata)})
    with open(root / "data.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["inputid", "input", "concepts", "metadata"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "data.csv"


# How each export is read back: the reader and the file of the output it opens.
READERS = {"coco": ("coco", ""), "voc": ("voc", ""), "folder": ("folder", ""),
           "csv": ("csv", "inputs.csv"), "parquet": ("parquet", "")}


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_hostile_names_stay_inside_the_destination(fmt, clarifai_server, clarifai_app,
                                                   tmp_path):
    source = _hostile_source(tmp_path / "src")
    sync_into(clarifai_server, clarifai_app, source, tmp_path)
    sandbox = tmp_path / "sandbox"
    out = sandbox / "deep" / "out"
    before = set(files_under(tmp_path))
    report = export_from(clarifai_server, clarifai_app, out, fmt, dataset="ds", workers=3)
    assert report.read == 4 and report.failed == 0, report.summary()
    created = set(files_under(tmp_path)) - before
    assert created and all(f.startswith("sandbox/deep/out/") for f in created), created
    for path in out.rglob("*"):
        assert os.path.realpath(path).startswith(os.path.realpath(out) + os.sep)
        assert "\x00" not in path.name and path.name not in (".", "..")
    reader, file_name = READERS[fmt]
    records, problems = read_all(out / file_name if file_name else out, reader)
    assert not problems, problems
    assert len(records) == 4
    if fmt in ("coco", "voc"):
        # Two inputs claimed the same file name: both are there, under distinct names.
        images = [p for p in out.rglob("*.png") if "Segmentation" not in str(p)]
        assert len(images) == 4
