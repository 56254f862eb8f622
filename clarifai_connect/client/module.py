"""Module: one module of an app and its versions (on the project's own Module protos)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.json_format import ParseDict

from ..errors import UserError
from ..server.protos import modules_pb2
from .auth import ClientAuth
from .base import resolve_auth
from .lister import Lister
from .utils import make_proto, resource_ids


class Module(Lister):
    """Access to one module of an app, and optionally one of its versions."""

    def __init__(self, url: str = "", module_id: str = "",
                 module_version: dict[str, Any] | None = None, base_url: str | None = None,
                 pat: str = "", token: str = "", root_certificates_path: str = "",
                 auth: ClientAuth | None = None, **kwargs: Any) -> None:
        """Initializes a Module object.

        Args:
            url: A UI URL ``https://clarifai.com/USER/APP/modules/ID[/versions/VID]``;
                excludes ``module_id``.
            module_id: The module within the app.
            module_version: The version to work with, as a dict (``{'id': ...}``).
            base_url: The API: ``https://…``, ``http://host:port`` or ``local[:PATH]``.
            pat: A personal access token (default: env ``CLARIFAI_PAT``).
            token: A session token (default: env ``CLARIFAI_SESSION_TOKEN``).
            root_certificates_path: PEM roots for TLS channels.
            auth: An already resolved connection (used by parent objects).
            **kwargs: ``user_id``, ``app_id`` and further fields of the Module proto.
        """
        version = dict(module_version or {"id": ""})
        user_id, app_id, module_id, version["id"] = resource_ids(
            url, module_id, "modules", kwargs.pop("user_id", ""), kwargs.pop("app_id", ""),
            version.get("id", ""))
        Lister.__init__(self)
        self._init_client(resolve_auth(auth, user_id=user_id, app_id=app_id, base_url=base_url,
                                       pat=pat, token=token,
                                       root_certificates_path=root_certificates_path))
        if not (self.user_id and self.app_id and module_id):
            raise UserError("Module needs a user_id, an app_id and a module_id: pass url=, or "
                            "user_id=, app_id= and module_id=.")
        self._info = make_proto(modules_pb2.Module, "Module()",
                                **{**kwargs, "id": module_id, "user_id": self.user_id,
                                   "app_id": self.app_id})
        try:
            ParseDict(version, self._info.module_version)
        except Exception as err:  # json_format raises ParseError (a plain Exception)
            raise UserError(f"Module() got an invalid module_version: {err}") from None

    def list_versions(self, page_no: int | None = None,
                      per_page: int | None = None) -> Iterator[Module]:
        """Yields a Module object per version of the module (newest first), lazily."""
        pages = self.list_pages_generator(
            "ListModuleVersions", modules_pb2.ListModuleVersionsRequest,
            {"user_app_id": self.user_app_id, "module_id": self.id}, page_no, per_page)
        return (self.at_version(version) for version in pages)

    def at_version(self, version: modules_pb2.ModuleVersion) -> Module:
        """This module at ``version`` (a ModuleVersion proto)."""
        module = Module(module_id=self.id, auth=self.auth)
        module._info.CopyFrom(self._info)
        module._info.module_version.CopyFrom(version)
        return module

    def __str__(self) -> str:
        return f"Module(user_id={self.user_id!r}, app_id={self.app_id!r}, " \
               f"module_id={self.id!r}, version={self.module_version.id!r})"


class AppModules:
    """The module methods of :class:`~clarifai_connect.client.app.App` (mixed into it)."""

    def create_module(self, module_id: str, description: str = "", **kwargs: Any) -> Module:
        """Creates a module in the app and returns it.

        Args:
            module_id: The module ID for the module to create.
            description: The description of the module to create.
            **kwargs: Further fields of the Module (visibility, metadata …).
        """
        if not module_id:
            raise UserError("create_module needs a module_id.")
        proto = make_proto(modules_pb2.Module, "create_module()",
                           **{**kwargs, "id": module_id, "description": description})
        response = self._call("PostModules", modules_pb2.PostModulesRequest(
            user_app_id=self.user_app_id, modules=[proto]))
        module = Module(module_id=module_id, **self._child())
        module._info.MergeFrom(response.modules[0])
        return module

    def module(self, module_id: str, module_version_id: str = "", **kwargs: Any) -> Module:
        """Returns a Module object for the existing module ``module_id`` (ApiError when it
        does not exist), at version ``module_version_id`` when given (else its newest)."""
        if not module_id:
            raise UserError("module() needs a module_id.")
        response = self._call("GetModule", modules_pb2.GetModuleRequest(
            user_app_id=self.user_app_id, module_id=module_id))
        module = Module(module_id=module_id, **self._child(), **kwargs)
        module._info.MergeFrom(response.module)
        if module_version_id:
            version = self._call("GetModuleVersion", modules_pb2.GetModuleVersionRequest(
                user_app_id=self.user_app_id, module_id=module_id,
                module_version_id=module_version_id)).module_version
            module._info.module_version.CopyFrom(version)
        return module

    def list_modules(self, filter_by: dict[str, Any] | None = None, only_in_app: bool = True,
                     page_no: int | None = None,
                     per_page: int | None = None) -> Iterator[Module]:
        """Yields the modules the app can use, lazily: with ``only_in_app`` only the app's own
        (else public modules of other apps too).

        Args:
            filter_by: Fields of ``ListModulesRequest`` to filter with (e.g. ``{"name": "x"}``).
            only_in_app: Only the modules that are in the app.
            page_no: Only this page (per_page defaults to 16).
            per_page: Items per page; with neither argument every page is listed.
        """
        filter_by = dict(filter_by or {})
        make_proto(modules_pb2.ListModulesRequest, "list_modules(filter_by=…)", **filter_by)
        pages = self.list_pages_generator(
            "ListModules", modules_pb2.ListModulesRequest,
            {**filter_by, "user_app_id": self.user_app_id}, page_no, per_page)
        for proto in pages:
            if only_in_app and (proto.app_id != self.app_id or proto.user_id != self.user_id):
                continue
            module = Module(module_id=proto.id,
                            auth=self.auth.with_ids(proto.user_id, proto.app_id))
            module._info.CopyFrom(proto)
            yield module

    def list_installed_module_versions(self, filter_by: dict[str, Any] | None = None,
                                       page_no: int | None = None,
                                       per_page: int | None = None) -> Iterator[Module]:
        """Yields a Module object (at the installed version) per module version installed in
        the app, lazily."""
        filter_by = dict(filter_by or {})
        make_proto(modules_pb2.ListInstalledModuleVersionsRequest,
                   "list_installed_module_versions(filter_by=…)", **filter_by)
        pages = self.list_pages_generator(
            "ListInstalledModuleVersions", modules_pb2.ListInstalledModuleVersionsRequest,
            {**filter_by, "user_app_id": self.user_app_id}, page_no, per_page)
        for installed in pages:
            version = installed.module_version
            module = Module(module_id=version.module_id,
                            auth=self.auth.with_ids(version.user_id or self.user_id,
                                                    version.app_id or self.app_id))
            module._info.module_version.CopyFrom(version)
            yield module

    def delete_module(self, module_id: str) -> None:
        """Deletes the module ``module_id`` with its versions."""
        if not module_id:
            raise UserError("delete_module needs a module_id.")
        self._call("DeleteModules", modules_pb2.DeleteModulesRequest(
            user_app_id=self.user_app_id, ids=[module_id]))
