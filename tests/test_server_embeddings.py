"""Embeddings on the local server: the built-in embedders, background embedding at ingest,
storage beside the input, the vector index (incremental, persisted, resumed), and a plugin
embedder chosen by an app's base workflow."""

from __future__ import annotations

import io
import types

import numpy as np
import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from PIL import Image, ImageDraw

from clarifai_connect.embedder import Embedder
from clarifai_connect.errors import ConfigError
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.plugins import PluginRegistry, get_registry
from clarifai_connect.server import LocalServer
from clarifai_connect.server.ml import image_features
from clarifai_connect.server.ml.embedders import ImageFeatureEmbedder, WordLlamaEmbedder
from clarifai_connect.server.ml.vectors import EUCLIDEAN, VectorIndex
from clarifai_connect.testing import AppRef, raw_api


def encoded(img: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def scene(seed: int, size=(320, 240)) -> Image.Image:
    """A random blocky picture with a coloured disc: different seeds, different scenes."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray((rng.random((12, 16, 3)) * 255).astype("uint8")).resize(size)
    ImageDraw.Draw(img).ellipse((60, 40, 200, 180), fill=tuple(int(c) for c in
                                                               rng.integers(0, 255, 3)))
    return img


def app_pk(server: LocalServer, app: AppRef) -> int:
    return server.store.read().execute("SELECT pk FROM apps WHERE user_id=? AND id=?",
                                       (app.user_id, app.app_id)).fetchone()[0]


def post(api, app: AppRef, inputs: list[r.Input]) -> None:
    for start in range(0, len(inputs), 128):
        resp = api.call("PostInputs", s.PostInputsRequest(user_app_id=app.user_app_id,
                                                          inputs=inputs[start:start + 128]))
        assert resp.status.code == codes.SUCCESS, resp.status


def text(input_id: str, raw: str) -> r.Input:
    return r.Input(id=input_id, data=r.Data(text=r.Text(raw=raw)))


def image(input_id: str, data: bytes) -> r.Input:
    return r.Input(id=input_id, data=r.Data(image=r.Image(base64=data)))


def make_app(api, user: str, app_id: str, workflow: str = "") -> AppRef:
    app = r.App(id=app_id, default_workflow=r.Workflow(id=workflow) if workflow else None)
    resp = api.call("PostApps", s.PostAppsRequest(user_app_id=r.UserAppIDSet(user_id=user),
                                                  apps=[app]))
    assert resp.status.code == codes.SUCCESS, resp.status
    return AppRef(user, app_id)


# -- the built-in embedders -------------------------------------------------------------------

def test_wordllama_loads_offline_from_its_wheel_and_ranks_shared_words_first(monkeypatch,
                                                                             tmp_path):
    # No cache and no network: the weights and tokenizer come from the package folder.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(WordLlamaEmbedder, "_model", None)
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("wordllama tried to download")

    monkeypatch.setattr(requests, "get", no_network)
    vectors = np.asarray(WordLlamaEmbedder().embed("text", [
        "a dog runs in the park", "the dog plays in a park", "quarterly tax report filed"]))
    assert vectors.shape == (3, WordLlamaEmbedder.dim)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.2
    again = np.asarray(WordLlamaEmbedder().embed("text", ["a dog runs in the park"]))
    assert np.allclose(again[0], vectors[0])  # deterministic


def test_image_features_find_near_duplicates_not_other_scenes():
    base = scene(1)
    assert ImageFeatureEmbedder.dim == image_features.DIM
    variants = {
        "rescaled": encoded(base.resize((160, 120))),
        "jpeg": encoded(base, "JPEG"),
        "crop": encoded(base.crop((8, 6, 312, 234))),
        "other": encoded(scene(2)),
        "flat": encoded(Image.new("RGB", (50, 50), (10, 200, 30))),
    }
    ref = image_features.image_features(encoded(base))
    assert ref.shape == (image_features.DIM,) and abs(np.linalg.norm(ref) - 1) < 1e-5
    sims = {k: float(ref @ image_features.image_features(v)) for k, v in variants.items()}
    assert min(sims["rescaled"], sims["jpeg"], sims["crop"]) > 0.9
    assert sims["other"] < min(sims["rescaled"], sims["jpeg"], sims["crop"]) - 0.1
    assert sims["flat"] < sims["other"]
    # A flat colour is closest to the same colour, whatever the size.
    green = image_features.image_features(encoded(Image.new("RGB", (9, 30), (12, 198, 33))))
    red = image_features.image_features(encoded(Image.new("RGB", (50, 50), (200, 10, 30))))
    flat = image_features.image_features(variants["flat"])
    assert flat @ green > 0.99 and flat @ red < 0.5
    assert ImageFeatureEmbedder().embed("image", [b"not an image", variants["jpeg"]])[0] is None


def test_builtin_embedders_register_through_the_plugin_hook():
    registry = get_registry()
    assert registry.embedders["wordllama"].plugin.builtin
    assert registry.embedders["image-features"].cls is ImageFeatureEmbedder
    with pytest.raises(ConfigError, match="unknown embedder 'nope'"):
        registry.embedder("nope")


# -- the vector index -------------------------------------------------------------------------

def test_vector_index_adds_removes_and_searches_exactly():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    ids = [f"v{i}" for i in range(200)]
    index = VectorIndex(16)
    index.add(ids[:100], vectors[:100])
    index.add(ids[100:], vectors[100:])
    index.remove(["v0", "v50", "missing"])
    assert len(index) == 198 and "v0" not in index and "v199" in index
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[7] + 0.01
    expected = [ids[i] for i in np.argsort(-(unit @ (query / np.linalg.norm(query))))
                if ids[i] not in ("v0", "v50")][:5]
    hits = index.search(query, 5)
    assert [h[0] for h in hits] == expected and hits[0][0] == "v7"
    assert all(a[1] >= b[1] for a, b in zip(hits, hits[1:], strict=False)) and 0.99 < hits[0][1] <= 1
    among = index.search(query, 3, among=["v1", "v2", "v50", "v7", "nope"])
    assert {h[0] for h in among} == {"v1", "v2", "v7"} and among[0][0] == "v7"
    euclid = index.search(query, 5, metric=EUCLIDEAN)
    assert [h[0] for h in euclid] == expected
    index.add(["v7"], -vectors[7:8])  # replacing a vector moves its neighbours
    assert index.search(query, 1)[0][0] != "v7"
    found, matrix = index.vectors(["v9", "v0", "v8"])
    assert found == ["v9", "v8"] and np.allclose(matrix[0], unit[9], atol=1e-6)


# -- the server -------------------------------------------------------------------------------

def test_inputs_are_embedded_in_the_background_and_forgotten_on_delete(clarifai_server,
                                                                       clarifai_raw,
                                                                       clarifai_app):
    base = scene(5)
    post(clarifai_raw, clarifai_app, [
        text("t-dog", "a brown dog sleeps on the sofa"), text("t-tax", "the tax office"),
        image("i-base", encoded(base)), image("i-small", encoded(base.resize((100, 75)))),
        image("i-other", encoded(scene(6))), image("i-broken", b"\x89PNG\r\n\x1a\nbroken"),
    ])
    service, pk = clarifai_server.embeddings, app_pk(clarifai_server, clarifai_app)
    assert service.wait(pk, timeout=120)
    rows = dict(clarifai_server.store.read().execute(
        "SELECT input_id, embedder FROM embeddings WHERE app_pk=?", (pk,)).fetchall())
    assert rows == {"t-dog": "wordllama", "t-tax": "wordllama", "i-base": "image-features",
                    "i-small": "image-features", "i-other": "image-features"}
    ids, matrix = service.vectors(pk, ["t-tax", "t-dog", "i-none"])
    assert ids == ["t-tax", "t-dog"] and matrix.shape == (2, 256)
    with pytest.raises(ValueError, match="embedder="):
        service.vectors(pk, ["t-dog", "i-base"])
    query = service.embed(pk, "image", encoded(base.resize((200, 150))))
    hits = service.index(pk, "image-features").search(query, 3)
    assert [h[0] for h in hits[:2]] == ["i-base", "i-small"] or \
           [h[0] for h in hits[:2]] == ["i-small", "i-base"]
    assert hits[2][0] == "i-other"
    words = service.index(pk, "wordllama").search(service.embed(pk, "text", "sleeping dog"), 2)
    assert words[0][0] == "t-dog"

    resp = clarifai_raw.call("DeleteInputs", s.DeleteInputsRequest(
        user_app_id=clarifai_app.user_app_id, ids=["i-base", "t-tax"]))
    assert resp.status.code == codes.SUCCESS
    assert "i-base" not in service.index(pk, "image-features")
    assert service.index(pk, "image-features").search(query, 1)[0][0] == "i-small"
    left = {row[0] for row in clarifai_server.store.read().execute(
        "SELECT input_id FROM embeddings WHERE app_pk=?", (pk,))}
    assert left == {"t-dog", "i-small", "i-other"}


def test_vectors_persist_and_a_restart_embeds_what_was_left(tmp_path):
    with LocalServer(tmp_path, embedders={}, user="u") as server:  # embedding off
        api = raw_api(server)
        app = make_app(api, "u", "a")
        post(api, app, [text(f"t{i}", f"note number {i} about cats") for i in range(300)])
        pk = app_pk(server, app)
        assert server.embeddings.wait(pk, 30)
        count = server.store.read().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        assert count == 0
        api.channel.close()
    with LocalServer(tmp_path, user="u") as server:  # the restart queues the 300 unembedded inputs
        assert server.embeddings.wait(pk, 120)
        ids, before = server.embeddings.vectors(pk, ["t3", "t299"])
        assert ids == ["t3", "t299"] and before.shape == (2, 256)
        assert len(server.embeddings.index(pk, "wordllama")) == 300
    with LocalServer(tmp_path, user="u") as server:  # the index comes back from storage, unchanged
        assert len(server.embeddings.index(pk, "wordllama")) == 300
        _, after = server.embeddings.vectors(pk, ["t3", "t299"])
        assert np.array_equal(before, after)


def test_unknown_embedder_configuration_fails_fast(tmp_path):
    with pytest.raises(ConfigError, match="unknown embedder 'nope'"):
        LocalServer(tmp_path, embedders={"image": "nope"})
    with pytest.raises(ConfigError, match="does not embed image"):
        LocalServer(tmp_path, embedders={"image": "wordllama"})


class LetterCountEmbedder(Embedder):
    """A third-party embedder: one vector space for images and texts (letter counts of a
    text, or of the text a picture's bytes spell), so a text finds a picture."""

    name = "letter-counts"
    kinds = frozenset({"text", "image"})
    dim = 26
    calls: list[str] = []

    def embed(self, kind, items):
        self.calls.append(kind)
        out = []
        for item in items:
            letters = item if isinstance(item, str) else item.decode("latin-1")
            counts = np.zeros(26)
            for ch in letters.lower():
                if "a" <= ch <= "z":
                    counts[ord(ch) - 97] += 1
            out.append(counts + 1e-3)
        return out


def test_a_plugin_embedder_is_used_for_apps_whose_base_workflow_names_it(tmp_path):
    plugin = types.ModuleType("cc_letter_plugin")
    plugin.register_embedders = hookimpl(lambda register: register(LetterCountEmbedder))
    registry = PluginRegistry()
    registry.add_plugin(plugin, name="letter-plugin", distribution="cc-letter-plugin")
    registry.load()
    assert registry.embedders["letter-counts"].plugin.distribution == "cc-letter-plugin"
    with LocalServer(tmp_path, plugins=registry, user="u") as server:
        api = raw_api(server)
        custom = make_app(api, "u", "custom", workflow="letter-counts")
        plain = make_app(api, "u", "plain", workflow="Universal")
        # An image by its magic bytes (the server refuses bytes that are not one).
        items = [text("zzz", "zzzz zz"), image("aaa", b"GIF89a aaaa aaaa")]
        post(api, custom, items)
        post(api, plain, [text("zzz", "zzzz zz")])
        pk = app_pk(server, custom)
        assert server.embeddings.wait(None, 60)
        assert server.embeddings.embedder_name(pk, "image") == "letter-counts"
        assert server.embeddings.embedder_name(app_pk(server, plain), "text") == "wordllama"
        index = server.embeddings.index(pk, "letter-counts")
        assert len(index) == 2  # the image is in the same space as the text
        assert index.search(server.embeddings.embed(pk, "text", "a"), 1)[0][0] == "aaa"
        assert set(LetterCountEmbedder.calls) == {"text", "image"}
        # Search uses it too: a text query finds the picture of that app.
        rank = r.Rank(annotation=r.Annotation(data=r.Data(text=r.Text(raw="aaa a"))))
        found = api.call("PostInputsSearches", s.PostInputsSearchesRequest(
            user_app_id=custom.user_app_id, searches=[r.Search(query=r.Query(ranks=[rank]))]))
        assert [h.input.id for h in found.hits] == ["aaa", "zzz"], found.status
        api.channel.close()
