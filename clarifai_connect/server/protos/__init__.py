"""Protos of the project's own: the Module messages and RPCs clarifai-grpc dropped at 12.1.2,
wire-compatible with 12.1.1 (``modules.proto``) and served on the real V2 path."""

from __future__ import annotations

from typing import Any

from google.protobuf import message_factory

from . import modules_pb2

#: Where the module RPCs are served: the real service, not the name modules.proto gives.
SERVICE_PATH = "clarifai.api.V2"
MODULE_SERVICE = modules_pb2.DESCRIPTOR.services_by_name["V2Modules"]


def method_classes(name: str) -> tuple[type, type] | None:
    """(request class, response class) of module RPC ``name``, or None when it is not one."""
    method = MODULE_SERVICE.methods_by_name.get(name)
    if method is None:
        return None
    return (message_factory.GetMessageClass(method.input_type),
            message_factory.GetMessageClass(method.output_type))


class ModulesStub:
    """A raw stub for the module RPCs on a gRPC channel: ``stub.PostModules(request, ...)``."""

    def __init__(self, channel: Any) -> None:
        for name in MODULE_SERVICE.methods_by_name:
            request_cls, response_cls = method_classes(name)
            setattr(self, name, channel.unary_unary(
                f"/{SERVICE_PATH}/{name}", request_serializer=request_cls.SerializeToString,
                response_deserializer=response_cls.FromString))


__all__ = ["MODULE_SERVICE", "SERVICE_PATH", "ModulesStub", "method_classes", "modules_pb2"]
