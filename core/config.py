"""Pipeline configs: YAML files with one section per component, validated before any work.

A config names a registered component in each section and gives its options::

    name: municipios-lstm
    seed: 0
    corpus:    {name: municipios}
    model:     {name: lstm, hidden_size: 128}
    trainer:   {name: word-reset, epochs: 20}

Every error names the file, the line and the dotted key. ``KEY=VALUE`` overrides from the
command line are applied before validation, their values parsed as YAML.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import options as opts
from .errors import ConfigError, LetrasError, UsageError
from .plugins import components
from .registry import PLURALS, Component

SECTIONS = ("corpus", "tokenizer", "model", "trainer", "sampler")
TOP_LEVEL = ("name", "seed", "output", "init_from") + SECTIONS
DEFAULT_CONFIG = "municipios-lstm"
WORD_LIST_CONFIG = "words"  # the shipped pipeline that `letras run LIST` trains a list with
CONFIG_SUFFIXES = (".yaml", ".yml")
STDIN_WORDS = "words.txt"  # where `letras run -` keeps the list it read, in the run folder


# -- YAML with line numbers ----------------------------------------------------------------

class _Mapping(dict):
    """A dict that remembers the line of each key in its YAML file."""

    lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise ConfigError(f"a key must be a plain word, got {key!r}", where=f"line {line}")
        key = str(key)
        if key in mapping:
            raise ConfigError(f"key '{key}' appears twice (first on line {mapping.lines[key]})",
                              where=f"line {line}")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = line
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads 1e-3 as a string; learning rates are written that way, so read it as YAML 1.2 does.
_LineLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                  re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                  list("-+0123456789"))


def parse_value(text: str) -> Any:
    """A value from the command line, read as YAML (1e-3 is a number); text that is not YAML stays text."""
    try:
        return yaml.load(text, Loader=_LineLoader) if text.strip() else ""  # noqa: S506
    except yaml.YAMLError:
        return text


def _plain(value: Any) -> Any:
    """Line-tracking mappings back to plain dicts (for YAML output and options)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse_yaml(text: str, source: str) -> _Mapping:
    """Parse a config's text; any syntax error names the file and line."""
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(exc.message, where=f"{source}:{exc.where.removeprefix('line ')}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"not valid YAML: {exc.problem or exc.context}", where=f"{source}{line}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=source) from None
    if data is None:
        data = _Mapping()
        data.lines = {}
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}",
                          where=source)
    return data


# -- locating configs ----------------------------------------------------------------------

def shipped_configs() -> list[str]:
    """The names of the configs that ship with letras (`letras run NAME`)."""
    folder = resources.files("letras.configs")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml") and not p.name.startswith("_"))


@functools.cache
def default_component(kind: str) -> str:
    """The component a section uses when its config names none: configs/_defaults.yaml."""
    text = resources.files("letras.configs").joinpath("_defaults.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)[kind]


def is_word_list(spec: str | None) -> bool:
    """`letras run SPEC`: a file ending .yaml/.yml is a config, a bare name a shipped config,
    any other existing file a word list, and `-` a word list on stdin."""
    if spec is None:
        return False
    return spec == "-" or (not spec.lower().endswith(CONFIG_SUFFIXES) and Path(spec).is_file())


def find_config(spec: str | None) -> tuple[str, str, Path | None]:
    """(text, shown name, folder for relative paths) of a config given by path or by name."""
    spec = spec or DEFAULT_CONFIG
    path = Path(spec)
    if path.is_file():
        return _read(path), str(path), path.resolve().parent
    if path.exists():
        raise ConfigError("is not a file", where=spec)
    name = spec[:-5] if spec.endswith(".yaml") else spec
    if "/" not in name and os.sep not in name and name in shipped_configs():
        text = resources.files("letras.configs").joinpath(f"{name}.yaml").read_text("utf-8")
        return text, f"{name}.yaml (shipped)", None
    close = difflib.get_close_matches(name, shipped_configs(), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ConfigError(f"no such file, nor a shipped config of that name ({hint}shipped: "
                      f"{', '.join(shipped_configs())})", where=spec)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", where=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=str(path)) from None


# -- the validated config ------------------------------------------------------------------

@dataclasses.dataclass
class Section:
    """One section of a pipeline: the chosen component and its checked options."""

    kind: str
    component: Component
    options: Any

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.component.name, **opts.to_dict(self.options)}


@dataclasses.dataclass
class PipelineConfig:
    """A fully validated pipeline, defaults included."""

    name: str
    seed: int
    output: str
    sections: dict[str, Section]
    source: str = "<config>"
    init_from: str | None = None  # the run whose weights training starts from
    notes: list[str] = dataclasses.field(default_factory=list)  # what `auto` became, and why

    def __getitem__(self, kind: str) -> Section:
        return self.sections[kind]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "seed": self.seed, "output": self.output}
        if self.init_from is not None:
            data["init_from"] = self.init_from
        for kind in SECTIONS:
            data[kind] = self.sections[kind].to_dict()
        return data

    def to_yaml(self) -> str:
        """The config as YAML; the choices made for the list, if any, as comments on top."""
        comments = "".join(f"# {note}\n" for note in self.notes)
        return comments + yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


