"""Labelled words: the labels a corpus may give its words, and a run's label set.

A corpus gives words with ``words()``; a corpus that knows each word's label (a region, a
sex) also has ``labels()``, one label per word, and one that knows how frequent each word is
has ``weights()``. Both are optional, so every corpus written before labels works unchanged.
``LabelledWords`` is the ready-made corpus for plugin writers. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

from .errors import LetrasError, UsageError

# How far words drawn from a label lean towards it and away from the other labels
# (``LabelMixture``'s guidance): the least of those measured that makes 90% of the drawn words
# that are real towns towns of the community asked for (91.5%, against 46.2% unguided and
# 88.9% at 2); higher gives fewer distinct words (docs/labels.md#guidance).
DEFAULT_GUIDANCE = 2.5


class LabelledWords:
    """A corpus held in memory: words, and optionally a label and a weight per word."""

    def __init__(self, words: Sequence[str], labels: Sequence[str] | None = None,
                 weights: Sequence[float] | None = None):
        self._words, self._labels, self._weights = list(words), labels, weights

    def words(self) -> list[str]:
        return list(self._words)

    def labels(self) -> list[str] | None:
        return None if self._labels is None else list(self._labels)

    def weights(self) -> list[float] | None:
        return None if self._weights is None else list(self._weights)


@dataclasses.dataclass
class CorpusData:
    """What a corpus gave, checked: words, and their labels and weights when it has them."""

    words: list[str]
    labels: list[str] | None = None
    weights: list[float] | None = None


def read_corpus(corpus: Any, where: str) -> CorpusData:
    """The words, labels and weights of a built corpus, checked and with empty words dropped."""
    words = corpus.words()
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise LetrasError("words() must return a list of strings", where=where)
    labels = _optional_column(corpus, "labels", len(words), where)
    weights = _optional_column(corpus, "weights", len(words), where)
    if labels is not None:
        for i, label in enumerate(labels):
            if not isinstance(label, str) or not label.strip():
                raise UsageError(f"word {i + 1} ({words[i]!r}) has an empty label", where=where,
                                 hint="give every word a label, or none")
        labels = [label.strip() for label in labels]
    if weights is not None:
        for i, weight in enumerate(weights):
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
                    math.isfinite(weight) and weight > 0):
                raise UsageError(f"word {i + 1} ({words[i]!r}) has weight {weight!r}: a weight is a positive number",
                                 where=where)
        weights = [float(w) for w in weights]
    keep = [i for i, w in enumerate(words) if w]
    if not keep:
        raise UsageError("the corpus holds no words", where=where)
    return CorpusData([words[i] for i in keep], None if labels is None else [labels[i] for i in keep],
                      None if weights is None else [weights[i] for i in keep])


def _optional_column(corpus: Any, name: str, length: int, where: str) -> list[Any] | None:
    method = getattr(corpus, name, None)
    values = method() if callable(method) else None
    if values is None:
        return None
    if not isinstance(values, list) or len(values) != length:
        raise LetrasError(f"{name}() must return None or a list with one entry per word ({length:,}), got "
                          f"{len(values) if isinstance(values, list) else type(values).__name__}", where=where)
    return values


@dataclasses.dataclass
class LabelSet:
    """The labels a run was trained with, in id order, and how many of the corpus's words had each
    (the prior of classification). Saved in the checkpoint as plain data."""

    names: list[str]
    counts: list[int]

    @classmethod
    def of(cls, labels: Sequence[str]) -> LabelSet:
        names = sorted(set(labels))
        index = {name: i for i, name in enumerate(names)}
        counts = [0] * len(names)
        for label in labels:
            counts[index[label]] += 1
        return cls(names, counts)

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> LabelSet | None:
        return None if not state else cls(list(state["names"]), list(state["counts"]))

    def state(self) -> dict[str, Any]:
        return {"names": list(self.names), "counts": list(self.counts)}

    def __len__(self) -> int:
        return len(self.names)

    def priors(self) -> list[float]:
        total = sum(self.counts)
        return [c / total for c in self.counts]

    def id(self, name: str, where: str = "--label") -> int:
        """The id of a label; an unknown one is an error naming the labels there are."""
        try:
            return self.names.index(name.strip())
        except ValueError:
            raise UsageError(f"unknown label {name.strip()!r}; this run's labels are: {', '.join(self.names)}",
                             where=where) from None

    def ids(self, labels: Sequence[str], where: str = "labels") -> list[int]:
        return [self.id(label, where) for label in labels]

    def blend(self, spec: str | dict[str, float], where: str = "--label") -> list[float]:
        """A label (``Galicia``) or a blend (``Galicia=0.7,Andalucía=0.3``, or a dict) as one
        weight per label, summing to 1."""
        parts = spec if isinstance(spec, dict) else _parse_blend(spec, where)
        weights = [0.0] * len(self.names)
        for name, weight in parts.items():
            weights[self.id(name, where)] += weight
        total = sum(weights)
        if total <= 0:
            raise UsageError(f"the weights of {spec!r} add up to {total}; give positive weights", where=where)
        return [w / total for w in weights]


def _parse_blend(spec: str, where: str) -> dict[str, float]:
    """``Galicia`` -> {Galicia: 1}; ``Galicia=0.7,Andalucía=0.3`` -> both weights. A label
    holding a comma or ``=`` can be given through the Python API as a dict."""
    if "=" not in spec:
        return {spec: 1.0}
    parts: dict[str, float] = {}
    for item in spec.split(","):
        name, sep, value = item.rpartition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name.strip() or not (math.isfinite(weight) and weight >= 0):
            raise UsageError(f"{item!r} is not LABEL=WEIGHT with a weight of at least 0 (e.g. Galicia=0.7)",
                             where=where)
        parts[name.strip()] = parts.get(name.strip(), 0.0) + weight
    return parts
