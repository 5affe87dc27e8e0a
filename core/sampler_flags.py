"""`letras sample`'s flags for the samplers' options: each option a registered sampler declares
becomes a flag (``top_k`` is ``--top-k``), with the help the option gives.

The core names no sampler option: a third-party sampler's options get flags exactly as the
built-in ones do. A flag the run's sampler (or ``--sampler``'s) does not declare is a usage
error that lists the flags it does. An option whose flag another of `sample`'s flags already
takes stays reachable as ``-o NAME=VALUE``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Iterable, Literal, Union

import click

from .registry import Component

SHORT = {"count": "-n"}  # the sampler contract's word count keeps its short flag


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_sampler_flags(command: click.Command, samplers: Iterable[Component]) -> None:
    """Give ``command`` a flag for every option of every sampler in ``samplers``."""
    taken = {opt for param in command.params for opt in param.opts}
    owners: dict[str, list[str]] = {}
    fields: dict[str, tuple[Any, str]] = {}
    for component in samplers:
        if component.options is None:
            continue
        hints = typing.get_type_hints(component.options)
        for field in dataclasses.fields(component.options):
            owners.setdefault(field.name, []).append(component.name)
            fields.setdefault(field.name, (hints[field.name], field.metadata.get("help", "")))
    for name, (hint, help_text) in fields.items():
        click_type = _click_type(hint)
        if click_type is None or flag(name) in taken:
            continue  # a list or mapping, or a flag already taken: -o NAME=VALUE
        opts = [SHORT[name], flag(name)] if name in SHORT and SHORT[name] not in taken else [flag(name)]
        samplers_with = ", ".join(owners[name])
        command.params.append(click.Option([*opts, name], type=click_type, default=None, show_default=False,
                                           help=f"{help_text[:1].upper()}{help_text[1:]} (sampler: {samplers_with}; "
                                                "default: the run's)."))
        taken.update(opts)


def sampler_values(command: click.Command, given: dict[str, Any]) -> dict[str, Any]:
    """The sampler options among a command's parsed ``given`` values that were set."""
    names = {param.name for param in command.params if isinstance(param, click.Option)}
    return {name: value for name, value in given.items() if name in names and value is not None}


def check_declared(values: dict[str, Any], component: Component) -> None:
    """A usage error for a flag the chosen sampler does not declare, listing those it does."""
    declared = {f.name for f in dataclasses.fields(component.options)} if component.options else set()
    for name in values:
        if name not in declared:
            accepted = ", ".join(flag(n) for n in sorted(declared)) or "none"
            raise click.UsageError(f"{flag(name)} is not an option of sampler '{component.name}' "
                                   f"(its options: {accepted})")


def _click_type(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _click_type(inner[0]) if len(inner) == 1 else None
    if origin is Literal:
        choices = typing.get_args(hint)
        return click.Choice([str(c) for c in choices]) if all(isinstance(c, str) for c in choices) else None
    return {int: int, float: float, str: str, bool: click.BOOL}.get(hint)
