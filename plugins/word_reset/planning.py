"""How long to train on a list, and how hard to regularise: the word-reset trainer's ``auto``.

The numbers come from runs on splits of first names and of Spanish municipalities, 800 to
36,000 words, on a 2-core CPU (docs/performance.md, "Any word list"). A small list is seen
many times, so it is trained for more epochs and decayed harder; a long one is limited by the
time budget, and the cosine schedule anneals over whichever of the two ends first.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from letras.core.adapt import AUTO, CorpusStats, auto_fields

# Epochs planned for n words: 1,500 / sqrt(n), at least 30: 42 for 1,300 words, 53 for 800,
# 30 from 2,500 words on, where the time budget usually ends first (19,000 first names took
# about 2 s an epoch here). On 1,300 first names and 1,950 municipalities the best validation
# epoch came at 16 to 42; a plan of 300 epochs annealed the learning rate too late, after
# the list was learnt by heart; a plan of 16 left 10 of the 50 seconds unused on 19,000 names.
EPOCHS_TIMES_ROOT_WORDS = 1_500
MIN_EPOCHS, MAX_EPOCHS = 30, 400
AUTO_OPTIONS = ("epochs", "weight_decay", "val_fraction", "patience", "ema")  # the options that may be auto
# A small list's weights averaged over about the last hundred steps: 2.2040 and 2.2014
# nats/char against 2.2145 and 2.2146 on 1,300 first names (two seeds); 1.4381 against
# 1.4371 on 1,950 municipalities. Longer lists go without (names-lstm found it neutral).
SMALL_LIST_EMA = 0.99
SMALL_LIST_CHARS = 60_000  # below this (about 6,000 words), weight decay doubles


def plan_training(options: Any, stats: CorpusStats) -> Optional[str]:
    """Set the trainer's ``auto`` options for ``stats`` in place; say what was chosen."""
    o = options
    chosen = auto_fields(o, AUTO_OPTIONS)
    if not chosen:
        return None
    if o.val_fraction == AUTO:  # about 1,000 words, between 2% and 10% of the list
        o.val_fraction = round(min(0.1, max(0.02, 1_000 / stats.words)), 3)
    if o.epochs == AUTO:
        o.epochs = max(MIN_EPOCHS, min(MAX_EPOCHS, round(EPOCHS_TIMES_ROOT_WORDS / math.sqrt(stats.words))))
    if o.weight_decay == AUTO:
        o.weight_decay = 0.1 if stats.chars < SMALL_LIST_CHARS else 0.05
    if o.ema == AUTO:
        o.ema = SMALL_LIST_EMA if stats.chars < SMALL_LIST_CHARS else None
    if o.patience == AUTO:
        o.patience = max(5, min(20, o.epochs // 5))
    return _describe(o, chosen, stats)


def _describe(o: Any, chosen: list[str], stats: CorpusStats) -> str:
    budget = f"up to {o.max_seconds:g} s or {o.epochs} epochs" if o.max_seconds else f"{o.epochs} epochs"
    parts = [budget + (f", {o.schedule} schedule over whichever ends first" if o.max_seconds else "")]
    if "weight_decay" in chosen:
        why = " (a small list)" if stats.chars < SMALL_LIST_CHARS else ""
        parts.append(f"weight decay {o.weight_decay:g}{why}")
    if "ema" in chosen and o.ema is not None:
        parts.append(f"weights averaged (ema {o.ema:g})")
    if "val_fraction" in chosen:
        parts.append(f"{o.val_fraction:.1%} held out")
    if o.patience is not None:
        parts.append(f"stop after {o.patience} epochs without a better validation loss")
    if o.keep == "best":
        parts.append("keep the best epoch")
    return ", ".join(parts)
