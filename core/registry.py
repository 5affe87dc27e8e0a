"""Registries: what plugins registered, found by bare name or as ``plugin:name``."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import pkgutil
from typing import Any, Callable, Iterator

from . import options as opts
from .errors import PluginError, UsageError

# The kinds of component, with the hook that collects each. A pipeline section exists for
# every kind but "cell", which a generator model names in its options, and "exporter", which
# `letras export` (or TrainedModel.export) names.
HOOKS = {
    "corpus": "register_corpora",
    "tokenizer": "register_tokenizers",
    "cell": "register_cells",
    "model": "register_models",
    "trainer": "register_trainers",
    "sampler": "register_samplers",
    "exporter": "register_exporters",
}
PLURALS = {"corpus": "corpora", "tokenizer": "tokenizers", "cell": "cells", "model": "models",
           "trainer": "trainers", "sampler": "samplers", "exporter": "exporters"}


@dataclasses.dataclass(frozen=True)
class Component:
    """One registered component: its name, the plugin that registered it and how to build it."""

    kind: str
    name: str
    plugin: str
    factory: Callable[..., Any] | str
    options: type | None = None
    help: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"

    def load_factory(self) -> Callable[..., Any]:
        """The factory itself, importing a ``"module:attr"`` string on first use."""
        if callable(self.factory):
            return self.factory
        try:
            return pkgutil.resolve_name(self.factory)
        except Exception as exc:
            raise PluginError(
                f"{self.kind} '{self.name}' of plugin '{self.plugin}' cannot be loaded from "
                f"'{self.factory}': {type(exc).__name__}: {exc}"
            ) from exc

    def build(self, *args: Any, options: Any = None, **kwargs: Any) -> Any:
        """Call the factory with ``args``, its options (a dataclass or a mapping) and ``kwargs``.

        A factory with a parameter named ``options`` receives the validated options object
        itself, as an llm model receives its ``Options``: every default is written once, in the
        dataclass. Any other factory receives the options as keyword arguments."""
        factory = self.load_factory()
        if self.options is not None and _receives_options(factory):
            # keyword arguments that name options are options, as they are for any other factory
            fields = {f.name for f in dataclasses.fields(self.options)}
            given = {key: kwargs.pop(key) for key in list(kwargs) if key in fields}
            if given:
                base = opts.to_dict(options) if dataclasses.is_dataclass(options) else dict(options or {})
                options = {**base, **given}
            return factory(*args, options=self.checked_options(options), **kwargs)
        values = dict(options) if isinstance(options, dict) else opts.to_dict(options)
        return factory(*args, **values, **kwargs)

    def checked_options(self, options: Any = None) -> Any:
        """``options`` as this component's options object: as given when it is one, else built
        and checked from a mapping (None: the defaults)."""
        if self.options is None or isinstance(options, self.options):
            return options
        try:
            return opts.build(self.options, options or {})
        except opts.OptionError as exc:
            raise PluginError(f"{self.kind} '{self.name}': {exc.key}: {exc}") from None


def _receives_options(factory: Callable[..., Any]) -> bool:
    try:
        parameter = inspect.signature(factory).parameters.get("options")
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)


class Registry:
    """The components of one kind. Plugins add to it only through ``register``."""

    def __init__(self, kind: str):
        self.kind = kind
        self._components: list[Component] = []
        # name -> reason, for plugins that failed before they could register anything.
        self.failed_plugins: dict[str, str] = {}

    def register(self, name: str, factory: Callable[..., Any] | str, *, plugin: str,
                 options: type | None = None, help: str = "") -> None:
        if not isinstance(name, str) or not name or ":" in name:
            raise PluginError(f"plugin '{plugin}' registered a {self.kind} with a bad name {name!r}")
        if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
            raise PluginError(
                f"plugin '{plugin}' registered {self.kind} '{name}' with factory {factory!r}; "
                "give a callable or a 'module:attr' string"
            )
        if options is not None and not dataclasses.is_dataclass(options):
            raise PluginError(f"plugin '{plugin}' registered {self.kind} '{name}' with options "
                              f"that are not a dataclass: {options!r}")
        if any(c.name == name and c.plugin == plugin for c in self._components):
            raise PluginError(f"plugin '{plugin}' registered {self.kind} '{name}' twice")
        self._components.append(Component(self.kind, name, plugin, factory, options, help))

    def drop(self, plugin: str, reason: str) -> None:
        """Forget what ``plugin`` registered: its hook failed half-way."""
        self._components = [c for c in self._components if c.plugin != plugin]
        self.failed_plugins[plugin] = reason

    def __iter__(self) -> Iterator[Component]:
        return iter(sorted(self._components, key=lambda c: (c.name, c.plugin)))

    def __len__(self) -> int:
        return len(self._components)

    def names(self) -> list[str]:
        return sorted({c.name for c in self._components})

    def get(self, name: str) -> Component:
        """The component called ``name`` (or ``plugin:name``); a clear error if there is none."""
        plugin, _, bare = name.rpartition(":")
        matches = [c for c in self._components
                   if c.name == bare and (not plugin or c.plugin == plugin)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            spellings = " or ".join(f"'{c.qualified_name}'" for c in matches)
            raise UsageError(f"{self.kind} '{name}' is registered by {len(matches)} plugins; "
                             f"write {spellings}")
        if plugin in self.failed_plugins:
            raise PluginError(f"{self.kind} '{name}' is unavailable: plugin '{plugin}' failed to "
                              f"load ({self.failed_plugins[plugin]})")
        known = self.names()
        close = difflib.get_close_matches(bare, known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        failed = ""
        if self.failed_plugins:
            failed = "; plugins that failed to load: " + ", ".join(sorted(self.failed_plugins))
        raise UsageError(f"unknown {self.kind} '{name}' ({hint}available: "
                         f"{', '.join(known) or 'none'}{failed})")
