"""Excluded words as hashes of their tokens, for the exclusion lists too long for a trie.

A word being drawn carries the hash of its tokens so far, one multiply-add a letter; its end
is blocked where that hash is in the sorted tensor of the excluded words' hashes (a filter
of a bool per slot, then one ``searchsorted`` for the few words it lets through, a step:
``letras.core.letter_mask``). Two polynomial hashes modulo primes below 2**31 make a 62-bit key:
no product overflows int64 on any device, and a word that is not excluded shares its key with
one of 100,000 excluded words about once in 10**13 draws.

Blocking an end this way cannot leave a word stuck when the word has other ways on: more
accepted words extend it within the room ``max_length`` leaves than there are excluded words
at all, so at least one of them is not excluded. ``split`` keeps the excluded words that
meet this (nearly all of a long list under the default --max-length 50) for hashing and
leaves the others (words near --max-length, or a --pattern of few words) to the trie
(``letras.core.exclusion``), which knows every way on. torch is imported when it is used.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .constraints import Automaton

MODULI = (2_147_483_647, 2_147_483_629)  # primes below 2**31
BASES = (1_000_003, 911_382_323)
LOW = (1 << 31) - 1
CHUNK_WORDS = 1 << 14  # words hashed at once (see _keys_of)


def extend(key: Any, ids: Any) -> Any:
    """The keys (B,) int64 of words after each reads its token in ``ids`` (B,)."""
    import torch

    # in place where it can, and a product added in one call: a step at 1,000 words is
    # a dozen such calls, each costing about what the arithmetic does
    ids = ids + 1
    high = torch.add(ids, key >> 31, alpha=BASES[0]).remainder_(MODULI[0])
    low = torch.add(ids, key & LOW, alpha=BASES[1]).remainder_(MODULI[1])
    return high.bitwise_left_shift_(31).bitwise_or_(low)


def key_of(ids: Iterable[int]) -> int:
    """The key of one word's tokens, as ``extend`` computes it step by step."""
    high = low = 0
    for i in ids:
        high, low = (high * BASES[0] + i + 1) % MODULI[0], (low * BASES[1] + i + 1) % MODULI[1]
    return high << 31 | low


def split(automaton: Automaton, words: Iterable[str], total: int) -> tuple[Any, list[str]]:
    """The sorted keys (K,) of the excluded ``words`` safe to hash (see the module) when
    ``total`` words are excluded in all, and the words left for the trie."""
    import torch

    words = list(words)
    room = safe_room(automaton, total)
    if room is None or not words:
        return torch.zeros(0, dtype=torch.long), words
    key, length, known = _keys_of(automaton, words)  # a word with an unknown character never comes out
    longest = automaton.constraints.max_length
    drawable = known & (length > 0)
    if longest is not None:
        drawable &= length <= longest  # a longer word never comes out: neither hashed nor in the trie
    safe = drawable if longest is None else drawable & (length <= longest - room)
    return torch.unique(key[safe]), [words[i] for i in (drawable & ~safe).nonzero().squeeze(1).tolist()]