class _Where:
    """Turns a dotted key into 'file:line (key)' or the override that set it."""

    def __init__(self, source: str, data: dict, overrides: dict[str, str]):
        self.source, self.data, self.overrides = source, data, overrides

    def __call__(self, dotted: str) -> str:
        for key, text in self.overrides.items():
            if dotted == key or dotted.startswith(key + "."):
                return f"command line '{text}'"
        node, line = self.data, None
        for part in dotted.split("."):
            if isinstance(node, dict) and part in node:
                line = getattr(node, "lines", {}).get(part, line)
                node = node[part]
            else:
                break
        return f"{self.source}:{line} ({dotted})" if line else f"{self.source} ({dotted})"


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict[str, str]:
    """Apply ``a.b=value`` overrides to ``data`` in place; returns dotted key -> original text."""
    applied = {}
    for text in overrides:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"an override must look like KEY=VALUE (model.hidden_size=256), got '{text}'")
        value = _plain(parse_value(raw))
        node = data
        *parents, last = key.split(".")
        for i, part in enumerate(parents):
            child = node.get(part)
            if isinstance(child, str) and i == 0 and part in SECTIONS:
                child = {"name": child}
            if child is None:
                child = {}
            if not isinstance(child, dict):
                raise ConfigError(f"cannot set '{key}': '{'.'.join(parents[:i + 1])}' is not a mapping",
                                  where=f"command line '{text}'")
            node[part] = child
            node = child
        node[last] = value
        applied[key] = text
    return applied


def load_config(spec: str | None = None, overrides: Iterable[str] = ()) -> PipelineConfig:
    """Read, override and validate a pipeline config; the one entry point for CLI and API.

    ``spec`` may also be a word list (see ``is_word_list``): it is trained with the shipped
    word-list pipeline, whose corpus reads that file, and the run is named after it."""
    if is_word_list(spec):
        return word_list_config(str(spec), overrides)
    text, source, folder = find_config(spec)
    data = parse_yaml(text, source)
    applied = apply_overrides(data, overrides)
    imply_components(data, applied)
    default_name = Path(source.split(" ")[0]).stem
    return validate(data, source=source, folder=folder, overrides=applied, default_name=default_name)


def word_list_config(path: str, overrides: Iterable[str] = ()) -> PipelineConfig:
    """The shipped word-list pipeline, its corpus reading ``path`` and the run named after it.
    For ``-`` (stdin) the corpus reads ``<output>/words.txt``, which the caller writes."""
    text, source, folder = find_config(WORD_LIST_CONFIG)
    data = parse_yaml(text, source)
    data["name"] = "stdin" if path == "-" else _run_name(Path(path).stem)
    applied = apply_overrides(data, overrides)
    imply_components(data, applied)
    corpus = data.get("corpus")
    corpus = {"name": corpus} if isinstance(corpus, str) else dict(corpus or {})
    key = _path_field(components("corpus").get(corpus.get("name", default_component("corpus"))))
    if key is None:
        raise ConfigError(f"corpus '{corpus.get('name')}' reads no file, so it cannot take a word list",
                          where=source)
    output = data.get("output", f"runs/{data['name']}")
    corpus[key] = str(Path(str(output)) / STDIN_WORDS) if path == "-" else path
    data["corpus"] = corpus
    applied.setdefault(f"corpus.{key}", path)  # so a relative path is read from the current folder
    return validate(data, source=f"{source} for {path}", folder=folder, overrides=applied,
                    default_name=data["name"])


def _run_name(stem: str) -> str:
    """A run name from a file's name: characters a folder name should not hold become '-'."""
    return re.sub(r"[^\w.-]+", "-", stem).strip("-.") or "words"


def _accepted(component: Component) -> set[str]:
    return {f.name for f in dataclasses.fields(component.options)} if component.options else set()


def _path_field(component: Component) -> str | None:
    """The option of a component that holds a file path (marked ``path=True``), if any."""
    fields = dataclasses.fields(component.options) if component.options else ()
    return next((f.name for f in fields if f.metadata.get("path")), None)


def imply_components(data: dict, overrides: dict[str, str]) -> None:
    """An override of keys the section's component does not accept, in a section whose
    component the command line does not name, picks the one registered component that
    accepts them all: `corpus.path=names.txt` picks the corpus that reads a file."""
    for kind in SECTIONS:
        keys = {k.split(".")[1] for k in overrides if k.startswith(f"{kind}.")}
        if not keys or "name" in keys or not isinstance(data.get(kind), dict):
            continue
        try:
            if keys <= _accepted(components(kind).get(data[kind].get("name", default_component(kind)))):
                continue
        except LetrasError:
            continue  # an unknown component: validation names it
        fitting = [c for c in components(kind) if keys <= _accepted(c)]
        if len(fitting) == 1:  # none or several: validation says what the section accepts
            data[kind] = {"name": fitting[0].name, **{k: data[kind][k] for k in keys}}


