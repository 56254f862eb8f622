"""Inputs against the real local server: proto builders, uploads, listing with filters and
pagination, annotations, concepts, patches, deletes and hosted-media downloads."""

import dataclasses
import struct
import zlib

import pytest
from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.client import Inputs
from clarifai_connect.errors import ApiClientError, ApiError, UserError


def png(seed: int = 0) -> bytes:
    """A valid 1×1 PNG whose pixel depends on ``seed``."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
    raw = b"\x00" + bytes([seed % 256, (seed * 7) % 256, (seed * 13) % 256])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def inputs(clarifai_server, clarifai_pat, clarifai_app):
    return Inputs(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
                  base_url=clarifai_server.base_url, pat=clarifai_pat)


def test_proto_builders(tmp_path):
    image = tmp_path / "cat.png"
    image.write_bytes(png(1))
    text = tmp_path / "note.txt"
    text.write_text("héllo", encoding="utf-8")
    from_file = Inputs.get_input_from_file("f1", image_file=str(image), text_file=str(text),
                                           dataset_id="ds", labels=["cat"],
                                           metadata={"k": "v"}, geo_info=[2.5, 48.0])
    assert from_file.data.image.base64 == png(1) and from_file.data.text.raw == "héllo"
    assert list(from_file.dataset_ids) == ["ds"]
    assert [c.id for c in from_file.data.concepts] == ["cat"]
    assert from_file.data.metadata["k"] == "v"
    assert from_file.data.geo.geo_point.longitude == 2.5
    from_url = Inputs.get_input_from_url("u1", image_url="https://example.com/a.jpg")
    assert from_url.data.image.url == "https://example.com/a.jpg" and not from_url.dataset_ids
    from_bytes = Inputs.get_input_from_bytes("b1", text_bytes=b"raw text",
                                             labels=["x", "y"], label_ids=["id-x", "id-y"])
    assert from_bytes.data.text.raw == "raw text"
    assert [(c.id, c.name) for c in from_bytes.data.concepts] == [("id-x", "x"), ("id-y", "y")]
    multi = Inputs.get_multimodal_input("m1", raw_text="what?", image_bytes=png(2))
    assert multi.data.text.raw == "what?" and multi.data.image.base64 == png(2)
    assert Inputs.get_text_input("t1", "hi").data.text.raw == "hi"

    bbox = Inputs.get_bbox_proto("b1", "dog", [0.1, 0.2, 0.5, 0.6])
    box = bbox.data.regions[0].region_info.bounding_box
    assert (box.left_col, box.top_row, box.right_col, box.bottom_row) == \
        pytest.approx((0.1, 0.2, 0.5, 0.6))
    assert bbox.data.regions[0].data.concepts[0].id == "dog" and bbox.input_id == "b1"
    mask = Inputs.get_mask_proto("b1", "road", [[0.1, 0.1], [0.9, 0.1], [0.5, 0.8]],
                                 annot_id="a1")
    points = mask.data.regions[0].region_info.polygon.points
    assert mask.id == "a1" and [v for p in points for v in (p.col, p.row)] == \
        pytest.approx([0.1, 0.1, 0.9, 0.1, 0.5, 0.8])
    two = Inputs.get_mask_proto("b1", "road", [[[0, 0], [1, 0], [1, 1]], [[0, 0], [0, 1], [1, 1]]])
    assert len(two.data.regions) == 2

    with pytest.raises(UserError, match="at least one"):
        Inputs.get_input_from_url("x")
    with pytest.raises(UserError, match="exactly one"):
        Inputs.get_multimodal_input("x", raw_text="a", image_url="u", image_bytes=b"b")
    with pytest.raises(UserError, match="bbox"):
        Inputs.get_bbox_proto("x", "l", [1, 2, 3])
    with pytest.raises(UserError, match="missing.png"):
        Inputs.get_input_from_file("x", image_file=str(tmp_path / "missing.png"))


def test_builders_from_csv_and_folders(tmp_path):
    csv_path = tmp_path / "data.csv"
    csv_path.write_text('inputid,input,concepts,metadata,geopoints\n'
                        'a,"first text","cat,dog","{\'k\': 1}","1.5,2.5"\n'
                        ',"no id text",,,\n', encoding="utf-8")
    protos = Inputs.get_inputs_from_csv(str(csv_path), "text", "raw", dataset_id="ds")
    assert protos[0].id == "a" and [c.id for c in protos[0].data.concepts] == ["cat", "dog"]
    assert protos[0].data.metadata["k"] == 1 and protos[0].data.geo.geo_point.latitude == 2.5
    assert len(protos[1].id) == 32  # a deterministic id from the row's content
    again = Inputs.get_inputs_from_csv(str(csv_path), "text", "raw", dataset_id="ds")
    assert again[1].id == protos[1].id
    bad = tmp_path / "bad.csv"
    bad.write_text('input,metadata\n"ok",\n"x","{not json"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.csv:3: .*metadata"):
        Inputs.get_inputs_from_csv(str(bad), "text", "raw", labels=False)
    with pytest.raises(UserError, match="colour"):
        (tmp_path / "cols.csv").write_text("input,colour\nx,red\n")
        Inputs.get_inputs_from_csv(str(tmp_path / "cols.csv"), labels=False)

    folder = tmp_path / "cats"
    folder.mkdir()
    (folder / "Tom Cat.PNG").write_bytes(png(3))
    (folder / "b.jpg").write_bytes(png(4))
    (folder / "readme.md").write_text("not an image")
    (folder / "story.txt").write_text("once upon a time")
    images = Inputs.get_image_inputs_from_folder(str(folder), dataset_id="ds", labels=True)
    assert [i.id for i in images] == ["tom_cat", "b"]  # name order: "Tom Cat.PNG" < "b.jpg"
    assert all([c.id for c in i.data.concepts] == ["cats"] for i in images)
    texts = Inputs.get_text_inputs_from_folder(str(folder))
    assert [(t.id, t.data.text.raw) for t in texts] == [("story", "once upon a time")]


def test_upload_list_and_filter(inputs):
    job = inputs.upload_from_bytes("img-1", image_bytes=png(1), labels=["cat"])
    assert isinstance(job, str) and len(job) == 32
    inputs.upload_text("txt-1", "some text", metadata={"source": "test"})
    inputs.upload_inputs([Inputs.get_text_input("txt-2", "more"),
                          Inputs.get_input_from_bytes("img-2", image_bytes=png(2))])
    listed = {i.id: i for i in inputs.list_inputs()}
    assert set(listed) == {"img-1", "txt-1", "txt-2", "img-2"}
    assert listed["txt-1"].data.metadata["source"] == "test"
    assert all(i.status.code == codes.INPUT_DOWNLOAD_SUCCESS for i in listed.values())
    assert sorted(i.id for i in inputs.list_inputs(input_type="image")) == ["img-1", "img-2"]
    assert inputs.get_input("img-1").data.concepts[0].id == "cat"
    with pytest.raises(UserError, match="input_type"):
        inputs.list_inputs(input_type="hologram")
    with pytest.raises(UserError, match="at most 128"):
        inputs.upload_inputs([Inputs.get_text_input(f"x{i}", "x") for i in range(129)])


def test_duplicate_upload_gives_per_item_statuses(inputs):
    inputs.upload_text("same", "one")
    with pytest.raises(ApiError) as err:
        inputs.upload_inputs([Inputs.get_text_input("same", "two"),
                              Inputs.get_text_input("other", "three")])
    assert err.value.code == codes.MIXED_STATUS
    statuses = {i.id: i.status.code for i in err.value.response.inputs}
    assert statuses["same"] == codes.INPUT_DUPLICATE
    assert inputs.get_input("same").data.text.raw == "one"


def test_list_inputs_past_several_pages(inputs, clarifai_app):
    from clarifai_connect.client import App

    app = App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id, auth=inputs.auth)
    app.create_dataset("many")
    summary = inputs._bulk_upload(
        [Inputs.get_text_input(f"t{i:03d}", f"text {i}", dataset_id="many") for i in range(300)])
    assert summary.uploaded == 300 and summary.ok
    everything = [i.id for i in inputs.list_inputs()]  # 128 per page: 3 pages, then empty
    assert len(everything) == 300 and len(set(everything)) == 300
    assert len([i.id for i in inputs.list_inputs(dataset_id="many")]) == 300
    page_two = [i.id for i in inputs.list_inputs(page_no=2, per_page=50)]
    assert page_two == everything[50:100]
    assert len(list(inputs.list_inputs(page_no=3))) == 16  # 16 per page by default


def test_annotations_concepts_and_patches(inputs):
    inputs.upload_from_bytes("pic", image_bytes=png(5))
    box = Inputs.get_bbox_proto("pic", "dog", [0.1, 0.1, 0.4, 0.5], annot_id="box-1")
    failed = inputs.upload_annotations([box, Inputs.get_bbox_proto("ghost", "dog",
                                                                   [0.1, 0.1, 0.2, 0.2])])
    assert [a.input_id for a in failed] == ["ghost"]
    listed = list(inputs.list_annotations(batch_input=[inputs.get_input("pic")]))
    boxes = [a for a in listed if a.data.regions]
    assert [a.id for a in boxes] == ["box-1"]

    moved = resources_pb2.Annotation(id="box-1", input_id="pic")
    moved.data.regions.add().CopyFrom(Inputs.get_bbox_proto(
        "pic", "cat", [0.2, 0.2, 0.6, 0.6]).data.regions[0])
    inputs.patch_annotations([moved], action="overwrite")
    patched = [a for a in inputs.list_annotations([inputs.get_input("pic")]) if a.id == "box-1"]
    assert patched[0].data.regions[0].data.concepts[0].id == "cat"
    assert patched[0].data.regions[0].region_info.bounding_box.right_col == pytest.approx(0.6)

    inputs.patch_concepts(["cat"], labels=["Cat (felis)"])
    names = {c.id: c.name for c in inputs.list_pages_generator(
        "ListConcepts", __import__("clarifai_grpc.grpc.api.service_pb2",
                                   fromlist=["x"]).ListConceptsRequest,
        {"user_app_id": inputs.user_app_id})}
    assert names["cat"] == "Cat (felis)"
    with pytest.raises(UserError, match="same length"):
        inputs.patch_concepts(["a", "b"], labels=["only one"])
    with pytest.raises(UserError, match="action"):
        inputs.patch_annotations([moved], action="explode")

    inputs.delete_annotations(["pic"], ["box-1"])
    assert [a for a in inputs.list_annotations([inputs.get_input("pic")]) if a.id == "box-1"] \
        == []


def test_patch_and_delete_inputs(inputs):
    for i in range(5):
        inputs.upload_text(f"d{i}", f"text {i}")
    patch = resources_pb2.Input(id="d0")
    patch.data.metadata.update({"reviewed": True})
    inputs.patch_inputs([patch], action="merge")
    assert inputs.get_input("d0").data.metadata["reviewed"] is True
    inputs.delete_inputs(["d0", inputs.get_input("d1")])
    assert sorted(i.id for i in inputs.list_inputs()) == ["d2", "d3", "d4"]
    inputs.full_listing_page_size = 1  # deleting from a lazy listing must not skip any
    inputs.delete_inputs(inputs.list_inputs())
    assert list(inputs.list_inputs()) == []
    with pytest.raises(UserError, match="list of inputs"):
        inputs.delete_inputs("d2")


def test_download_inputs_uses_the_key(inputs, clarifai_server, clarifai_app):
    inputs.upload_from_bytes("dl-1", image_bytes=png(6))
    inputs.upload_from_bytes("dl-2", image_bytes=png(7))
    listed = sorted(inputs.list_inputs(), key=lambda i: i.id)
    assert listed[0].data.image.hosted.prefix.startswith(clarifai_server.media_url)
    assert inputs.download_inputs(listed) == [png(6), png(7)]
    stranger = Inputs(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
                      base_url=clarifai_server.base_url, pat=clarifai_server.keys[0])
    stranger.auth = dataclasses.replace(stranger.auth, pat="not-the-key-0123456789")
    with pytest.raises(ApiClientError, match="dl-1.*401"):
        stranger.download_inputs(listed)


def test_download_with_a_session_token(inputs, clarifai_server, clarifai_app):
    inputs.upload_from_bytes("tok-1", image_bytes=png(8))
    with_token = Inputs(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
                        base_url=clarifai_server.base_url, token=clarifai_server.keys[0])
    assert with_token.download_inputs([with_token.get_input("tok-1")]) == [png(8)]
