"""The plugin contract: hook docs, entry-point discovery, allow/deny lists, detection, the CLI,
and a throwaway third-party plugin package really pip-installed (into a ``--target`` folder
put on ``sys.path``, never into the running venv)."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from clarifai_connect import hookspecs
from clarifai_connect.cli import cli
from clarifai_connect.connector import Reader, Writer
from clarifai_connect.errors import ConfigError, SourceError
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.plugins import (
    ENV_ALLOW,
    ENV_DENY,
    PluginRegistry,
    parse_option_pairs,
    reset_registry,
)
from clarifai_connect.records import Media, Problem, Record

BUILTINS = {"csv", "folder", "parquet"}
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sample"


def test_every_hook_is_documented():
    specs = [f for _, f in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(f, "clarifai_connect_spec")]
    assert {f.__name__ for f in specs} >= {"register_connectors", "register_exporters",
                                          "detect_format"}
    for spec in specs:
        assert spec.__doc__ and len(spec.__doc__.strip()) > 40, spec.__name__


def test_builtins_register_through_entry_points():
    points = {ep.name: ep for ep in metadata.entry_points(group="clarifai_connect")}
    assert BUILTINS <= set(points)
    assert points["csv"].value == "connectors.csv"
    registry = PluginRegistry().load()
    for name in BUILTINS:
        reg = registry.connectors[name]
        assert reg.plugin.distribution.replace("_", "-") == "clarifai-connect"
        assert reg.plugin.builtin and issubclass(reg.cls, Reader)
    assert "columns" in registry.connectors["csv"].options
    assert not [e for e in registry.errors if any(f"plugin '{n}'" in e for n in BUILTINS)]


def test_deny_list_from_argument_and_environment(monkeypatch):
    assert "csv" not in PluginRegistry(deny=["csv"]).load().connectors
    monkeypatch.setenv(ENV_DENY, "parquet, folder")
    registry = PluginRegistry().load()
    assert "csv" in registry.connectors
    assert not {"parquet", "folder"} & set(registry.connectors)
    # Denying the distribution removes every built-in.
    assert not BUILTINS & set(PluginRegistry(deny=["clarifai-connect"]).load().connectors)


def test_detection_picks_the_right_connector(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    registry = PluginRegistry().load()
    (tmp_path / "t.csv").write_text("input\nhello\n")
    (tmp_path / "t.TSV.gz").write_bytes(b"")
    pq.write_table(pa.table({"input": ["x"]}), tmp_path / "t.parquet")
    table_dir = tmp_path / "table" / "year=2024"
    table_dir.mkdir(parents=True)
    pq.write_table(pa.table({"input": ["x"]}), table_dir / "part-0.parquet")
    (tmp_path / "table" / "_SUCCESS").write_text("")
    (tmp_path / "unknown.xyz").write_text("?")
    assert registry.detect_format(str(tmp_path / "t.csv")) == "csv"
    assert registry.detect_format(str(tmp_path / "t.TSV.gz")) == "csv"
    assert registry.detect_format(str(tmp_path / "t.parquet")) == "parquet"
    assert registry.detect_format(str(tmp_path / "table")) == "parquet"
    assert registry.detect_format(str(EXAMPLES / "images")) == "folder"
    with pytest.raises(SourceError, match="cannot tell the format of .*unknown.xyz"):
        registry.detect_format(str(tmp_path / "unknown.xyz"))


def test_bad_names_and_options_fail_fast_with_one_sentence():
    registry = PluginRegistry().load()
    with pytest.raises(ConfigError, match=r"unknown format 'xml' \(known connectors: .*csv"):
        registry.open_reader("x.xml", "xml")
    with pytest.raises(ConfigError, match=r"has no option colums \(its options: columns"):
        registry.open_reader("x.csv", "csv", colums={"input": "a"})
    with pytest.raises(ConfigError, match="unknown export format"):
        registry.open_writer("out", "nope")


class _LinesReader(Reader):
    """One text record per line."""

    name = "lines"

    def __init__(self, uri, *, storage_options=None, prefix: str = "") -> None:
        super().__init__(uri, storage_options=storage_options)
        self.prefix = prefix

    def __iter__(self):
        with open(self.uri, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                yield Record(id=f"{self.prefix}{number}", media=Media("text", text=line.strip()),
                             source=f"{self.uri}:{number}")


class _NullWriter(Writer):
    name = "null"

    def write(self, record):
        self.last = record


def _plugin(**hooks) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})


def test_runtime_plugins_errors_are_isolated(tmp_path):
    registry = PluginRegistry(entry_points=False)
    registry.add_plugin(_plugin(register_connectors=lambda register: register(_LinesReader),
                                register_exporters=lambda register: register(_NullWriter)),
                        name="good", distribution="good-dist", version="1.0")
    registry.add_plugin(_plugin(register_connectors=lambda register: register(_LinesReader)),
                        name="clash", distribution="clash-dist")
    registry.add_plugin(_plugin(register_connectors=lambda register: 1 / 0), name="broken")
    registry.add_plugin(_plugin(register_connectors=lambda register: register(dict)), name="odd")
    registry.load()
    assert registry.connectors["lines"].plugin.distribution == "good-dist"
    assert registry.exporters["null"].plugin.version == "1.0"
    errors = "\n".join(registry.errors)
    assert "connector 'lines' from plugin 'clash' (clash-dist) clashes" in errors
    assert "plugin 'broken' from (added at runtime) failed in register_connectors: " \
           "ZeroDivisionError" in errors
    assert "registered <class 'dict'> as a connector, which is not a Reader" in errors
    (tmp_path / "l.txt").write_text("one\ntwo\n")
    reader = registry.open_reader(str(tmp_path / "l.txt"), "lines", prefix="p")
    assert [r.id for r in reader] == ["p1", "p2"]
    with _NullWriter(str(tmp_path / "out")) as writer:
        writer.write(Record(id="w", media=Media("text", text="x")))
    assert writer.last.id == "w"


def test_parse_option_pairs():
    assert parse_option_pairs(["columns.input=image_name", "labels=false", "batch_size=8",
                               "ignore=[\"*.json\"]", "media_root=images"]) == {
        "columns": {"input": "image_name"}, "labels": False, "batch_size": 8,
        "ignore": ["*.json"], "media_root": "images"}
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        parse_option_pairs(["novalue"])
    with pytest.raises(ConfigError, match="conflicts"):
        parse_option_pairs(["a=1", "a.b=2"])


def test_cli_plugins_lists_connectors_with_their_distribution():
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {(p["kind"], p["name"]): p for p in json.loads(result.output)["plugins"]}
    assert rows[("connector", "csv")]["distribution"].replace("_", "-") == "clarifai-connect"
    assert "labels" in rows[("connector", "folder")]["options"]
    table = CliRunner().invoke(cli, ["plugins"])
    assert "connector parquet" in table.output and "clarifai-connect" in table.output


def test_cli_validate_counts_and_prints_each_problem(tmp_path):
    ok = CliRunner().invoke(cli, ["validate", str(EXAMPLES / "labels.csv"), "--check-media"])
    assert ok.exit_code == 0, ok.output
    assert "records:  8 (6 image, 2 text)" in ok.output and "problems: 0" in ok.output
    bad = tmp_path / "bad.csv"
    bad.write_text("inputid,input,concepts\n"
                   "a,hello,x\n"
                   "a,again,x\n"          # duplicate id
                   "b,missing.png,x\n"    # missing file
                   "c,extra,x,y\n")       # too many fields
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"problem: {bad}:3: id 'a' was already used by {bad}:2" in result.output
    assert f"problem: {bad}:4: file not found: {tmp_path / 'missing.png'}" in result.output
    assert f"problem: {bad}:5: has 4 fields where the header has 3" in result.output
    assert "records:  1 (1 text)" in result.output and "problems: 3" in result.output
    mapped = CliRunner().invoke(cli, [
        "validate", str(bad), "--format", "csv", "-o", "columns.input=nope"])
    assert mapped.exit_code == 2 and "has no 'nope' column" in mapped.output


# -- a real third-party package, pip-installed into a throwaway --target folder ------------

# A PEP 517 backend small enough to write inline: the venv has no `wheel` package and the
# test must not reach the network, so setuptools cannot build the throwaway package.
_BACKEND = '''
import base64, hashlib, os, zipfile

NAME, VERSION, MODULE = {name!r}, "0.3.0", {module!r}
DIST = NAME.replace("-", "_")

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = f"{{DIST}}-{{VERSION}}.dist-info"
    files = {{
        f"{{MODULE}}.py": open(f"{{MODULE}}.py", "rb").read(),
        f"{{info}}/METADATA": f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n".encode(),
        f"{{info}}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        f"{{info}}/entry_points.txt": f"[clarifai_connect]\\ndemo = {{MODULE}}\\n".encode(),
    }}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append(f"{{info}}/RECORD,,")
    files[f"{{info}}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = f"{{DIST}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel
'''

_MODULE = '''
"""A third-party connector: one text record per line of a .lines file."""
from clarifai_connect import Media, Problem, Reader, Record, hookimpl, stable_id


class LinesReader(Reader):
    name = "demo-lines"
    description = "Text files with one input per line"

    def __init__(self, uri, *, storage_options=None, label=""):
        super().__init__(uri, storage_options=storage_options)
        self.label = label

    def __iter__(self):
        import fsspec
        with fsspec.open(self.uri, "rt", **self.storage_options) as handle:
            for number, line in enumerate(handle, 1):
                source = f"{self.uri}:{number}"
                if not line.strip():
                    yield Problem(source, "empty line")
                    continue
                yield Record(id=stable_id(f"line-{number}"), media=Media("text", text=line.strip()),
                             concepts=[self.label] if self.label else [], source=source)


@hookimpl
def register_connectors(register):
    register(LinesReader)


@hookimpl
def detect_format(uri, storage_options):
    return "demo-lines" if uri.endswith(".lines") else None
'''


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=240)


@dataclass(frozen=True)
class InstalledPlugin:
    """A plugin distribution pip-installed into the ``target`` folder."""

    name: str
    target: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a fresh process that sees the plugin (``target`` on its
        PYTHONPATH)."""
        paths = [str(self.target), *filter(None, [os.environ.get("PYTHONPATH")])]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **extra}


