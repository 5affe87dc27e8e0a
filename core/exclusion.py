"""The words that must never come out, as a trie joined to the constraints' automaton.

A node is a beginning of an excluded word; the automaton state that beginning reaches is
fixed, so the node carries it. A word being drawn is on the trie while its letters are the
beginning of an excluded word, and off it for good after the first letter that is not.

The end of an excluded word is blocked: the boundary is not allowed at its node. Blocking it
may leave a beginning with fewer ways on than the automaton alone promises (the corpus word
"Madrid" under --max-length 6 leaves "Madri" no letter), so each node also carries its own
``dist``, the fewest tokens to an accepted word that is not excluded, and the tokens whose
``need`` differs from the automaton's (``exception_token``, ``exception_need``). A sampler
looks those up only for the words still on the trie.

A list of 100,000 words makes a trie of some 700,000 nodes, so it is built with tensor
operations (sorting the words, numbering their beginnings), never a loop per letter in
Python. torch is imported when a trie is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .constraints import Automaton

NEVER = 1 << 30


@dataclass
class Trie:
    """Node 0 is the root (the empty beginning); a child's index is larger than its parent's."""

    state: Any  # (N,) the automaton state of each node's beginning
    end: Any  # (N,) bool: an excluded word ends here
    depth: Any  # (N,) its tokens
    dist: Any  # (N,) the fewest tokens from it to an accepted word that is not excluded
    keys: Any  # (N - 1,) parent * V + token, sorted
    child: Any  # (N - 1,) the node each key leads to
    exception_token: Any  # (N, K) the tokens whose need differs from the automaton's; padded with V
    exception_need: Any  # (N, K) their need
    vocab_size: int = 0

    @classmethod
    def build(cls, automaton: Automaton, words: Iterable[str]) -> Trie:
        """The trie of the ``words`` the automaton accepts (the others can never come out)."""
        import torch

        with torch.inference_mode():
            # each word once, in order: words that share a beginning lie together, a word
            # before the words it begins
            ids, length = _encode(automaton, sorted(set(map(automaton.normalize, words))))  # (W, L), padded with -1
            states = _walk(automaton, ids, length)
            ids, length, states = _accepted(automaton, ids, length, states)
            return _number(automaton, ids, length, states)

    def child_of(self, node: int, token: int) -> int:
        """The child of ``node`` by ``token``, or -1."""
        import torch

        key = node * self.vocab_size + token
        at = int(torch.searchsorted(self.keys, torch.tensor(key)))
        return int(self.child[at]) if at < len(self.keys) and int(self.keys[at]) == key else -1

    def excluded(self, max_length: int) -> int:
        """How many excluded words of at most ``max_length`` tokens the automaton accepts."""
        return int((self.end & (self.depth <= max_length)).sum())

    def __len__(self) -> int:
        return len(self.state)


def _encode(automaton: Automaton, words: list[str]) -> tuple[Any, Any]:
    """The ids of ``words`` (normalised) in a (W, L) tensor padded with -1, and their
    lengths; the words with a character the model never saw are left out."""
    import torch

    flat, length, _ = encode_flat(automaton, words)
    longest = int(length.max()) if len(length) else 0
    ids = torch.full((len(length), longest), -1, dtype=torch.long)
    ids[torch.arange(longest) < length[:, None]] = flat
    return ids, length


def encode_flat(automaton: Automaton, words: list[str]) -> tuple[Any, Any, Any]:
    """The ids of ``words`` (normalised) one after the other (N,), their lengths (W,) and
    which of ``words`` they are (W,): the empty words and those with a character the model
    never saw are left out."""
    import torch

    if automaton.letters is None:  # tokens of several characters: one word at a time
        return encode_one_by_one(automaton, words)
    # a token per character: all the words as one string, each character to its id
    base, vocab = 0x100000, automaton.vocab_size  # ids as code points of plane 16, V: the end of a word
    table = {ord(c): base + i for c, i in automaton.letters.items()} | {ord("\n"): base + vocab}
    text = "\n".join(words) + "\n"
    codes = torch.frombuffer(bytearray(text.translate(table).encode("utf-32-le")), dtype=torch.int32).long() - base
    ends = (codes == vocab).nonzero().squeeze(1)
    if len(ends) != len(words):  # a line break inside a word
        return encode_one_by_one(automaton, words)
    length = torch.diff(ends, prepend=torch.tensor([-1])) - 1
    letter = codes != vocab
    word = torch.repeat_interleave(torch.arange(len(ends)), length + 1)[letter]
    codes = codes[letter]
    known = torch.ones(len(ends), dtype=torch.bool)
    known[word[(codes < 0) | (codes >= vocab)]] = False  # an unknown character
    kept = known & (length > 0)
    return codes[known[word]], length[kept], kept.nonzero().squeeze(1)


def encode_one_by_one(automaton: Automaton, words: list[str]) -> tuple[Any, Any, Any]:
    """``encode_flat``, a word at a time."""
    import torch

    encoded = [(i, ids) for i, ids in enumerate(map(automaton.encode, words)) if ids]
    length = torch.tensor([len(e) for _, e in encoded], dtype=torch.long)
    flat = torch.tensor([i for _, e in encoded for i in e], dtype=torch.long)
    return flat, length, torch.tensor([i for i, _ in encoded], dtype=torch.long)


def _walk(automaton: Automaton, ids: Any, length: Any) -> Any:
    """(W, L) the automaton state after each token of each word, -1 once it is out."""
    import torch

    moves = torch.tensor(automaton.next, dtype=torch.long)  # (S, V), -1: out
    order = torch.argsort(length, descending=True)  # the words still going at d come first
    going = (len(ids) - torch.bincount(length, minlength=ids.shape[1] + 1).cumsum(0)).tolist()
    ids_by_length = ids[order]
    state = torch.full((len(ids),), automaton.start, dtype=torch.long)
    states = torch.full_like(ids, -1)
    for d in range(ids.shape[1]):
        k = going[d]
        now = state[:k]
        state[:k] = now = torch.where(now >= 0, moves[now.clamp(min=0), ids_by_length[:k, d]], -1)
        states[order[:k], d] = now
    return states


def _accepted(automaton: Automaton, ids: Any, length: Any, states: Any) -> tuple[Any, Any, Any]:
    """The words the automaton accepts (the others can never come out)."""
    import torch

    final = states[torch.arange(len(ids)), (length - 1).clamp(min=0)]
    accepting = torch.tensor(automaton.accepting, dtype=torch.bool)
    keep = (length > 0) & (final >= 0) & accepting[final.clamp(min=0)]
    return ids[keep], length[keep], states[keep]


def _number(automaton: Automaton, ids: Any, length: Any, states: Any) -> Trie:
    """Number the distinct beginnings of the sorted words: the beginning of length d + 1 of
    word i is a new node where it differs from word i - 1's, else that word's node."""
    import torch

    count, longest = ids.shape
    column = torch.arange(longest)
    shared = torch.zeros(count, dtype=torch.long)  # letters word i shares with word i - 1
    if count > 1:
        differ = torch.cat([ids[1:] != ids[:-1], torch.ones(count - 1, 1, dtype=torch.bool)], dim=1)
        shared[1:] = differ.int().argmax(dim=1)
    new = (column >= shared[:, None]) & (column < length[:, None])  # (W, L)
    numbers = torch.where(new, new.flatten().cumsum(0).view(count, longest), 0)
    node = torch.cummax(numbers, dim=0).values  # a shared beginning: the node above it
    total = int(new.sum()) + 1
    word, d = new.nonzero(as_tuple=True)  # row-major: in the order of the nodes' numbers
    parent = torch.zeros(total, dtype=torch.long)
    parent[1:] = torch.where(d > 0, node[word, (d - 1).clamp(min=0)], 0)
    token = torch.full((total,), automaton.boundary, dtype=torch.long)
    token[1:] = ids[word, d]
    state = torch.full((total,), automaton.start, dtype=torch.long)
    state[1:] = states[word, d]
    depth = torch.zeros(total, dtype=torch.long)
    depth[1:] = d + 1
    end = torch.zeros(total, dtype=torch.bool)
    end[node[torch.arange(count), length - 1]] = True
    vocab = automaton.vocab_size
    keys, order = torch.sort(parent[1:] * vocab + token[1:])
    trie = Trie(state=state, end=end, depth=depth, dist=None, keys=keys, child=order + 1, exception_token=None,
                exception_need=None, vocab_size=vocab)
    _measure(trie, automaton, parent, token)
    return trie


def _measure(trie: Trie, automaton: Automaton, parent: Any, token: Any) -> None:
    """Each node's dist, deepest first, and the tokens whose need differs from the automaton's."""
    import torch

    moves = torch.tensor(automaton.next, dtype=torch.long)
    base = torch.tensor([d if d < NEVER else NEVER for d in automaton.dist], dtype=torch.long)
    need = torch.where(moves >= 0, 1 + base[moves.clamp(min=0)], NEVER)  # (S, V)
    accepting = torch.tensor(automaton.accepting, dtype=torch.bool)
    need[:, automaton.boundary] = torch.where(accepting, 0, NEVER)
    # off the trie: the fewest a node's state needs by a token that is not one of its
    # children's: the smallest need value of which the state has more tokens than children
    child = torch.arange(1, len(trie))
    base = need[trie.state[parent[child]], token[child]]  # (N - 1,) each child's need off the trie
    letters = need.clone()
    letters[:, automaton.boundary] = NEVER
    values = torch.unique(letters[letters < NEVER])  # (K,) the need values there are
    per_state = (letters[:, :, None] == values).sum(dim=1)  # (S, K) tokens of each need value
    per_node = torch.zeros(len(trie), len(values), dtype=torch.long)
    per_node.index_put_((parent[child], torch.searchsorted(values, base)), torch.ones_like(base), accumulate=True)
    spare = per_state[trie.state] > per_node  # (N, K)
    dist = torch.where(spare, values, NEVER).min(dim=1).values if len(values) else torch.full((len(trie),), NEVER)
    dist = torch.where(accepting[trie.state] & ~trie.end, 0, dist)
    # on the trie: through each child, deepest first
    by_depth = torch.argsort(trie.depth, stable=True)
    starts = [0, *torch.bincount(trie.depth).cumsum(0).tolist()]
    for level in range(len(starts) - 2, 0, -1):
        nodes = by_depth[starts[level]:starts[level + 1]]
        dist.scatter_reduce_(0, parent[nodes], (1 + dist[nodes]).clamp(max=NEVER), reduce="amin")
    trie.dist = dist
    own = (1 + dist[child]).clamp(max=NEVER)
    differs = own != base
    at = torch.cat([parent[child][differs], trie.end.nonzero().squeeze(1)])
    tokens = torch.cat([token[child][differs], torch.full((int(trie.end.sum()),), automaton.boundary)])
    needs = torch.cat([own[differs], torch.full((int(trie.end.sum()),), NEVER)]).clamp(max=NEVER)
    order = torch.argsort(at, stable=True)
    at, tokens, needs = at[order], tokens[order], needs[order]
    per_node = torch.bincount(at, minlength=len(trie))
    place = torch.arange(len(at)) - (per_node.cumsum(0) - per_node)[at]
    widest = int(per_node.max()) if len(at) else 0
    trie.exception_token = torch.full((len(trie), widest), automaton.vocab_size, dtype=torch.long)
    trie.exception_token[at, place] = tokens
    trie.exception_need = torch.zeros((len(trie), widest), dtype=torch.int32)
    trie.exception_need[at, place] = needs.int()
