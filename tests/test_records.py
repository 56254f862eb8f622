"""Records: validation, deterministic ids, fingerprints, lazy media, media kinds."""

from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import replace

import pytest

from clarifai_connect.mediatypes import kind_from_extension, sniff_kind
from clarifai_connect.records import (
    MAX_ID_LENGTH,
    Box,
    Concept,
    GeoPoint,
    Media,
    Point,
    Problem,
    Record,
    RecordError,
    Region,
    concept_id,
    id_problem,
    one_shot_encoder,
    stable_id,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def image(uri: str = "imgs/a.jpg") -> Media:
    return Media(kind="image", uri=uri)


def test_a_full_record_normalises_its_parts():
    record = Record(
        id="a-1", media=image(), concepts=["cat", Concept("dog", value=0)],
        regions=[Region(box=(0.1, 0.2, 0.5, 0.6), concepts=["cat"]),
                 Region(polygon=[(0, 0), (0, 1), (1, 1)]),
                 Region(point=(0.5, 0.5)), Region(mask=PNG)],
        metadata={"k": [1, "x"]}, dataset_ids="train", geo=(-122.4, 37.8), source="x.csv:2")
    assert record.concepts == (Concept("cat", "cat", 1.0), Concept("dog", "dog", 0.0))
    assert [r.kind for r in record.regions] == ["box", "polygon", "point", "mask"]
    assert record.regions[0].box == Box(0.1, 0.2, 0.5, 0.6)
    assert record.regions[1].polygon[2] == Point(1.0, 1.0)
    assert record.regions[3].mask.read_bytes() == PNG
    assert record.dataset_ids == ("train",)
    assert record.geo == GeoPoint(-122.4, 37.8)
    assert len(record.fingerprint) == 32


@pytest.mark.parametrize("build, message", [
    (lambda: Record(id="bad id", media=image(), source="d.csv:7"), "d.csv:7: input id 'bad id'"),
    (lambda: Record(id="-x", media=image(), source="d.csv:8"), "not starting with"),
    (lambda: Record(id="x" * 256, media=image(), source="s"), "longer than 255"),
    (lambda: Record(id="a", media=Media("picture", uri="a")), "media kind 'picture'"),
    (lambda: Record(id="a", media=image(), metadata={"t": object()}, source="m"), "JSON-able"),
    (lambda: Record(id="a", media=image(), metadata={1: 2}), "metadata key 1"),
    (lambda: Record(id="a", media=image(), dataset_ids=["ok", "no way"]), "dataset id"),
    (lambda: Record(id="a", media=Media("text", text="hi"), regions=[Region(point=(0, 0))]),
     "regions given for a text input"),
    (lambda: Region(box=(0.5, 0.1, 0.2, 0.9)), "top_row 0.5 is below bottom_row 0.2"),
    (lambda: Region(box=(0.1, 0.9, 0.2, 0.1)), "left_col"),
    (lambda: Region(box=(0.1, 0.1, 1.2, 0.5)), "outside 0..1"),
    (lambda: Region(point=(float("nan"), 0.1)), "outside 0..1"),
    (lambda: Region(point=("x", 0.1)), "not a number"),
    (lambda: Region(polygon=[(0, 0), (1, 1)]), "at least 3 points"),
    (lambda: Region(box=(0, 0, 1, 1), point=(0, 0)), "exactly one of box"),
    (lambda: Region(), "got none"),
    (lambda: Concept("ok", value=2), "outside 0..1"),
    (lambda: Concept("not ok"), "concept id 'not ok'"),
    (lambda: Media("image", uri="a", data=b"x"), "exactly one of uri, data or text"),
    (lambda: Media("image", text="words"), "raw text given for a image input"),
    (lambda: Media("image", data="str"), "not bytes"),
    (lambda: GeoPoint(200, 0), "outside longitude"),
])
def test_invalid_parts_raise_record_error_with_location(build, message):
    with pytest.raises(RecordError) as info:
        build()
    assert message in str(info.value)


def test_media_is_read_lazily_and_hides_storage_options(tmp_path):
    media = Media(kind="image", uri=str(tmp_path / "later.png"),
                  storage_options={"secret": "SuperSecret-123"})
    record = Record(id="lazy", media=media)
    assert "SuperSecret" not in repr(record) and "SuperSecret" not in repr(media)
    with pytest.raises(FileNotFoundError):
        media.read_bytes()  # constructing did not touch the file; reading does
    (tmp_path / "later.png").write_bytes(PNG)
    assert media.read_bytes() == PNG
    assert Media("text", text="héllo").read_bytes() == "héllo".encode()
    assert Media("text", uri=str(tmp_path / "later.png")).is_http is False
    assert Media("image", uri="HTTPS://x/y.png").is_http


def test_stable_ids_are_valid_deterministic_and_distinct():
    assert stable_id("photo-1.jpg") == "photo-1.jpg"  # valid keys are kept as they are
    # The documented rule: invalid characters become "_", then "-" and the first 10 hex
    # digits of the key's SHA-256 (the same on every machine and Python version).
    digest = hashlib.sha256(b"cats/a b.jpg").hexdigest()[:10]
    assert stable_id("cats/a b.jpg") == f"cats_a_b.jpg-{digest}"
    keys = ["a b.jpg", "a_b.jpg", "a/b.jpg", "a\\b.jpg", ".hidden", "-dash", "", "ünï/çødé",
            "x" * 300, "x" * 300 + "y", "日本語.png", "a" * 255]
    ids = [stable_id(k) for k in keys]
    assert all(id_problem(i) is None for i in ids), ids
    assert len(set(ids)) == len(keys)
    assert all(len(i) <= MAX_ID_LENGTH for i in ids)
    assert stable_id("a b", prefix="ds1/") == \
        "ds1_a_b-" + hashlib.sha256(b"ds1/a b").hexdigest()[:10]  # the prefix is hashed too
    assert stable_id("a b", prefix="ds1/") != stable_id("a b", prefix="ds2/")


def test_concept_ids_are_readable():
    assert concept_id("cat") == "cat"
    assert concept_id("golden retriever") == "golden-retriever"
    assert concept_id("  a/b  ") == "a-b"
    assert concept_id("???").startswith("concept-")
    assert id_problem(concept_id("é" * 400)) is None
    assert Concept.named("golden retriever").name == "golden retriever"


def test_fingerprints_follow_content():
    base = dict(id="a", media=image(), concepts=["cat"], metadata={"k": 1})
    fingerprint = Record(**base).fingerprint
    assert len(fingerprint) == 32 and int(fingerprint, 16) >= 0
    # Canonical: metadata given in another key order is the same content.
    assert Record(**{**base, "metadata": {"j": 2, "k": 1}}).fingerprint == \
        Record(**{**base, "metadata": {"k": 1, "j": 2}}).fingerprint
    assert Record(**base).fingerprint != Record(**{**base, "concepts": ["dog"]}).fingerprint
    assert Record(**base).fingerprint != Record(**{**base, "metadata": {"k": 2}}).fingerprint
    assert Record(**base).fingerprint != Record(**{**base, "media": image("b.jpg")}).fingerprint
    assert Record(**base, fingerprint="given").fingerprint == "given"
    assert len({Record(**base), Record(**base)}) == 1  # hashable despite the metadata dict
    with_bytes = Record(id="b", media=Media("image", data=PNG))
    assert with_bytes.fingerprint != Record(id="b", media=Media("image", data=PNG + b"x")).fingerprint


@pytest.mark.parametrize("parts, message", [
    (dict(id="../x"), "src: input id '../x' has invalid characters"),
    (dict(id=""), "input id is empty"),
    (dict(id="a", dataset_ids=("ok", "no way")), "dataset id 'no way'"),
    (dict(id="a", metadata={"n": float("nan")}), "metadata is not JSON-able"),
    (dict(id="a", media=Media("text", text="hi"), regions=(Region(point=(0, 0)),)),
     "regions given for a text input"),
])
def test_records_from_parts_check_what_their_types_do_not(parts, message):
    with pytest.raises(RecordError, match=re.escape(message)):
        Record.from_parts(**{"media": image(), "source": "src", **parts})


def test_records_from_parts_equal_constructed_ones_and_fingerprint_on_first_read():
    parts = dict(id="a", media=image(), concepts=(Concept("cat"),),
                 regions=(Region(box=(0.1, 0.2, 0.5, 0.6)),), metadata={"k": [1, "x"]},
                 dataset_ids=("train",), source="s", geo=GeoPoint(1.0, 2.0))
    built, made = Record(**parts), Record.from_parts(**parts)
    assert "fingerprint" not in vars(made)  # not computed until read
    assert made == built and made.fingerprint == built.fingerprint
    assert hash(made) == hash(built)
    assert pickle.loads(pickle.dumps(Record.from_parts(**parts))) == built
    assert replace(Record.from_parts(**parts), id="b").fingerprint == built.fingerprint
    loaded = made.with_media(Media("image", data=PNG))
    assert loaded.media.data == PNG and loaded.regions == built.regions
    assert loaded.fingerprint == built.fingerprint  # read before: it stays the source's
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        made.nothing  # noqa: B018


def test_box_from_pixels_and_problem_text():
    assert Box.from_xywh(10, 20, 30, 40, width=100, height=200) == Box(0.1, 0.1, 0.3, 0.4)
    with pytest.raises(RecordError):
        Box.from_xywh(0, 0, 10, 10, width=0, height=10)
    assert str(Problem("data.csv:17", "file not found")) == "data.csv:17: file not found"


def test_the_server_uses_the_same_id_rule():
    from clarifai_connect.server import common

    assert common.id_problem is id_problem


@pytest.mark.parametrize("head, kind", [
    (PNG, "image"), (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image"), (b"GIF89a....", "image"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image"), (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "video"), (b"\x00\x00\x00\x18ftypisom", "video"),
    (b"\x00\x00\x00\x18ftypheic", "image"), (b"\x00\x00\x00\x18ftypM4A ", "audio"),
    (b"\x1aE\xdf\xa3\x9fB\x86", "video"), (b"ID3\x03\x00", "audio"), (b"fLaC\x00", "audio"),
    (b"plain words\n", "text"), ("é".encode() * 3 + "é".encode()[:1], "text"),
    (b"\x00\x01\x02\x03binary", None), (b"\xc3\x28 invalid utf8 in the middle" * 3, None), (b"", None),
])
def test_sniffing_media_kinds(head, kind):
    assert sniff_kind(head) == kind


def test_kinds_from_extensions():
    assert kind_from_extension("a/B.JPG") == "image"
    assert kind_from_extension("https://x/v.mp4?sig=1") == "video"
    assert kind_from_extension("s.flac") == "audio"
    assert kind_from_extension("notes.txt") == "text"
    assert kind_from_extension("data.bin") is None
    # posixpath.splitext's rules: a name of dots before the last one has no extension.
    assert kind_from_extension("x/.png") is None and kind_from_extension("..png") is None
    assert kind_from_extension("x/..a.png") == "image" and kind_from_extension("a..jpg") == "image"
    assert kind_from_extension("a.png/b") is None and kind_from_extension("a?b.png") is None
    assert kind_from_extension("x/a.jpg?name=b.txt") == "image"


@pytest.mark.parametrize("options", [
    {}, {"sort_keys": True, "separators": (",", ":")}, {"ensure_ascii": False},
    {"allow_nan": False, "sort_keys": True},
])
def test_one_shot_encoder_writes_what_json_writes(options):
    import json

    values = ["é\"\n", 7, 1.5e-7, None, True, ("t", [1, 2.0]), {"b": {"z": 1, "a": "ü"}, "a": []}]
    encode = one_shot_encoder(**options)
    for value in values:
        assert encode(value) == json.JSONEncoder(**options).encode(value)
    if options.get("allow_nan") is False:
        with pytest.raises(ValueError):
            encode({"x": float("nan")})
    else:
        assert encode([float("inf")]) == "[Infinity]"


def test_metadata_that_contains_itself_is_a_record_error():
    looped: dict = {"a": 1}
    looped["self"] = looped
    with pytest.raises(RecordError, match="contains itself"):
        Record(id="x", media=Media(kind="text", text="t"), metadata=looped)
    assert Record(id="y", media=Media(kind="text", text="t"), metadata={"a": [1]}).metadata


def test_internal_errors_keep_their_cause():
    """An error re-raised inside the project keeps what caused it (``from exc``), for the
    logs and a debugger; only the one-line user-facing errors drop it."""
    with pytest.raises(RecordError, match="box top_row 'x' is not a number") as caught:
        Box(top_row="x", left_col=0, bottom_row=1, right_col=1)
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(RecordError, match="record 'r': ") as wrapped:
        Record(id="r", media=Media("text", text="t"), regions=[Region(box=Box(0, 0, 1, 1),
                                                                      concepts=["c"])],
               metadata={"k": object()})
    assert isinstance(wrapped.value.__cause__, RecordError)
