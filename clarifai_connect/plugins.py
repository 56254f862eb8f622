"""The plugin manager: loads connector, exporter and embedder plugins from entry points.

Every plugin, the built-in ones included, is a module in the ``clarifai_connect``
entry-point group. Which ones load is decided by two environment variables holding
comma-separated plugin names (entry-point names or distribution names):

- ``CLARIFAI_CONNECT_PLUGINS``: when set, only the listed third-party plugins load
  (built-ins always load unless disabled); set it empty to load no third-party plugin.
- ``CLARIFAI_CONNECT_DISABLE_PLUGINS``: plugins that never load, built-ins included.

A plugin that fails to import or registers a name already taken does not break the
others: the failure is kept in :attr:`PluginRegistry.errors`, logged, and shown by
``clarifai-connect plugins``.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

import pluggy

from . import hookspecs
from .connector import Reader, Writer, allowed_folders, display_uri
from .embedder import Embedder
from .errors import ConfigError, SourceError

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_ALLOW",
    "ENV_DENY",
    "Kind",
    "PluginInfo",
    "PluginRegistry",
    "Registration",
    "get_registry",
    "reset_registry",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT
ENV_ALLOW = "CLARIFAI_CONNECT_PLUGINS"
ENV_DENY = "CLARIFAI_CONNECT_DISABLE_PLUGINS"
BUILTIN_DISTRIBUTION = "clarifai-connect"
Kind = Literal["connector", "exporter", "embedder"]
"""What a registration is: a connector (a Reader), an exporter (a Writer) or an embedder."""


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _names(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(_normalize(n) for n in value.split(",") if n.strip())


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its entry-point ``name``, ``module`` and the distribution providing it."""

    name: str
    module: str
    distribution: str
    version: str

    @property
    def builtin(self) -> bool:
        """True for plugins shipped with clarifai-connect itself."""
        return _normalize(self.distribution) == BUILTIN_DISTRIBUTION


@dataclass(frozen=True)
class Registration:
    """A connector, exporter or embedder class registered by a plugin."""

    name: str
    kind: Kind
    cls: type
    plugin: PluginInfo

    @property
    def description(self) -> str:
        """The class's one-line description (or the first line of its docstring)."""
        text = getattr(self.cls, "description", "") or inspect.getdoc(self.cls) or ""
        return text.strip().splitlines()[0] if text.strip() else ""

    @property
    def options(self) -> list[str]:
        """The keyword options the class accepts besides ``uri`` and ``storage_options``."""
        params = inspect.signature(self.cls.__init__).parameters.values()
        return [p.name for p in params
                if p.kind is p.KEYWORD_ONLY and p.name != "storage_options"]

    @property
    def option_help(self) -> dict[str, str]:
        """One line per option: its text under ``Parameters:`` in the docstring of the class
        (or of a base class: ``name: text``, continuation lines indented further), else the
        option's default."""
        documented: dict[str, str] = {}
        for klass in self.cls.__mro__:
            lines = inspect.cleandoc(klass.__dict__.get("__doc__") or "").split("\n")
            if "Parameters:" not in lines:
                continue
            name = ""
            for line in lines[lines.index("Parameters:") + 1:]:
                if not line.strip():
                    break
                if line.startswith("        ") and name:  # a continuation line
                    documented[name] += " " + line.strip()
                elif ":" in line:
                    name, text = (part.strip() for part in line.split(":", 1))
                    documented.setdefault(name, text)
        params = inspect.signature(self.cls.__init__).parameters
        return {name: documented.get(name) or f"default {params[name].default!r}"
                for name in self.options}


