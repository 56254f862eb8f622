"""Training params of a model type, from ListModelTypes to a params dict (the YAML of
``Model.get_params``) and from that dict to the ModelVersion that ``Model.train`` posts.

The dict has the SDK's shape: ``dataset_id``, ``dataset_version_id``, ``concepts``,
``train_params`` (the template and its fields, then the type's own ``train_info.params``
fields), ``inference_params`` (``output_info.params`` fields) and
``concepts_mutually_exclusive``. Fields marked ``internal_only`` are left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf import json_format, struct_pb2

from ..errors import ApiClientError, UserError

_DATASET_KEYS = ("dataset_id", "dataset_version_id")


def _last(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _default(field: resources_pb2.ModelTypeField) -> Any:
    if not field.HasField("default_value"):
        return None
    value = json_format.MessageToDict(field.default_value)
    if isinstance(value, float) and value.is_integer() and \
            field.field_type == resources_pb2.ModelTypeField.NUMBER:
        return int(value)
    return value


def _template_field(kind: resources_pb2.ModelType) -> resources_pb2.ModelTypeField | None:
    return next((f for f in kind.model_type_fields if _last(f.path) == "template"), None)


def templates(kind: resources_pb2.ModelType) -> list[str]:
    """The template ids a model type offers (empty when it has none)."""
    field = _template_field(kind)
    return [option.id for option in field.model_type_enum_options] if field else []


def params_of(kind: resources_pb2.ModelType, template: str | None) -> dict[str, Any]:
    """The params dict of ``kind`` with ``template`` (see the module docstring)."""
    field = _template_field(kind)
    if field is not None and not template:
        raise UserError(f"model type {kind.id} needs a template: one of "
                        f"{', '.join(templates(kind))}.")
    if field is None and template:
        raise UserError(f"model type {kind.id} has no templates: call get_params() without "
                        "one.")
    params: dict[str, Any] = {"dataset_id": "", "dataset_version_id": "", "concepts": [],
                              "train_params": {}}
    train = params["train_params"]
    if field is not None:
        option = next((o for o in field.model_type_enum_options if o.id == template), None)
        if option is None:
            raise UserError(f"unknown template '{template}' for model type {kind.id}: use one "
                            f"of {', '.join(templates(kind))}.")
        train["template"] = option.id
        for sub in option.model_type_fields:
            if not sub.internal_only:
                train[_last(sub.path)] = _default(sub)
    for item in kind.model_type_fields:
        path, name = item.path.split("."), _last(item.path)
        if item.internal_only or name == "template" or name in _DATASET_KEYS or \
                (len(path) > 1 and path[1] in ("data", "dataset")):
            continue
        if path[0] == "train_info":
            train[name] = _default(item)
        elif path[:2] == ["output_info", "output_config"]:
            params[name] = _default(item)
        elif path[0] == "output_info":
            params.setdefault("inference_params", {})[name] = _default(item)
    return params


def param_info(kind: resources_pb2.ModelType, param: str,
               template: str | None) -> dict[str, Any] | None:
    """What ListModelTypes says of one param (its field as a dict, ``param`` for the path)."""
    fields = list(kind.model_type_fields)
    field = _template_field(kind)
    if field is not None and template:
        fields += [f for o in field.model_type_enum_options if o.id == template
                   for f in o.model_type_fields]
    for item in fields:
        if _last(item.path) == param:
            info = json_format.MessageToDict(item)
            info.pop("placeholder", None)
            info.pop("modelTypeEnumOptions", None) if param == "template" else None
            info["param"] = _last(info.pop("path"))
            return info
    return None


def replace_key(tree: dict[str, Any], key: str, value: Any) -> bool:
    """Set ``key`` wherever it occurs in the nested dict ``tree``; whether it occurred."""
    found = False
    for name, item in tree.items():
        if name == key:
            tree[name] = value
            found = True
        elif isinstance(item, dict):
            found = replace_key(item, key, value) or found
    return found


def keys_of(tree: dict[str, Any]) -> set[str]:
    """Every key of ``tree`` and of the dicts directly inside it."""
    return set(tree) | {k for item in tree.values() if isinstance(item, dict) for k in item}


def version_for_training(params: dict[str, Any],
                         known_concepts: set[str] | None) -> resources_pb2.ModelVersion:
    """The ModelVersion that trains with the params dict ``params``."""
    train = dict(params.get("train_params") or {})
    for key in _DATASET_KEYS:
        if params.get(key):
            train[key] = params[key]
    struct = struct_pb2.Struct()
    struct.update(train)
    version = resources_pb2.ModelVersion(train_info=resources_pb2.TrainInfo(params=struct))
    concepts = list(params.get("concepts") or [])
    if known_concepts is not None:
        unknown = sorted(set(concepts) - known_concepts)
        if unknown:
            raise UserError(f"concepts {', '.join(unknown)} are not concepts of the app.")
    version.output_info.data.concepts.extend(resources_pb2.Concept(id=c) for c in concepts)
    if params.get("inference_params"):
        version.output_info.params.update(params["inference_params"])
    if "concepts_mutually_exclusive" in params:
        version.output_info.output_config.concepts_mutually_exclusive = \
            bool(params["concepts_mutually_exclusive"])
    return version


def backoff(initial: float = 0.05, cap: float = 2.0) -> Iterator[float]:
    """Polling delays: ``initial`` doubling up to ``cap`` seconds."""
    delay = initial
    while True:
        yield delay
        delay = min(cap, delay * 2)


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float,
         what: str) -> Any:
    """Call ``fetch`` until ``done(result)``, with capped backoff, for at most ``timeout``
    seconds; returns the last result or raises ApiClientError naming ``what``."""
    deadline = time.monotonic() + timeout
    delays = backoff()
    while True:
        result = fetch()
        if done(result):
            return result
        delay = next(delays)
        if time.monotonic() + delay > deadline:
            raise ApiClientError(f"{what}: still not done after {timeout:g}s")
        time.sleep(delay)
