"""The public API is typed and documented: py.typed ships, and every name of
``clarifai_connect.__all__`` (and of the testing kit) has a docstring and type hints."""

from __future__ import annotations

import inspect
from importlib import resources

import pytest

import clarifai_connect
from clarifai_connect import conformance


def test_py_typed_ships_with_the_package():
    assert resources.files("clarifai_connect").joinpath("py.typed").is_file()


def _public() -> list[tuple[str, object]]:
    names = [(n, getattr(clarifai_connect, n)) for n in clarifai_connect.__all__
             if n != "__version__"]
    return names + [(f"testing.{n}", getattr(conformance, n)) for n in conformance.__all__]


def _unannotated(function) -> list[str]:
    signature = inspect.signature(function)
    missing = [p.name for p in signature.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty and function.__name__ != "__init__":
        missing.append("return")
    return missing


def _methods(cls) -> list[tuple[str, object]]:
    out = []
    for attr, member in vars(cls).items():
        if attr.startswith("_") and attr not in ("__init__", "__iter__"):
            continue
        if isinstance(member, (classmethod, staticmethod)):
            member = member.__func__
        elif isinstance(member, property):
            member = member.fget
        if inspect.isfunction(member):
            out.append((attr, member))
    return out


@pytest.mark.parametrize("name, value", _public(), ids=[n for n, _ in _public()])
def test_every_public_name_is_documented_and_typed(name, value):
    if not (inspect.isclass(value) or inspect.isfunction(value)):
        return  # the hookimpl marker
    assert inspect.getdoc(value), f"{name} has no docstring"
    if inspect.isfunction(value):
        assert not _unannotated(value), f"{name}: no type hints for {_unannotated(value)}"
        return
    for attr, method in _methods(value):
        if attr != "__init__" and attr != "__iter__":
            assert inspect.getdoc(method), f"{name}.{attr} has no docstring"
        assert not _unannotated(method), f"{name}.{attr}: no type hints for " \
                                         f"{_unannotated(method)}"
