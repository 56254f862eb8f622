"""The plugin contract: pluggy hook specifications of the ``clarifai_connect`` project.

A plugin is a module listed in the ``clarifai_connect`` entry-point group of its package::

    [project.entry-points.clarifai_connect]
    myformat = "my_package.plugin"

and implements some of these hooks with the :data:`hookimpl` marker. Registration hooks
hand the plugin a ``register`` callable, so the contract can grow without breaking old
plugins. There is deliberately no per-record hook: hooks run once per process or source.

The contract (these hooks, and the public names of :mod:`clarifai_connect.records`,
:mod:`clarifai_connect.connector` and :mod:`clarifai_connect.embedder`) is versioned: :data:`CONTRACT_VERSION` is
``MAJOR.MINOR``, a new hook or option raises the minor, a change that breaks a plugin the
major. A plugin module may declare the version it needs (``CLARIFAI_CONNECT_CONTRACT =
"1.0"``); one that needs another major, or a newer minor, is not loaded (the reason is
shown by ``clarifai-connect plugins``). ``docs/plugins.md`` documents every part of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .connector import Reader, Writer
    from .embedder import Embedder

PROJECT = "clarifai_connect"
#: The version of the plugin contract (``MAJOR.MINOR``), see the module doc.
CONTRACT_VERSION = "1.0"
#: The module attribute where a plugin declares the contract version it needs.
CONTRACT_ATTRIBUTE = "CLARIFAI_CONNECT_CONTRACT"


def contract_problem(needed: object) -> str | None:
    """Why a plugin needing contract ``needed`` (``"1"``, ``"1.0"``) cannot load here, or None."""
    major, _, minor = str(needed).strip().partition(".")
    ours_major, _, ours_minor = CONTRACT_VERSION.partition(".")
    if not major.isdigit() or not (minor or "0").isdigit():
        return f"declares contract {needed!r}, which is not MAJOR.MINOR"
    if int(major) != int(ours_major) or int(minor or 0) > int(ours_minor):
        return (f"needs plugin contract {needed}, this clarifai-connect provides "
                f"{CONTRACT_VERSION}")
    return None

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_connectors(register: Callable[[type[Reader]], None]) -> None:
    """Register reader classes (connectors) that turn a source into records.

    Call ``register(ReaderSubclass)`` once per format; the class's ``name`` is the format
    name users pass as ``--format``. Two plugins registering the same name is an error
    reported by ``clarifai-connect plugins``; the first registration is kept.
    """


@hookspec
def register_exporters(register: Callable[[type[Writer]], None]) -> None:
    """Register writer classes (exporters) that turn records into a destination format.

    Call ``register(WriterSubclass)`` once per format; the class's ``name`` is the format
    name users pass to ``clarifai-connect export --format``.
    """


@hookspec
def register_embedders(register: Callable[[type[Embedder]], None]) -> None:
    """Register embedder classes that turn media into vectors for the local server.

    Call ``register(EmbedderSubclass)`` once per embedder; its ``name`` is what
    ``LocalServer(embedders={"image": NAME})`` and an app's base workflow select, and its
    ``kinds`` say which media it embeds (see :mod:`clarifai_connect.embedder`). The server
    embeds every input in the background with the embedder chosen for its kind.
    """


@hookspec(firstresult=True)
def detect_format(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    """Return the connector name that reads the source at ``uri``, or None when unsure.

    Called for ``--format auto``; the first non-None answer wins, so answer only for
    sources that are clearly yours and keep it cheap (look at the name, a directory's first
    entries, or a file's first bytes: never read the whole source). Broad fallbacks (any
    directory) should use ``@hookimpl(trylast=True)``.
    """
