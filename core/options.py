"""Component options: plain dataclasses, checked against the values a YAML file gives.

A plugin declares its options as a dataclass; each field is a YAML key with its default.
``option()`` adds what a dataclass field cannot say by itself: a help text, bounds, and
whether the value is a path or names another component::

    @dataclass
    class LSTMOptions:
        hidden_size: int = option(128, help="units in the hidden state", min=1)
        dropout: float = option(0.0, min=0.0, max=1.0, max_exclusive=True)
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Callable, Literal, Union

_MISSING = dataclasses.MISSING


def option(
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | Any = _MISSING,
    help: str = "",
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    max_exclusive: bool = False,
    path: bool = False,
    component: str | None = None,
    options_of: str | None = None,
    resume_safe: bool = False,
) -> Any:
    """A dataclass field with a help text and the checks letras applies to its value.

    ``path=True`` marks a file path: a relative path in a config file is taken from the
    file's folder. ``component="cell"`` marks the name of another registered component, and
    ``options_of="cell"`` the field beside it that holds that component's options: the
    config gives a mapping, and the field receives the component's own options object,
    checked against its dataclass (see ``nested_options``).
    ``resume_safe=True`` lets a resumed run change the value (more epochs, a new device).
    """
    metadata = {
        "help": help,
        "min": min,
        "max": max,
        "min_exclusive": min_exclusive,
        "max_exclusive": max_exclusive,
        "path": path,
        "component": component,
        "options_of": options_of,
        "resume_safe": resume_safe,
    }
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class OptionInfo:
    """One option as `letras list` shows it."""

    name: str
    type: str
    default: Any
    required: bool
    help: str


def describe(options_cls: type | None) -> list[OptionInfo]:
    """The options a component accepts, with their types, defaults and help."""
    if options_cls is None:
        return []
    hints = typing.get_type_hints(options_cls)
    infos = []
    for field in dataclasses.fields(options_cls):
        if field.default is not _MISSING:
            default, required = field.default, False
        elif field.default_factory is not _MISSING:
            default, required = field.default_factory(), False
        else:
            default, required = None, True
        infos.append(
            OptionInfo(field.name, type_name(hints[field.name]), default, required,
                       field.metadata.get("help", ""))
        )
    return infos


def type_name(tp: Any) -> str:
    """A short, readable name for a type annotation (``int``, ``'keep' | 'upper'``)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join("null" if a is type(None) else type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        return f"list of {type_name(inner)}"
    if origin is dict or tp is dict:
        return "mapping"
    if tp is Any:
        return "any"
    return {int: "integer", float: "number", bool: "boolean", str: "string"}.get(tp, getattr(tp, "__name__", str(tp)))


class OptionError(ValueError):
    """A value that does not fit its option; ``key`` is the dotted key below the section.

    An options class raises it from ``__post_init__`` to name the option a check across
    fields is about (a plain ValueError is put on the first option given)."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


def check_value(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to ``tp`` (an int where a float is asked for), or raise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return check_value(key, value, arg)
            except OptionError:
                continue
        raise OptionError(key, f"expected {type_name(tp)}, got {_show(value)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and not isinstance(value, bool):
            return value
        raise OptionError(key, f"expected one of {', '.join(repr(c) for c in choices)}, got {_show(value)}")
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise OptionError(key, f"expected a list, got {_show(value)}")
        (inner, *_) = typing.get_args(tp) or (Any,)
        return [check_value(f"{key}[{i}]", item, inner) for i, item in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise OptionError(key, f"expected a mapping, got {_show(value)}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise OptionError(key, f"expected {_article(type_name(tp))}, got {_show(value)}")


def check_bounds(key: str, value: Any, meta: typing.Mapping[str, Any]) -> None:
    """Raise if a number lies outside the bounds its option declares."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    low, high = meta.get("min"), meta.get("max")
    if low is not None and (value <= low if meta.get("min_exclusive") else value < low):
        relation = "greater than" if meta.get("min_exclusive") else "at least"
        raise OptionError(key, f"must be {relation} {low}, got {value}")
    if high is not None and (value >= high if meta.get("max_exclusive") else value > high):
        relation = "less than" if meta.get("max_exclusive") else "at most"
        raise OptionError(key, f"must be {relation} {high}, got {value}")


def unknown_key_message(key: str, known: typing.Iterable[str]) -> str:
    """'unknown key 'hiden_size' (did you mean 'hidden_size'?; known: ...)'."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    listing = ", ".join(known) if known else "none"
    return f"unknown key '{key}' ({hint}accepted keys: {listing})"


def build(options_cls: type | None, values: typing.Mapping[str, Any],
          resolve_path: Callable[[str, str], str] | None = None) -> Any:
    """Check ``values`` against ``options_cls`` and return the dataclass instance.

    Raises ``OptionError`` naming the first key that is unknown, missing, of the wrong
    type or out of range. ``resolve_path(key, value)`` turns a relative path into an
    absolute one for fields marked ``path=True``.
    """
    if options_cls is None:
        if values:
            key = next(iter(values))
            raise OptionError(key, unknown_key_message(key, []))
        return None
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    hints = typing.get_type_hints(options_cls)
    for key in values:
        if key not in fields:
            raise OptionError(key, unknown_key_message(key, fields))
    checked = {}
    for name, field in fields.items():
        if name not in values:
            if field.default is _MISSING and field.default_factory is _MISSING:
                raise OptionError(name, "required option is missing (add it to the config or pass it as KEY=VALUE)")
            continue
        if field.metadata.get("options_of"):
            checked[name] = _nested_value(name, values[name])
            continue
        value = check_value(name, values[name], hints[name])
        check_bounds(name, value, field.metadata)
        if field.metadata.get("path") and isinstance(value, str) and resolve_path:
            value = resolve_path(name, value)
        checked[name] = value
    try:
        return options_cls(**checked)
    except (ValueError, TypeError) as exc:
        key = getattr(exc, "key", None) or next(iter(checked), "")
        raise OptionError(key, str(exc)) from None


def given(options_cls: type, options: Any = None, values: typing.Mapping[str, Any] | None = None) -> Any:
    """The options a component was made with: the ``options`` object letras built from a
    config, or, for one made by hand in Python, an ``options_cls`` made from ``values``
    (``WordResetTrainer(epochs=3)``)."""
    if options is not None and values:
        raise TypeError("give the options object or option values, not both")
    return options if options is not None else options_cls(**(values or {}))


def to_dict(options: Any) -> dict[str, Any]:
    """The options as plain YAML-able values (for config.yaml and checkpoints)."""
    return dataclasses.asdict(options) if options is not None else {}


def resume_safe_fields(options_cls: type | None) -> set[str]:
    """The options a resumed run may change without changing what it trains."""
    if options_cls is None:
        return set()
    return {f.name for f in dataclasses.fields(options_cls) if f.metadata.get("resume_safe")}


def component_fields(options_cls: type | None) -> list[tuple[str, str]]:
    """The (field name, component kind) pairs of fields that name another component."""
    if options_cls is None:
        return []
    return [(f.name, f.metadata["component"]) for f in dataclasses.fields(options_cls)
            if f.metadata.get("component")]


def nested_options(options_cls: type | None) -> list[tuple[str, str, str]]:
    """The (options field, component field, component kind) triples of an options class:
    ``("cell_options", "cell", "cell")`` where ``cell_options`` holds the options of the
    cell that the field ``cell`` names."""
    if options_cls is None:
        return []
    kinds = dict(component_fields(options_cls))
    return [(f.name, f.metadata["options_of"], kinds[f.metadata["options_of"]])
            for f in dataclasses.fields(options_cls) if f.metadata.get("options_of") in kinds]


def _nested_value(key: str, value: Any) -> Any:
    """A nested component's options as given: its options object, or a mapping that whoever
    builds that component checks against its dataclass."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OptionError(key, f"expected a mapping of options, got {_show(value)}")
    return dict(value)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type_name(type(value))})"


def _article(name: str) -> str:
    return ("an " if name[:1] in "aeiou" else "a ") + name
