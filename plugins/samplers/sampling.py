"""Batched sampling that carries the hidden state from letter to letter."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

import torch

from letras.core import UsageError
from letras.core.batching import evaluating
from letras.core.options import given

from . import GreedyOptions, TemperatureOptions, prefix_tree
from .rows import place_rows, select_rows


def batch_size_for(alive: int) -> int:
    """The batch kept for ``alive`` unfinished words: ``alive`` rounded up to a quarter
    octave (..., 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, ...).

    oneDNN builds (JIT-compiles) its recurrent kernel afresh for every batch size it has not
    seen: 0.6-0.9 ms, as long as the step itself at batch 1000. A batch that shrank to the
    exact number of unfinished words met a new size at almost every letter; on this ladder a
    process meets about 40 sizes in all, and computes at most a quarter more rows than needed.
    """
    if alive <= 8:
        return alive
    grain = 1 << (alive.bit_length() - 3)  # a quarter of the power of two below alive
    return -(-alive // grain) * grain


def letters_after(prefix: str, prefix_ids: list[int], max_length: int) -> int:
    """The letters a word of at most ``max_length`` may draw after its prefix (encoded as
    ``prefix_ids``); a prefix longer than that is the user's mistake."""
    if len(prefix_ids) > max_length:
        raise UsageError(f"the prefix has {len(prefix_ids)} letters, more than max_length ({max_length})",
                         where=f"prefix {prefix!r}", hint="raise max_length or shorten the prefix")
    return max_length - len(prefix_ids)


def begin_words(model: Any, tokenizer: Any, prefix: str, max_length: int, device: Any) -> tuple[list[int], int, Any]:
    """The prefix's ids, the letters each word may draw after it, and the device (the model's
    by default)."""
    prefix_ids = tokenizer.encode(prefix, source=f"prefix {prefix!r}")
    return prefix_ids, letters_after(prefix, prefix_ids, max_length), device or next(model.parameters()).device


LETTERS_PER_CALL = 1 << 22  # the letters one call of _draw_words holds: 32 MiB of ids


