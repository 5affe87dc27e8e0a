"""psi: the chance that the sampler, going on from a word in a state of the constraints'
automaton, writes a word they accept, counted from the sampler's own words (the look-ahead
of ``letras.plugins.samplers.lookahead``).

Before the drafts, ``SAMPLE_WORDS`` words are drawn without constraints (temperature, top-k
and top-p included), and every letter of every word leaves a tail, the letters after it and
the end. psi(s', b, c, l') is the share of the tails after a letter c drawn where the model's
chance of ending was in bucket b (``END_EDGES``; a word's first letter has its own) that,
read from the automaton's state s' (its tables, for every state at once), end accepted,
shrunk towards the share after any letter of bucket b of at most l' letters (the room left),
that towards the share over all the tails, and that towards a prior exp(-dist[s']): each by a
gamma prior on the ratio of a share to the coarser one (``SHRINK``), so that the one sampled
word a rare constraint accepts does not become a rule, nor a state no tail reached a wall.
The letter and the chance of ending are what the sampler's own distribution sees of the word
so far; the state is what the constraints see. With the state alone, psi hardly told one
letter from another, and the words ran on to --max-length (docs/performance.md). The prior
keeps psi above zero wherever the constraints leave a way (dist[s'] <= l'), so the proposal
is positive wherever the conditioned distribution is. Excluded words (``--exclude``,
``--novel``) are left to the mask: psi does not know them.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch

from letras.core.letter_mask import NEVER

from .sampling import draw

SAMPLE_WORDS = 2000  # the words whose tails psi is counted from: 0.05 s on a CPU (10,000 words: 0.14 s)
END_EDGES = (0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.7)  # the model's chance of ending a word, in buckets
FIRST = len(END_EDGES) + 1  # the bucket of a word's first letter: tails of whole words, not of their ends
BUCKETS = FIRST + 1
SHRINK = 1.0  # accepted tails: how much a share of few tails is pulled towards a coarser share
TABLE_BYTES = 64 << 20  # past it, each step computes its rows of psi rather than gather them
COUNT_BYTES = 64 << 20  # past it (an automaton of some 14,000 states), no look-ahead: see fits()


def end_bucket(p_end: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """The bucket of each of the model's chances of ending ``p_end`` (FIRST where ``first``)."""
    return torch.bucketize(p_end.contiguous(), _edges(p_end.device)).masked_fill_(first, FIRST)


@functools.lru_cache(maxsize=None)
def _edges(device: torch.device) -> torch.Tensor:
    return torch.tensor(END_EDGES, device=device)  # once per device, not a copy to it per letter


