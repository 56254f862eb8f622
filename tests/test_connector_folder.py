"""The folder connector: class folders, nesting, unlabelled and text folders, sniffing."""

from __future__ import annotations

from pathlib import Path

import pytest

from clarifai_connect.errors import ConfigError, SourceError
from clarifai_connect.records import Problem, Record
from connectors.folder import FolderReader

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 20


def read(path: Path, **options) -> list:
    return list(FolderReader(str(path), **options))


def by_name(items: list) -> dict[str, Record]:
    return {Path(i.media.uri).name: i for i in items if isinstance(i, Record)}


def labels(items: list) -> dict[str, list[str]]:
    return {name: [c.name for c in r.concepts] for name, r in by_name(items).items()}


def test_imagenet_layout_from_datumaro(compat_dir: Path):
    root = compat_dir / "datumaro" / "imagenet_dataset"
    items = read(root)
    assert all(isinstance(i, Record) for i in items)
    relative = {str(Path(r.media.uri).relative_to(root)): [c.name for c in r.concepts]
                for r in items}
    assert relative == {"label_0_2.jpg": [], "label_0/label_0_1.jpg": ["label_0"],
                        "label_1/label_1_1.jpg": ["label_1"],
                        "label_1/label_1_1/label_1_1.jpg": ["label_1/label_1_1"]}
    nested = [r for r in items if "label_1_1/" in r.media.uri]
    assert nested[0].concepts[0].id == "label_1-label_1_1"
    assert len({r.id for r in items}) == 4
    assert [r.id for r in read(root)] == [r.id for r in items]  # stable across reads
    assert [[c.id for c in r.concepts] for r in read(root, labels="each")
            if "label_1_1/" in r.media.uri] == [["label_1", "label_1_1"]]
    assert [[c.id for c in r.concepts] for r in read(root, labels="leaf")
            if "label_1_1/" in r.media.uri] == [["label_1_1"]]
    assert all(r.concepts == () for r in read(root, labels="none"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for folder, name, data in [
        ("cat", "1.png", PNG), ("cat", "2.jpg", JPEG), ("dog/puppy", "3.PNG", PNG),
        ("", "top.png", PNG), ("notes", "a.txt", b"a note"), ("sounds", "s.wav", WAV),
        ("cat", "noext", PNG), ("cat", "README", b"just words\n"), ("cat", "blob.bin", b"\x00\x01"),
        ("cat", "empty.jpg", b""), ("cat", ".DS_Store", b"\x00"), (".git", "HEAD", b"ref"),
        ("cat", "labels.json", b"{}"), ("cat", "fake.jpg", b"not an image at all"),
    ]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_bytes(data)
    return root


def test_kinds_by_extension_and_content(tree: Path):
    items = read(tree)
    kinds = {name: r.media.kind for name, r in by_name(items).items()}
    assert kinds == {"1.png": "image", "2.jpg": "image", "3.PNG": "image", "top.png": "image",
                     "a.txt": "text", "s.wav": "audio", "noext": "image", "README": "text",
                     "fake.jpg": "image"}
    assert sorted(str(p) for p in items if isinstance(p, Problem)) == [
        f"{tree / 'cat' / 'blob.bin'}: not a recognised image, video, audio or text file",
        f"{tree / 'cat' / 'empty.jpg'}: empty file",
        f"{tree / 'cat' / 'labels.json'}: '.json' is not a media extension; rename it to .txt "
        "to make it a text input, or skip it with ignore",
    ]
    assert labels(items)["3.PNG"] == ["dog/puppy"] and labels(items)["top.png"] == []
    assert labels(items)["a.txt"] == ["notes"]
    assert by_name(items)["a.txt"].media.read_text() == "a note"


def test_sniff_always_catches_misnamed_files_and_ignore_skips(tree: Path):
    items = read(tree, sniff="always", ignore=["*.json", "sounds/*"])
    names = by_name(items)
    assert "labels.json" not in names and "s.wav" not in names
    assert f"{tree / 'cat' / 'fake.jpg'}: named like image but the content looks like text" in [
        str(p) for p in items if isinstance(p, Problem)]
    never = by_name(read(tree, sniff="never"))
    assert "noext" not in never and "fake.jpg" in never


def test_ids_fingerprints_and_id_from_stem(tree: Path):
    first = {r.media.uri: r for r in read(tree) if isinstance(r, Record)}
    assert len({r.id for r in first.values()}) == len(first)
    assert first[str(tree / "top.png")].id == "top.png"
    (tree / "cat" / "1.png").write_bytes(PNG + b"changed")
    again = {r.media.uri: r for r in read(tree) if isinstance(r, Record)}
    changed = [uri for uri in first if first[uri].fingerprint != again[uri].fingerprint]
    assert changed == [str(tree / "cat" / "1.png")]
    assert again[str(tree / "cat" / "1.png")].id == first[str(tree / "cat" / "1.png")].id
    stems = {r.id for r in read(tree, id_from="stem") if isinstance(r, Record)}
    assert {"1", "2", "3", "top", "a", "s"} <= stems


def test_a_single_file_and_missing_sources(tree: Path):
    (record,) = read(tree / "cat" / "1.png")
    assert record.id == "1.png" and record.concepts == ()
    with pytest.raises(SourceError, match="does not exist"):
        read(tree / "absent")
    with pytest.raises(ConfigError, match="labels='folders' is not one of"):
        FolderReader(str(tree), labels="folders")


def test_the_sample_dataset_that_ships_with_the_repo():
    root = Path(__file__).resolve().parents[1] / "examples" / "sample" / "images"
    items = read(root)
    assert len(items) == 6 and all(isinstance(i, Record) for i in items)
    assert sorted({c.id for r in items for c in r.concepts}) == ["blue", "green", "red"]


def test_the_scandir_walk_gives_what_the_fsspec_walk_gives(tmp_path: Path):
    """The fast local walk reports each entry as fsspec does (so fingerprints written by
    earlier runs stay valid): same folders, same files, same size/type/link/mtime."""
    import os

    import fsspec

    from connectors.folder_walk import local_walk

    root = tmp_path / "root"
    (root / "cat" / "inner").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "cat" / "1.png").write_bytes(PNG)
    (root / "cat" / "inner" / "2.png").write_bytes(PNG * 3)
    (root / "cat" / "empty.png").write_bytes(b"")
    (root / ".hidden" / "x.png").write_bytes(PNG)
    os.symlink(root / "cat" / "1.png", root / "link.png")
    os.symlink(root / "nowhere.png", root / "broken.png")
    os.symlink(root / "cat", root / "dirlink")

    def shape(walk):
        keys = ("name", "size", "type", "islink", "mtime")
        return [(top, {n: [i[k] for k in keys] for n, i in dirs.items()},
                 {n: [i[k] for k in keys] for n, i in files.items()})
                for top, dirs, files in walk]

    theirs = shape(fsspec.filesystem("file").walk(str(root), detail=True))
    ours = shape(local_walk(str(root), on_error=print))
    assert sorted(ours) == sorted(theirs) and len(ours) == 4


def test_fingerprints_are_the_ones_earlier_versions_wrote():
    """``fingerprint_of`` keeps its JSON form (a state file of an earlier run still
    matches): the reused encoder equals json.dumps with the options it had."""
    import hashlib
    import json

    from clarifai_connect.records import _json_default, fingerprint_of

    parts = ("c0/a.png", "image", [70, "1733212345.123456"], ("c0",), {"b": 1, "a": b"x"})
    before = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_json_default)
    assert fingerprint_of(*parts) == hashlib.sha256(before.encode()).hexdigest()[:32]
    # A folder record's parts, as the last release computed them (a tuple of concept ids
    # now, a list then: the same JSON).
    assert fingerprint_of("c0/a.png", "image", [70, "1733212345.123456"], ("c0",)) == \
        "2ca816de2bfe0dc8d576e3f8feacd075"
