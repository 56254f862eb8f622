"""The server's browser view in a real browser: Debian's chromium driven by Playwright,
against a server holding the compat COCO and VOC data (synced with the project's own sync).

What the pages show is checked against what the API says the apps hold (read over the raw
gRPC stub), never against the view's own queries."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

import clarifai_connect
from clarifai_connect.server import LocalServer
from clarifai_connect.testing import AppRef, raw_api

from .shared_files import in_ci
from .sync_support import app_content

CHROMIUM = Path("/usr/bin/chromium")
USER = "viewer"
# Hostile names and metadata: shown as text, never run (each would set window.__pwned).
EVIL_NAME = '<script>window.__pwned = 1; alert("name")</script>'
EVIL_META = '<img src=x onerror="window.__pwned = 2; alert(\'meta\')">'
EVIL_TEXT = '"><svg onload="window.__pwned = 3">'


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's chromium; missing: skipped locally, an error under CI=true."""
    if not CHROMIUM.exists():
        message = (f"chromium not found at {CHROMIUM}: apt-get install -y chromium "
                   "(the browser tests never download Playwright's own browsers)")
        if in_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def view(compat_dir, tmp_path_factory):
    """A server of its own holding the compat COCO instances and VOC data, and a hostile
    app; yields (server, raw stub)."""
    data = tmp_path_factory.mktemp("web-server")
    server = LocalServer(data_dir=data, user=USER).start()
    raw = raw_api(server)
    root = compat_dir / "datumaro"
    for app, source, dataset in (("coco", root / "coco_dataset/coco_instances", "instances"),
                                 ("voc", root / "voc_dataset/voc_dataset1", "voc1")):
        report = clarifai_connect.sync(str(source), f"{USER}/{app}", dataset=dataset,
                                       base_url=server.base_url, pat=server.keys[0],
                                       state=data / f"{app}.state")
        assert report.failed == 0 and report.created == report.read > 0, report.summary()
    _ok(raw.call("PostDatasetVersions", service_pb2.PostDatasetVersionsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=USER, app_id="coco"),
        dataset_id="instances", dataset_versions=[resources_pb2.DatasetVersion(id="v1")])))
    _hostile_app(raw, (root / "coco_dataset/coco_instances/images/train/a.jpg").read_bytes())
    _many_texts(raw)
    yield server, raw
    raw.channel.close()
    server.stop()


def _ok(response) -> None:
    assert response.status.code == status_code_pb2.SUCCESS, response.status


def _hostile_app(raw, image: bytes) -> None:
    ids = resources_pb2.UserAppIDSet(user_id=USER, app_id="evil")
    _ok(raw.call("PostApps", service_pb2.PostAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=USER), apps=[resources_pb2.App(id="evil")])))
    _ok(raw.call("PostConcepts", service_pb2.PostConceptsRequest(
        user_app_id=ids, concepts=[resources_pb2.Concept(id="evil", name=EVIL_NAME)])))
    meta = resources_pb2.Input(id="hostile", data=resources_pb2.Data(
        image=resources_pb2.Image(base64=image),
        concepts=[resources_pb2.Concept(id="evil", name=EVIL_NAME, value=1)]))
    meta.data.metadata.update({"note": EVIL_META})
    text = resources_pb2.Input(id="words", data=resources_pb2.Data(
        text=resources_pb2.Text(raw=EVIL_TEXT)))
    _ok(raw.call("PostInputs", service_pb2.PostInputsRequest(user_app_id=ids,
                                                              inputs=[meta, text])))
    _ok(raw.call("PostAnnotations", service_pb2.PostAnnotationsRequest(
        user_app_id=ids, annotations=[resources_pb2.Annotation(
            input_id="hostile", data=resources_pb2.Data(regions=[resources_pb2.Region(
                region_info=resources_pb2.RegionInfo(bounding_box=resources_pb2.BoundingBox(
                    top_row=0.1, left_col=0.1, bottom_row=0.5, right_col=0.5)),
                data=resources_pb2.Data(concepts=[resources_pb2.Concept(
                    id="evil", name=EVIL_NAME, value=1)]))]))])))


MANY = 60  # more than one page of the grid (queries.PER_PAGE)


