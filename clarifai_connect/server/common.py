"""Helpers every resource module uses: app lookup, ids, paging, timestamps, per-item errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import timestamp_pb2

from ..records import MAX_ID_LENGTH, id_problem  # noqa: F401 (one id rule, shared with records)
from .rpc import RpcFailure, status

DEFAULT_PER_PAGE = 128
MAX_PER_PAGE = 1000


def require_id(value: str, what: str = "id") -> None:
    """Fail the call with CONN_INVALID_REQUEST when ``value`` is not a valid id."""
    problem = id_problem(value, what)
    if problem:
        raise invalid(problem)


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp for ``seconds`` since the epoch."""
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def user_app(request: Any) -> tuple[str, str]:
    """(user_id, app_id) of a request; both must be present."""
    ids = request.user_app_id
    if not ids.user_id:
        raise invalid("user_app_id.user_id is required")
    if not ids.app_id:
        raise invalid("user_app_id.app_id is required")
    return ids.user_id, ids.app_id


def app_pk(db: sqlite3.Connection, request: Any) -> int:
    """The primary key of the app a request names; fails the call when there is none."""
    user_id, app_id = user_app(request)
    row = db.execute("SELECT pk FROM apps WHERE user_id=? AND id=?", (user_id, app_id)).fetchone()
    if row is None:
        raise RpcFailure(status_code_pb2.CONN_DOES_NOT_EXIST, "Resource does not exist",
                         f"app '{app_id}' of user '{user_id}' does not exist")
    return row[0]


def page_window(request: Any) -> tuple[int, int]:
    """(limit, offset) from a request's ``page`` (1-based) and ``per_page``."""
    per_page = getattr(request, "per_page", 0) or DEFAULT_PER_PAGE
    if per_page < 0 or per_page > MAX_PER_PAGE:
        raise invalid(f"per_page must be between 1 and {MAX_PER_PAGE}")
    page = getattr(request, "page", 0) or 1
    if page < 0:
        raise invalid("page must be 1 or more")
    return per_page, (page - 1) * per_page


def item_status(code: int, description: str = "", details: str = "") -> Any:
    """A per-item Status (the status carried by each input or annotation in a response)."""
    return status(code, description, details)


def invalid(details: str) -> RpcFailure:
    """The failure for a malformed request; ``details`` names the problem."""
    return RpcFailure(status_code_pb2.CONN_INVALID_REQUEST, "Invalid request", details)


def not_found(what: str, ident: str) -> RpcFailure:
    """The failure for a missing resource, naming it."""
    return RpcFailure(status_code_pb2.CONN_DOES_NOT_EXIST, "Resource does not exist",
                      f"{what} '{ident}' does not exist")


def visibility_private() -> resources_pb2.Visibility:
    """The default visibility of created resources."""
    return resources_pb2.Visibility(gettable=resources_pb2.Visibility.PRIVATE)


def fresh_copy(db: sqlite3.Connection, table: str, scope: dict[str, Any], given: Any,
               what: str, server_fields: Iterable[str] = ()) -> Any:
    """A copy of ``given`` to create in ``table`` within ``scope`` (column → value, e.g.
    ``{"app_pk": pk}``): its id checked (valid and not taken there), the fields the server
    owns cleared. Fails the call otherwise."""
    require_id(given.id, f"{what} id")
    where = " AND ".join(f"{column}=?" for column in scope)
    if db.execute(f"SELECT 1 FROM {table} WHERE {where} AND id=?",
                  (*scope.values(), given.id)).fetchone():
        raise invalid(f"{what} '{given.id}' already exists")
    stored = type(given)()
    stored.CopyFrom(given)
    for name in server_fields:
        stored.ClearField(name)
    return stored


