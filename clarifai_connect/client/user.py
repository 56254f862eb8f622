"""User: the apps and runners of one user."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from ..errors import UserError
from .app import App
from .auth import ClientAuth
from .base import resolve_auth
from .lister import Lister
from .runner import UserRunners
from .utils import make_proto

log = logging.getLogger("clarifai_connect.client")


class User(Lister, UserRunners):
    """Access to the Clarifai API endpoints of one user: create, get, list and delete apps."""

    def __init__(self, user_id: str = "", base_url: str | None = None, pat: str = "",
                 token: str = "", root_certificates_path: str = "",
                 auth: ClientAuth | None = None, **kwargs: Any) -> None:
        """Initializes a User object.

        Args:
            user_id: The user to act for (default: env ``CLARIFAI_USER_ID``).
            base_url: The API: ``https://…``, ``http://host:port`` or ``local[:PATH]``
                (default: env ``CLARIFAI_API_BASE``, else https://api.clarifai.com).
            pat: A personal access token (default: env ``CLARIFAI_PAT``).
            token: A session token (default: env ``CLARIFAI_SESSION_TOKEN``).
            root_certificates_path: PEM roots for TLS channels
                (default: env ``CLARIFAI_ROOT_CERTIFICATES_PATH``).
            auth: An already resolved connection (used by parent objects); overrides the above.
            **kwargs: Further fields of the ``User`` proto.
        """
        Lister.__init__(self)
        self._init_client(resolve_auth(auth, user_id=user_id, app_id="", base_url=base_url,
                                       pat=pat, token=token,
                                       root_certificates_path=root_certificates_path
                                       ).with_ids(app_id=""))
        if not self.user_id:
            raise UserError("User needs a user_id: pass user_id= or set CLARIFAI_USER_ID.")
        self._info = make_proto(resources_pb2.User, "User()", **{**kwargs, "id": self.user_id})

    def _app_ids(self, app_id: str) -> resources_pb2.UserAppIDSet:
        if not app_id:
            raise UserError("app_id is required.")
        return resources_pb2.UserAppIDSet(user_id=self.user_id, app_id=app_id)

    def app(self, app_id: str, **kwargs: Any) -> App:
        """Returns an App object for the existing app ``app_id`` (ApiError when it does not
        exist)."""
        response = self._call("GetApp", service_pb2.GetAppRequest(
            user_app_id=self._app_ids(app_id)))
        app = App(app_id=app_id, auth=self.auth.with_ids(self.user_id, app_id), **kwargs)
        app._info.MergeFrom(response.app)
        return app

    def create_app(self, app_id: str, base_workflow: str = "Language-Understanding",
                   **kwargs: Any) -> App:
        """Creates an app for the user and returns it.

        Args:
            app_id: The app ID for the app to create.
            base_workflow: The base workflow of the app ('Universal', 'Empty', 'General' …).
            **kwargs: Further fields of the App (description, metadata …).
        """
        self._app_ids(app_id)
        workflow = resources_pb2.Workflow(id=base_workflow, app_id="main", user_id="clarifai")
        app_proto = make_proto(resources_pb2.App, "create_app()",
                               **{**kwargs, "id": app_id, "default_workflow": workflow})
        response = self._call("PostApps", service_pb2.PostAppsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=self.user_id), apps=[app_proto]))
        log.info("app '%s' created", app_id)
        app = App(app_id=app_id, auth=self.auth.with_ids(self.user_id, app_id))
        if response.apps:
            app._info.MergeFrom(response.apps[0])
        return app

    def delete_app(self, app_id: str) -> None:
        """Deletes the app ``app_id`` of the user, with everything in it."""
        self._call("DeleteApp", service_pb2.DeleteAppRequest(user_app_id=self._app_ids(app_id)))
        log.info("app '%s' deleted", app_id)

    def list_apps(self, filter_by: dict[str, Any] | None = None, page_no: int | None = None,
                  per_page: int | None = None) -> Iterator[App]:
        """Yields the apps of the user, lazily, page after page.

        Args:
            filter_by: Fields of ``ListAppsRequest`` to filter with (e.g. ``{"name": "x"}``).
            page_no: Only this page (per_page defaults to 16).
            per_page: Items per page; with neither argument every page is listed.
        """
        filter_by = dict(filter_by or {})
        make_proto(service_pb2.ListAppsRequest, "list_apps(filter_by=…)", **filter_by)
        request_data = {**filter_by,
                        "user_app_id": resources_pb2.UserAppIDSet(user_id=self.user_id)}
        pages = self.list_pages_generator("ListApps", service_pb2.ListAppsRequest,
                                          request_data, page_no, per_page)
        return (self._wrap_app(app_proto) for app_proto in pages)

    def _wrap_app(self, app_proto: resources_pb2.App) -> App:
        app = App(app_id=app_proto.id, auth=self.auth.with_ids(self.user_id, app_proto.id))
        app._info.CopyFrom(app_proto)
        return app
