"""Hosted media over HTTP: stored bytes come back from the input's hosted URL with the key."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request

import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.server import media_blobs

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00small"
BIG_JPEG = b"\xff\xd8\xff\xe0" + os.urandom(media_blobs.SMALL_MEDIA_BYTES + 100)


def _fetch(url: str, key: str | None):
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Key {key}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read()


@pytest.fixture
def posted(clarifai_raw, clarifai_app):
    """Inputs with small and large image bytes, a text and a mask; the listed inputs."""
    mask = r.Region(region_info=r.RegionInfo(mask=r.Mask(image=r.Image(base64=PNG + b"m"))))
    resp = clarifai_raw.call("PostInputs", s.PostInputsRequest(
        user_app_id=clarifai_app.user_app_id, inputs=[
            r.Input(id="small", data=r.Data(image=r.Image(base64=PNG), regions=[mask])),
            r.Input(id="big", data=r.Data(image=r.Image(base64=BIG_JPEG))),
            r.Input(id="text", data=r.Data(text=r.Text(raw="some words")))]))
    assert resp.status.code == codes.SUCCESS, resp.status
    listed = clarifai_raw.call("ListInputs", s.ListInputsRequest(
        user_app_id=clarifai_app.user_app_id))
    return {i.id: i for i in listed.inputs}


def test_hosted_urls_serve_the_bytes_with_the_key(clarifai_server, clarifai_pat, posted):
    small, big, text = posted["small"], posted["big"], posted["text"]
    # Media keys are opaque 64-hex names: time-ordered for small rows, the SHA-256 for files.
    assert len(small.data.image.hosted.suffix) == 64
    assert _fetch(small.data.image.url, clarifai_pat) == (200, "image/png", PNG)
    # The official SDK's export reader builds the URL from hosted prefix + /orig/ + suffix.
    hosted = big.data.image.hosted
    status, mime, body = _fetch(f"{hosted.prefix}/orig/{hosted.suffix}", clarifai_pat)
    assert (status, mime, body) == (200, "image/jpeg", BIG_JPEG)
    assert hosted.suffix == hashlib.sha256(BIG_JPEG).hexdigest()
    assert clarifai_server.blobs.exists(hosted.suffix)  # large bytes are a file
    assert _fetch(text.data.text.url, clarifai_pat)[2] == b"some words"


def test_hosted_urls_refuse_missing_or_wrong_key(posted):
    url = posted["small"].data.image.url
    for key in (None, "wrong-key-0123456789abcdef"):
        with pytest.raises(urllib.error.HTTPError) as err:
            _fetch(url, key)
        assert err.value.code == 401


def test_unknown_digest_is_404(clarifai_server, clarifai_pat):
    with pytest.raises(urllib.error.HTTPError) as err:
        _fetch(f"{clarifai_server.media_url}/media/orig/{'0' * 64}", clarifai_pat)
    assert err.value.code == 404


def test_mask_images_are_hosted(clarifai_raw, clarifai_app, clarifai_pat, posted):
    anns = clarifai_raw.call("ListAnnotations", s.ListAnnotationsRequest(
        user_app_id=clarifai_app.user_app_id, input_ids=["small"]))
    # [0] is the input's own input-level annotation; the mask is the region annotation.
    assert anns.annotations[0].input_level and not anns.annotations[0].data.regions
    image = anns.annotations[1].data.regions[0].region_info.mask.image
    assert not image.base64
    assert _fetch(image.url, clarifai_pat)[2] == PNG + b"m"


def test_reposting_a_hosted_url_needs_no_download(clarifai_raw, clarifai_app, posted):
    url = posted["small"].data.image.url
    resp = clarifai_raw.call("PostInputs", s.PostInputsRequest(
        user_app_id=clarifai_app.user_app_id,
        inputs=[r.Input(id="again", data=r.Data(image=r.Image(url=url)))]))
    assert resp.inputs[0].status.code == codes.INPUT_DOWNLOAD_SUCCESS
    assert resp.inputs[0].data.image.hosted.suffix == posted["small"].data.image.hosted.suffix


def test_data_dir_with_odd_characters(tmp_path):
    from clarifai_connect.server import LocalServer
    from clarifai_connect.testing import raw_api

    with LocalServer(data_dir=tmp_path / "my data #1?%", keys=["k" * 32], user="u") as server:
        api = raw_api(server)
        api.call("PostApps", s.PostAppsRequest(user_app_id=r.UserAppIDSet(user_id="u"),
                                               apps=[r.App(id="a")]))
        resp = api.call("PostInputs", s.PostInputsRequest(
            user_app_id=r.UserAppIDSet(user_id="u", app_id="a"),
            inputs=[r.Input(id="i", data=r.Data(image=r.Image(base64=PNG)))]))
        assert _fetch(resp.inputs[0].data.image.url, "k" * 32)[2] == PNG


def test_a_client_hanging_up_is_no_traceback(clarifai_server, capfd, caplog):
    httpd = clarifai_server.media.httpd
    try:
        raise BrokenPipeError(32, "Broken pipe")  # what writing to a closed socket raises
    except BrokenPipeError:
        httpd.handle_error(None, ("127.0.0.1", 5555))
    assert "Traceback" not in capfd.readouterr().err  # serve's terminal stays clean
    try:
        raise ValueError("a handler bug")
    except ValueError:
        httpd.handle_error(None, ("127.0.0.1", 5555))
    assert any("media request from 127.0.0.1 failed" in r.getMessage() and r.exc_info
               for r in caplog.records)  # a real failure is still logged, with its traceback
