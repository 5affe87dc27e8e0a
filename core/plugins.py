"""Loading plugins and collecting what they register.

Built-in plugins are modules of ``letras.plugins``, registered exactly like third-party
ones; third parties come from the entry-point group ``letras``. Entry points load one at a
time: a plugin that fails to import, or whose ``register_*`` hook raises, is recorded and
reported while everything else keeps working.

Environment:
- ``LETRAS_LOAD_PLUGINS``: comma-separated entry-point names (or distributions) to load;
  set but empty loads no third-party plugin.
- ``LETRAS_BLOCK_PLUGINS``: comma-separated plugin names to skip, built-ins included.
- ``LETRAS_PLUGIN_ERRORS=raise``: a failing plugin is an error (for plugin authors and CI).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import os
import warnings
from importlib import metadata
from typing import Any, Mapping

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import HOOKS, Registry

ENTRY_POINT_GROUP = "letras"
BUILTIN_PLUGINS = (
    "letras.plugins.corpora",
    "letras.plugins.chars",
    "letras.plugins.recurrent",
    "letras.plugins.word_reset",
    "letras.plugins.samplers",
    "letras.plugins.tensorboard",
    "letras.plugins.bench",
    "letras.plugins.export",
)


class PluginWarning(UserWarning):
    """Something about a plugin that is probably a mistake but does not stop letras."""


@dataclasses.dataclass
class PluginInfo:
    """What `letras plugins` reports about one plugin."""

    name: str
    source: str  # "builtin" or "entry point"
    module: str = ""
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = dataclasses.field(default_factory=list)
    registered: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    error: str | None = None  # set when the plugin failed to import or register
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return self.error is None


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginHost:
    """A plugin manager plus the registries filled from it, built once per process."""

    def __init__(self, builtins: tuple[str, ...] = BUILTIN_PLUGINS, *,
                 entry_point_group: str | None = ENTRY_POINT_GROUP,
                 env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.pm = pluggy.PluginManager("letras")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] = {}
        self._hook_callers: dict[str, dict[str, Any]] = {}  # hook name -> plugin name -> caller
        self._failed_listeners: set[str] = set()  # reported once each
        self._strict = env.get("LETRAS_PLUGIN_ERRORS", "").lower() == "raise"
        self._allow = _names(env.get("LETRAS_LOAD_PLUGINS"))
        self._block = _names(env.get("LETRAS_BLOCK_PLUGINS")) or set()
        for module_name in builtins:
            if module_name not in self._block:
                self.add(importlib.import_module(module_name), name=module_name, source="builtin")
        if entry_point_group:
            self._load_entry_points(entry_point_group)

    # -- loading ---------------------------------------------------------------------------

    def _load_entry_points(self, group: str) -> None:
        for ep in sorted(metadata.entry_points(group=group), key=lambda ep: ep.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.name if dist else None
            if ep.name in self._block or (dist_name and dist_name in self._block):
                continue
            if self._allow is not None and not ({ep.name, dist_name} & self._allow):
                continue
            info = PluginInfo(ep.name, "entry point", module=ep.value, distribution=dist_name,
                              version=dist.version if dist else None)
            try:
                module = ep.load()
            except BaseException as exc:  # a broken plugin must not take the CLI down
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._fail(info, f"failed to import: {type(exc).__name__}: {exc}")
                continue
            self.add(module, name=ep.name, source="entry point", info=info)

    def add(self, module: Any, *, name: str, source: str = "test",
            info: PluginInfo | None = None) -> PluginInfo:
        """Register a plugin module (or any object with hook functions) under ``name``."""
        info = info or PluginInfo(name, source, module=getattr(module, "__name__", repr(module)))
        if name in self.plugins and self.plugins[name].loaded:
            self._fail(info, f"a plugin named '{name}' is already loaded")
            return info
        try:
            self.pm.register(module, name=name)
        except Exception as exc:
            self._fail(info, f"failed to register: {exc}")
            return info
        info.hooks = sorted(impl_name for impl_name in dir(module)
                            if self.pm.parse_hookimpl_opts(module, impl_name) is not None)
        for hook in info.hooks:
            if hook not in _spec_names():
                close = difflib.get_close_matches(hook, _spec_names(), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                self._warn(info, f"plugin '{name}' implements '{hook}', which is no letras hook{hint}")
        self.plugins[name] = info
        self._registries.clear()  # collect again with the new plugin
        self._hook_callers.clear()
        return info

    def _fail(self, info: PluginInfo, reason: str) -> None:
        info.error = reason
        self.plugins.setdefault(info.name, info)
        if self._strict:
            raise PluginError(f"plugin '{info.name}' {reason}")

    def _warn(self, info: PluginInfo, message: str) -> None:
        info.warnings.append(message)
        if self._strict:
            raise PluginError(message)
        warnings.warn(message, PluginWarning, stacklevel=2)

    # -- collecting ------------------------------------------------------------------------

    def registry(self, kind: str) -> Registry:
        """Every component of ``kind`` ("corpus", "cell", ...), collected on first use."""
        if kind not in HOOKS:
            raise PluginError(f"unknown kind of component '{kind}'")
        if kind not in self._registries:
            self._registries[kind] = self._collect(kind)
        return self._registries[kind]

    def _collect(self, kind: str) -> Registry:
        registry = Registry(kind)
        # Each plugin's hook is called on its own, so that the registry knows which plugin
        # registered what and a hook that raises only loses that plugin's components.
        for name, call in self._callers(HOOKS[kind]).items():
            try:
                call(register=functools.partial(registry.register, plugin=name))
            except Exception as exc:
                reason = f"its {HOOKS[kind]} hook raised {type(exc).__name__}: {exc}"
                registry.drop(name, reason)  # all of a plugin's hook, or none of it
                self._fail(self.plugins[name], reason)
                continue
            self.plugins[name].registered[kind] = sorted(c.name for c in registry if c.plugin == name)
        for name, info in self.plugins.items():
            if not info.loaded:
                registry.failed_plugins.setdefault(name, info.error or "failed")
        return registry

    def collect_all(self) -> None:
        """Fill every registry (for `letras plugins`, which lists what each plugin registered)."""
        for kind in HOOKS:
            self.registry(kind)

    def add_commands(self, cli: Any) -> None:
        """Let every plugin add its click commands to ``cli``."""
        for name, call in self._callers("register_commands").items():
            try:
                call(cli=cli)
            except Exception as exc:
                self._fail(self.plugins[name], f"its register_commands hook raised {type(exc).__name__}: {exc}")

    def _callers(self, hook_name: str) -> dict[str, Any]:
        """One caller of ``hook_name`` per plugin that implements it, through pluggy's public
        ``subset_hook_caller``: that plugin's implementations alone, hookwrappers and
        tryfirst/trylast included, so one plugin's failure is its own."""
        if hook_name not in self._hook_callers:
            impls = getattr(self.pm.hook, hook_name).get_hookimpls()
            names = sorted({impl.plugin_name for impl in impls})
            self._hook_callers[hook_name] = {
                name: self.pm.subset_hook_caller(
                    hook_name, [self.pm.get_plugin(other) for other in names if other != name])
                for name in names}
        return self._hook_callers[hook_name]

    def emit(self, event: Any) -> None:
        """Hand a training event to every plugin that listens (``on_train_event``), each on its
        own: a listener that raises is reported once, naming the plugin and the error, and
        training and the other listeners go on. ``LETRAS_PLUGIN_ERRORS=raise`` makes it fatal."""
        for name, call in self._callers("on_train_event").items():
            try:
                call(event=event)
            except Exception as exc:
                first_line = (str(exc).splitlines() or [""])[0]
                message = f"plugin '{name}' failed on a training event ({event.kind}): {type(exc).__name__}: {first_line}"
                if self._strict:
                    raise PluginError(message, hint="LETRAS_PLUGIN_ERRORS=raise makes this fatal") from exc
                if name not in self._failed_listeners:
                    self._failed_listeners.add(name)
                    self._warn(self.plugins[name], f"{message}; training goes on without it")


@functools.cache
def _spec_names() -> list[str]:
    """The names of letras' hooks, read once through pluggy's public parse_hookspec_opts."""
    pm = pluggy.PluginManager("letras")
    return [name for name in dir(hookspecs) if pm.parse_hookspec_opts(hookspecs, name) is not None]


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _host
    if _host is None:
        _host = PluginHost()
    return _host


def set_host(host: PluginHost | None) -> PluginHost | None:
    """Replace the process-wide host (tests); returns the previous one."""
    global _host
    previous, _host = _host, host
    return previous


def components(kind: str) -> Registry:
    """The registry of one kind of component, from the process-wide plugin host."""
    return get_host().registry(kind)