def _many_texts(raw) -> None:
    ids = resources_pb2.UserAppIDSet(user_id=USER, app_id="many")
    _ok(raw.call("PostApps", service_pb2.PostAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=USER), apps=[resources_pb2.App(id="many")])))
    _ok(raw.call("PostInputs", service_pb2.PostInputsRequest(user_app_id=ids, inputs=[
        resources_pb2.Input(id=f"t{n:03d}", data=resources_pb2.Data(
            text=resources_pb2.Text(raw=f"text number {n}"))) for n in range(MANY)])))


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True,
                                     args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, view):
    """A fresh browser context's page, with every dialog and page error recorded. The
    view's Content-Security-Policy is bypassed: escaping alone must keep hostile data inert
    (and the test's own waits evaluate script)."""
    context = browser.new_context(base_url=view[0].media_url, bypass_csp=True,
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def _sign_in(page, key: str, then: str = "/") -> None:
    page.goto(f"/signin?{urllib.parse.urlencode({'next': then})}")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_without_a_session_every_page_redirects_to_sign_in(view, page):
    server, _ = view
    paths = ["/", "/apps/viewer/coco", "/apps/viewer/coco/inputs?concept=a",
             "/apps/viewer/coco/inputs/val-b.jpg", "/apps/viewer/coco/inputs/val-b.jpg/similar",
             "/apps/viewer/coco/inputs/val-b.jpg/thumb.jpg",
             "/apps/viewer/coco/inputs/val-b.jpg/image",
             "/apps/viewer/coco/annotations/x/mask.png",
             "/apps/viewer/coco/datasets/instances/versions/v1/export"]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    for path in paths:
        with pytest.raises(urllib.error.HTTPError) as err:
            opener.open(server.media_url + path)
        assert err.value.code == 303, path
        location = err.value.headers["Location"]
        assert location == "/signin?" + urllib.parse.urlencode({"next": path}), path
        # An API key header is no session: the view wants the sign-in.
        request = urllib.request.Request(server.media_url + path,
                                         headers={"Authorization": f"Key {server.keys[0]}"})
        with pytest.raises(urllib.error.HTTPError) as err:
            opener.open(request)
        assert err.value.code == 303, path
    page.goto("/apps/viewer/coco/inputs")
    assert urllib.parse.urlparse(page.url).path == "/signin"
    assert page.locator("input[name=key]").is_visible()


def test_a_wrong_key_is_refused(view, page):
    page.goto("/signin")
    page.fill("input[name=key]", view[0].keys[0] + "x")
    with page.expect_response(lambda r: r.url.endswith("/signin")) as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    assert page.locator(".refused").inner_text() == "That key is not accepted here."
    assert page.context.cookies() == []
    page.goto("/")
    assert urllib.parse.urlparse(page.url).path == "/signin"


def test_sign_in_sets_a_strict_http_only_session(view, page):
    server, _ = view
    _sign_in(page, server.keys[0])
    assert urllib.parse.urlparse(page.url).path == "/"
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert server.keys[0] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script sees it
    rows = {r.get_attribute("data-app"): r for r in page.locator("tr.app-row").all()}
    assert set(rows) == {"coco", "voc", "evil", "many"}
    for app in ("coco", "voc"):
        content = app_content(view[1], AppRef(USER, app))
        assert rows[app].locator(".n-inputs").inner_text() == str(len(content))
        assert rows[app].locator(".n-datasets").inner_text() == "1"
    # Another user's key signs in to that user's apps only.
    other = server.key_for("someone-else")
    page.click("form.signout button")
    _sign_in(page, other, "/apps/viewer/coco")
    assert page.locator("h1").inner_text() == "Not found"
    page.goto("/")
    assert page.locator("tr.app-row").count() == 0


def test_app_page_lists_datasets_concepts_and_downloads_a_version(view, page):
    server, raw = view
    content = app_content(raw, AppRef(USER, "coco"))
    _sign_in(page, server.keys[0], f"/apps/{USER}/coco")
    row = page.locator("tr.dataset-row[data-dataset=instances]")
    assert row.locator("td").nth(1).inner_text() == str(len(content))
    counts = {r.get_attribute("data-concept"): int(r.locator(".concept-count").inner_text())
              for r in page.locator("tr.concept-row").all()}
    assert counts == {c: sum(1 for v in content.values()
                             if any(c in r[-1] for r in v["regions"]) or c in v["concepts"])
                      for c in counts} and counts
    link = row.locator("a.version-export[data-version=v1]")
    answer = page.context.request.get(link.get_attribute("href"))
    assert answer.status == 200 and answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.body())) as archive:
        assert archive.read("mimetype") == b"application/x.clarifai-data+protobuf"
        batches = [resources_pb2.InputBatch.FromString(archive.read(n))
                   for n in archive.namelist() if n != "mimetype"]
    assert sorted(i.id for b in batches for i in b.inputs) == sorted(content)


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example",
                                    "/x\r\nSet-Cookie: planted=1", "https://evil.example/"])
