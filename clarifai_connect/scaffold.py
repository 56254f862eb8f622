"""``clarifai-connect plugins new NAME``: writes a working plugin package to start from.

The package holds a pyproject with the entry point, a Reader and a Writer of a small
line-based format (``*.NAME`` files: ``kind<TAB>media path<TAB>labels`` per line, media
paths relative to the file), the ``detect_format`` hook, and a test that runs the
conformance kit and a sync into the local server. It installs and passes its own test
as generated; the author then replaces the format with theirs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from string import Template

from .errors import ConfigError
from .hookspecs import CONTRACT_VERSION

__all__ = ["PluginNames", "new_plugin"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


class PluginNames:
    """The names derived from a format name: ``demo-fmt`` → distribution
    ``clarifai-connect-demo-fmt``, package ``clarifai_connect_demo_fmt``, classes
    ``DemoFmtReader`` / ``DemoFmtWriter``."""

    def __init__(self, name: str) -> None:
        if not _NAME.match(name or ""):
            raise ConfigError(f"plugin name '{name}' must be lowercase letters and digits, "
                              "words joined by '-' or '_' (e.g. my-format)")
        self.format = name
        self.distribution = f"clarifai-connect-{name.replace('_', '-')}"
        self.package = f"clarifai_connect_{name.replace('-', '_')}"
        self.title = "".join(part.capitalize() for part in re.split(r"[-_]", name))

    def substitutions(self) -> dict[str, str]:
        """The template variables."""
        return {"format": self.format, "distribution": self.distribution,
                "package": self.package, "title": self.title, "contract": CONTRACT_VERSION}


def new_plugin(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Write the plugin package for format ``name`` into ``directory`` (default: the current
    one) as ``clarifai-connect-NAME/``; returns its path. Refuses to overwrite a non-empty
    folder."""
    names = PluginNames(name)
    root = Path(directory or os.getcwd()) / names.distribution
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} already exists and is not empty")
    values = names.substitutions()
    for relpath, template in _FILES.items():
        path = root / Template(relpath).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values), encoding="utf-8")
    return root


_PYPROJECT = '''\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "A clarifai-connect plugin: the $format format."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["clarifai-connect"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This is what makes it a plugin: clarifai-connect loads every module of this group.
[project.entry-points.clarifai_connect]
$format = "$package.plugin"

[tool.setuptools]
packages = ["$package"]
'''

_README = '''\
# $distribution

A [clarifai-connect](https://pypi.org/project/clarifai-connect/) plugin: the `$format`
connector (reader) and exporter (writer).

A `*.$format` file lists one input per line, `kind<TAB>media path<TAB>labels`, with media
paths relative to the file and labels separated by commas:

```
image	img/cat1.png	cat
text	notes/a.txt	note,draft
```

```bash
pip install -e '.[test]'
clarifai-connect plugins                      # lists $format
clarifai-connect validate data.$format
clarifai-connect sync data.$format --app me/demo --base-url local
python -m pytest                              # the conformance kit and a real sync
```

Replace the format in `$package/plugin.py` with yours; keep the tests passing.
'''

_INIT = '''\
"""The $format plugin for clarifai-connect (see plugin.py)."""
'''

