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
weight (importance resampling): as K grows, the words tend to the conditioned distribution.

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
    """``drafts`` drafts (K a word, word after word), their log weights log p/q and closing
    flags by row of drawn (one more row: the batch's sink). ``transform(logits) -> logits``:
    the sampler's distribution p; ``mask``: the constraints (``LetterMask``)."""

    extra = 1  # a column past max_length: a draft of max_length letters draws the end, which p weighs

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor], mask: Any,
                 generator: torch.Generator | None, *, drafts: int, device: Any):
        self.transform, self.mask, self.generator = transform, mask, generator
        self.weight = torch.zeros(drafts + 1, device=device)
        self.closing = torch.zeros(drafts + 1, dtype=torch.bool, device=device)

    def in_tree(self, tree: Any) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """pick(drafts, nodes) -> (ids, leave) for ``prefix_tree.walk``. Every draft on the
        tree is open (one that closes leaves it), so each node's q is computed once."""
        soonest = tree.codes == SOONEST
        cdf, moved, chance, none = self._proposal(tree.logits, tree.codes, soonest, None)

        def pick(drafts: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            ids = draw(cdf[nodes], self.generator)
            took = soonest[nodes, ids]
            self.weight[drafts] += _gain(cdf[nodes, -1], took, moved[nodes, 0], none[nodes])
            closes = took & (self._uniform(len(ids), ids.device) < chance[nodes])
            self.closing[drafts] = closes
            return ids, closes

        return pick

    def next(self, logits: torch.Tensor, codes: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
        """A letter (B,) for each row of the batch, drafts ``drafts`` (B,), from its ``logits``
        (B, V) and ``codes`` (B, V); adds each draft's log p/q and draws whether it closes."""
        soonest = codes == SOONEST
        closing = self.closing[drafts] & soonest.any(dim=1)  # closed until the word may end
        cdf, moved, chance, none = self._proposal(logits, codes, soonest, closing)
        ids = draw(cdf, self.generator)
        took = soonest.gather(1, ids[:, None]).squeeze(1) & ~closing
        self.weight.index_add_(0, drafts, _gain(cdf[:, -1], took, moved.squeeze(1), none))
        self.closing[drafts] = closing | (took & (self._uniform(len(ids), ids.device) < chance))
        return ids

    def _proposal(self, logits: torch.Tensor, codes: torch.Tensor, soonest: torch.Tensor,
                  closing: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """The proposal q as cumulative weights (B, V), not normalised (``draw``'s); (B, 1) the
        end's share moved onto each unit of the soonest letters' probability; (B,) the chance
        that a soonest letter drawn by an open draft came from the end's share; (B,) whether p
        gives none of the draft's letters a chance.

        Open drafts draw steering's q (``LetterMask.apply``): p over the allowed letters, where
        the word may not end the end's share moved onto the soonest letters (``soonest``) in
        proportion to theirs. Closing drafts (``closing``) draw p over the soonest letters
        alone. A draft whose letters p gives no chance draws among them alike (and its weight
        is zero): it is never stuck."""
        p = torch.softmax(self.transform(logits), dim=-1)
        on_soonest = p * soonest
        p_end = p[:, self.mask.boundary, None]
        p_soonest = on_soonest.sum(dim=1, keepdim=True)
        moved = torch.where(p_soonest > 0, p_end / p_soonest, 0.0)
        q = torch.addcmul(p * (codes != BLOCKED), on_soonest, moved)  # p(letter) (1 + moved) on the soonest
        if closing is not None:
            q = torch.where(closing[:, None], on_soonest, q)
        cdf = q.cumsum_(dim=1)
        none = cdf[:, -1] == 0
        if bool(none.any()):
            fallback = torch.where(soonest.any(dim=1, keepdim=True), soonest, codes != BLOCKED)
            cdf = torch.where(none[:, None], fallback.float().cumsum(dim=1), cdf)
        chance = (p_end / (p_soonest + p_end).clamp(min=1e-30)).squeeze(1)
        return cdf, moved, chance, none

    def _uniform(self, n: int, device: Any) -> torch.Tensor:
        return torch.rand(n, generator=self.generator, device=device)

    def choose(self, k: int) -> torch.Tensor:
        """The row of drawn of each word's chosen draft: one of its ``k``, by weight."""
        weight = self.weight[:-1].view(-1, k)
        # a word whose drafts all have weight zero (the sampler gives none of them a chance):
        # each counts alike, rather than none
        weight = weight.masked_fill((weight.max(dim=1).values == float("-inf"))[:, None], 0.0)
        chosen = draw(torch.softmax(weight, dim=1).cumsum(dim=1), self.generator)
        return torch.arange(len(weight), device=weight.device) * k + chosen


def _gain(total: torch.Tensor, took: torch.Tensor, moved: torch.Tensor, none: torch.Tensor) -> torch.Tensor:
    """log p(letter) - log q(letter) for each draft's letter. q is p times 1 + ``moved`` on a
    soonest letter an open draft ``took``, else p, over ``total``, the sum of q's weights: the
    gain is log total - log(1 + moved) there, log total elsewhere (closing drafts' total is
    p(soonest letters)); minus infinity where p gave the draft's letters no chance (``none``).
    Never above zero, since total is at most p's own."""
    gain = total.log() - torch.log1p(moved * took)
    return gain.masked_fill_(none, float("-inf")).clamp_(max=0.0)
