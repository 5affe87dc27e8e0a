"""Drafts for words under constraints drawn with a look-ahead: each letter weighted by how
likely the model is to go on from it to an accepted word (twisted sequential Monte Carlo).

The proposal that draws words exactly from the sampler's distribution p conditioned on the
constraints C draws each letter c after a beginning x from

    q*(c | x) = p(c | x) P(C | x c) / P(C | x)

where P(C | x c) is the chance that the model, going on from x c, writes a word C accepts.
Steering (``LetterMask.apply``) knows only where that chance is zero. Here it is estimated,
as psi, from the sampler's own words (``letras.plugins.samplers.outlook``): by the
automaton's state after c, the letters left, the letter c and the model's chance of ending
where it is drawn.

Each letter is drawn from q(c) proportional to p'(c) psi(after c), over the letters the mask
allows (a draft is never stuck), the end only where the automaton accepts (its psi: 1).
p' is p with, where the word may not end, the end's share moved onto the letters that finish
an accepted word soonest (as steering moves it): where the model would end a word, the word
is finished soon rather than run on. It is a function of the word so far, not a draw, so the
weight stays exact: a draft's log weight adds log p(c) - log q(c), and with K drafts a word,
one is chosen by weight (the Gumbel-max trick), towards the conditioned distribution as K
grows. A letter's gain can be positive (q can give a letter less than p), so no draft is
dropped before its end, unlike ``particles.Drafts``.

This is the look-ahead of "Sequential Monte Carlo steering of large language models using
probabilistic programs" (Lew, Zhi-Xuan, Grand and Mansinghka, 2023), twisted SMC's twist
function, and of Ctrl-G ("Adaptable logical control for large language models", Zhang,
Kung, Yoshida, Van den Broeck and Peng, 2024), which estimates the same P(C | x) with a
hidden Markov model distilled from the language model; here, the model's own words' tails.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .outlook import Outlook, end_bucket
from .sampling import draw

class LookaheadDrafts:
    """K drafts for each of ``words`` words, draft j of word i in row j * words + i of drawn
    (one more row: the batch's sink), each letter drawn by the ``outlook``'s look-ahead, with
    their log weights log p/q. ``transform(logits) -> logits``: the sampler's distribution p."""

    extra = 1  # a column past max_length: a draft of max_length letters draws the end, which p weighs
    in_order = False  # no draft waits for another: the words take rows as they leave the tree

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor], outlook: Outlook,
                 generator: torch.Generator | None, *, k: int, words: int, device: Any):
        self.transform, self.outlook, self.generator, self.k, self.words = transform, outlook, generator, k, words
        self.weight = torch.zeros(k * words + 1, device=device)
        # each draft's automaton state and letters left, after its letters so far
        self.state = torch.zeros(k * words + 1, dtype=torch.long, device=device)
        self.left = torch.zeros(k * words + 1, dtype=torch.long, device=device)

    def in_tree(self, tree: Any) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, None]]:
        """pick(drafts, nodes) -> (ids, None) for ``prefix_tree.walk``: the drafts at a node
        share its q, computed once for all."""
        states, left = tree.constraint[:, 0], self.outlook.room - tree.depth
        cdf, look, total = self._proposal(tree.logits, tree.codes, states, left)

        def pick(drafts: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, None]:
            ids = draw(cdf[nodes], self.generator)
            self._drew(drafts, ids, total[nodes], look[nodes], states[nodes], left[nodes])
            return ids, None

        return pick

    def next(self, logits: torch.Tensor, codes: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
        """A letter (B,) for each row of the batch, drafts ``drafts`` (B,), from its ``logits``
        (B, V) and ``codes`` (B, V); adds each draft's log p/q."""
        states, left = self.state.index_select(0, drafts), self.left.index_select(0, drafts)
        cdf, look, total = self._proposal(logits, codes, states, left)
        ids = draw(cdf, self.generator)
        self._drew(drafts, ids, total, look, states, left)
        return ids

    def _proposal(self, logits: torch.Tensor, codes: torch.Tensor, states: torch.Tensor,
                  left: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q as cumulative weights (B, V), not normalised (``draw``'s); q / p (B, V), up to a
        factor per row: psi over the letters ``codes`` allow, times 1 + the end's share moved
        onto each unit of the soonest letters' probability where the word may not end; and
        (B,) q's total, zero where the sampler's distribution gives none of the allowed letters
        a chance (its top-k or top-p left only blocked ones). Such a draft's weight is zero, and
        it draws by the model's own distribution (before top-k and top-p, as steering would)
        times psi, or psi alone: it is never stuck, and its letters stay the model's."""
        # in float arithmetic on the codes ALLOWED, SOONEST, BLOCKED (0, 1, 2): on a CPU a
        # comparison or a product with a bool tensor costs four to six times a float product
        after = codes.float().neg_().add_(2.0)  # 2 - c
        soonest = codes.float().mul_(after)  # c (2 - c): 1.0 where SOONEST
        allowed = after.clamp_(max=1.0)  # 1.0, 1.0, 0.0
        p = torch.softmax(self.transform(logits), dim=-1)
        bucket = end_bucket(p[:, self.outlook.boundary], left == self.outlook.room)
        psi = self.outlook.rows(states, left, bucket).mul_(allowed)
        cdf, look = self._weighed(p, psi, soonest)
        total = cdf[:, -1].clone()
        none = total == 0
        if logits.device.type != "cpu" or bool(none.any()):  # on a GPU, asking would wait
            own = self._weighed(torch.softmax(logits, dim=-1), psi, soonest)[0]
            cdf = torch.where(none[:, None], torch.where(own[:, -1:] > 0, own, psi.cumsum(dim=1)), cdf)
        return cdf, look, total

    def _weighed(self, p: torch.Tensor, psi: torch.Tensor, soonest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, V) p times psi, where the word may not end with p's end's share moved onto the
        soonest letters (``soonest``: 1.0 where a letter is one) in proportion to theirs, as
        cumulative weights; and (B, V) their ratio to p, up to a factor per row."""
        p_end = p[:, self.outlook.boundary, None]
        p_soonest = (p * soonest).sum(dim=1, keepdim=True)
        look = psi * (soonest * torch.where(p_soonest > 0, p_end / p_soonest.clamp(min=1e-30), 0.0)).add_(1.0)
        # psi falls to 1e-20 under a long --min-length: scaled to at most 1 in each row (q and
        # the gains read only ratios within a row), p times psi does not underflow to zero
        look.div_(look.amax(dim=1, keepdim=True).clamp_(min=1e-30))
        return (p * look).cumsum_(dim=1), look

    def _drew(self, drafts: torch.Tensor, ids: torch.Tensor, total: torch.Tensor, look: torch.Tensor,
              states: torch.Tensor, left: torch.Tensor) -> None:
        """The drafts drew ``ids``: log p - log q = log total - log (q / p)(letter) joins their
        weights (minus infinity where p gave no allowed letter a chance: ``total`` is zero),
        and their states and letters left move on."""
        chance = look.gather(1, ids[:, None]).squeeze(1)
        gain = torch.where(chance > 0, total.log() - chance.log(), float("-inf"))  # 0: a rounding's draw
        self.weight.index_add_(0, drafts, gain)
        self.state[drafts] = self.outlook.moves_of(states, ids)
        self.left[drafts] = left - 1

    def choose(self) -> torch.Tensor:
        """The row of drawn of each word's draft chosen by weight: the largest log weight plus
        a Gumbel noise (a word whose drafts all weigh zero: any of them alike)."""
        weight = self.weight[:-1].view(self.k, self.words)
        uniform = torch.rand(weight.shape, generator=self.generator, device=weight.device).clamp_(min=1e-30)
        noise = -torch.log(-torch.log(uniform))
        key = torch.where(weight.max(dim=0).values == float("-inf"), noise, weight + noise)
        return key.argmax(dim=0) * self.words + torch.arange(self.words, device=key.device)
