"""Drafts for words under constraints that can forbid a word to end: closing, and particles
(importance resampling) towards the sampler's distribution conditioned on the constraints.

Steering draws each letter from the sampler's distribution p renormalised over the letters
the constraints allow, and where the word may not end, moves the probability p gave its end
onto the letters that finish an accepted word soonest (``LetterMask.apply``): the proposal q.
Alone, that move lasts one letter, and the word wanders on past where the model wanted to end
it ("Orcidarresezaeresejoelesesez" under --suffix ez --contains rr). So a draft that took the
end's share *closes*: it keeps to the soonest letters until it may end ("Solehínrrez"). Which
drafts close is drawn: a soonest letter came from the end's share with probability
p(end) / (p(end) + p(soonest letters)).

That is still not p(word | constraints). A draft's importance weight p(word) / q(word) is the
product over its letters of p(letter) / q(letter). So with K particles a word, K drafts are
drawn, each adding its log weight letter by letter, and the word is one of them, chosen by
weight (importance resampling). As K grows the words come closer to the conditioned
distribution, but not all the way: the weight leaves out the chance that decided whether a
draft closes, so a word that needs a letter other than the soonest after a soonest one keeps
a bias at any K (0.07 in total variation on a toy, at K=16 and at K=128; weighting by the
proposal's chance summed over both paths would remove it).

The drafts are not resampled while they are drawn (sequential Monte Carlo), though that was
tried: whenever a word's effective sample size fell below K / 2 (or K / 10), the drafts that
had already paid for an ending the model did not want were replaced by copies of those that
had not yet, which then paid later, at --max-length. At 16 particles under --suffix ez
--contains rr --min-length 6 the words were 45 letters long on average (35 at K / 10), 14 with
no resampling, 13 under --exact (docs/commands/sample.md).

So the K drafts of a word are K independent draws, and the sampler draws them as it draws any
words (``letras.plugins.samplers.sampling``): on the prefix tree, where drafts that share a
beginning read it once, then in the batch. A tree node is shared only by drafts in the same
state: its beginning fixes the automaton's, and a draft that closes leaves the tree with the
letter that closed it, since it no longer draws what the node's open drafts draw. Each draft
keeps its own log weight and closing flag, by its row of drawn.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from letras.core.letter_mask import BLOCKED, SOONEST

from .sampling import draw


class Drafts:
    """K drafts for each of ``words`` words, draft j of word i in row j * words + i of drawn
    (one more row: the batch's sink), with their log weights log p/q and closing flags.
    ``transform(logits) -> logits``: the sampler's distribution p; ``mask``: the constraints
    (``LetterMask``).

    A word's draft is chosen by the Gumbel-max trick: the draft of the largest log weight
    plus a Gumbel noise drawn for it at the start, which picks each with probability
    proportional to its weight. A draft's log weight never grows (q gives each letter at least
    what p gives it), so a draft whose weight plus noise falls below that of a finished draft
    of its word can never be chosen: it is dropped there and then, which changes no word's
    probability and saves the rest of its letters. The drafts take the batch's rows in their
    order, every word's first before any second, so a word's later drafts mostly meet a
    finished one."""

    extra = 1  # a column past max_length: a draft of max_length letters draws the end, which p weighs
    in_order = True  # every word's first draft takes a row before any second

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor], mask: Any,
                 generator: torch.Generator | None, *, k: int, words: int, device: Any):
        self.transform, self.mask, self.generator, self.k, self.words = transform, mask, generator, k, words
        drafts = k * words
        self.weight = torch.zeros(drafts + 1, device=device)
        self.closing = torch.zeros(drafts + 1, dtype=torch.bool, device=device)
        uniform = torch.rand(drafts + 1, generator=generator, device=device).clamp_(min=1e-30)
        self.noise = -torch.log(-torch.log(uniform))  # Gumbel
        self.word = torch.cat([torch.arange(drafts, device=device) % words, torch.tensor([words], device=device)])
        self.best = torch.full((words + 1,), float("-inf"), device=device)  # per word, the best finished draft's key

    def in_tree(self, tree: Any) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """pick(drafts, nodes) -> (ids, leave) for ``prefix_tree.walk``. Every draft on the
        tree is open (one that closes leaves it), so each node's q is computed once."""
        soonest = _soonest(tree.codes)
        cdf, moved, chance, none = self._proposal(tree.logits, tree.codes, soonest, None)

        def pick(drafts: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            ids = draw(cdf[nodes], self.generator)
            took = soonest[nodes, ids] > 0
            self.weight[drafts] += _gain(cdf[nodes, -1], took, moved[nodes, 0], none[nodes])
            closes = took & (self._uniform(len(ids), ids.device) < chance[nodes])
            self.closing[drafts] = closes
            self._finish(drafts, self.word[drafts], ids)
            return ids, closes

        return pick

    def next(self, logits: torch.Tensor, codes: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
        """A letter (B,) for each row of the batch, drafts ``drafts`` (B,), from its ``logits``
        (B, V) and ``codes`` (B, V); adds each draft's log p/q and draws whether it closes.
        A draft that can no longer be chosen gets the boundary: it ends there."""
        soonest = _soonest(codes)
        # index_select, not indexing, here and below: a third of the cost on a CPU
        closing = self.closing.index_select(0, drafts) & (soonest.sum(dim=1) > 0)  # closed until the word may end
        cdf, moved, chance, none = self._proposal(logits, codes, soonest, closing)
        ids = draw(cdf, self.generator)
        took = (soonest.gather(1, ids[:, None]).squeeze(1) > 0) & ~closing
        self.weight.index_add_(0, drafts, _gain(cdf[:, -1], took, moved.squeeze(1), none))
        self.closing[drafts] = closing | (took & (self._uniform(len(ids), ids.device) < chance))
        word = self.word.index_select(0, drafts)
        key = self._finish(drafts, word, ids)
        return ids.masked_fill_(key < self.best.index_select(0, word), self.mask.boundary)

    def _proposal(self, logits: torch.Tensor, codes: torch.Tensor, soonest: torch.Tensor,
                  closing: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """The proposal q as cumulative weights (B, V), not normalised (``draw``'s); (B, 1) the
        end's share moved onto each unit of the soonest letters' probability; (B,) the chance
        that a soonest letter drawn by an open draft came from the end's share; (B,) whether p
        gives none of the draft's letters a chance.

        Open drafts draw steering's q (``LetterMask.apply``): p over the allowed letters, where
        the word may not end the end's share moved onto the soonest letters (``soonest``, 1.0
        where a letter is one) in proportion to theirs. Closing drafts (``closing``) draw p over
        the soonest letters alone. A draft whose letters p gives no chance draws among them
        alike (and its weight is zero): it is never stuck.

        All in float arithmetic on the codes: on a CPU a comparison or a product with a bool
        tensor costs four to six times a float product."""
        p = torch.softmax(self.transform(logits), dim=-1)
        allowed = codes.float().neg_().add_(float(BLOCKED)).clamp_(max=1.0)  # 1.0, 1.0, 0.0 for ALLOWED, SOONEST, BLOCKED
        on_soonest = p * soonest
        p_end = p[:, self.mask.boundary, None]
        p_soonest = on_soonest.sum(dim=1, keepdim=True)
        moved = torch.where(p_soonest > 0, p_end / p_soonest, 0.0)
        chance = (p_end / (p_soonest + p_end).clamp(min=1e-30)).squeeze(1)  # before p_end, a view of p, changes
        q = torch.addcmul(p.mul_(allowed), on_soonest, moved)  # p(letter) (1 + moved) on the soonest
        cpu = logits.device.type == "cpu"  # skip what no row needs (on a GPU, asking would wait)
        if closing is not None and (not cpu or bool(closing.any())):
            q = q.addcmul_(closing.float()[:, None], on_soonest - q)
        cdf = q.cumsum_(dim=1)
        none = cdf[:, -1] == 0
        if not cpu or bool(none.any()):
            fallback = torch.where(soonest.sum(dim=1, keepdim=True) > 0, soonest, allowed)
            cdf = torch.where(none[:, None], fallback.cumsum(dim=1), cdf)
        return cdf, moved, chance, none

    def _finish(self, drafts: torch.Tensor, word: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The keys (log weight plus noise) of ``drafts``, of the words ``word``; those that
        drew the end raise their word's best."""
        key = self.weight.index_select(0, drafts) + self.noise.index_select(0, drafts)
        ended = torch.where(ids == self.mask.boundary, key, float("-inf"))
        self.best.scatter_reduce_(0, word, ended, reduce="amax")
        return key

    def choose(self) -> torch.Tensor:
        """The row of drawn of each word's chosen draft: the largest key among its K."""
        weight = self.weight[:-1].view(self.k, self.words)
        key = weight + self.noise[:-1].view_as(weight)
        # a word whose drafts all have weight zero (the sampler gives none of them a chance):
        # each counts alike, rather than none
        key = torch.where(weight.max(dim=0).values == float("-inf"), self.noise[:-1].view_as(weight), key)
        return key.argmax(dim=0) * self.words + torch.arange(self.words, device=key.device)

    def _uniform(self, n: int, device: Any) -> torch.Tensor:
        return torch.rand(n, generator=self.generator, device=device)


def _soonest(codes: torch.Tensor) -> torch.Tensor:
    """(B, V) 1.0 where a letter is SOONEST, else 0.0 (for the codes 0, 1, 2: c (2 - c))."""
    c = codes.float()
    return c.mul_(c.neg().add_(2.0))


def _gain(total: torch.Tensor, took: torch.Tensor, moved: torch.Tensor, none: torch.Tensor) -> torch.Tensor:
    """log p(letter) - log q(letter) for each draft's letter. q is p times 1 + ``moved`` on a
    soonest letter an open draft ``took``, else p, over ``total``, the sum of q's weights: the
    gain is log total - log(1 + moved) there, log total elsewhere (closing drafts' total is
    p(soonest letters)); minus infinity where p gave the draft's letters no chance (``none``).
    Never above zero, since total is at most p's own."""
    gain = total.log() - torch.log1p(moved * took)
    return gain.masked_fill_(none, float("-inf")).clamp_(max=0.0)
