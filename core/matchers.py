"""The automaton of each single request, over the word's characters: a literal string
(prefix, suffix, contains, ban; a KMP automaton) and a regular expression (greenery's).

Each has a ``start`` state, ``step(state, char)`` (None: no accepted word goes on so) and
``accepts(state)``; ``letras.core.constraints`` runs them all together over the model's
tokens and keeps their product.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Callable

from .errors import UsageError


def fold(text: str) -> str:
    """``text`` without accents and case: NFD, combining marks dropped, casefolded. Banned
    substrings are compared so ("culo" bans "Culó")."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class Literal:
    """A string matched against the word's characters, a KMP automaton: the state is how
    many of its characters the text read so far ends with. ``mode``: prefix, suffix,
    contains, ban."""

    def __init__(self, text: str, mode: str, key: Callable[[str], str] = lambda c: c):
        self.text, self.mode, self.key = text, mode, key
        self.start = 0
        self._back = [0] * (len(text) + 1)  # the KMP failure function
        k = 0
        for i in range(1, len(text)):
            while k and text[i] != text[k]:
                k = self._back[k]
            k += text[i] == text[k]
            self._back[i + 1] = k

    def step(self, k: int | None, char: str) -> int | None:
        n = len(self.text)
        for c in self.key(char):
            if self.mode == "prefix":
                if k >= n:
                    continue
                if c != self.text[k]:
                    return None
                k += 1
                continue
            if self.mode == "contains" and k == n:
                return k
            while k and (k == n or c != self.text[k]):
                k = self._back[k]
            k += c == self.text[k]
            if self.mode == "ban" and k == n:
                return None
        return k

    def accepts(self, k: int) -> bool:
        return self.mode == "ban" or k == len(self.text)


class Pattern:
    """A regular expression (greenery's automaton), matched over the whole word. A model
    letter stands for every character the tokenizer normalises to it ('V' and 'v' under
    case: upper), so the state is the set of the expression's states the word can be in."""

    def __init__(self, pattern: str, normalize: Callable[[str], str]):
        try:
            from greenery import parse
        except ImportError:  # pragma: no cover - a dependency of letras
            raise UsageError("--pattern needs greenery", hint="pip install greenery") from None
        try:
            self.fsm = parse(pattern).to_fsm()
        except Exception as exc:  # greenery raises its own types for unsupported syntax
            raise UsageError(f"cannot read the regular expression: {exc}", where=f"--pattern {pattern!r}",
                             hint="greenery reads | () [] . * + ? {m,n}; no lookarounds or backreferences") from None
        self.normalize = normalize
        live = [s for s in self.fsm.states if self.fsm.islive(s)]
        self.start = frozenset([self.fsm.initial]) if self.fsm.initial in live else frozenset()
        self._live = frozenset(live)
        self._classes: dict[str, list[Any]] = {}

    def _classes_of(self, char: str) -> list[Any]:
        if char not in self._classes:
            spellings = {x for x in {char, char.lower(), char.upper()} if len(x) == 1 and self.normalize(x) == char}
            self._classes[char] = [k for k in self.fsm.alphabet for x in spellings | {char} if k.accepts(x)]
        return self._classes[char]

    def step(self, states: frozenset, char: str) -> frozenset | None:
        after = frozenset(self.fsm.map[s][k] for s in states for k in self._classes_of(char)
                          if k in self.fsm.map[s]) & self._live
        return after or None

    def accepts(self, states: frozenset) -> bool:
        return bool(states & self.fsm.finals)