def test_sign_in_goes_back_only_to_a_plain_local_path(view, target):
    server, _ = view

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    form = urllib.parse.urlencode({"key": server.keys[0], "next": target}).encode()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.build_opener(NoRedirect).open(server.media_url + "/signin", data=form)
    assert err.value.code == 303 and err.value.headers["Location"] == "/"
    assert all("planted" not in c for c in err.value.headers.get_all("Set-Cookie"))


def _drawn(card) -> dict[str, int]:
    return {kind: card.locator(f"svg .region-{kind}").count()
            for kind in ("box", "polygon", "point", "mask")}


@pytest.mark.parametrize("app", ["coco", "voc"])
def test_grid_draws_every_stored_region(view, page, app, tmp_path):
    server, raw = view
    content = app_content(raw, AppRef(USER, app))
    _sign_in(page, server.keys[0], f"/apps/{USER}/{app}/inputs")
    cards = page.locator("figure.card")
    cards.first.wait_for()
    assert sorted(c.get_attribute("data-input") for c in cards.all()) == sorted(content)
    drawn_any = 0
    for card in cards.all():
        stored = content[card.get_attribute("data-input")]["regions"]
        expected = {kind: sum(1 for r in stored if r[0] == kind)
                    for kind in ("box", "polygon", "point", "mask")}
        assert _drawn(card) == expected, card.get_attribute("data-input")
        drawn_any += sum(expected.values())
    assert drawn_any > 0
    # The thumbnails load (generated once, then served from the cache).
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    legend = page.locator("ul.legend li")
    concepts = {c for v in content.values() for r in v["regions"] for c in r[-1]}
    assert {li.get_attribute("data-concept") for li in legend.all()} <= concepts
    page.screenshot(path=str(tmp_path / f"grid-{app}.png"), full_page=True)
    assert (tmp_path / f"grid-{app}.png").stat().st_size > 10_000


def test_grid_loads_the_next_pages_on_scroll(view, page):
    from clarifai_connect.server.web.queries import PER_PAGE

    assert PER_PAGE < MANY
    _sign_in(page, view[0].keys[0], f"/apps/{USER}/many/inputs")
    cards = page.locator("figure.card")
    assert cards.count() == PER_PAGE
    assert cards.first.locator(".text-input").inner_text() == "text number 0"
    page.locator("a.more").scroll_into_view_if_needed()
    page.wait_for_function(f"document.querySelectorAll('figure.card').length === {MANY}")
    assert [c.get_attribute("data-input") for c in cards.all()] == [
        f"t{n:03d}" for n in range(MANY)]
    assert page.locator("a.more").count() == 0
    # Without script, the link pages on its own (followed, not clicked: with script on, the
    # link in view may already be replaced by the page it loads).
    page.goto(f"/apps/{USER}/many/inputs")
    page.goto(f"/apps/{USER}/many/inputs" + page.locator("a.more").get_attribute("href"))
    assert [c.get_attribute("data-input") for c in cards.all()] == [
        f"t{n:03d}" for n in range(PER_PAGE, MANY)]


def test_filter_by_concept_and_dataset(view, page):
    server, raw = view
    content = app_content(raw, AppRef(USER, "voc"))
    having = {i for i, v in content.items()
              if any("person" in r[-1] for r in v["regions"]) or "person" in v["concepts"]}
    assert having and having != set(content)
    _sign_in(page, server.keys[0], f"/apps/{USER}/voc/inputs")
    page.select_option("select[name=concept]", "person")
    page.click("form.filters button")
    page.wait_for_load_state()
    assert "concept=person" in page.url
    shown = {c.get_attribute("data-input") for c in page.locator("figure.card").all()}
    assert shown == having
    page.goto(f"/apps/{USER}/voc/inputs?dataset=voc1&concept=no-such-concept")
    assert page.locator("figure.card").count() == 0
    assert page.locator(".empty").is_visible()


