"""The browser view of the local server: what an app holds, with its labels drawn.

Served on the hosted-media HTTP port (:mod:`..media_http` hands it every path it does not
serve itself). Server-rendered HTML (Jinja2, autoescaped), plain CSS and a little script,
all from this package: nothing from a CDN. Behind the API's keys: a sign-in form takes a
key and sets an HttpOnly, SameSite=Strict session cookie (:mod:`.sessions`); every other
page redirects to it without one.
"""

from .routes import WebView

__all__ = ["WebView"]