_PLUGIN = '''\
"""The $format format: ``kind<TAB>media path<TAB>labels`` lines, media paths relative to the file.

The reader streams the file line by line, yields a Problem for a bad line and goes on;
the writer writes each input's media under ``media/`` beside the file, and its line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from typing import Any

from clarifai_connect import Concept, Media, Problem, Reader, Record, Writer, hookimpl, stable_id
from clarifai_connect.connector import ReferenceRefused, display_uri, filesystem
from clarifai_connect.errors import SourceError

# The plugin contract this plugin was written against (see clarifai-connect's docs/plugins.md).
CLARIFAI_CONNECT_CONTRACT = "$contract"

SUFFIX = ".$format"
KINDS = ("image", "video", "audio", "text")


class ${title}Reader(Reader):
    """Reads ``*.$format`` files: one input per line.

    Parameters:
        label_separator: What separates the labels of a line (default ``,``).
    """

    name = "$format"
    description = "$format files: kind, media path and labels per line"

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 label_separator: str = ",") -> None:
        super().__init__(uri, storage_options=storage_options)
        self.label_separator = label_separator
        self.folder = posixpath.dirname(uri.rstrip("/")) or "."

    @classmethod
    def detect(cls, uri: str, storage_options: Mapping[str, Any] | None = None) -> bool:
        """A file named ``*.$format``."""
        return uri.lower().endswith(SUFFIX)

    def __iter__(self) -> Iterator[Record | Problem]:
        where = display_uri(self.uri)
        fs, path = filesystem(self.uri, self.storage_options)
        try:
            handle = fs.open(path, "rt", encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot open {where}: {exc}") from None
        with handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield self._item(fs, line.rstrip("\\r\\n"), f"{where}:{number}")

    def _item(self, fs: Any, line: str, source: str) -> Record | Problem:
        parts = line.split("\\t")
        if len(parts) != 3:
            return Problem(source, f"has {len(parts)} tab-separated fields, not 3 "
                                   "(kind, media path, labels)")
        kind, ref, labels = (part.strip() for part in parts)
        if kind not in KINDS:
            return Problem(source, f"kind '{kind}' is not one of {', '.join(KINDS)}")
        try:
            # The contract's check: the reference must stay inside the source's folder.
            uri = self.media_uri(ref, self.folder)
        except ReferenceRefused as exc:
            return Problem(source, str(exc))
        try:
            size = fs.info(uri).get("size")
        except FileNotFoundError:
            return Problem(source, f"file not found: {display_uri(uri)}")
        names = [n for n in labels.split(self.label_separator) if n.strip()]
        return Record(id=stable_id(ref), media=Media(kind=kind, uri=uri,
                                                     storage_options=self.storage_options),
                      concepts=tuple(Concept.named(n) for n in names), source=source,
                      metadata={"size": size})


class ${title}Writer(Writer):
    """Writes a ``*.$format`` file, with each input's media under ``media/`` beside it."""

    name = "$format"
    description = "$format files: kind, media path and labels per line"

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        if not uri.lower().endswith(SUFFIX):
            uri = uri.rstrip("/") + "/index" + SUFFIX
        super().__init__(uri, storage_options=storage_options)
        self._fs, self._path = filesystem(uri, self.storage_options)
        self._folder = posixpath.dirname(self._path)
        self._fs.makedirs(posixpath.join(self._folder, "media"), exist_ok=True)
        self._handle = self._fs.open(self._path, "wt", encoding="utf-8")

    def write(self, record: Record) -> None:
        """Write the record's media file and its line."""
        relpath = f"media/{record.id}"
        with self._fs.open(posixpath.join(self._folder, relpath), "wb") as out:
            out.write(record.media.read_bytes())
        labels = ",".join(c.name for c in record.concepts if c.value > 0)
        self._handle.write(f"{record.media.kind}\\t{relpath}\\t{labels}\\n")

    def close(self) -> None:
        """Close the file."""
        if not self._handle.closed:
            self._handle.close()


@hookimpl
def register_connectors(register: Any) -> None:
    """Register the $format reader."""
    register(${title}Reader)


@hookimpl
def register_exporters(register: Any) -> None:
    """Register the $format writer."""
    register(${title}Writer)


@hookimpl
def detect_format(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    """Claim ``*.$format`` files."""
    return ${title}Reader.name if ${title}Reader.detect(uri, storage_options) else None
'''

_TEST = '''\
"""The $format plugin honours the connector contract and syncs into a real local server."""

from __future__ import annotations

import clarifai_connect
from clarifai_connect.plugins import PluginRegistry
from clarifai_connect.testing import check_reader, check_writer, sample_records

from $package.plugin import ${title}Reader, ${title}Writer


def make_source(tmp_path):
    """Two good lines around one bad line, with the media beside the file."""
    (tmp_path / "media").mkdir()
    for record in sample_records(2):
        (tmp_path / "media" / record.id).write_bytes(record.media.data)
    path = tmp_path / "data.$format"
    path.write_text("image\\tmedia/sample-0\\tcat\\n"
                    "this line is broken\\n"
                    "image\\tmedia/sample-1\\tdog,pet\\n", encoding="utf-8")
    return path


def test_the_reader_conforms(tmp_path):
    result = check_reader(${title}Reader, str(make_source(tmp_path)), expect_problems=1)
    assert [sorted(c.name for c in r.concepts) for r in result.records] == [["cat"],
                                                                           ["dog", "pet"]]


def test_the_writer_output_reads_back(tmp_path):
    check_writer(${title}Writer, str(tmp_path / "out" / "data.$format"), reader=${title}Reader)


def test_the_entry_point_registers_it():
    registry = PluginRegistry().load()
    assert registry.connector("$format").plugin.distribution == "$distribution"
    assert registry.exporter("$format").cls is ${title}Writer
    assert not [e for e in registry.errors if "$format" in e]


def test_sync_into_the_local_server(tmp_path, clarifai_server, clarifai_app):
    report = clarifai_connect.sync(str(make_source(tmp_path)), app=clarifai_app.target,
                                   base_url=clarifai_server.base_url,
                                   pat=clarifai_server.keys[0], state=tmp_path / "s.sqlite")
    assert (report.created, report.failed) == (2, 1)
'''

_FILES = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    "$package/__init__.py": _INIT,
    "$package/plugin.py": _PLUGIN,
    "tests/test_plugin.py": _TEST,
}
