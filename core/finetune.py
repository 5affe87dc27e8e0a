"""Fine-tuning: a new run that starts from a trained run's weights (``init_from: RUN``).

The vocabulary is the union of the trained run's and the new list's: letters the model knows
keep their rows of every vocabulary-sized weight (the embedding, the head), matched by the
letter, and letters new to it keep the fresh rows of the newly built model. The model's
options that shape its weights must match; ``auto`` ones take the trained run's values.
``resume`` is different: it continues the same run, optimizer and all.

A run with labels may start from a run without: its label embedding is new, and the weights
that read the cell's input grow by the label's columns, which start at zero, so the labelled
model starts as exactly the unlabelled one and learns what the labels change. A run with
labels starts from another only with the same labels; one without labels cannot start from
one with them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from . import config as cfg
from .adapt import AUTO
from .errors import UsageError
from .labels import LabelSet
from .rundir import RunDir


def load_origin(config: cfg.PipelineConfig, *, weights: bool = True) -> dict[str, Any] | None:
    """The checkpoint of the run ``init_from`` names (None without one); with ``weights=False``
    only its config, read from config.yaml without torch (for `letras validate`)."""
    if not config.init_from:
        return None
    folder = RunDir(config.init_from)
    if weights:
        return folder.load_checkpoint()
    if not folder.config_path.is_file():
        raise UsageError("holds no config.yaml: not a trained run", where=config.init_from,
                         hint="init_from names the folder of a run, e.g. runs/names-lstm")
    return {"config": yaml.safe_load(folder.config_path.read_text(encoding="utf-8")) or {}}


def inherit(config: cfg.PipelineConfig, origin: dict[str, Any]) -> list[str]:
    """Check that the tokenizer and the model can start from ``origin``; set the model's
    ``auto`` options to the origin's. Returns the origin's letters (the vocabulary to join)."""
    saved = origin.get("config") or {}
    where = f"init_from {config.init_from}"
    mine = config["tokenizer"].to_dict()
    if mine != saved.get("tokenizer"):
        raise UsageError(f"the tokenizer differs from the trained run's: {_differences(mine, saved.get('tokenizer'))}",
                         where=where, hint="use the trained run's tokenizer options")
    model = config["model"]
    if model.component.name != (saved.get("model") or {}).get("name"):
        raise UsageError(f"the trained run's model is '{(saved.get('model') or {}).get('name')}', "
                         f"this config's '{model.component.name}'", where=where)
    for field in dataclasses.fields(model.options) if model.options else ():
        if getattr(model.options, field.name) == AUTO and field.name in saved["model"]:
            setattr(model.options, field.name, saved["model"][field.name])
    if "tokenizer" not in origin:
        return []
    tokenizer = config["tokenizer"].component.build(options=config["tokenizer"].options)
    tokenizer.load_state(origin["tokenizer"])
    return [tokenizer.decode([i]) for i in range(tokenizer.vocab_size) if i != tokenizer.boundary_id]


def transplant(model: Any, tokenizer: Any, config: cfg.PipelineConfig, origin: dict[str, Any],
               labels: LabelSet | None = None) -> str:
    """Copy the origin's weights into ``model`` (built for ``tokenizer``'s union vocabulary and
    ``labels``), mapping vocabulary rows by letter; name the options that differ if the weights
    do not fit."""
    import torch

    adding_labels = _check_labels(origin, labels, f"init_from {config.init_from}")

    old = config["tokenizer"].component.build(options=config["tokenizer"].options)
    old.load_state(origin["tokenizer"])
    old_ids = {old.decode([i]): i for i in range(old.vocab_size) if i != old.boundary_id}
    rows = [old.boundary_id if i == tokenizer.boundary_id else old_ids.get(tokenizer.decode([i]))
            for i in range(tokenizer.vocab_size)]
    known = [i for i, r in enumerate(rows) if r is not None]
    sizes = (old.vocab_size, tokenizer.vocab_size)
    state, saved = model.state_dict(), origin["model"]
    width = _label_width(state, saved, len(labels)) if adding_labels else None

    def fits(state: dict[str, Any]) -> bool:
        if adding_labels:  # new label weights, and inputs wider by the label's columns
            return set(saved) <= set(state) and all(_fits(state[k].shape, saved[k].shape, sizes)
                                                    or _grown(state[k].shape, saved[k].shape, width) for k in saved)
        return set(state) == set(saved) and all(_fits(state[k].shape, saved[k].shape, sizes) for k in state)

    if not fits(state):
        theirs = (origin.get("config") or {}).get("model") or {}
        differ = _misfits(config, theirs, tokenizer.vocab_size, fits) or "the weights' names or shapes"
        raise UsageError(f"the model does not fit the trained run's weights: {differ}",
                         where=f"init_from {config.init_from}",
                         hint="leave those model options out (or auto) to take the trained run's")
    with torch.no_grad():
        for key, target in state.items():
            if key not in saved:  # a label's own weights: as built
                continue
            source = saved[key].to(target.dtype)
            if adding_labels and not _fits(target.shape, source.shape, sizes):
                source = _widened(source, target.shape)  # an input weight: the label's columns start at zero
            for dim, (size, old_size) in enumerate(zip(target.shape, source.shape)):
                if (old_size, size) == sizes and sizes[0] != sizes[1]:  # a vocabulary dimension
                    index = torch.tensor([rows[i] for i in known])
                    source = target.index_copy(dim, torch.tensor(known), source.index_select(dim, index))
            target.copy_(source)
    new = [tokenizer.decode([i]) for i, r in enumerate(rows) if r is None]
    fresh = f", {len(new)} new letters ({' '.join(new)})" if new else ""
    return f"starts from the weights of {config.init_from}{fresh}"


def _check_labels(origin: dict[str, Any], labels: LabelSet | None, where: str) -> bool:
    """Whether this run adds labels to a run without; an error where the labels do not fit."""
    theirs = LabelSet.from_state(origin.get("labels"))
    if theirs is None:
        return labels is not None
    if labels is None:
        raise UsageError("the trained run was trained with labels, this corpus has none", where=where,
                         hint="give the corpus its labels, or start from a run without labels")
    if theirs.names != labels.names:
        raise UsageError(f"the trained run's labels ({', '.join(theirs.names)}) are not this corpus's "
                         f"({', '.join(labels.names)})", where=where,
                         hint="start from a run without labels: it learns the new labels from zero")
    return False


def _label_width(state: dict[str, Any], saved: dict[str, Any], count: int) -> int | None:
    """The width of the label embedding: of the new weights, the one with a row per label."""
    return next((state[k].shape[1] for k in state if k not in saved and state[k].dim() == 2
                 and state[k].shape[0] == count), None)


def _grown(shape: tuple[int, ...], old: tuple[int, ...], width: int | None) -> bool:
    """One dimension ``width`` larger, the others the same: an input weight widened by the
    label's columns."""
    differ = [i for i, (a, b) in enumerate(zip(shape, old)) if a != b]
    return width is not None and len(shape) == len(old) and len(differ) == 1 and \
        shape[differ[0]] == old[differ[0]] + width