def test_input_page_lists_its_regions(view, page, tmp_path):
    server, raw = view
    content = app_content(raw, AppRef(USER, "coco"))
    input_id = max(content, key=lambda i: len(content[i]["regions"]))
    _sign_in(page, server.keys[0], f"/apps/{USER}/coco/inputs/{input_id}")
    rows = page.locator("tr.region-row")
    listed = sorted((r.get_attribute("data-kind"), r.get_attribute("data-concept"))
                    for r in rows.all())
    assert listed == sorted((r[0], c) for r in content[input_id]["regions"] for c in r[-1])
    for region in content[input_id]["regions"]:
        if region[0] == "box":  # ("box", top, left, bottom, right, concepts)
            coords = page.locator("tr.region-row[data-kind=box] .coords").first.inner_text()
            assert f"top {region[1]:g}" in coords and f"right {region[4]:g}" in coords
    assert page.locator(".input-datasets").inner_text() == "instances"
    page.wait_for_function("document.querySelector('.media.full img').naturalWidth > 0")
    assert not page.locator("details.raw pre").is_visible()
    page.click("details.raw summary")
    assert f'"id": "{input_id}"' in page.locator("details.raw pre").inner_text()
    page.screenshot(path=str(tmp_path / "input.png"), full_page=True)


def test_more_like_this_shows_scored_hits(view, page, tmp_path):
    server, raw = view
    content = app_content(raw, AppRef(USER, "voc"))
    input_id = sorted(content)[0]
    _sign_in(page, server.keys[0], f"/apps/{USER}/voc/inputs/{input_id}")
    page.click("a.similar")
    page.wait_for_load_state()
    assert page.locator(".refused").count() == 0
    shown = list(zip([h.get_attribute("data-input")
                      for h in page.locator(".hits figure.card").all()],
                     page.locator(".hits .score").all_inner_texts(), strict=True))
    # The same search over the API: the page shows its hits, in its order, with its scores.
    answer = raw.call("PostInputsSearches", service_pb2.PostInputsSearchesRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=USER, app_id="voc"),
        searches=[resources_pb2.Search(query=resources_pb2.Query(ranks=[resources_pb2.Rank(
            annotation=resources_pb2.Annotation(input_id=input_id))]))]))
    _ok(answer)
    assert shown == [(h.input.id, f"{h.score:.4f}") for h in answer.hits]
    assert sorted(i for i, _ in shown) == sorted(content)
    assert dict(shown)[input_id] == max(s for _, s in shown)  # nothing is closer than itself
    assert float(dict(shown)[input_id]) == pytest.approx(1.0, abs=1e-3)
    page.screenshot(path=str(tmp_path / "similar.png"), full_page=True)


def test_hostile_names_and_metadata_show_as_text(view, page):
    server, _ = view
    _sign_in(page, server.keys[0], f"/apps/{USER}/evil")
    assert page.locator("tr.concept-row .concept-name").inner_text() == EVIL_NAME
    page.goto(f"/apps/{USER}/evil/inputs")
    assert page.locator(".card[data-input=words] .text-input").inner_text() == EVIL_TEXT
    assert page.locator("ul.legend li").inner_text() == EVIL_NAME
    page.goto(f"/apps/{USER}/evil/inputs?type=text")
    assert [c.get_attribute("data-input") for c in page.locator("figure.card").all()] == ["words"]
    page.goto(f"/apps/{USER}/evil/inputs?" + urllib.parse.urlencode({"q": "onerror"}))
    assert [c.get_attribute("data-input") for c in page.locator("figure.card").all()] == [
        "hostile"]
    page.goto(f"/apps/{USER}/evil/inputs/hostile")
    assert page.locator(".region-concept").inner_text() == EVIL_NAME
    assert json.loads(page.locator("pre.metadata").inner_text()) == {"note": EVIL_META}
    # A hostile filter value comes back as text too.
    page.goto(f"/apps/{USER}/evil/inputs?" + urllib.parse.urlencode({"q": EVIL_META}))
    assert page.locator("input[name=q]").input_value() == EVIL_META
    page.wait_for_timeout(200)  # give a stray onerror/onload the time to fire
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == [] and page.errors == []
    assert page.locator("script:not([src])").count() == 0
    # Beside the escaping, the pages forbid inline script.
    response = page.goto(f"/apps/{USER}/evil/inputs/hostile")
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_ids_and_files_outside_are_refused(view, page):
    server, _ = view
    _sign_in(page, server.keys[0])
    for path in ("/apps/viewer/coco/inputs/..%2f..%2fserver.sqlite3",
                 "/static/../runtime.py", "/static/%2e%2e/routes.py",
                 "/apps/viewer/coco/inputs/-bad", "/apps/viewer/coco/inputs/a/thumb.jpg"):
        response = page.goto(path)
        assert response.status == 404, path
