"""Words under constraints that can forbid a word to end: closing, and particles (sequential
Monte Carlo) towards the sampler's distribution conditioned on the constraints.

Steering draws each letter from the sampler's distribution p renormalised over the letters
the constraints allow, and where the word may not end yet, moves the probability p gave its end
onto the letters that finish an accepted word soonest (``LetterMask.apply``): the proposal q.
Alone, that move lasts one letter, and the word wanders on past where the model wanted to end
it ("Orcidarresezaeresejoelesesez" under --suffix ez --contains rr). So a word that took the
end's share *closes*: it keeps to the soonest letters until it may end ("Solehínrrez"). Which
words close is drawn: a soonest letter came from the end's share with probability
p(end) / (p(end) + p(soonest letters)).

That is still not p(word | constraints). A word's importance weight p(word) / q(word) is the
product over its letters of p(letter) / q(letter). So with K particles a word (``particles``
above 1), K steered words are drawn, each adding its log weight letter by letter, and one is
returned, chosen by weight (importance resampling): as K grows, the words tend to the
conditioned distribution.

The particles are not resampled while they are drawn (sequential Monte Carlo), though that was
tried: whenever a group's effective sample size fell below K / 2 (or K / 10), the particles
that had already paid for an ending the model did not want were replaced by copies of those
that had not yet, which then paid later, at --max-length. At 16 particles under --suffix ez
--contains rr --min-length 6 the words were 45 letters long on average (35 at K / 10), 14 with
no resampling, 13 under --exact (docs/commands/sample.md).

A group's particles advance together: a group holds K rows of the batch from its first letter
until its last particle ends, and then the next word's group takes those rows (continuous
batching by groups). The prefix tree is bypassed, and closing is not built into it: a word that
closes draws from other letters than the node it shares with the words that do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from letras.core.batching import evaluating

from letras.core.letter_mask import SOONEST

from .rows import blank_rows, place_rows, select_rows
from .sampling import batch_size_for, begin_words, decode_words, draw

@dataclass
class _Particles:
    """``G`` groups of ``k`` particles, a row each, group after group."""

    k: int
    before: Any  # one row: the state before the prefix's last token
    first: int  # that token: every particle reads it first
    origin: torch.Tensor  # (1, 3): the automaton state after the prefix
    word: torch.Tensor  # (G,) the word each group draws, -1 for none
    ids: torch.Tensor  # (G*K,) the token each particle reads next
    state: Any  # the recurrent state, rows laid out like nn.RNN's
    at: torch.Tensor  # (G*K, 3) the automaton state
    drawn: torch.Tensor  # (G*K, L+2) its letters so far, then the boundary; the last column is a sink
    position: torch.Tensor  # (G*K,) where its next letter goes
    done: torch.Tensor  # (G*K,) bool: it has ended
    weight: torch.Tensor  # (G, K) log weights
    closing: torch.Tensor  # (G*K,) bool: it keeps to the letters that finish a word soonest

    @classmethod
    def begin(cls, k: int, groups: int, steps: int, before: Any, first: int, origin: torch.Tensor) -> _Particles:
        """``groups`` groups of ``k`` particles, group g drawing word g."""
        rows, device = groups * k, origin.device
        zeros = lambda *shape, dtype=torch.long: torch.zeros(shape, dtype=dtype, device=device)
        p = cls(k, before, first, origin, word=zeros(groups), ids=zeros(rows),
                state=select_rows(before, zeros(rows), 1), at=origin.expand(rows, -1).clone(),
                drawn=zeros(rows, steps + 2), position=zeros(rows), done=zeros(rows, dtype=torch.bool),
                weight=zeros(groups, k, dtype=torch.float), closing=zeros(rows, dtype=torch.bool))
        every = torch.arange(groups, device=device)
        p.restart(every, every)
        return p

    def rows(self, groups: torch.Tensor) -> torch.Tensor:
        return (groups[:, None] * self.k + torch.arange(self.k, device=groups.device)).flatten()

    def restart(self, groups: torch.Tensor, words: torch.Tensor) -> None:
        """``groups`` begin drawing ``words``, every particle from the prefix."""
        rows = self.rows(groups)
        self.word[groups], self.weight[groups] = words, 0.0
        again = select_rows(self.before, torch.zeros(len(rows), dtype=torch.long, device=rows.device), 1)
        self.state = place_rows(self.state, rows, again, len(self.ids))
        self.ids[rows], self.at[rows] = self.first, self.origin  # drawn is written before it is read
        self.position[rows], self.done[rows], self.closing[rows] = 0, False, False

    def take(self, rows: torch.Tensor) -> None:
        """Row r becomes a copy of row ``rows[r]``."""
        self.state = select_rows(self.state, rows, len(self.ids))
        self.ids, self.at, self.drawn = self.ids[rows], self.at[rows], self.drawn[rows]
        self.position, self.done, self.closing = self.position[rows], self.done[rows], self.closing[rows]

    def keep(self, groups: torch.Tensor) -> None:
        """Only ``groups`` go on."""
        self.take(self.rows(groups))
        self.word, self.weight = self.word[groups], self.weight[groups]


@torch.inference_mode()
def draw_particles(model: Any, tokenizer: Any, transform: Callable[[torch.Tensor], torch.Tensor], *,
                   particles: int, count: int, max_length: int, prefix: str, device: Any,
                   batch_size: int | None, generator: torch.Generator | None, mask: Any) -> list[str] | None:
    """``count`` words that meet ``mask``'s constraints, each chosen among ``particles``
    particles (see the module's docstring); ``batch_size`` rows at a time (at least one group).
    None for a model whose state is not laid out like nn.RNN's (its rows cannot be copied) or
    whose first state is not zeros (a label's initial state)."""
    prefix_ids, steps, device = begin_words(model, tokenizer, prefix, max_length, device)
    if steps == 0:
        return [tokenizer.normalize(prefix)] * count
    boundary = tokenizer.boundary_id
    start = torch.tensor([[boundary, *prefix_ids]], device=device)
    words = torch.full((count, steps), boundary, dtype=torch.long, device=device)
    with evaluating(model):
        # every particle first reads the prefix's last token (the boundary if none) from the
        # state before it, so that a group's first letter comes from the batch's own call
        before = model(start[:, :-1])[1] if prefix_ids else _zero_state(model, start)
        if before is None or select_rows(before, torch.zeros(1, dtype=torch.long, device=device), 1) is None:
            return None
        groups = max(1, min(count, (batch_size or count * particles) // particles))
        p = _Particles.begin(particles, groups, steps, before, int(start[0, -1]), mask.start(prefix_ids))
        _run(model, transform, p, words, mask, steps, boundary, generator, no_prefix=not prefix_ids)
    return decode_words(tokenizer, prefix, words, boundary)


def _zero_state(model: Any, start: torch.Tensor) -> Any:
    """The state before a word's first token, as zeros, where the model's own first state
    (``h0=None``) is zeros; None where it is not (a label's initial state, ``label_state``),
    which the particles cannot copy from rows, so the words are steered instead."""
    logits, state = model(start)
    zeros = blank_rows(state, 1)
    if zeros is None or not torch.allclose(model(start, zeros)[0], logits):
        return None
    return zeros


def _run(model: Any, transform: Callable[[torch.Tensor], torch.Tensor], p: _Particles, words: torch.Tensor,
         mask: Any, steps: int, boundary: int, generator: torch.Generator | None, no_prefix: bool) -> None:
    """Advance the particles a letter at a time until every word in ``words`` is drawn."""
    begun = len(p.word)
    while True:
        logits, p.state = model(p.ids[:, None], p.state)
        logits = logits[:, -1].float()
        if no_prefix:  # a word has at least one letter, as the sampler's own first step says
            logits[:, boundary] = torch.where(p.position == 0, float("-inf"), logits[:, boundary])
        target = torch.log_softmax(transform(logits), dim=-1)  # (B, V): log p, the sampler's distribution
        # a word of max_length letters must end there: its end counts in its weight, as a
        # word drawn freely past max_length would be rejected by --exact
        codes = mask.codes(p.at, (steps - p.position).clamp(min=0))
        proposal, p.closing = _proposal(mask, target, codes, p.closing)
        ids = draw(proposal.exp().cumsum(dim=-1), generator)
        going = ~p.done
        p.closing = _commit(target, codes, ids, p.closing, boundary, generator)
        # p(letter) / q(letter); where p gives the letter no chance, the particle's weight is
        # zero, yet it drew an allowed letter (as steering does) and loses to the others
        gain = target.gather(1, ids[:, None]) - proposal.gather(1, ids[:, None])
        p.weight += torch.where(going, gain.squeeze(1), 0.0).view_as(p.weight)
        p.ids = ids = torch.where(going, ids, boundary)
        p.at = mask.step(p.at, ids)
        p.drawn[torch.arange(len(ids), device=ids.device), p.position] = ids
        p.done = p.done | (ids == boundary)
        p.position += going
        begun = _finish(p, words, begun, generator)
        if not bool((p.word >= 0).any()):
            return
        if begun == len(words):
            _shrink(p)


def _proposal(mask: Any, target: torch.Tensor, codes: torch.Tensor,
              closing: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log q (B, V), the distribution a particle draws from, and which particles are closing.

    Steering's distribution (``LetterMask.apply``): where the word may not end, the end's
    probability goes to the letters that finish an accepted word soonest. A particle that took
    it so is *closing*: it keeps to the soonest letters until the word may end, so the word
    ends near where the model wanted it to, not letters later by chance."""
    soonest = codes == SOONEST
    closing = closing & soonest.any(dim=1)
    steered = mask.apply(target.clone(), codes)
    closed = target.clamp(min=-1e4).masked_fill(~soonest, float("-inf"))
    return torch.log_softmax(torch.where(closing[:, None], closed, steered), dim=-1), closing


def _commit(target: torch.Tensor, codes: torch.Tensor, ids: torch.Tensor, closing: torch.Tensor, boundary: int,
            generator: torch.Generator | None) -> torch.Tensor:
    """Which particles close after drawing ``ids``: a soonest letter drawn by steering came
    from the end's share with probability p(end) / (p(soonest letters) + p(end))."""
    soonest = codes == SOONEST
    took = soonest.gather(1, ids[:, None]).squeeze(1) & ~closing
    p_end = target[:, boundary].exp()
    p_soonest = target.exp().masked_fill(~soonest, 0.0).sum(dim=1)
    chance = p_end / (p_soonest + p_end).clamp(min=1e-30)
    u = torch.rand(len(ids), generator=generator, device=ids.device)
    return closing | (took & (u < chance))


def _finish(p: _Particles, words: torch.Tensor, begun: int, generator: torch.Generator | None) -> int:
    """Groups whose particles have all ended give their word (one particle, by weight) and
    take the next word not yet begun; returns how many words have begun."""
    ended = ((p.word >= 0) & p.done.view_as(p.weight).all(dim=1)).nonzero().squeeze(1)
    if not len(ended):
        return begun
    weight = p.weight[ended]
    # a group whose particles all have weight zero (the sampler gives none of their words a
    # chance): each counts alike, rather than none
    weight.masked_fill_((weight.max(dim=1).values == float("-inf"))[:, None], 0.0)
    chosen = draw(torch.softmax(weight, dim=1).cumsum(dim=1), generator)  # (E,)
    words[p.word[ended]] = p.drawn[ended * p.k + chosen, :-2]
    new = min(len(ended), len(words) - begun)
    p.word[ended[new:]] = -1
    if new:
        p.restart(ended[:new], torch.arange(begun, begun + new, device=ended.device))
    return begun + new


def _shrink(p: _Particles) -> None:
    """No word is left to begin: keep the groups still drawing, down the ``batch_size_for``
    ladder (counted in groups)."""
    going = p.word >= 0
    size = batch_size_for(int(going.sum()))
    if size < len(p.word):
        p.keep(torch.cat([going.nonzero(), going.logical_not().nonzero()]).squeeze(1)[:size])