def draw(cdf: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A letter for each row of ``cdf`` (B, V), cumulative weights that need not add up to 1.

    An inverse-CDF draw: one uniform number per word, where torch.multinomial or the Gumbel
    trick draw one per vocabulary entry (16x slower at batch 1000 on a CPU)."""
    u = torch.rand((len(cdf), 1), generator=generator, device=cdf.device) * cdf[:, -1:]
    ids = torch.searchsorted(cdf, u, right=True).squeeze(1)  # right=True skips zero-probability ids
    return ids.clamp_(max=cdf.shape[-1] - 1)  # u * total can round up to the total


def draw_words(model: Any, tokenizer: Any, cdf: Callable[[torch.Tensor], torch.Tensor], *,
               count: int, max_length: int, prefix: str = "", device: Any = None,
               batch_size: int | None = None, generator: torch.Generator | None = None,
               constraint: Any = None, particles: int | None = None,
               transform: Callable[[torch.Tensor], torch.Tensor] | None = None, proposal: str = "lookahead") -> list[str]:
    """``count`` words, each ``prefix`` plus letters drawn (``draw``, with ``generator``) from
    ``cdf(logits (B, V)) -> cumulative weights (B, V)``, the sampler's distribution.

    Each word first walks down a tree of the likeliest beginnings after the prefix, read once
    for all the words (``prefix_tree``). Those that leave it unfinished go on in a batch:
    ``batch_size`` words (all by default) advance together, one recurrent call per letter,
    carrying the state. When a word ends, the next word not yet begun takes its row, starting
    from the state of the node where it left the tree, so while words remain every call works
    on a full batch (continuous batching). Then finished words leave the batch as it shrinks
    down the ``batch_size_for`` ladder, so the work follows the words' lengths, not the
    longest; until a shrink, a finished word's row draws into a sink.

    Under a ``constraint`` (a ``letras.core.constraints.Automaton``), every word carries its
    state in it beside its row, and each letter is drawn from the sampler's distribution over
    the letters that can still lead to an accepted word within the room left (a gather of the
    automaton's tables, ``letras.core.letter_mask``); the boundary only where it accepts.

    With ``particles`` (K) under a constraint that can forbid a word to end other than at an
    excluded word, K drafts are drawn for each word, like any other words (on the tree, in the
    batch), from ``transform(logits) -> logits``, the sampler's distribution before the
    cumulative sum, and each word is the draft chosen by weight among its K, towards the
    sampler's distribution conditioned on the constraint; ``proposal`` says how a draft draws
    its letters (``"lookahead"``: ``letras.plugins.samplers.lookahead``; ``"closing"``:
    ``letras.plugins.samplers.particles``). Exclusion alone moves only the excluded words'
    ends: it is steered. Without ``particles`` (greedy, a plugin's sampler), each letter is
    steered alone, from the sampler's distribution over the masked logits.
    """
    if proposal not in ("closing", "lookahead"):
        raise ValueError(f"unknown proposal {proposal!r}: closing or lookahead")
    prefix_ids, steps, device = begin_words(model, tokenizer, prefix, max_length, device)
    if steps == 0:
        return [tokenizer.normalize(prefix)] * count
    mask = None
    if constraint is not None:
        from letras.core.letter_mask import LetterMask

        mask = LetterMask(constraint, device)
    k = particles if mask is not None and particles is not None and mask.closes(prefix_ids) else None
    if k is not None and transform is None:
        raise ValueError("particles need the sampler's transform of the logits")
    policy = _policy(model, tokenizer, cdf, transform, mask, generator, prefix_ids, steps, k, proposal, device)
    per_call = max(batch_size or count, LETTERS_PER_CALL // max(max_length, 1) // (k or 1))
    words: list[str] = []
    for begin in range(0, count, per_call):  # many words: their letters a part at a time
        part = min(per_call, count - begin)
        letters = policy(part)
        drawn = _draw_words(model, letters, prefix_ids, steps, count=part * (k or 1), device=device,
                            batch_size=batch_size, boundary=tokenizer.boundary_id, mask=mask)
        if k is not None:
            drawn = drawn[letters.choose()]
        words += decode_words(tokenizer, prefix, drawn[:, :steps], tokenizer.boundary_id)
    return words


def _policy(model: Any, tokenizer: Any, cdf: Callable[[torch.Tensor], torch.Tensor],
            transform: Callable[[torch.Tensor], torch.Tensor] | None, mask: Any, generator: torch.Generator | None,
            prefix_ids: list[int], steps: int, k: int | None, proposal: str, device: Any) -> Callable[[int], Any]:
    """(words) -> how ``words`` words draw their letters (``draw_words``): steered without
    ``k`` particles, else K drafts a word by the ``proposal``. The look-ahead's psi is counted
    here once, from the sampler's own words, for all the parts."""
    if k is None:
        return lambda words: Steered(cdf, mask, generator)
    if proposal == "lookahead":
        from .outlook import Outlook

        if Outlook.fits(mask, steps):  # else an automaton too large for psi's counts: closing
            from .lookahead import LookaheadDrafts

            # its few thousand words in one batch, whatever the batch of the words asked for
            outlook = Outlook.estimate(mask, steps, lambda letters, n: _draw_words(
                model, letters, prefix_ids, steps, count=n, device=device, batch_size=None,
                boundary=tokenizer.boundary_id, mask=None), transform, generator)
            return lambda words: LookaheadDrafts(transform, outlook, generator, k=k, words=words, device=device)
    from .particles import Drafts

    return lambda words: Drafts(transform, mask, generator, k=k, words=words, device=device)


class Steered:
    """Each letter from the sampler's distribution (``cdf``) over the letters the constraints
    (``mask``, or none) allow, its end's share moved where the word may not end
    (``LetterMask.apply``): the way every word is drawn but particles' drafts."""

    extra = 0  # columns of drawn past max_length
    in_order = False  # whether the words take the batch's rows in their order (else as they leave the tree)

    def __init__(self, cdf: Callable[[torch.Tensor], torch.Tensor], mask: Any, generator: torch.Generator | None):
        self.cdf, self.mask, self.generator = cdf, mask, generator

    def in_tree(self, tree: prefix_tree.PrefixTree) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, None]]:
        """pick(words, nodes) -> (ids, None) for ``prefix_tree.walk``: a letter for each word
        at its node, the sampler's distribution at every node computed once for all."""
        logits = tree.logits if tree.codes is None else self.mask.apply(tree.logits.clone(), tree.codes)
        at_node = self.cdf(logits)
        return lambda words, nodes: (draw(at_node[nodes], self.generator), None)

    def next(self, logits: torch.Tensor, codes: torch.Tensor | None, words: torch.Tensor) -> torch.Tensor:
        """A letter (B,) for each row of the batch from its ``logits`` (B, V), changed in place."""
        if codes is not None:
            logits = self.mask.apply(logits, codes)
        return draw(self.cdf(logits), self.generator)


@torch.inference_mode()
def _draw_words(model: Any, letters: Any, prefix_ids: list[int], steps: int, *, count: int, device: Any,
                batch_size: int | None, boundary: int, mask: Any) -> torch.Tensor:
    """(count, steps + letters.extra) the letters of ``count`` words drawn by ``letters``,
    each after the prefix, up to its first boundary."""
    # word i's letters go to row i; the extra last row is a sink where finished words draw
    drawn = torch.full((count + 1, steps + letters.extra), boundary, dtype=torch.long, device=device)
    with evaluating(model):
        queue = _walk_the_tree(model, letters, prefix_ids, drawn[:count], boundary, device, mask, steps)
        _draw_the_rest(model, letters, queue, drawn, boundary, batch_size, mask, steps)
    return drawn[:count]


@dataclass
class _Queue:
    """The words that left the prefix tree unfinished, in the order they take a row of the
    batch: the word, the node it left from, the letter it drew there (its next input), where
    its next letter goes, and its automaton state after that letter (under constraints)."""

    word: torch.Tensor
    node: torch.Tensor
    ids: torch.Tensor
    position: torch.Tensor
    at: torch.Tensor | None
    states_of: Callable[[torch.Tensor], Any]  # nodes -> the recurrent state of words leaving them
    by_row: bool  # whether the state splits into rows (laid out like nn.RNN's): else one batch for all

    def __len__(self) -> int:
        return len(self.word)


def _walk_the_tree(model: Any, letters: Any, prefix_ids: list[int], drawn: torch.Tensor, boundary: int,
                   device: Any, mask: Any, room: int) -> _Queue:
    """Read the prefix once, grow the tree of the likeliest beginnings after it, and walk every
    word down it, drawing its letters into ``drawn``; returns the words still unfinished.
    ``room``: the letters a word may draw after the prefix."""
    start = torch.tensor([[boundary, *prefix_ids]], device=device)  # (1, P+1)
    logits, after_prefix = model(start)  # the prefix is read once, for all the words
    # in fp32 whatever the model computes in (bf16 under autocast): a cumulative sum of
    # bfloat16 probabilities would drift from 1 by a percent
    first = logits[:, -1].float()  # (1, V): the first letter's logits
    if not prefix_ids:
        first[:, boundary] = float("-inf")  # a word has at least one letter
    at = None if mask is None else mask.start(prefix_ids)  # (1, 3): the prefix's automaton state
    count, columns = drawn.shape
    tree = prefix_tree.grow(model, first, after_prefix, words=count, depth=columns - 1, boundary=boundary,
                            mask=mask, at=at, room=room)
    word, node, ids, position = prefix_tree.walk(tree, letters.in_tree(tree), drawn, boundary)
    if letters.in_order:  # the words take the batch's rows in their order, not as they left the tree
        order = torch.argsort(word)
        word, node, ids, position = word[order], node[order], ids[order], position[order]

    def states_of(nodes: torch.Tensor) -> Any:
        if tree.state is None:  # the root alone, laid out otherwise: read the prefix once per word
            return model(start.expand(len(nodes), -1))[1]
        return select_rows(tree.state, nodes, len(tree))

    at = None if mask is None else mask.step(tree.constraint[node], ids)
    return _Queue(word, node, ids, position, at, states_of, by_row=tree.state is not None)
@dataclass
class _Batch:
    """The words being drawn, one per row, with what each needs for its next letter."""

    word: torch.Tensor  # (B,) the row of drawn each writes to (the sink once finished)
    position: torch.Tensor  # (B,) where its next letter goes
    ids: torch.Tensor  # (B,) the letter it reads next
    state: Any  # the recurrent state, rows laid out like nn.RNN's
    at: torch.Tensor | None  # (B, 3) its automaton state, under constraints

    def take(self, rows: torch.Tensor, queue: _Queue, taken: slice) -> None:
        """The queued words ``taken`` start in ``rows``, from the state of the node each left."""
        self.word[rows], self.position[rows], self.ids[rows] = queue.word[taken], queue.position[taken], queue.ids[taken]
        self.state = place_rows(self.state, rows, queue.states_of(queue.node[taken]), len(self.word))
        if self.at is not None:
            self.at[rows] = queue.at[taken]

    def keep(self, rows: torch.Tensor) -> bool:
        """Only ``rows`` go on; False (and nothing changes) for a state laid out otherwise."""
        smaller = select_rows(self.state, rows, len(self.word))
        if smaller is None:
            return False
        self.word, self.position, self.ids, self.state = self.word[rows], self.position[rows], self.ids[rows], smaller
        self.at = None if self.at is None else self.at[rows]
        return True


def _draw_the_rest(model: Any, letters: Any, queue: _Queue, drawn: torch.Tensor, boundary: int,
                   batch_size: int | None, mask: Any, room: int) -> None:
    """Draw the queued words' letters into ``drawn`` with ``letters``, ``batch_size`` words
    (all by default) a recurrent call; a finished word's row goes to the next queued word
    (continuous batching), and once none is left the batch shrinks down the
    ``batch_size_for`` ladder. ``room``: the letters a word may draw after the prefix."""
    sink, steps = len(drawn) - 1, drawn.shape[1]
    width = min(len(queue), batch_size) if batch_size and queue.by_row else len(queue)
    first = slice(0, width)
    batch = _Batch(queue.word[first].clone(), queue.position[first].clone(), queue.ids[first].clone(),
                   queue.states_of(queue.node[first]), None if mask is None else queue.at[first].clone())
    begun = width  # words given a row so far
    while begun:
        logits, batch.state = model(batch.ids[:, None], batch.state)
        codes = None if mask is None else mask.codes(batch.at, room - batch.position)
        batch.ids = ids = letters.next(logits[:, -1].float(), codes, batch.word)  # (B,)
        if mask is not None:
            batch.at = mask.step(batch.at, ids)
        drawn[batch.word, batch.position] = ids
        ended = (ids == boundary) | (batch.position == steps - 1)
        batch.position.add_(1).masked_fill_(ended, 0)  # a finished word's row draws into the sink from 0
        if begun < len(queue):  # the next words take the finished words' rows
            free = ended.nonzero().squeeze(1)
            new = min(len(free), len(queue) - begun)
            if new:
                batch.take(free[:new], queue, slice(begun, begun + new))
                begun += new
            batch.word[free[new:]] = sink
        else:
            batch.word.masked_fill_(ended, sink)
        if begun == len(queue) and not _shrink(batch, sink):
            break


def _shrink(batch: _Batch, sink: int) -> bool:
    """No word is left to begin: keep the unfinished words' rows, down the ``batch_size_for``
    ladder. False when every word has finished."""
    going = batch.word != sink
    alive = int(going.sum())  # reads back to the host: the price of shrinking
    if alive == 0:
        return False
    size = batch_size_for(alive)
    if size < len(batch.word):
        batch.keep(torch.cat([going.nonzero(), going.logical_not().nonzero()]).squeeze(1)[:size])
    return True


def decode_words(tokenizer: Any, prefix: str, drawn: torch.Tensor, boundary: int) -> list[str]:
    """Each row of ``drawn`` as a word: the prefix, then its letters up to its first boundary
    (all of them if it never ended)."""
    steps = drawn.shape[1]
    ended = drawn == boundary
    lengths = torch.where(ended.any(dim=1), ended.int().argmax(dim=1), steps)
    # only the words' letters come back to Python, word after word: most of drawn is padding
    letters = drawn[torch.arange(steps, device=drawn.device) < lengths[:, None]].tolist()
    text = tokenizer.normalize(prefix)
    ends = list(itertools.accumulate(lengths.tolist()))
    return [text + tokenizer.decode(letters[end - n:end]) for end, n in zip(ends, lengths.tolist())]


def _generator(seed: int | None, device: Any) -> torch.Generator:
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


class GreedySampler:
    """Always the likeliest letter. Built with its validated ``GreedyOptions`` (``values`` for
    one made by hand in Python)."""

    options_class: type = GreedyOptions

    def __init__(self, options: Any = None, **values: Any):
        self.options = given(self.options_class, options, values)

    def transform(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits (B, V) of the distribution this sampler draws from: -inf but at the
        likeliest letter."""
        ids = torch.arange(logits.shape[-1], device=logits.device)
        return logits.masked_fill(ids != logits.argmax(dim=-1, keepdim=True), float("-inf"))

    def cdf(self, logits: torch.Tensor) -> torch.Tensor:
        """All the weight on the likeliest letter: a step up at its id."""
        ids = torch.arange(logits.shape[-1], device=logits.device)
        return (ids >= logits.argmax(dim=-1, keepdim=True)).float()  # (B, V)

    def sample(self, model: Any, tokenizer: Any, *, seed: int | None = None, device: Any = "cpu",
               constraint: Any = None) -> list[str]:
        o, device = self.options, torch.device(device)
        return draw_words(model, tokenizer, self.cdf, count=o.count, max_length=o.max_length, prefix=o.prefix,
                          device=device, batch_size=o.batch_size, generator=_generator(seed, device),
                          constraint=constraint, particles=getattr(o, "particles", None), transform=self.transform,
                          proposal=getattr(o, "proposal", "lookahead"))


class TemperatureSampler(GreedySampler):
    """Each letter drawn from the softmax of logits / temperature, cut to top-k and top-p."""

    options_class = TemperatureOptions

    def cdf(self, logits: torch.Tensor) -> torch.Tensor:
        """The softmax of logits / temperature, cut to the top k and top p, accumulated."""
        return torch.softmax(self.transform(logits), dim=-1).cumsum(dim=-1)  # (B, V)

    def transform(self, logits: torch.Tensor) -> torch.Tensor:
        """logits / temperature, -inf outside the top k and the top p: the logits of the
        distribution each letter is drawn from."""
        o = self.options
        if o.temperature != 1.0:
            logits = logits / o.temperature
        if o.top_k is not None and o.top_k < logits.shape[-1]:
            kth = torch.topk(logits, o.top_k, dim=-1).values[:, -1:]  # (B, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if o.top_p is not None and o.top_p < 1.0:
            # keep the likeliest letters until their probabilities add up to top_p
            ordered, order = torch.sort(logits, dim=-1, descending=True)
            before = torch.softmax(ordered, dim=-1).cumsum(dim=-1) - torch.softmax(ordered, dim=-1)
            drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, before >= o.top_p)
            logits = logits.masked_fill(drop, float("-inf"))
        return logits
