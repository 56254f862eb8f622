"""The web view's routes: sign-in, apps, an app, the input grid, an input, "more like this",
thumbnails, masks and static files. :meth:`WebView.handle` answers one request."""

from __future__ import annotations

import json
import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import json_format
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ...records import id_problem
from .. import media_blobs
from ..auth import Identity
from ..rpc import CallContext, RpcFailure
from . import overlay, queries, sessions, thumbs

_HERE = Path(__file__).parent
_STATIC = {name: (_HERE / "static" / name).read_bytes()
           for name in ("view.css", "view.js")}  # fixed names: nothing else is served
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_SEG = r"([A-Za-z0-9_][A-Za-z0-9_.\-]{0,254})"  # an id; id_problem checks it again
_ROUTES = [
    ("apps", re.compile(r"^/$")),
    ("app", re.compile(rf"^/apps/{_SEG}/{_SEG}$")),
    ("grid", re.compile(rf"^/apps/{_SEG}/{_SEG}/inputs$")),
    ("input", re.compile(rf"^/apps/{_SEG}/{_SEG}/inputs/{_SEG}$")),
    ("similar", re.compile(rf"^/apps/{_SEG}/{_SEG}/inputs/{_SEG}/similar$")),
    ("image", re.compile(rf"^/apps/{_SEG}/{_SEG}/inputs/{_SEG}/image$")),
    ("thumb", re.compile(rf"^/apps/{_SEG}/{_SEG}/inputs/{_SEG}/thumb\.jpg$")),
    ("mask", re.compile(rf"^/apps/{_SEG}/{_SEG}/annotations/{_SEG}/mask\.png$")),
    ("export", re.compile(rf"^/apps/{_SEG}/{_SEG}/datasets/{_SEG}/versions/{_SEG}/export$")),
]
SIMILAR_HITS = 24
_NEXT = re.compile(r"/(?:[^/\\\x00-\x20\x7f-\uffff][^\\\x00-\x20\x7f-\uffff]*)?")


@dataclass
class Response:
    """What the HTTP handler sends."""

    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _redirect(location: str, **headers: str) -> Response:
    return Response(303, b"", "text/plain", {"Location": location, **headers})


def _safe_next(value: str) -> str:
    """A same-site path to go back to after sign-in ("/" for anything else: another host,
    or a control character that would split the Location header)."""
    return value if _NEXT.fullmatch(value) else "/"