def _widened(source: Any, shape: tuple[int, ...]) -> Any:
    """``source`` at the start of zeros of ``shape``: the label's inputs come after the letter's."""
    widened = source.new_zeros(shape)
    widened[tuple(slice(0, n) for n in source.shape)] = source
    return widened


def _fits(shape: tuple[int, ...], old: tuple[int, ...], sizes: tuple[int, int]) -> bool:
    """Same shape, but for dimensions of the vocabulary's size, which grew to the union."""
    return len(shape) == len(old) and all(a == b or (b, a) == sizes for a, b in zip(shape, old))


def _misfits(config: cfg.PipelineConfig, theirs: dict[str, Any], vocab_size: int, fits: Any) -> str:
    """The model options that differ from the trained run's, narrowed to those which, set
    back one at a time, would make the weights fit (all of them when none does alone)."""
    section = config["model"]
    mine = section.to_dict()
    differing = [k for k in sorted(set(mine) | set(theirs)) if k != "name" and mine.get(k) != theirs.get(k)]
    culprits = []
    for key in differing:
        values = {k: v for k, v in {**mine, key: theirs.get(key)}.items() if k != "name"}
        try:
            options = cfg.build_options(section.component, values, "model")
            if fits(section.component.build(vocab_size, options=options).state_dict()):
                culprits.append(key)
        except Exception:  # noqa: BLE001 - a value that does not build is not the culprit
            continue
    shown = culprits or differing
    return ", ".join(f"model.{k} ({theirs.get(k)!r} there, {mine.get(k)!r} here)" for k in shown)


def _differences(mine: dict[str, Any], theirs: dict[str, Any] | None) -> str:
    theirs = theirs or {}
    keys = [k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
    return ", ".join(f"{k} ({theirs.get(k)!r} there, {mine.get(k)!r} here)" for k in keys)