class PluginRegistry:
    """Plugins, and the connectors, exporters and embedders they registered.

    ``entry_points=False`` skips discovery (for tests and embedding); modules can also be
    added with :meth:`add_plugin`. ``allow`` and ``deny`` default to the environment.
    """

    def __init__(self, *, entry_points: bool = True, allow: Iterable[str] | None = None,
                 deny: Iterable[str] | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.allow = (frozenset(_normalize(n) for n in allow) if allow is not None
                      else _names(os.environ.get(ENV_ALLOW)))
        self.deny = (frozenset(_normalize(n) for n in deny) if deny is not None
                     else _names(os.environ.get(ENV_DENY))) or frozenset()
        self.plugins: dict[str, PluginInfo] = {}
        self.connectors: dict[str, Registration] = {}
        self.exporters: dict[str, Registration] = {}
        self.embedders: dict[str, Registration] = {}
        self.errors: list[str] = []
        self._entry_points_loaded = not entry_points
        self._collected: set[str] = set()
        self._lock = threading.RLock()

    # -- loading -------------------------------------------------------------------------

    def load(self) -> PluginRegistry:
        """Discover entry-point plugins (once) and collect their registrations."""
        with self._lock:
            if not self._entry_points_loaded:
                self._entry_points_loaded = True
                self._load_entry_points()
            self._collect()
        return self

    def _wanted(self, name: str, distribution: str) -> bool:
        keys = {_normalize(name), _normalize(distribution)}
        if keys & self.deny:
            return False
        if _normalize(distribution) == BUILTIN_DISTRIBUTION or self.allow is None:
            return True
        return bool(keys & self.allow)

    def _load_entry_points(self) -> None:
        found = metadata.entry_points(group=ENTRY_POINT_GROUP)
        # Built-ins first, so a third-party plugin cannot silently take a built-in name.
        ordered = sorted(found, key=lambda ep: (
            _normalize(ep.dist.name if ep.dist else "") != BUILTIN_DISTRIBUTION, ep.name))
        for ep in ordered:
            dist = ep.dist.name if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else ""
            if not self._wanted(ep.name, dist):
                log.debug("plugin %s from %s not loaded (allow/deny lists)", ep.name, dist)
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                self._error(f"plugin '{ep.name}' from {dist} failed to load: "
                            f"{type(exc).__name__}: {exc}")
                continue
            self.add_plugin(module, name=ep.name, distribution=dist, version=version)

    def add_plugin(self, module: Any, *, name: str | None = None,
                   distribution: str = "", version: str = "") -> PluginInfo | None:
        """Register a plugin module or object directly (no entry point needed)."""
        name = name or getattr(module, "__name__", repr(module))
        info = PluginInfo(name=name, module=getattr(module, "__name__", repr(module)),
                          distribution=distribution or "(added at runtime)", version=version)
        with self._lock:
            if name in self.plugins or self.pm.is_registered(module):
                self._error(f"plugin '{name}' from {info.distribution} is already loaded")
                return None
            needed = getattr(module, hookspecs.CONTRACT_ATTRIBUTE, None)
            problem = hookspecs.contract_problem(needed) if needed is not None else None
            if problem:
                self._error(f"plugin '{name}' from {info.distribution} {problem}: not loaded")
                return None
            try:
                self.pm.register(module, name=name)
            except (ValueError, pluggy.PluginValidationError) as exc:
                self._error(f"plugin '{name}' from {info.distribution} is invalid: {exc}")
                return None
            self.plugins[name] = info
        return info

    def _collect(self) -> None:
        # Call each plugin's registration hooks separately to know who registered what.
        hooks: tuple[tuple[str, Kind, dict, type], ...] = (
            ("register_connectors", "connector", self.connectors, Reader),
            ("register_exporters", "exporter", self.exporters, Writer),
            ("register_embedders", "embedder", self.embedders, Embedder),
        )
        for hook_name, kind, table, base in hooks:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                key = f"{hook_name}:{impl.plugin_name}"
                if key in self._collected:
                    continue
                self._collected.add(key)
                info = self.plugins.get(impl.plugin_name)
                if info is None:
                    continue

                def register(cls: type, _info: PluginInfo = info, _kind: Kind = kind,
                             _table: dict = table, _base: type = base) -> None:
                    self._register(cls, _info, _kind, _table, _base)

                try:
                    impl.function(**({"register": register} if impl.argnames else {}))
                except Exception as exc:
                    self._error(f"plugin '{info.name}' from {info.distribution} failed in "
                                f"{hook_name}: {type(exc).__name__}: {exc}")

    def _register(self, cls: type, info: PluginInfo, kind: Kind, table: dict,
                  base: type) -> None:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            self._error(f"plugin '{info.name}' registered {cls!r} as a {kind}, "
                        f"which is not a {base.__name__} subclass")
            return
        name = getattr(cls, "name", "")
        if not name:
            self._error(f"plugin '{info.name}' registered {cls.__name__} without a name")
            return
        if name in table:
            other = table[name].plugin
            self._error(f"{kind} '{name}' from plugin '{info.name}' ({info.distribution}) "
                        f"clashes with the one from '{other.name}' ({other.distribution}); "
                        f"keeping the latter (disable one with {ENV_DENY})")
            return
        table[name] = Registration(name=name, kind=kind, cls=cls, plugin=info)

    def _error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)
            log.warning("%s", message)

    # -- using ---------------------------------------------------------------------------

    def connector(self, name: str) -> Registration:
        """The connector registered as ``name``; ConfigError naming the known ones otherwise."""
        return self._lookup(self.connectors, name, "format", "connectors")

    def exporter(self, name: str) -> Registration:
        """The exporter registered as ``name``; ConfigError naming the known ones otherwise."""
        return self._lookup(self.exporters, name, "export format", "exporters")

    def embedder(self, name: str) -> Registration:
        """The embedder registered as ``name``; ConfigError naming the known ones otherwise."""
        return self._lookup(self.embedders, name, "embedder", "embedders")

    def _lookup(self, table: dict[str, Registration], name: str, what: str,
                plural: str) -> Registration:
        self.load()
        key = name.strip().lower()  # --format COCO is --format coco
        if key not in table:
            known = ", ".join(sorted(table)) or "none"
            raise ConfigError(f"unknown {what} '{name}' (known {plural}: {known})")
        return table[key]

    def detect_format(self, uri: str, storage_options: Mapping[str, Any] | None = None) -> str:
        """The connector name for ``uri`` by asking the plugins; SourceError when none knows."""
        self.load()
        name = None
        # pluggy's own order (tryfirst … trylast), one plugin at a time: a plugin that
        # raises is reported and skipped instead of failing detection for everyone.
        for impl in reversed(self.pm.hook.detect_format.get_hookimpls()):
            args = {"uri": uri, "storage_options": dict(storage_options or {})}
            try:
                name = impl.function(**{k: args[k] for k in impl.argnames})
            except Exception as exc:
                self._error(f"plugin '{impl.plugin_name}' failed in detect_format for "
                            f"{display_uri(uri)}: {type(exc).__name__}: {exc}")
                continue
            if name:
                break
        if not name:
            if not _exists(uri, storage_options):
                raise SourceError(f"{display_uri(uri)} does not exist")
            raise SourceError(f"cannot tell the format of {display_uri(uri)}: "
                              "pass --format (see `clarifai-connect plugins`)")
        if name not in self.connectors:
            raise SourceError(f"{display_uri(uri)} was detected as '{name}', but no connector "
                              "of that name is loaded")
        return name

    def explain_format(self, uri: str, name: str,
                       storage_options: Mapping[str, Any] | None = None) -> str:
        """Why connector ``name`` was detected for ``uri``: its ``detect_reason``, or which
        plugin's ``detect_format`` claimed it."""
        cls = self.connector(name).cls
        try:
            reason = cls.detect_reason(uri, dict(storage_options or {}))
        except Exception:  # an explanation is a nicety: never fail detection for it
            reason = None
        return reason or f"claimed by the '{self.connectors[name].plugin.name}' plugin"

    def open_reader(self, uri: str, format: str = "auto",
                    storage_options: Mapping[str, Any] | None = None, *,
                    allowed_paths: Iterable[str] = (), **options: Any) -> Reader:
        """A reader for ``uri`` (format ``auto`` detects it) built with ``options``, whose
        media references may also point into ``allowed_paths`` (``--allow-path``)."""
        if not format or format.strip().lower() == "auto":
            format = self.detect_format(uri, storage_options)
        reader = _build(self.connector(format), uri, storage_options, options)
        reader.allowed_paths = allowed_folders(allowed_paths)
        return reader

    def open_writer(self, uri: str, format: str,
                    storage_options: Mapping[str, Any] | None = None,
                    **options: Any) -> Writer:
        """A writer of ``format`` to ``uri`` built with ``options``."""
        return _build(self.exporter(format), uri, storage_options, options)