def accepted_tails(drawn: torch.Tensor, bucket: torch.Tensor, boundary: int, moves: torch.Tensor,
                   accepting: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """How the tails of the words ``drawn`` (W, L) fare from each state of the automaton
    (``moves`` (S, V), -1 where no accepted word goes on; ``accepting`` (S,) bool). A word's
    letters run up to the boundary (one that never ends has no tail that ends); a tail is the
    letters after one of them, and the end; ``bucket`` (W, L) holds the bucket of the model's
    chance of ending where each letter was drawn. Returns

    - (S, BUCKETS * V) by_letter[s, b * V + c]: the tails after a letter c of bucket b that,
      read from s, end accepted;
    - (S, BUCKETS, L + 1) by_length[s, b, k]: those of k letters after a letter of bucket b;
    - (BUCKETS * V,) after[b * V + c]: the tails after a letter c of bucket b.

    Backwards from each word's end: whether its last k letters end accepted from s is whether
    its last k - 1 do from the state its k-th letter from the end leads s to, every state at
    once."""
    (S, V), L = moves.shape, drawn.shape[1]
    ended = drawn == boundary
    length = torch.where(ended.any(dim=1), ended.int().argmax(dim=1), L)  # letters; L: never ended
    context = bucket * V + drawn.clamp(max=V - 1)  # each letter and its bucket
    after = torch.bincount(context[torch.arange(L, device=drawn.device) < length[:, None]], minlength=BUCKETS * V)
    keep = (length < L) & (length > 0)
    length, order = length[keep].sort(descending=True)  # the words going on at a backward step: a prefix
    drawn, context = drawn[keep][order], context[keep][order]
    onward = torch.cat([moves.masked_fill(moves < 0, S), torch.full_like(moves[:1], S)])  # (S + 1, V); S: dead
    end = torch.cat([accepting.float(), torch.zeros(1, device=drawn.device)])
    by_letter = torch.zeros(S, BUCKETS * V, device=drawn.device)
    by_length = torch.zeros(S, BUCKETS * (L + 1), device=drawn.device)
    chunk = max(1, (1 << 22) // (S + 1))  # words at a time: (words, S + 1) stays small
    for first in range(0, len(length), chunk):
        n, ok = length[first:first + chunk], end.expand(min(chunk, len(length) - first), -1)  # the empty tails
        for k in range(int(n[0])):  # the tails of k letters, after the letter n - k - 1
            if k:
                ok, n = ok[:int((n > k).sum())], n[:int((n > k).sum())]
                letter = drawn[first:first + len(n)].gather(1, (n - k)[:, None])
                ok = ok.gather(1, onward[:, letter.squeeze(1)].T)  # before the tail's first letter, from every state
            before = context[first:first + len(n)].gather(1, (n - k - 1)[:, None]).squeeze(1)
            by_letter.index_add_(1, before, ok[:, :S].T.contiguous())
            by_length.index_add_(1, before // V * (L + 1) + k, ok[:, :S].T.contiguous())
    return by_letter, by_length.view(S, BUCKETS, L + 1), after.float()


def by_bucket(by_length: torch.Tensor, after: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """(S, BUCKETS, L + 1) psi from the tails after a letter of bucket b of at most l letters
    that end accepted from s (``accepted_tails``' counts), shrunk towards psi from all the
    tails, and that towards the prior exp(-dist[s]) (``dist`` (S,): the fewest letters to an
    accepted state); zero where dist[s] > l."""
    L = by_length.shape[2] - 1
    possible = (dist[:, None] <= torch.arange(L + 1, device=dist.device)).float()  # (S, L + 1)
    within = by_length.cumsum(dim=2)  # the tails of at most l letters
    prior = torch.exp(-dist.float().clamp(max=80.0))[:, None] * possible
    pooled = prior * _shrunk(within.sum(dim=1), float(after.sum()) * prior)  # (S, L + 1)
    tails = after.view(BUCKETS, -1).sum(dim=1)[:, None]  # (BUCKETS, 1)
    return pooled[:, None] * _shrunk(within, tails * pooled[:, None])


class Outlook:
    """psi of every letter for a word in automaton state s, with l letters left, where the
    model's chance of ending is in bucket b: for letter c, psi(s', b, c, l - 1) of the state s'
    it leads to (0.0 where the automaton blocks it); for the end, 1.0 where s accepts.

    ``mask``: the constraints' ``LetterMask``; ``accepted_tails``' counts; ``dist`` (S,) the
    fewest letters from each state to an accepted one."""

    def __init__(self, mask: Any, by_letter: torch.Tensor, by_length: torch.Tensor, after: torch.Tensor,
                 dist: torch.Tensor):
        S, V = mask.moves.shape
        self.room, self.boundary, self.step_to = by_length.shape[2] - 1, mask.boundary, mask.moves  # never -1
        self.moves, accepting = _live_moves(mask)
        self.accepting = accepting.float()
        self.by_letter, self.after = by_letter, after
        self.by_bucket = torch.nn.functional.pad(by_bucket(by_length, after, dist), (1, 0))  # column l: l - 1 left
        # a row per state, bucket and room, gathered at each step; past TABLE_BYTES, computed
        self.table = self._table() if S * BUCKETS * (self.room + 1) * V * 4 <= TABLE_BYTES else None

    @staticmethod
    def fits(mask: Any, room: int) -> bool:
        """Whether psi's counts for ``mask``'s automaton, ``room`` letters, fit COUNT_BYTES:
        they take a row per state, and counting them reads every tail from every state."""
        S, V = mask.moves.shape
        return S * BUCKETS * (V + room + 1) * 4 <= COUNT_BYTES

    @classmethod
    def estimate(cls, mask: Any, room: int, draw_with: Callable[[Any, int], torch.Tensor],
                 transform: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator | None,
                 words: int | None = None) -> Outlook:
        """From ``words`` (``SAMPLE_WORDS``) words of at most ``room`` letters drawn without
        constraints from the sampler's distribution (``transform(logits) -> logits``), with
        ``generator``: ``draw_with(letters, n) -> (n, room)`` draws n words by the policy
        ``letters``."""
        moves, accepting = _live_moves(mask)
        words = words or SAMPLE_WORDS
        recording = _Recording(transform, generator, mask.boundary, words, room, moves.device)
        tails = accepted_tails(draw_with(recording, words), recording.bucket[:words, :room], mask.boundary,
                               moves, accepting)
        return cls(mask, *tails, torch.tensor(mask.automaton.dist, device=moves.device))

    def rows(self, states: torch.Tensor, left: torch.Tensor, bucket: torch.Tensor) -> torch.Tensor:
        """(B, V) for words in ``states`` (B,) with ``left`` (B,) letters left, their chance
        of ending in ``bucket`` (B,)."""
        left = left.clamp(0, self.room)
        if self.table is not None:
            return self.table.index_select(0, (states * BUCKETS + bucket) * (self.room + 1) + left)
        return self._rows(states, bucket, left)

    def moves_of(self, states: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The states (B,) after ``states`` (B,) draw ``ids`` (B,) (after the end: where it ended)."""
        return self.step_to.view(-1).index_select(0, states * self.step_to.shape[1] + ids)

    def _table(self) -> torch.Tensor:
        """(S * BUCKETS * (room + 1), V) the rows of every state, bucket and room, as ``_rows``
        computes them, a state's letters at a time."""
        V, B = self.moves.shape[1], BUCKETS
        live = self.moves.clamp(min=0)
        backed = self.by_bucket[live][..., : self.room + 1].permute(0, 2, 3, 1)  # (S, B, room + 1, V): by letter
        backed = backed * (self.moves >= 0)[:, None, None, :]
        letter = self.by_letter.view(-1, B, V)[live, :, torch.arange(V, device=live.device)]  # (S, V, B)
        rows = backed * _shrunk(letter.permute(0, 2, 1)[:, :, None, :], self.after.view(B, 1, V) * backed)
        rows[..., self.boundary] = self.accepting[:, None, None]
        return rows.reshape(-1, V)

    def _rows(self, states: torch.Tensor, bucket: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
        after = self.moves.index_select(0, states)  # (B, V): each letter's state
        live = after.clamp(min=0)
        context = bucket[:, None] * after.shape[1] + torch.arange(after.shape[1], device=after.device)
        backed = self.by_bucket[live, bucket[:, None], left[:, None]] * (after >= 0)  # 0 where no way is left
        rows = backed * _shrunk(self.by_letter[live, context], self.after[context] * backed)
        rows[:, self.boundary] = self.accepting.index_select(0, states)
        return rows


class _Recording:
    """Draws each letter from the sampler's distribution (``transform``'s), keeping the bucket
    of its chance of ending where each of ``count`` words drew each of its ``room`` letters."""

    extra, in_order = 0, False

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator | None,
                 boundary: int, count: int, room: int, device: Any):
        self.transform, self.generator, self.boundary = transform, generator, boundary
        self.bucket = torch.zeros(count + 1, room + 1, dtype=torch.long, device=device)  # the sink, a spare column
        self.position = torch.zeros(count + 1, dtype=torch.long, device=device)

    def in_tree(self, tree: Any) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, None]]:
        p = torch.softmax(self.transform(tree.logits), dim=-1)  # at every node, once for all
        cdf = p.cumsum(dim=1)

        def pick(words: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, None]:
            self._record(words, p[nodes, self.boundary])
            return draw(cdf[nodes], self.generator), None

        return pick

    def next(self, logits: torch.Tensor, codes: None, words: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(self.transform(logits), dim=-1)
        self._record(words, p[:, self.boundary])
        return draw(p.cumsum_(dim=1), self.generator)

    def _record(self, words: torch.Tensor, p_end: torch.Tensor) -> None:
        at = self.position.index_select(0, words)
        self.bucket[words, at] = end_bucket(p_end, at == 0)
        self.position[words] = (at + 1).clamp_(max=self.bucket.shape[1] - 1)  # the sink's row draws on


def _shrunk(accepted: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """How many times more often some tails end accepted than a coarser estimate says:
    ``accepted`` of them did where ``expected`` would have, shrunk towards 1 by SHRINK
    accepted tails on each side (a gamma prior on the ratio), so that one rare tail is not
    taken for a rule, nor the want of one for a wall."""
    return (accepted + SHRINK) / (expected + SHRINK)


def _live_moves(mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, V) the state each token leads to, -1 where no accepted word goes on (the end: where
    the state does not accept); (S,) bool, whether each state accepts."""
    return torch.where(mask.need < NEVER, mask.moves, -1), mask.need[:, mask.boundary] == 0
