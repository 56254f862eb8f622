"""Client plumbing: URL parsing, Chunker, base_url forms, credentials from the environment,
TLS with custom roots, and the embedded ``local`` server."""

import datetime
from concurrent import futures

import grpc
import pytest

from clarifai_connect.client import App, Chunker, Inputs, User, parse_clarifai_url
from clarifai_connect.client.auth import ClientAuth, parse_base_url
from clarifai_connect.client.utils import batched, clean_input_id, read_ahead
from clarifai_connect.errors import ApiError, UserError

ENV_VARS = ("CLARIFAI_PAT", "CLARIFAI_SESSION_TOKEN", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID",
            "CLARIFAI_APP_ID", "CLARIFAI_ROOT_CERTIFICATES_PATH")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("url, expected", [
    ("https://clarifai.com/u1/app1/models/general/versions/v9",
     ("u1", "app1", "models", "general", "v9")),
    ("https://clarifai.com/u1/app1/models/general/versions/v9/",
     ("u1", "app1", "models", "general", "v9")),
    ("https://clarifai.com/u1/app1/models/general/", ("u1", "app1", "models", "general", "")),
    ("clarifai.com/u1/app1/datasets/ds?tab=inputs#x", ("u1", "app1", "datasets", "ds", "")),
    ("https://clarifai.com/u1/app1/", ("u1", "app1", "", "", "")),
    ("http://localhost:3000/u1/app1/dataset/ds/versions/v1",
     ("u1", "app1", "datasets", "ds", "v1")),
])
def test_parse_clarifai_url(url, expected):
    parsed = parse_clarifai_url(url)
    assert (parsed.user_id, parsed.app_id, parsed.resource_type, parsed.resource_id,
            parsed.version_id) == expected


@pytest.mark.parametrize("url", [
    "https://clarifai.com/u1", "https://clarifai.com/u1/app1/models",
    "https://clarifai.com/u1/app1/gizmos/x", "https://clarifai.com/u1/app1/models/m/tags/t",
])
def test_parse_clarifai_url_rejects_other_shapes(url):
    with pytest.raises(UserError, match="URL"):
        parse_clarifai_url(url)


def test_chunker_and_batched():
    assert Chunker(list(range(7)), 3).chunk() == [[0, 1, 2], [3, 4, 5], [6]]
    assert Chunker([], 3).chunk() == []
    with pytest.raises(UserError):
        Chunker([1], 0)
    assert list(batched(iter(range(5)), 2)) == [[0, 1], [2, 3], [4]]
    assert clean_input_id("My File.v2 (final).JPG") == "my_file_v2_final_jpg"


def test_read_ahead_keeps_order_raises_where_reached_and_stops_when_closed():
    import threading

    assert list(read_ahead(range(50), depth=2)) == list(range(50))
    pulled = []
    release = threading.Event()

    def pages():
        for n in range(100):
            pulled.append(n)
            yield n
            if n == 3:
                release.wait(10)  # the producer waits here until the consumer closed

    def failing():
        yield 1
        raise ValueError("page 2 failed")

    seen = []
    with pytest.raises(ValueError, match="page 2"):
        for item in read_ahead(failing()):
            seen.append(item)
    assert seen == [1]
    ahead = read_ahead(pages(), depth=1)
    assert next(ahead) == 0
    ahead.close()
    release.set()
    for _ in range(100):
        if len(pulled) > 5:
            break
        threading.Event().wait(0.02)
    assert len(pulled) <= 6  # at most one item past the wait: it stopped, not ran on


@pytest.mark.parametrize("base_url, target, tls", [
    ("https://api.clarifai.com", "api.clarifai.com:443", True),
    ("https://api.example.org:8443/", "api.example.org:8443", True),
    ("http://127.0.0.1:50051", "127.0.0.1:50051", False),
    ("127.0.0.1:50051", "127.0.0.1:50051", False),
    ("api.example.org:443", "api.example.org:443", True),
    ("api.clarifai.com", "api.clarifai.com:443", True),
])

def test_parse_base_url(base_url, target, tls):
    endpoint = parse_base_url(base_url)
    assert (endpoint.target, endpoint.tls, endpoint.is_local) == (target, tls, False)