def _keys_of(automaton: Automaton, words: list[str]) -> tuple[Any, Any, Any]:
    """(W,) each word's key, its length in tokens and whether the model knows all its
    characters (else its key and length mean nothing).

    A token per character (``automaton.letters``): all the words are one string, read as code
    points into a tensor, each turned into (its id + 1) by a table; a word's key is then the
    sum of each token's (id + 1) times the base to the power of the tokens after it in the
    word, modulo each prime, read from a table of those terms (``_terms``); a cumulative sum
    of the terms over the whole string taken at the words' ends gives each word's sum. No
    Python loop over letters: 100,000 words of 13 letters take about 18 ms.

    CHUNK_WORDS words at a time: a tensor over all 100,000 words' letters takes 5 to 22 MB,
    fresh pages of memory each, whose first touch (page faults) cost as much as the
    arithmetic; a part's tensors take the memory the last part's freed (right after drawing
    words, compiling 100,000 of them took 44 ms in one part, 25-33 ms in parts).
    """
    import torch

    if not words:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.bool)
    parts = [_keys_of_part(automaton, words[i:i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]
    return tuple(torch.cat(columns) for columns in zip(*parts))  # type: ignore[return-value]


def _keys_of_part(automaton: Automaton, words: list[str]) -> tuple[Any, Any, Any]:
    """``_keys_of`` for a part of the words."""
    import torch

    if automaton.letters is None:  # tokens of several characters
        return _keys_one_by_one(automaton, words)
    lines = itertools.chain(words, [""])  # a newline after each word, without copying the text
    if automaton.normalize_lines is not None:
        text = automaton.normalize_lines("\n".join(lines))
    else:
        text = "\n".join(map(automaton.normalize, lines))
    # int32 and in place where it can: each pass over the text's code points (1.4 million
    # for 100,000 words) costs about a millisecond a million
    points = torch.frombuffer(bytearray(text, "utf-32-le"), dtype=torch.int32)
    table = _token_table(automaton)
    # index_select, not indexing: ten times faster over a million entries
    value = table.index_select(0, points.clamp_(max=len(table) - 1))  # (N,) id + 1; 0: the newline, -1: unknown
    ends = (value == 0).nonzero().squeeze(1).int()  # (W,) each word's newline
    # each term is below 2**31, so the sum of all of them fits int64 (N < 2**32). (A word
    # with a newline in it, never drawn, would make two here.)
    if len(ends) != len(words) or len(value) >= 1 << 32:
        return _keys_one_by_one(automaton, words)
    length = torch.diff(ends, prepend=torch.tensor([-1], dtype=torch.int32))
    reach = int(length.max()) - 1
    if automaton.constraints.max_length is not None:
        # a longer word never comes out, so its key need not be right: without the cap, one
        # line of a million characters (a file without line breaks) made a table of gigabytes
        reach = min(reach, automaton.constraints.max_length)
    terms = _terms(reach, automaton.vocab_size)
    # each token's row of terms: the tokens after it in its word, plus one (0 at the newline),
    # times V + 1, plus its value (an unknown character's -1 reads a row that means nothing)
    row = torch.repeat_interleave(ends, length).sub_(torch.arange(len(value), dtype=torch.int32)).clamp_(max=reach)
    row = row.mul_(automaton.vocab_size + 1).add_(value)
    summed = terms.index_select(0, row).cumsum_(0).index_select(0, ends)  # (W, 2): each word's sums, plus those before
    summed = torch.diff(summed, dim=0, prepend=torch.zeros(1, 2, dtype=torch.long)) % torch.tensor(MODULI)
    length -= 1
    known = torch.ones(len(words), dtype=torch.bool)
    known[torch.searchsorted(ends, (value < 0).nonzero().squeeze(1).int())] = False
    return summed[:, 0] << 31 | summed[:, 1], length.long(), known


def _terms(longest: int, vocab: int) -> Any:
    """((longest + 1) * (vocab + 1), 2) int64: in row (e + 1) * (vocab + 1) + v, v times the
    base to the power e, modulo each prime (both columns); rows 0 to vocab: zero."""
    import torch

    columns = []
    for base, modulus in zip(BASES, MODULI):
        powers = torch.tensor([0] + [pow(base, e, modulus) for e in range(longest)])
        columns.append((powers[:, None] * torch.arange(vocab + 1)).view(-1) % modulus)  # below 2**31 * V before %
    return torch.stack(columns, dim=1)


def _keys_one_by_one(automaton: Automaton, words: list[str]) -> tuple[Any, Any, Any]:
    """``_keys_of`` for tokens of several characters: each word encoded alone."""
    import torch

    from .exclusion import encode_one_by_one

    flat, length, which = encode_one_by_one(automaton, words)
    key, lengths = torch.zeros(len(words), dtype=torch.long), torch.zeros(len(words), dtype=torch.long)
    key[which], lengths[which] = _keys(flat, length), length
    known = torch.zeros(len(words), dtype=torch.bool)
    known[which] = True
    return key, lengths, known


def _keys(flat: Any, length: Any) -> Any:
    """The key of each word, its ids one after the other in ``flat``: each token times the
    base to the power of the tokens after it, summed, modulo each prime."""
    import torch

    word = torch.repeat_interleave(torch.arange(len(length)), length)
    after = (length.cumsum(0) - 1)[word] - torch.arange(len(flat))  # tokens after each one in its word
    key = torch.zeros(len(length), dtype=torch.long)
    for base, modulus, shift in ((BASES[0], MODULI[0], 31), (BASES[1], MODULI[1], 0)):
        powers = torch.tensor([pow(base, e, modulus) for e in range(int(length.max()) if len(length) else 0)])
        terms = (flat + 1) * powers[after] % modulus  # < 2**62
        key |= (torch.zeros(len(length), dtype=torch.long).index_add_(0, word, terms) % modulus) << shift
    return key


def _token_table(automaton: Automaton) -> Any:
    """(C + 2,) int32: each code point's token id + 1, up to the largest of the letters'
    and the newline's (C); 0 for the newline, -1 for the others. The last entry, -1, stands
    for any code point above."""
    import torch

    letters = {ord(c): i + 1 for c, i in automaton.letters.items()} | {ord("\n"): 0}
    table = torch.full((max(letters) + 2,), -1, dtype=torch.int32)
    table[torch.tensor(list(letters))] = torch.tensor(list(letters.values()), dtype=torch.int32)
    return table


def safe_room(automaton: Automaton, excluded: int) -> int | None:
    """The fewest tokens of room after an accepted word for which, from every accepting state,
    more than ``excluded`` accepted words extend it; None if no room is enough."""
    import torch

    moves = torch.tensor(automaton.next, dtype=torch.long)  # (S, V), -1: out
    accepting = torch.tensor(automaton.accepting, dtype=torch.bool)
    if not bool(accepting.any()):
        return None
    cap = excluded + 1
    ways = accepting.long()  # accepted words of exactly k more tokens from each state, capped
    extensions = torch.zeros_like(ways)
    longest = automaton.constraints.max_length or 64
    for room in range(1, longest + 1):
        ways = torch.where(moves >= 0, ways[moves.clamp(min=0)], 0).sum(dim=1).clamp(max=cap)
        extensions = (extensions + ways).clamp(max=cap)
        if bool((extensions[accepting] >= cap).all()):
            return room
        if not bool(ways.any()):
            return None
    return None