class WebView:
    """The browser view of one server."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.sessions = sessions.Sessions()
        self.env = Environment(loader=FileSystemLoader(_HERE / "templates"),
                               autoescape=select_autoescape(default=True,
                                                            default_for_string=True))
        self.env.globals["colour"] = overlay.colour
        self.env.filters["qs"] = lambda params: urllib.parse.urlencode(params)
        # Index catch-up and searches use the store's per-thread connections: run on two
        # long-lived threads, not on the HTTP server's throwaway ones (each would leave one).
        self._store_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="web")

    def close(self) -> None:
        """Stop the view's store threads."""
        self._store_threads.shutdown(wait=True, cancel_futures=True)

    def _on_store_thread(self, fn: Any, *args: Any) -> Any:
        return self._store_threads.submit(fn, *args).result()

    def handle(self, method: str, path: str, query: str, headers: Any,
               body: bytes = b"") -> Response | None:
        """The response to a request, or None when the path is not the view's."""
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        if path == "/signin":
            if method == "POST":
                return self._sign_in(body)
            return self._page("signin.html", 200, next=_safe_next(params.get("next", "/")),
                              refused=False)
        if path == "/signout" and method == "POST":
            self.sessions.close(sessions.token_of(headers.get("Cookie")))
            return _redirect("/signin", **{"Set-Cookie": sessions.clear_cookie()})
        if path.startswith("/static/"):
            name = path[len("/static/"):]
            if name in _STATIC:
                return Response(200, _STATIC[name], _TYPES[Path(name).suffix],
                                {"Cache-Control": "max-age=3600"})
            return Response(404, b"not found", "text/plain")
        found = _route(path)
        if found is None:
            return None
        name, match = found
        identity = self.sessions.identity(headers.get("Cookie"))
        if identity is None:
            target = path + (f"?{query}" if query else "")
            return _redirect("/signin?" + urllib.parse.urlencode({"next": target}))
        if method != "GET":
            return Response(405, b"method not allowed", "text/plain")
        if any(id_problem(part) for part in match.groups()):
            return self._page("error.html", 404, message="no such page")
        db = media_blobs.reader(self.server)
        try:
            if name == "apps":
                return self._page("apps.html", 200, identity=identity,
                                  apps=queries.apps_of(db, identity))
            app = queries.app_named(db, identity, match.group(1), match.group(2))
            if app is None:
                return self._page("error.html", 404, message="no such app")
            return getattr(self, f"_{name}")(db, identity, app, *match.groups()[2:],
                                             params=params)
        finally:
            db.close()

    # -- pages --------------------------------------------------------------------------

    def _page(self, template: str, status: int, **context: Any) -> Response:
        html = self.env.get_template(template).render(**context)
        return Response(status, html.encode(), headers={"Cache-Control": "no-store"})

    def _sign_in(self, body: bytes) -> Response:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                          keep_blank_values=True).items()}
        key = form.get("key", "").strip()
        identity = self.server.auth.identify(key) if key else None
        target = _safe_next(form.get("next", "/"))
        if identity is None:
            return self._page("signin.html", 401, next=target, refused=True)
        token = self.sessions.open(identity)
        return _redirect(target, **{"Set-Cookie": sessions.set_cookie(token)})

    def _app(self, db: Any, identity: Identity, app: queries.App, params: dict) -> Response:
        self._on_store_thread(self.server.search_index.catch_up, app.pk)
        return self._page("app.html", 200, identity=identity, app=app,
                          datasets=queries.datasets(db, app.pk),
                          concepts=queries.concepts(db, app.pk))

    def _grid(self, db: Any, identity: Identity, app: queries.App, params: dict) -> Response:
        self._on_store_thread(self.server.search_index.catch_up, app.pk)
        filters = queries.Filters(
            dataset=params.get("dataset", "") if not id_problem(params.get("dataset", ""))
            else "",
            concept=params.get("concept", "") if not id_problem(params.get("concept", ""))
            else "",
            kind=params.get("type", "") if params.get("type") in queries.KINDS else "",
            text=params.get("q", "")[:200])
        after = params.get("after", "")
        after = int(after) if after.isdigit() and len(after) < 19 else 0
        items, following = queries.input_page(db, app.pk, filters, after)
        cards = [self._card(item) for item in items]
        context = dict(identity=identity, app=app, cards=cards, filters=filters,
                       following=following, legend=_legend(cards))
        if params.get("fragment") == "1":
            return self._page("cards.html", 200, **context)
        return self._page("grid.html", 200, datasets=queries.datasets(db, app.pk),
                          concepts=queries.concepts(db, app.pk), kinds=queries.KINDS,
                          **context)

    def _card(self, item: queries.InputRow) -> dict[str, Any]:
        data = item.input.data
        kind = next((k for k in queries.KINDS if data.HasField(k)), "")
        text = ""
        if kind == "text":
            text = data.text.raw
            if not text and data.text.hosted.suffix:
                try:
                    text = media_blobs.read(self.server, data.text.hosted.suffix)[:2000].decode(
                        "utf-8", "replace")
                except KeyError:
                    text = ""
        return {"id": item.id, "kind": kind, "text": text[:400],
                "shapes": overlay.shapes(item.annotations), "labels": overlay.labels(item)}

    def _input(self, db: Any, identity: Identity, app: queries.App, input_id: str,
               params: dict) -> Response:
        item = queries.one_input(db, app.pk, input_id)
        if item is None:
            return self._page("error.html", 404, message="no such input")
        card = self._card(item)
        raw = {"input": json_format.MessageToDict(item.input),
               "annotations": [json_format.MessageToDict(a) for a in item.annotations]}
        return self._page("input.html", 200, identity=identity, app=app, card=card,
                          legend=_legend([card]),
                          metadata=json.dumps(json_format.MessageToDict(
                              item.input.data.metadata), indent=2, ensure_ascii=False)
                          if item.input.data.HasField("metadata") else "",
                          datasets=queries.input_datasets(db, app.pk, input_id),
                          raw=json.dumps(raw, indent=2, ensure_ascii=False))

    def _similar(self, db: Any, identity: Identity, app: queries.App, input_id: str,
                 params: dict) -> Response:
        """Runs PostInputsSearches' own handler: the input's vector ranks the app."""
        from ..ml.searches import post_inputs_searches

        request = service_pb2.PostInputsSearchesRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=app.user_id, app_id=app.id),
            searches=[resources_pb2.Search(query=resources_pb2.Query(ranks=[
                resources_pb2.Rank(annotation=resources_pb2.Annotation(input_id=input_id))]))],
            pagination=service_pb2.Pagination(page=1, per_page=SIMILAR_HITS))
        ctx = CallContext("PostInputsSearches", self.server, identity=identity)
        error, hits = "", []
        try:
            response = self._on_store_thread(post_inputs_searches, ctx, request)
        except RpcFailure as exc:
            error = str(getattr(exc, "details", "") or exc)
        else:
            items = [queries.InputRow(h.input.id, h.input) for h in response.hits]
            queries.attach_annotations(db, app.pk, items)
            hits = [dict(self._card(item), score=h.score)
                    for item, h in zip(items, response.hits, strict=True)]
        return self._page("similar.html", 200, identity=identity, app=app, input_id=input_id,
                          cards=hits, error=error, legend=_legend(hits))

    def _export(self, db: Any, identity: Identity, app: queries.App, dataset_id: str,
                version_id: str, params: dict) -> Response:
        """The version's export archive: started when there is none yet (as
        PutDatasetVersionExports does), then a redirect to its signed URL."""
        from ..archive import request_export
        from ..versions import load_version

        try:
            version = load_version(db, app.pk, dataset_id, version_id)
        except RpcFailure:
            return self._page("error.html", 404, message="no such dataset version")
        export = self._on_store_thread(request_export, self.server, app.pk, version)
        if export.status.code == status_code_pb2.DATASET_VERSION_EXPORT_SUCCESS and export.url:
            return _redirect(export.url)
        return self._page("export.html", 202, identity=identity, app=app, dataset_id=dataset_id,
                          version_id=version_id, state=export.status.description or "pending")

    # -- media --------------------------------------------------------------------------

    def _media_key(self, db: Any, app: queries.App, input_id: str) -> str | None:
        row = db.execute("SELECT proto FROM inputs WHERE app_pk=? AND id=?",
                         (app.pk, input_id)).fetchone()
        if row is None:
            return None
        image = resources_pb2.Input.FromString(row[0]).data.image
        return image.hosted.suffix or None

    def _image(self, db: Any, identity: Identity, app: queries.App, input_id: str,
               params: dict) -> Response:
        key = self._media_key(db, app, input_id)
        try:
            data = media_blobs.read(self.server, key, db) if key else None
        except KeyError:
            data = None
        if data is None:
            return Response(404, b"not found", "text/plain")
        from ..media_http import sniff_mime

        return Response(200, data, sniff_mime(data), {"Cache-Control": "private, max-age=600"})

    def _thumb(self, db: Any, identity: Identity, app: queries.App, input_id: str,
               params: dict) -> Response:
        key = self._media_key(db, app, input_id)
        data = thumbs.thumbnail(self.server, key, db) if key else None
        if data is None:
            return Response(404, b"not found", "text/plain")
        return Response(200, data, "image/jpeg", {"Cache-Control": "private, max-age=600"})

    def _mask(self, db: Any, identity: Identity, app: queries.App, annotation_id: str,
              params: dict) -> Response:
        ann = queries.annotation(db, app.pk, annotation_id)
        region = params.get("region", "")
        tint = params.get("c", "")
        key = next((r.region_info.mask.image.hosted.suffix for r in (ann.data.regions if ann
                    else ()) if r.id == region and r.region_info.HasField("mask")), "")
        data = thumbs.tinted_mask(self.server, key, tint, db) if key else None
        if data is None:
            return Response(404, b"not found", "text/plain")
        return Response(200, data, "image/png", {"Cache-Control": "private, max-age=600"})


def _route(path: str) -> tuple[str, re.Match[str]] | None:
    for name, pattern in _ROUTES:
        match = pattern.match(path)
        if match:
            return name, match
    return None


def _legend(cards: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return overlay.legend([s for card in cards for s in card["shapes"]])


def security_headers() -> dict[str, str]:
    """Headers every response of the view carries."""
    return {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
