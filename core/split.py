"""The seeded train/validation split: the same arguments always give the same split, so
`letras eval` recomputes exactly the words a run held out."""

from __future__ import annotations

import random
from typing import Any, Sequence

from .errors import UsageError


def split_words(words: Sequence[Any], val_fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """A seeded train/validation split; the same arguments always give the same split."""
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"val_fraction must be at least 0 and less than 1, got {val_fraction}")
    order = list(range(len(words)))
    random.Random(seed).shuffle(order)
    n_val = int(round(len(words) * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if val_fraction > 0 and n_val >= len(words):
        raise UsageError(f"the corpus has {len(words)} words: too few for a validation split of "
                         f"{val_fraction} that leaves words to train on (lower val_fraction or set it to 0)")
    val = [words[i] for i in sorted(order[:n_val])]
    train = [words[i] for i in sorted(order[n_val:])]
    return train, val