@pytest.fixture(scope="module")
def third_party_plugin(tmp_path_factory):
    """Write a throwaway plugin distribution and pip-install it into a ``--target`` folder
    on ``sys.path`` (the running venv is never touched); afterwards the folder, the path
    entry and the imported module go. Yields an :class:`InstalledPlugin`."""
    tag = f"{os.getpid()}"
    name, module = f"cc-demo-plugin-{tag}", f"cc_demo_plugin_{tag}"
    root = tmp_path_factory.mktemp("plugin-src")
    target = tmp_path_factory.mktemp("plugin-site")
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = []
        build-backend = "demo_backend"
        backend-path = ["."]

        [project]
        name = "{name}"
        version = "0.3.0"
        """))
    (root / "demo_backend.py").write_text(_BACKEND.format(name=name, module=module))
    (root / f"{module}.py").write_text(_MODULE)
    installed = _pip("install", "--no-deps", "--no-build-isolation", "--no-index",
                     "--target", str(target), str(root))
    assert installed.returncode == 0, installed.stderr[-2000:]
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    reset_registry()
    try:
        yield InstalledPlugin(name, target)
    finally:
        sys.path.remove(str(target))
        sys.modules.pop(module, None)
        shutil.rmtree(target)
        importlib.invalidate_caches()
        reset_registry()
        assert name not in {d.metadata["Name"] for d in metadata.distributions()}


def test_a_third_party_package_is_discovered_and_reads(third_party_plugin, tmp_path, monkeypatch):
    plugin, third_party_plugin = third_party_plugin, third_party_plugin.name
    source = tmp_path / "notes.lines"
    source.write_text("first line\n\nthird line\n")
    registry = PluginRegistry().load()
    reg = registry.connectors["demo-lines"]
    assert reg.plugin.distribution == third_party_plugin and reg.plugin.version == "0.3.0"
    assert not reg.plugin.builtin
    assert registry.detect_format(str(source)) == "demo-lines"
    items = list(registry.open_reader(str(source), label="note"))
    assert [type(i).__name__ for i in items] == ["Record", "Problem", "Record"]
    assert items[0].media.text == "first line" and items[0].concepts[0].id == "note"
    assert items[1] == Problem(f"{source}:2", "empty line")

    # The allow list keeps third-party plugins out unless named; built-ins stay.
    monkeypatch.setenv(ENV_ALLOW, "")
    assert "demo-lines" not in PluginRegistry().load().connectors
    assert "csv" in PluginRegistry().load().connectors
    monkeypatch.setenv(ENV_ALLOW, third_party_plugin)
    assert "demo-lines" in PluginRegistry().load().connectors
    monkeypatch.delenv(ENV_ALLOW)

    # A fresh process sees it too (the folder on its PYTHONPATH), through the console
    # script's code path.
    env = plugin.env()
    listing = subprocess.run([sys.executable, "-m", "clarifai_connect.cli", "plugins"],
                             capture_output=True, text=True, timeout=120, env=env)
    assert listing.returncode == 0, listing.stderr
    assert "demo-lines" in listing.stdout and third_party_plugin in listing.stdout
    checked = subprocess.run([sys.executable, "-m", "clarifai_connect.cli", "validate",
                              str(source)], capture_output=True, text=True, timeout=120, env=env)
    assert checked.returncode == 1  # the empty line is a problem
    assert "format: demo-lines" in checked.stdout and "records:  2 (2 text)" in checked.stdout



def test_detection_order_and_isolation_of_a_failing_detector(tmp_path):
    def explode(uri, storage_options):
        raise RuntimeError("detector bug")

    registry = PluginRegistry(deny=["parquet"])
    registry.add_plugin(_plugin(detect_format=explode), name="exploding")
    claimed = tmp_path / "claimed"
    claimed.mkdir()
    registry.add_plugin(_plugin(register_connectors=lambda register: register(_LinesReader),
                                detect_format=lambda uri: "lines" if uri == str(claimed) else None),
                        name="lines-plugin")
    registry.load()
    # The built-in folder detector is trylast: a plugin claiming a directory wins over it.
    assert registry.detect_format(str(claimed)) == "lines"
    assert registry.detect_format(str(tmp_path)) == "folder"
    assert any("plugin 'exploding' failed in detect_format" in e and "detector bug" in e
               for e in registry.errors)


def test_cli_validate_counts_region_concepts(compat_dir):
    result = CliRunner().invoke(cli, [
        "validate", str(compat_dir / "datumaro" / "coco_dataset" / "coco_instances")])
    assert result.exit_code == 0, result.output
    assert "regions:  1 box, 1 mask, 1 polygon (2 distinct concepts)" in result.output


def _documented_parameters(cls: type) -> set[str]:
    """The names the docstrings of a class and its bases list under ``Parameters:`` (one
    ``name: text`` a line, continuation lines indented further)."""
    names = set()
    for klass in cls.__mro__:
        lines = inspect.cleandoc(klass.__dict__.get("__doc__") or "").split("\n")
        if "Parameters:" not in lines:
            continue
        for line in lines[lines.index("Parameters:") + 1:]:
            if not line.strip():
                break
            if not line.startswith("        "):
                names.add(line.strip().split(":", 1)[0])
    return names


def test_every_built_in_documents_the_options_plugins_shows():
    registry = PluginRegistry().load()
    built_in = [reg for table in (registry.connectors, registry.exporters)
                for reg in table.values() if reg.plugin.builtin]
    assert len(built_in) >= 10
    for reg in built_in:
        assert _documented_parameters(reg.cls) == set(reg.options), \
            f"{reg.kind} {reg.name}: its docstring's Parameters: must list {reg.options}"