def test_parse_base_url_local_and_errors(tmp_path):
    assert parse_base_url(f"local:{tmp_path}").local_dir == str(tmp_path.resolve())
    assert parse_base_url("local").is_local
    for bad in ("ftp://host:1", "", "http://"):
        with pytest.raises(UserError, match="base_url"):
            parse_base_url(bad)


def test_credentials_are_required_and_taken_from_env(monkeypatch, clarifai_server, clarifai_app):
    with pytest.raises(UserError, match="CLARIFAI_PAT"):
        User("someone", base_url=clarifai_server.base_url)
    monkeypatch.setenv("CLARIFAI_PAT", clarifai_server.keys[0])
    monkeypatch.setenv("CLARIFAI_API_BASE", clarifai_server.base_url)
    monkeypatch.setenv("CLARIFAI_USER_ID", clarifai_app.user_id)
    monkeypatch.setenv("CLARIFAI_APP_ID", clarifai_app.app_id)
    app = App()  # everything from the environment
    assert (app.user_id, app.app_id) == (clarifai_app.user_id, clarifai_app.app_id)
    assert list(app.list_datasets()) == []
    inputs = Inputs()
    inputs.upload_text("from-env", "hello")
    assert [i.id for i in inputs.list_inputs()] == ["from-env"]


def test_session_token_authenticates(clarifai_server, clarifai_app):
    app = App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
              base_url=clarifai_server.base_url, token=clarifai_server.keys[0])
    assert app.auth.metadata[0][0] == "x-clarifai-session-token"
    assert list(app.list_datasets()) == []
    wrong = App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
                base_url=clarifai_server.base_url, pat="0123456789abcdef-wrong")
    with pytest.raises(ApiError) as err:
        list(wrong.list_datasets())
    assert err.value.code == 11008  # CONN_KEY_INVALID


def test_missing_root_certificates_is_a_user_error(tmp_path, clarifai_server):
    with pytest.raises(UserError, match="root_certificates_path"):
        User("u", base_url="https://localhost:1", pat="x" * 32,
             root_certificates_path=str(tmp_path / "missing.pem"))


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    (tmp_path / "root.pem").write_bytes(cert_pem)
    return cert_pem, key_pem, str(tmp_path / "root.pem")


def test_https_base_url_uses_tls_with_custom_roots(tmp_path, clarifai_server):
    pytest.importorskip("cryptography")
    from clarifai_connect.server.rpc import build_handler

    cert_pem, key_pem, roots = _self_signed(tmp_path)
    tls_server = grpc.server(futures.ThreadPoolExecutor(4))
    tls_server.add_generic_rpc_handlers((build_handler(clarifai_server),))
    port = tls_server.add_secure_port(
        "localhost:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
    tls_server.start()
    try:
        user = User("tls-user", base_url=f"https://localhost:{port}",
                    pat=clarifai_server.add_key(f"tls-user:{'t' * 32}"),
                    root_certificates_path=roots)
        assert user.auth.endpoint.tls
        user.create_app("over-tls")
        assert [a.id for a in user.list_apps()] == ["over-tls"]
        user.delete_app("over-tls")
    finally:
        tls_server.stop(0)


def test_local_base_url_starts_one_embedded_server(tmp_path):
    first = User("local-user", base_url=f"local:{tmp_path}")
    second = User("local-user", base_url=f"local:{tmp_path}")
    assert first.auth.pat and first.auth.pat == second.auth.pat  # the server's own key
    assert first.auth.channel() is second.auth.channel()
    first.create_app("kept")
    assert [a.id for a in second.list_apps()] == ["kept"]
    assert (tmp_path / "server.sqlite3").exists()
    assert first.auth.pat not in repr(first.auth)


def test_client_auth_resolve_prefers_arguments(monkeypatch):
    monkeypatch.setenv("CLARIFAI_USER_ID", "env-user")
    monkeypatch.setenv("CLARIFAI_PAT", "env-pat-0123456789")
    auth = ClientAuth.resolve(user_id="arg-user", base_url="http://127.0.0.1:9")
    assert auth.user_id == "arg-user" and auth.pat == "env-pat-0123456789"
    assert ClientAuth.resolve(base_url="http://127.0.0.1:9", pat="arg-pat-0123456789").pat \
        == "arg-pat-0123456789"
    assert auth.with_ids(app_id="a").app_id == "a" and auth.with_ids(app_id="a").user_id \
        == "arg-user"