def with_stored_data(db: sqlite3.Connection, pk: int,
                     inputs: Iterable[resources_pb2.Input]) -> list[resources_pb2.Input]:
    """Copies of ``inputs``, those given by id alone filled with the data stored under that
    id in app ``pk`` (for code that needs the media itself: runners, workflow nodes)."""
    out = []
    for inp in inputs:
        given = resources_pb2.Input()
        given.CopyFrom(inp)
        if inp.id and not inp.data.ByteSize():
            row = db.execute("SELECT proto FROM inputs WHERE app_pk=? AND id=?",
                             (pk, inp.id)).fetchone()
            if row is not None:
                given.data.CopyFrom(resources_pb2.Input.FromString(row[0]).data)
        out.append(given)
    return out


def stamp_created(message: Any, user_id: str, app_id: str, stamp: float) -> None:
    """Set what the server owns on a resource it creates: owner ids, created/modified time
    (``stamp``), and private visibility unless the request chose one."""
    message.user_id, message.app_id = user_id, app_id
    message.created_at.CopyFrom(timestamp(stamp))
    message.modified_at.CopyFrom(timestamp(stamp))
    if not message.HasField("visibility"):
        message.visibility.CopyFrom(visibility_private())


PATCH_ACTIONS = ("merge", "overwrite", "remove")
_PROTECTED = frozenset({"id", "user_id", "app_id", "created_at"})


def patch_action(action: str) -> str:
    """The patch action of a request (default merge); fails the call on an unknown one."""
    action = action or "merge"
    if action not in PATCH_ACTIONS:
        raise invalid(f"unknown action '{action}': use merge, overwrite or remove")
    return action


def patch_message(stored: Any, patch: Any, action: str, top: bool = True,
                  frozen: Iterable[str] = ()) -> None:
    """Apply ``patch`` to ``stored`` in place, the way the API's Patch* calls do.

    merge: set fields replace scalars, Structs merge key by key, repeated items with an id
    replace the stored item of the same id or are appended; overwrite: each set field
    replaces the stored one whole; remove: Struct keys and repeated items (by id) named in
    the patch are deleted. ``id``, ``user_id``, ``app_id`` and ``created_at`` never change,
    nor do the top-level fields named in ``frozen`` (those the server owns).
    """
    skip = _PROTECTED.union(frozen) if top else frozenset()
    for field, value in patch.ListFields():
        name = field.name
        if name in skip:
            continue
        is_struct = field.message_type is not None and field.message_type.full_name == "google.protobuf.Struct"
        target = getattr(stored, name)
        if action == "remove":
            if is_struct:
                _remove_keys(target, value)
            elif field.is_repeated and field.message_type is not None:
                drop = {getattr(v, "id", None) for v in value}
                keep = [v for v in target if getattr(v, "id", None) not in drop]
                del target[:]
                target.extend(keep)
            elif field.message_type is not None:
                patch_message(target, value, action, top=False)
            continue
        if field.is_repeated:
            if action == "overwrite" or field.message_type is None or not _has_id(field):
                del target[:]
                target.extend(value)
            else:
                by_id = {item.id: i for i, item in enumerate(target)}
                for item in value:
                    if item.id in by_id:
                        target[by_id[item.id]].CopyFrom(item)
                    else:
                        target.add().CopyFrom(item)
        elif field.message_type is None:
            setattr(stored, name, value)
        elif is_struct:
            if action == "overwrite":
                target.Clear()
            _merge_struct(target, value)
        elif action == "overwrite" or field.message_type.full_name.startswith("google.protobuf."):
            target.CopyFrom(value)
        else:
            patch_message(target, value, action, top=False)


def _has_id(field) -> bool:
    return "id" in field.message_type.fields_by_name


def _merge_struct(target: Any, patch: Any) -> None:
    for key, value in patch.fields.items():
        if value.HasField("struct_value") and key in target.fields and \
                target.fields[key].HasField("struct_value"):
            _merge_struct(target.fields[key].struct_value, value.struct_value)
        else:
            target.fields[key].CopyFrom(value)


def _remove_keys(target: Any, patch: Any) -> None:
    for key, value in patch.fields.items():
        if key not in target.fields:
            continue
        if value.HasField("struct_value") and value.struct_value.fields and \
                target.fields[key].HasField("struct_value"):
            _remove_keys(target.fields[key].struct_value, value.struct_value)
        else:
            del target.fields[key]
