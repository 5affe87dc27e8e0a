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

That is still not p(word | constraints). A draft's importance weight is p(word) / q(word),
where q(word) is the chance the proposal draws the word by any path: a word of soonest
letters may have been drawn by a draft that closed at any of them, or by one that never did.
So each draft carries, letter by letter, log q / p of its letters summed over the paths that
are open now and over those that are closing now (a two-state forward recursion), and its
weight is p over their sum. With K particles a word, K drafts are drawn and the word is one of
them, chosen by weight (importance resampling): as K grows, the words tend to the sampler's
distribution conditioned on the constraints. (Weighting by the path a draft took instead, as
letras did before, left a bias at any K: 0.07 in total variation on a toy at K=16 and at
K=128, for words that need another letter after a soonest one.)

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

from letras.core.letter_mask import BLOCKED

from .sampling import draw


class Drafts:
    """K drafts for each of ``words`` words, draft j of word i in row j * words + i of drawn
    (one more row: the batch's sink), with their closing flags and the log q / p of their
    letters along the paths open now (``open``) and closing now (``shut``): the draft's weight
    is p / q = 1 / (e^open + e^shut). ``transform(logits) -> logits``: the sampler's
    distribution p; ``mask``: the constraints (``LetterMask``).

    A word's draft is chosen by the Gumbel-max trick: the draft of the largest log weight
    plus a Gumbel noise drawn for it at the start, which picks each with probability
    proportional to its weight. A draft's weight can grow, but never past p / q along the path
    that never closes: every letter q draws, an open draft may draw and stay open with chance
    p(letter) / total, and total is at most 1. So a draft whose -open plus noise falls below
    the key of a finished draft of its word can never be chosen: it is dropped there and then,
    which changes no word's probability and saves the rest of its letters. The drafts take the
    batch's rows in their order, every word's first before any second, so a word's later drafts
    mostly meet a finished one."""

    extra = 1  # a column past max_length: a draft of max_length letters draws the end, which p weighs
    in_order = True  # every word's first draft takes a row before any second

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor], mask: Any,
                 generator: torch.Generator | None, *, k: int, words: int, device: Any):
        self.transform, self.mask, self.generator, self.k, self.words = transform, mask, generator, k, words
        drafts = k * words
        self.open = torch.zeros(drafts + 1, device=device)  # log q / p along the open paths: all, at first
        self.shut = torch.full((drafts + 1,), float("-inf"), device=device)  # along the closing paths: none
        self.dead = torch.zeros(drafts + 1, dtype=torch.bool, device=device)  # p gave a letter no chance
        self.closing = torch.zeros(drafts + 1, dtype=torch.bool, device=device)
        uniform = torch.rand(drafts + 1, generator=generator, device=device).clamp_(min=1e-30)
        self.noise = -torch.log(-torch.log(uniform))  # Gumbel
        self.word = torch.cat([torch.arange(drafts, device=device) % words, torch.tensor([words], device=device)])
        self.best = torch.full((words + 1,), float("-inf"), device=device)  # per word, the best finished draft's key

    def in_tree(self, tree: Any) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """pick(drafts, nodes) -> (ids, leave) for ``prefix_tree.walk``. Every draft on the
        tree is open (one that closes leaves it), so each node's q is computed once."""
        soonest = _soonest(tree.codes)
        cdf, chance, parts = self._proposal(tree.logits, tree.codes, soonest, None)

        def pick(drafts: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            ids = draw(cdf[nodes], self.generator)
            took = soonest[nodes, ids] > 0
            self._weigh(drafts, took, parts[nodes])
            closes = took & (self._uniform(len(ids), ids.device) < chance[nodes])
            self.closing[drafts] = closes
            self._finish(drafts, self.word[drafts], ids)
            return ids, closes

        return pick

    def next(self, logits: torch.Tensor, codes: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
        """A letter (B,) for each row of the batch, drafts ``drafts`` (B,), from its ``logits``
        (B, V) and ``codes`` (B, V); weighs it and draws whether the draft closes. A draft that
        can no longer be chosen gets the boundary: it ends there."""
        soonest = _soonest(codes)
        # index_select, not indexing, here and below: a third of the cost on a CPU
        closing = self.closing.index_select(0, drafts) & (soonest.sum(dim=1) > 0)  # closed until the word may end
        cdf, chance, parts = self._proposal(logits, codes, soonest, closing)
        ids = draw(cdf, self.generator)
        on_soonest = soonest.gather(1, ids[:, None]).squeeze(1) > 0
        self._weigh(drafts, on_soonest, parts)
        took = on_soonest & ~closing
        self.closing[drafts] = closing | (took & (self._uniform(len(ids), ids.device) < chance))
        word = self.word.index_select(0, drafts)
        self._finish(drafts, word, ids)
        at_most = torch.where(self.dead.index_select(0, drafts), float("-inf"), -self.open.index_select(0, drafts))
        hopeless = at_most + self.noise.index_select(0, drafts) < self.best.index_select(0, word)
        return ids.masked_fill_(hopeless, self.mask.boundary)

    def _proposal(self, logits: torch.Tensor, codes: torch.Tensor, soonest: torch.Tensor,
                  closing: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The proposal q as cumulative weights (B, V), not normalised (``draw``'s); (B,) the
        chance that a soonest letter drawn by an open draft came from the end's share; and
        (B, 5) what ``_weigh`` needs of each row: log of the open drafts' total, log p(end),
        log p(soonest letters), 1.0 where the word may not end (there are soonest letters), and
        1.0 where p gives none of the draft's letters a chance.

        Open drafts draw steering's q (``LetterMask.apply``): p over the allowed letters, where
        the word may not end the end's share moved onto the soonest letters (``soonest``, 1.0
        where a letter is one) in proportion to theirs. Closing drafts (``closing``) draw p over
        the soonest letters alone. A draft whose letters p gives no chance (top-k or top-p left
        only blocked ones) draws them by the model's own distribution, before top-k and top-p,
        as steering would, or alike where that gives them none either; its weight is zero. It
        is never stuck, and its letters stay the model's.

        All in float arithmetic on the codes: on a CPU a comparison or a product with a bool
        tensor costs four to six times a float product."""
        p = torch.softmax(self.transform(logits), dim=-1)
        allowed = codes.float().neg_().add_(float(BLOCKED)).clamp_(max=1.0)  # 1.0, 1.0, 0.0 for ALLOWED, SOONEST, BLOCKED
        on_soonest = p * soonest
        p_end = p[:, self.mask.boundary].clone()  # before p changes below
        p_soonest = on_soonest.sum(dim=1)
        moved = torch.where(p_soonest > 0, p_end / p_soonest, 0.0)[:, None]
        chance = p_end / (p_soonest + p_end).clamp(min=1e-30)
        q = torch.addcmul(p.mul_(allowed), on_soonest, moved)  # p(letter) (1 + moved) on the soonest
        cpu = logits.device.type == "cpu"  # skip what no row needs (on a GPU, asking would wait)
        total = None
        if closing is not None and (not cpu or bool(closing.any())):
            total = q.sum(dim=1)  # the open drafts' total, before the closing drafts' rows change
            q = q.addcmul_(closing.float()[:, None], on_soonest - q)
        cdf = q.cumsum_(dim=1)
        none = cdf[:, -1] == 0
        if not cpu or bool(none.any()):
            letters = torch.where(soonest.sum(dim=1, keepdim=True) > 0, soonest, allowed)
            own = torch.softmax(logits, dim=-1).mul_(letters).cumsum_(dim=1)  # the model's, before top-k, top-p
            cdf = torch.where(none[:, None], torch.where(own[:, -1:] > 0, own, letters.cumsum(dim=1)), cdf)
        total = cdf[:, -1] if total is None else total
        may_not_end = allowed[:, self.mask.boundary] == 0  # so there are soonest letters (never stuck)
        parts = torch.stack([total.log(), p_end.log(), p_soonest.log(), may_not_end.float(), none.float()], dim=1)
        return cdf, chance, parts

    def _weigh(self, drafts: torch.Tensor, on_soonest: torch.Tensor, parts: torch.Tensor) -> None:
        """Add each draft's letter to its log q / p along the open and the closing paths
        (``on_soonest``: whether the letter is a soonest one; ``parts``: ``_proposal``'s).

        An open path draws the letter and stays open with chance p(letter) / total (on a soonest
        letter, the end's share moved onto it and the coin that keeps it open cancel out); it
        closes on a soonest letter with chance p(letter) p(end) / p(soonest) / total. A closing
        path draws a soonest letter with chance p(letter) / p(soonest), and opens again where
        the word may end."""
        log_total, log_end, log_soonest, may_not_end, none = parts.unbind(dim=1)
        open_, shut = self.open.index_select(0, drafts), self.shut.index_select(0, drafts)
        has_soonest = may_not_end > 0
        stays_open = torch.where(has_soonest, open_, torch.logaddexp(open_, shut)) - log_total
        closes = torch.logaddexp(open_ + log_end - log_total, shut) - log_soonest
        dead = none > 0  # p gave the letters no chance: weight zero, the sums kept finite
        self.open[drafts] = torch.where(dead, 0.0, stays_open)
        self.shut[drafts] = torch.where(on_soonest & has_soonest & ~dead, closes, float("-inf"))
        self.dead[drafts] |= dead

    def _finish(self, drafts: torch.Tensor, word: torch.Tensor, ids: torch.Tensor) -> None:
        """Those of ``drafts`` (of the words ``word``) that drew the end raise their word's
        best key (log weight plus noise)."""
        key = self._weight(drafts) + self.noise.index_select(0, drafts)
        ended = torch.where(ids == self.mask.boundary, key, float("-inf"))
        self.best.scatter_reduce_(0, word, ended, reduce="amax")

    def _weight(self, drafts: torch.Tensor | slice) -> torch.Tensor:
        """The log weights log p / q of ``drafts``."""
        weight = -torch.logaddexp(self.open[drafts], self.shut[drafts])
        return weight.masked_fill_(self.dead[drafts], float("-inf"))

    def choose(self) -> torch.Tensor:
        """The row of drawn of each word's chosen draft: the largest key among its K."""
        weight = self._weight(slice(0, -1)).view(self.k, self.words)
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