def _exists(uri: str, storage_options: Mapping[str, Any] | None) -> bool:
    """Whether ``uri`` names something (True when that cannot be told: let the reader say)."""
    from .connector import filesystem

    try:
        fs, path = filesystem(uri, storage_options)
        return bool(fs.exists(path))
    except Exception:
        return True


def _build(reg: Registration, uri: str, storage_options: Mapping[str, Any] | None,
           options: Mapping[str, Any]) -> Any:
    accepted = set(reg.options)
    takes_any = any(p.kind is p.VAR_KEYWORD
                    for p in inspect.signature(reg.cls.__init__).parameters.values())
    unknown = sorted(set(options) - accepted) if not takes_any else []
    if unknown:
        raise ConfigError(f"{reg.kind} '{reg.name}' has no option {', '.join(unknown)} "
                          f"(its options: {', '.join(reg.options) or 'none'})")
    return reg.cls(uri, storage_options=dict(storage_options or {}), **options)


_default: PluginRegistry | None = None
_default_lock = threading.Lock()


def get_registry() -> PluginRegistry:
    """The process-wide registry, loaded from entry points on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginRegistry()
        registry = _default
    return registry.load()


def reset_registry() -> None:
    """Forget the process-wide registry (after installing a plugin, or changing the env lists)."""
    global _default
    with _default_lock:
        _default = None


def parse_option_pairs(pairs: Iterable[str], what: str = "option") -> dict[str, Any]:
    """``KEY=VALUE`` strings (from ``-o``) to a dict of options.

    Values are read as JSON when they parse (``true``, ``3``, ``["a","b"]``), else kept as
    strings; dotted keys nest (``columns.input=image_name`` → ``{"columns": {"input": …}}``).
    """
    import json

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{what} '{pair}' is not KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        target = options
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise ConfigError(f"{what} '{pair}' conflicts with an earlier value of '{parent}'")
        target[leaf] = value
    return options
