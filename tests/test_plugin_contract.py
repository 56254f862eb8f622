"""The plugin contract is versioned and documented: every hook and every public name of the
contract modules has a docstring and a section in docs/plugins.md (datasette's rule), the
page states the current version, and a plugin needing another version is not loaded."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import pytest

from clarifai_connect import conformance, connector, embedder, hookspecs, records
from clarifai_connect.plugins import PluginRegistry

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
# What a plugin may use: these modules' public names, the hooks, and the marker.
CONTRACT_MODULES = (records, connector, embedder)
KIT = ("check_reader", "check_writer", "ConformanceError")


def _headings() -> set[str]:
    return set(re.findall(r"^### (\S+)\s*$", DOC.read_text(encoding="utf-8"), re.MULTILINE))


def _hooks() -> list[str]:
    return sorted(name for name, value in vars(hookspecs).items()
                  if callable(value) and hasattr(value, f"{hookspecs.PROJECT}_spec"))


def _contract_names() -> list[tuple[str, object]]:
    out = []
    for module in CONTRACT_MODULES:
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isfunction(value) or name == "ReadItem":
                out.append((name, value))
    return out


def test_the_hooks_are_known():
    assert _hooks() == ["detect_format", "register_connectors", "register_embedders",
                        "register_exporters"]


@pytest.mark.parametrize("hook", _hooks())
def test_every_hook_is_documented(hook):
    assert inspect.getdoc(getattr(hookspecs, hook)), f"hook {hook} has no docstring"
    assert hook in _headings(), f"add a '### {hook}' section to docs/plugins.md"


@pytest.mark.parametrize("name, value", _contract_names(), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_every_public_name_of_the_contract_is_documented(name, value):
    assert name in _headings(), f"add a '### {name}' section to docs/plugins.md"
    if isinstance(value, types.UnionType):
        return
    assert inspect.getdoc(value), f"{name} has no docstring"
    if inspect.isclass(value):
        for attr, member in vars(value).items():
            if attr.startswith("_") or not (inspect.isfunction(member)
                                            or isinstance(member, (classmethod, property))):
                continue
            function = member.__func__ if isinstance(member, classmethod) else (
                member.fget if isinstance(member, property) else member)
            assert inspect.getdoc(function), f"{name}.{attr} has no docstring"


@pytest.mark.parametrize("name", [*KIT, "hookimpl"])
def test_the_kit_and_the_marker_are_documented(name):
    assert name in _headings()
    if name != "hookimpl":
        assert inspect.getdoc(getattr(conformance, name))


def test_the_page_states_the_current_version():
    text = DOC.read_text(encoding="utf-8")
    assert f"Contract version: **{hookspecs.CONTRACT_VERSION}**" in text
    assert f"- **{hookspecs.CONTRACT_VERSION}** —" in text  # and its history entry


def _plugin(needs: str | None) -> types.ModuleType:
    from clarifai_connect import Media, Reader, Record, hookimpl

    module = types.ModuleType(f"needs_{needs}")

    class Tiny(Reader):
        name = f"tiny-{needs}"

        def __iter__(self):
            yield Record(id="a", media=Media(kind="text", text="hi"))

    @hookimpl
    def register_connectors(register):
        register(Tiny)

    module.register_connectors = register_connectors
    if needs is not None:
        module.CLARIFAI_CONNECT_CONTRACT = needs
    return module


def test_a_plugin_needing_another_contract_is_not_loaded():
    registry = PluginRegistry(entry_points=False)
    major = int(hookspecs.CONTRACT_VERSION.split(".")[0])
    for needs in (None, str(major), hookspecs.CONTRACT_VERSION, f"{major + 1}.0",
                  f"{major}.99", "soon"):
        registry.add_plugin(_plugin(needs), name=f"p-{needs}")
    registry.load()
    assert sorted(registry.connectors) == sorted(
        f"tiny-{n}" for n in (None, str(major), hookspecs.CONTRACT_VERSION))
    assert any(f"needs plugin contract {major + 1}.0, this clarifai-connect provides "
               f"{hookspecs.CONTRACT_VERSION}" in e for e in registry.errors)
    assert any(f"needs plugin contract {major}.99" in e for e in registry.errors)
    assert any("'soon', which is not MAJOR.MINOR" in e for e in registry.errors)