def validate(data: dict, *, source: str = "<config>", folder: Path | None = None,
             overrides: dict[str, str] | None = None, default_name: str = "letras") -> PipelineConfig:
    """Check a parsed config against the registered components and their options."""
    where = _Where(source, data, overrides or {})
    for key in data:
        if key not in TOP_LEVEL:
            raise ConfigError(opts.unknown_key_message(key, TOP_LEVEL), where=where(key))

    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise ConfigError(f"expected a run name without '/', got {name!r}", where=where("name"))
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"expected a whole number ≥ 0, got {seed!r}", where=where("seed"))
    output = data.get("output", f"runs/{name}")
    if not isinstance(output, str) or not output.strip():
        raise ConfigError(f"expected a folder path, got {output!r}", where=where("output"))
    init_from = data.get("init_from")
    if init_from is not None and (not isinstance(init_from, str) or not init_from.strip()):
        raise ConfigError(f"expected the folder of a trained run, got {init_from!r}", where=where("init_from"))

    sections = {}
    for kind in SECTIONS:
        sections[kind] = _section(kind, data.get(kind), where, folder, overrides or {})
    return PipelineConfig(name=name, seed=seed, output=output, sections=sections, source=source,
                          init_from=init_from)


def _section(kind: str, raw: Any, where: _Where, folder: Path | None,
             overrides: dict[str, str]) -> Section:
    if raw is None:
        raw = {}
    if isinstance(raw, str):  # `model: lstm` is short for `model: {name: lstm}`
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"section '{kind}' must be a mapping with a 'name' and options, "
                          f"got {type(raw).__name__}", where=where(kind))
    values = _plain(raw)
    component_name = values.pop("name", default_component(kind))
    if not isinstance(component_name, str):
        raise ConfigError(f"expected a component name, got {component_name!r}", where=where(f"{kind}.name"))
    try:
        component = components(kind).get(component_name)
    except LetrasError as exc:
        raise _located(exc, where(f"{kind}.name")) from None
    options = build_options(component, values, f"{kind}", where, folder, overrides)
    return Section(kind, component, options)


def build_options(component: Component, values: dict, prefix: str, where: Any = None,
                  folder: Path | None = None, overrides: dict[str, str] | None = None) -> Any:
    """Check ``values`` against a component's options, including the options of any
    component it names (``cell: mgu`` with ``cell_options: {...}``): those are built first,
    as that component's options object, and given to the field as its value."""
    where = where or (lambda key: key)
    overrides = overrides or {}

    def resolve_path(key: str, value: str) -> str:
        dotted = f"{prefix}.{key}"
        from_file = folder is not None and not any(dotted == k for k in overrides)
        base = folder if from_file else Path.cwd()
        return str(Path(os.path.expanduser(value)) if os.path.isabs(os.path.expanduser(value))
                   else (base / value).resolve())

    values = dict(values)
    for options_key, field_name, kind in opts.nested_options(component.options):
        sub_name = values.get(field_name, _field_default(component.options, field_name))
        if not isinstance(sub_name, str):
            continue  # the type check below reports it
        try:
            sub = components(kind).get(sub_name)
        except LetrasError as exc:
            raise _located(exc, where(f"{prefix}.{field_name}")) from None
        sub_values = values.get(options_key) or {}
        if not isinstance(sub_values, dict):
            raise ConfigError(f"expected a mapping of {kind} options, got {sub_values!r}",
                              where=where(f"{prefix}.{options_key}"))
        # the named component's own options object, checked and with its defaults
        values[options_key] = build_options(sub, sub_values, f"{prefix}.{options_key}", where, folder, overrides)
    try:
        built = opts.build(component.options, values, resolve_path)
    except opts.OptionError as exc:
        message = str(exc)
        if exc.key in values and exc.key not in _accepted(component):
            message += _meant(component, exc.key)
        raise ConfigError(message, where=where(f"{prefix}.{exc.key}" if exc.key else prefix)) from None
    return built


def _meant(component: Component, key: str) -> str:
    """Which component a key was checked against, and those that would accept it."""
    others = [c.name for c in components(component.kind) if c is not component and key in _accepted(c)]
    plural = PLURALS.get(component.kind, component.kind)
    how = f" ({component.kind}.name={others[0]})" if len(others) == 1 and component.kind in SECTIONS else ""
    elsewhere = f"; {plural} that accept it: {', '.join(others)}{how}" if others else ""
    return f", for {component.kind} '{component.name}'{elsewhere}"


def _located(exc: LetrasError, where: str) -> LetrasError:
    """The registry's error with the config location in front (a usage error stays one)."""
    cls = ConfigError if isinstance(exc, UsageError) else type(exc)
    return cls(str(exc), where=where)


def _field_default(options_cls: type, name: str) -> Any:
    for field in dataclasses.fields(options_cls):
        if field.name == name:
            return field.default
    return None
