"""Options sized to the word list: ``auto`` values that a component resolves from its corpus.

A component's options may take the value ``auto`` (``model.hidden_size: auto``). Once the
words are read and the vocabulary fitted, the core measures the list (``CorpusStats``) and
hands the numbers to every section's options object that has an ``adapt`` method::

    @dataclass
    class MyOptions:
        hidden_size: int | Literal["auto"] = option(128)

        def adapt(self, stats: CorpusStats) -> str | None:
            if self.hidden_size == "auto":
                self.hidden_size = 64 if stats.words < 2_000 else 128
                return "hidden 64 (a small list)" if self.hidden_size == 64 else "hidden 128"
            return None

The component decides what its options become; the core only measures and asks, so it
names no component and no option. The resolved values, never ``auto``, are what
``config.yaml`` keeps, and the notes the components return are shown on one line.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class CorpusStats:
    """What a component may size itself by: the list as the tokenizer encoded it."""

    words: int  # words in the corpus (training and validation together)
    chars: int  # predicted characters: every word's letters and its end
    alphabet: int  # tokens in the vocabulary, the boundary token included
    mean_length: float  # letters a word, its end not counted
    max_length: int  # letters of the longest word

    def describe(self) -> str:
        return f"{self.words:,} words, {self.chars:,} characters, {self.alphabet} symbols"


def corpus_stats(encoded: Sequence[Sequence[int]], alphabet: int) -> CorpusStats:
    """The statistics of encoded words (``[boundary, ..., boundary]`` each)."""
    letters = [len(ids) - 2 for ids in encoded]
    return CorpusStats(words=len(letters), chars=sum(letters) + len(letters), alphabet=alphabet,
                       mean_length=sum(letters) / max(1, len(letters)), max_length=max(letters, default=0))


def adapt_sections(sections: dict[str, Any], stats: CorpusStats) -> list[str]:
    """Ask each section's options to resolve its ``auto`` values; the notes of what they chose."""
    notes = []
    for kind, section in sections.items():
        adapt = getattr(section.options, "adapt", None)
        note = adapt(stats) if callable(adapt) else None
        if note:
            notes.append(f"{kind} {note}")
    return notes



def auto_fields(options: Any, names: Sequence[str]) -> list[str]:
    """Those of the ``names`` options still set to ``auto``, in order."""
    return [name for name in names if getattr(options, name) == AUTO]
