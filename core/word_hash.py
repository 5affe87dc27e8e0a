"""Excluded words as hashes of their tokens, for the exclusion lists too long for a trie.

A word being drawn carries the hash of its tokens so far, one multiply-add a letter; its end
is blocked where that hash is in the sorted tensor of the excluded words' hashes (one
``searchsorted`` a step). Two polynomial hashes modulo primes below 2**31 make a 62-bit key:
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

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .constraints import Automaton

MODULI = (2_147_483_647, 2_147_483_629)  # primes below 2**31
BASES = (1_000_003, 911_382_323)
LOW = (1 << 31) - 1


def extend(key: Any, ids: Any) -> Any:
    """The keys (B,) int64 of words after each reads its token in ``ids`` (B,)."""
    high = (key >> 31) * BASES[0] + ids + 1
    low = (key & LOW) * BASES[1] + ids + 1
    return (high % MODULI[0]) << 31 | (low % MODULI[1])


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

    from .exclusion import encode_flat

    words = sorted(set(map(automaton.normalize, words)))
    room = safe_room(automaton, total)
    if room is None or not words:
        return torch.zeros(0, dtype=torch.long), words
    flat, length, which = encode_flat(automaton, words)  # words with an unknown character never come out
    longest = automaton.constraints.max_length
    safe = length <= longest - room if longest is not None else torch.ones_like(length, dtype=torch.bool)
    return torch.unique(_keys(flat, length)[safe]), [words[i] for i in which[~safe].tolist()]


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
