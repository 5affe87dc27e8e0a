"""Sampling constraints compiled into one automaton over the model's tokens.

A user asks for words with a prefix, a suffix, letters they must contain, a regular
expression they must match, substrings they must never contain (``ban``), words they must
never be (``exclude``, the corpus under ``--novel``) and a length. All of it becomes one
deterministic automaton over the vocabulary's token ids, the product of one small automaton
per request, kept to the states from which a word can still be accepted:

- ``next[s][v]``: the state after token ``v`` (-1: no accepted word goes on this way);
- ``accepting[s]``: whether the word may end in state ``s``;
- ``dist[s]``: the fewest tokens still needed to reach an accepting state.

A sampler (``letras.core.letter_mask``) then allows, at each step, only the tokens after
which an accepted word can be finished within the letters left, and the boundary only where
the word is accepted: a word never gets stuck, nothing is drawn again.

Excluded words are hashed (``letras.core.word_hash``): a word carries the hash of its tokens,
and its end is blocked where that is an excluded word's. The few excluded words whose end,
blocked, could leave a word with no way on (near --max-length, or under a --pattern of few
words) sit in a trie whose nodes carry the automaton state their beginning reaches (a
beginning determines it) and their own ``dist``. Nothing here imports torch but the exclusion.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .errors import UsageError
from .exclusion import Trie
from .matchers import Literal, Pattern, fold

INF = 1 << 30  # dist of a state that cannot reach acceptance
MAX_STATES = 200_000  # a product larger than this is refused: it would not fit the tables


@dataclass(frozen=True)
class Constraints:
    """What the words must be. Strings are compared after the tokenizer's normalisation
    (Unicode NFC, its case policy); ``ban`` after ``fold`` unless ``ban_exact``."""

    prefix: str = ""
    suffix: str = ""
    contains: tuple[str, ...] = ()
    pattern: str | None = None
    ban: tuple[str, ...] = ()
    ban_exact: bool = False
    exclude: frozenset[str] = field(default_factory=frozenset)
    min_length: int = 1
    max_length: int | None = None

    def describe(self) -> str:
        """The constraints as the command line spells them."""
        parts = [f"--prefix {self.prefix!r}" if self.prefix else "", f"--suffix {self.suffix!r}" if self.suffix else "",
                 *(f"--contains {c!r}" for c in self.contains),
                 f"--pattern {self.pattern!r}" if self.pattern is not None else "",
                 *(f"--ban {b!r}" for b in self.ban),
                 f"--min-length {self.min_length}" if self.min_length > 1 else "",
                 f"--max-length {self.max_length}" if self.max_length is not None else "",
                 f"and {len(self.exclude):,} excluded word{'s' * (len(self.exclude) != 1)} (--exclude, --novel)"
                 if self.exclude else ""]
        return " ".join(p for p in parts if p)


@dataclass
class Automaton:
    """The constraints over token ids (see the module's docstring)."""

    constraints: Constraints
    vocab_size: int
    boundary: int
    next: list[list[int]]
    accepting: list[bool]
    dist: list[int]
    start: int
    trie: Trie | None = None
    hashed: Any = None  # (K,) the sorted keys of the hashed excluded words (letras.core.word_hash)
    encode: Callable[[str], list[int] | None] = lambda word: None
    decode: Callable[[list[int]], str] = lambda ids: ""
    normalize: Callable[[str], str] = lambda word: word
    normalize_lines: Callable[[str], str] | None = None  # the tokenizer's, if it has one (Tokenizer)
    letters: dict[str, int] | None = None  # each character's id, when every token is one character

    def walk(self, ids: Sequence[int], at: tuple[int, int] | None = None) -> tuple[int, int] | None:
        """The (state, trie node; -1 off the trie) after ``ids`` from ``at`` (the start),
        or None where no accepted word begins so."""
        state, node = at if at is not None else (self.start, 0 if self.trie else -1)
        for i in ids:
            state = self.next[state][i]
            if state < 0:
                return None
            node = self.trie.child_of(node, i) if node >= 0 else -1
        return state, node

    def accepts(self, word: str) -> bool:
        """Whether ``word`` (as the tokenizer normalises it) meets every constraint."""
        ids = self.encode(word)
        state = self.start
        for i in ids or [-1]:
            state = self.next[state][i] if i >= 0 else -1
            if state < 0:
                return False
        too_long = self.constraints.max_length is not None and len(ids) > self.constraints.max_length
        return self.accepting[state] and not too_long and self.decode(ids) not in self.excluded

    @functools.cached_property
    def excluded(self) -> frozenset[str]:
        """The excluded words as the tokenizer writes them (read by ``accepts`` alone)."""
        return frozenset(map(self.normalize, self.constraints.exclude))

    def shortest(self) -> int:
        """The fewest tokens of an accepted word."""
        return min(int(self.trie.dist[0]), INF) if self.trie else self.dist[self.start]

    def count_words(self, max_length: int, limit: int) -> int:
        """How many words of at most ``max_length`` tokens are accepted (at most ``limit``)."""
        hashed = 0 if self.hashed is None else len(self.hashed)  # counted as if all were accepted: fewer, never more
        excluded = (self.trie.excluded(max_length) if self.trie else 0) + hashed
        limit += excluded
        ways = [int(a) for a in self.accepting]  # accepted words of exactly k more tokens from each state
        total = list(ways)
        for _ in range(max_length):
            ways = [min(sum(ways[t] for t in row if t >= 0), limit) for row in self.next]
            total = [min(a + b, limit) for a, b in zip(total, ways)]
        return max(total[self.start] - excluded, 0)


def read_ban(value: str) -> list[str]:
    """``--ban FILE_OR_STRING``: the lines of a file, or the string itself."""
    path = Path(value)
    if not path.is_file():
        if not value.strip():
            raise UsageError("an empty string bans nothing", where="--ban ''")
        return [value]
    lines = [line.strip() for line in _read_lines(path, "--ban")]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise UsageError("the file bans nothing: it has no line", where=f"--ban {value}",
                         hint="one banned substring a line; # starts a comment")
    return lines


def read_words(path: str) -> list[str]:
    """``--exclude FILE``: one word a line."""
    words = [line.strip() for line in _read_lines(Path(path), "--exclude")]
    return [w for w in words if w]


def _read_lines(path: Path, flag: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read the file ({exc.strerror})", where=f"{flag} {path}") from None
    except UnicodeDecodeError:
        raise UsageError("the file is not UTF-8 text", where=f"{flag} {path}") from None


def compile_constraints(constraints: Constraints, tokenizer: Any, *, hash_excluded: bool = True) -> Automaton:
    """The automaton of ``constraints`` over ``tokenizer``'s ids; a UsageError naming the
    reason when no word can meet them. ``hash_excluded=False`` puts every excluded word in
    the trie (the tests compare both)."""
    texts = [tokenizer.decode([v]) if v != tokenizer.boundary_id else "" for v in range(tokenizer.vocab_size)]
    named = _parts(constraints, tokenizer)
    try:
        tables = _product([p for _, p in named], constraints.min_length, texts, tokenizer.boundary_id)
    except UsageError:  # too many states: unless one request alone cannot be met
        _refuse_the_impossible(named, constraints.min_length, texts, tokenizer.boundary_id)
        raise
    if tables is None:
        _refuse_the_impossible(named, constraints.min_length, texts, tokenizer.boundary_id)
        raise UsageError(f"no word meets all these constraints together: {constraints.describe()}")
    automaton = Automaton(constraints, tokenizer.vocab_size, tokenizer.boundary_id, *tables,
                          encode=lambda word: _encode(tokenizer, word), decode=tokenizer.decode,
                          normalize=tokenizer.normalize, normalize_lines=getattr(tokenizer, "normalize_lines", None),
                          letters=_letters(tokenizer, texts))
    if constraints.exclude:
        from .word_hash import split

        keys, rest = (split(automaton, constraints.exclude, len(constraints.exclude)) if hash_excluded
                      else (None, constraints.exclude))
        automaton.hashed = keys if keys is not None and len(keys) else None
        automaton.trie = Trie.build(automaton, rest) if rest else None
    _refuse_if_too_long(automaton)
    return automaton


def exclude_more(automaton: Automaton, words: Iterable[str], tokenizer: Any) -> Automaton:
    """``automaton`` with ``words`` excluded too (``--unique``'s rounds): their keys join the
    hashed words' when all of them may be hashed and the room that makes hashing safe has not
    grown with their number; else the constraints are compiled afresh."""
    import dataclasses

    import torch

    from .word_hash import safe_room, split

    c = automaton.constraints
    constraints = dataclasses.replace(c, exclude=c.exclude | frozenset(words))
    added = constraints.exclude - c.exclude
    if automaton.hashed is not None and added:
        room = safe_room(automaton, len(constraints.exclude))
        if room is not None and room == safe_room(automaton, len(c.exclude)):
            keys, rest = split(automaton, added, len(constraints.exclude))
            if not rest:
                return dataclasses.replace(automaton, constraints=constraints,
                                           hashed=torch.unique(torch.cat([automaton.hashed, keys])))
    return compile_constraints(constraints, tokenizer)


def _parts(constraints: Constraints, tokenizer: Any) -> list[tuple[str, Any]]:
    """The automaton of each request, with the flag that asked for it."""
    def literal(text: str, mode: str, flag: str) -> tuple[str, Literal]:
        where = f"{flag} {text!r}"
        if not text:
            raise UsageError("an empty string", where=where)
        tokenizer.encode(text, source=where)  # a letter the model never saw is named
        return where, Literal(tokenizer.normalize(text), mode)

    parts = []
    if constraints.prefix:
        parts.append(literal(constraints.prefix, "prefix", "--prefix"))
    if constraints.suffix:
        parts.append(literal(constraints.suffix, "suffix", "--suffix"))
    parts += [literal(c, "contains", "--contains") for c in constraints.contains]
    if constraints.pattern is not None:
        parts.append((f"--pattern {constraints.pattern!r}", Pattern(constraints.pattern, tokenizer.normalize)))
    for banned in constraints.ban:
        key = (lambda c: c) if constraints.ban_exact else fold
        text = tokenizer.normalize(banned) if constraints.ban_exact else fold(banned)
        if not text:
            raise UsageError("an empty string bans nothing", where=f"--ban {banned!r}")
        parts.append((f"--ban {banned!r}", Literal(text, "ban", key)))
    return parts


def _refuse_the_impossible(named: list[tuple[str, Any]], min_length: int, texts: list[str], boundary: int) -> None:
    """A UsageError naming the first request that no word can meet alone, if one cannot
    (asked only once the product of all of them has failed: their product is the common case)."""
    for flag, part in named:
        if _product([part], min_length, texts, boundary) is None:
            raise UsageError("no word the model can write meets it", where=flag,
                             hint=f"the model knows: {''.join(t for t in texts if t)}")


def _product(parts: list[Any], min_length: int, texts: list[str], boundary: int):
    """next, accepting, dist and start of the product of ``parts`` and a counter of tokens
    up to ``min_length``, kept to the states that can reach acceptance; None if the start
    cannot."""
    start = (tuple(p.start for p in parts), 0)
    if any(s is None for s in start[0]) or any(isinstance(s, frozenset) and not s for s in start[0]):
        return None
    index, states, edges = {start: 0}, [start], []
    for state in states:  # breadth first: states grows as it is read
        row = []
        for v, text in enumerate(texts):
            after = None if v == boundary or not text else _step(parts, state, text, min_length)
            if after is not None and after not in index:
                if len(states) >= MAX_STATES:
                    raise UsageError(f"the constraints make an automaton of more than {MAX_STATES:,} states",
                                     hint="simplify --pattern or use fewer --contains")
                index[after] = len(states)
                states.append(after)
            row.append(-1 if after is None else index[after])
        edges.append(row)
    accepting = [count >= min_length and all(p.accepts(s) for p, s in zip(parts, inner)) for inner, count in states]
    dist = _distances(edges, accepting)
    if dist[0] >= INF:
        return None
    live = [i for i in range(len(states)) if dist[i] < INF]
    renumber = {old: new for new, old in enumerate(live)}
    nxt = [[renumber.get(t, -1) for t in edges[i]] for i in live]
    return nxt, [accepting[i] for i in live], [dist[i] for i in live], 0


def _step(parts: list[Any], state: tuple, text: str, min_length: int) -> tuple | None:
    inner, count = state
    after = []
    for part, s in zip(parts, inner):
        for char in text:
            s = part.step(s, char)
            if s is None:
                return None
        after.append(s)
    return tuple(after), min(count + 1, min_length)


def _distances(edges: list[list[int]], accepting: list[bool]) -> list[int]:
    """The fewest tokens from each state to an accepting one: breadth first, backwards."""
    before: list[list[int]] = [[] for _ in edges]
    for s, row in enumerate(edges):
        for t in set(row):
            if t >= 0:
                before[t].append(s)
    dist = [0 if a else INF for a in accepting]
    frontier = [s for s, a in enumerate(accepting) if a]
    while frontier:
        following = []
        for t in frontier:
            for s in before[t]:
                if dist[s] >= INF:
                    dist[s] = dist[t] + 1
                    following.append(s)
        frontier = following
    return dist


def _encode(tokenizer: Any, word: str) -> list[int] | None:
    """The ids of ``word``, or None if it has a character the model never saw (such a word
    can never come out, so excluding it changes nothing)."""
    try:
        return tokenizer.encode(word)
    except UsageError:
        return None


def _letters(tokenizer: Any, texts: list[str]) -> dict[str, int] | None:
    """Each character's id, if every token but the boundary is one character that encodes to
    it alone; else None."""
    letters = {t: v for v, t in enumerate(texts) if v != tokenizer.boundary_id}
    ok = all(len(t) == 1 and _encode(tokenizer, t) == [v] for t, v in letters.items())
    return letters if ok else None


def _refuse_if_too_long(automaton: Automaton) -> None:
    c = automaton.constraints
    if c.max_length is None:
        return
    for flag, text in (("--suffix", c.suffix), ("--prefix", c.prefix)):
        if len(text) > c.max_length:
            raise UsageError(f"{text!r} has {len(text)} letters, more than --max-length ({c.max_length})",
                             where=flag)
    shortest = automaton.shortest()
    if shortest >= INF:
        raise UsageError("every word the constraints allow is excluded (--exclude, --novel)")
    if shortest > c.max_length:
        raise UsageError(f"the shortest word these constraints allow has {shortest} letters, more than "
                         f"--max-length ({c.max_length}): {c.describe()}")
