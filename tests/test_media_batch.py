"""Many hosted media in one request: the local server's ``POST /media/batch`` gives a key's
own user (or app) their bytes and nothing else; the export client batches only the local
server's hosted URLs, and GETs one at a time from a host that does not batch."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.client import media_batch
from clarifai_connect.exports.runner import resolve_batch
from clarifai_connect.records import Media, Record
from clarifai_connect.server import LocalServer, media_access
from clarifai_connect.testing import raw_api

from .sync_support import png

ALICE, BOB, BOB_APP = "a" * 32, "b" * 32, "c" * 32


def _post(server, key, app, inputs):
    user = "alice" if key == ALICE else "bob"
    resp = raw_api(server, key).call("PostInputs", s.PostInputsRequest(
        user_app_id=r.UserAppIDSet(user_id=user, app_id=app), inputs=inputs))
    assert resp.status.code == codes.SUCCESS, resp.status
    return [i.data.image.url for i in resp.inputs]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Bob's media in apps b1 and b2, Alice's in a1; keys: Alice's, Bob's, Bob's b1 only."""
    with LocalServer(data_dir=tmp_path_factory.mktemp("batch"),
                     keys=[f"alice:{ALICE}", f"bob:{BOB}", f"bob/b1:{BOB_APP}"]) as srv:
        for key, user, app in ((BOB, "bob", "b1"), (BOB, "bob", "b2"), (ALICE, "alice", "a1")):
            raw_api(srv, key).call("PostApps", s.PostAppsRequest(
                user_app_id=r.UserAppIDSet(user_id=user), apps=[r.App(id=app)]))
        big = b"\x89PNG\r\n\x1a\n" + bytes(200_000)  # a blob file, not a table row
        srv.b1 = _post(srv, BOB, "b1", [r.Input(id=f"i{n}", data=r.Data(image=r.Image(
            base64=png(n)))) for n in range(5)] + [
            r.Input(id="big", data=r.Data(image=r.Image(base64=big)))])
        srv.b1_bytes = [png(n) for n in range(5)] + [big]
        srv.b2 = _post(srv, BOB, "b2", [r.Input(id="j", data=r.Data(image=r.Image(
            base64=png(50))))])
        srv.a1 = _post(srv, ALICE, "a1", [r.Input(id="k", data=r.Data(image=r.Image(
            base64=png(60))))])
        yield srv


def _batch(server, keys, key=BOB, body=None):
    data = body if body is not None else json.dumps({"keys": keys}).encode()
    request = urllib.request.Request(f"{server.media_url}/media/batch", data=data,
                                     headers={"Authorization": f"Key {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            head, _, rest = resp.read().partition(b"\n")
            return resp.status, json.loads(head)["sizes"], rest
    except urllib.error.HTTPError as err:
        return err.code, None, b""


def _key(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_a_batch_gives_the_keys_own_media_in_order(server):
    keys = [_key(u) for u in reversed(server.b1)] + [_key(server.b2[0])]
    status, sizes, body = _batch(server, keys)
    expected = list(reversed(server.b1_bytes)) + [png(50)]
    assert status == 200 and sizes == [len(b) for b in expected]
    assert body == b"".join(expected)


def test_a_batch_never_gives_another_users_or_apps_media(server):
    keys = [_key(server.b1[0]), _key(server.a1[0]), "0" * 64, _key(server.b2[0])]
    assert _batch(server, keys, BOB)[1] == [len(png(0)), -1, -1, len(png(50))]
    # Bob's b1-only key: his b2 media are as missing as Alice's.
    assert _batch(server, keys, BOB_APP)[1] == [len(png(0)), -1, -1, -1]
    status, sizes, body = _batch(server, keys, ALICE)
    assert sizes == [-1, len(png(60)), -1, -1] and body == png(60)


def test_a_batch_needs_a_key_and_well_formed_keys(server):
    assert _batch(server, [_key(server.b1[0])], key=None)[0] == 401
    assert _batch(server, [_key(server.b1[0])], key="wrong-key-0123456789abcdef")[0] == 401
    assert _batch(server, ["../../etc/passwd"])[0] == 400
    assert _batch(server, [], body=b"not json")[0] == 400
    assert _batch(server, ["0" * 64] * 513)[0] == 400  # over BATCH_KEYS


def test_fetch_many_batches_local_hosted_urls_and_leaves_the_rest(server):
    headers = {"Authorization": f"Key {BOB}"}
    urls = [*server.b1, server.a1[0], "https://example.com/x.png"]
    got = media_batch.fetch_many(urls, headers)
    assert got == [*server.b1_bytes, None, None]  # Alice's: refused; a third party's: a GET


def test_unknown_keys_do_not_read_every_record_again(server, monkeypatch):
    reads = []
    real = media_access.hosted_keys
    monkeypatch.setattr(media_access, "hosted_keys", lambda m, out: reads.append(1) or
                        real(m, out))
    stranger = "f" * 64
    assert _batch(server, [stranger], BOB)[1] == [-1]  # may read once (a write came before)
    reads.clear()
    for _ in range(3):
        assert _batch(server, [stranger, _key(server.a1[0])], BOB)[1] == [-1, -1]
    assert reads == []  # nothing written since: no reading of Bob's records
    url = _post(server, BOB, "b1", [r.Input(id="new", data=r.Data(image=r.Image(
        base64=png(99))))])[0]
    assert _batch(server, [_key(url)], BOB)[1] == [len(png(99))]  # a write: read again
    assert reads


class _NoBatchServer:
    """A media host that has ``/media/orig/<key>`` URLs but answers POSTs with 404."""

    def __init__(self) -> None:
        self.posts = 0
        self.gets = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                outer.posts += 1
                self.send_error(404)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.gets += 1
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_a_host_that_does_not_batch_is_asked_one_url_at_a_time():
    host = _NoBatchServer()
    try:
        records = [Record(id=f"r{n}", media=Media(
            kind="image", uri=f"{host.url}/media/orig/{n:064x}",
            storage_options={"headers": {"Authorization": "Key k"}})) for n in range(40)]
        resolved = resolve_batch(records[:20]) + resolve_batch(records[20:])
        assert [x.media.data for x in resolved] == \
            [f"/media/orig/{n:064x}".encode() for n in range(40)]
        assert host.posts == 1 and host.gets == 40  # refused once, then never asked again
        assert media_batch.batch_key(records[0].media.uri) is None
    finally:
        host.httpd.shutdown()
        host.httpd.server_close()
