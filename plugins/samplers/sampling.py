"""Batched sampling that carries the hidden state from letter to letter."""

from __future__ import annotations

import itertools
from typing import Any, Callable

import torch

from letras.core import UsageError

from . import prefix_tree
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
               constraint: Any = None) -> list[str]:
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
    """
    mask = None
    if constraint is not None:
        from letras.core.letter_mask import LetterMask

        mask = LetterMask(constraint, device or next(model.parameters()).device)
    per_call = max(batch_size or count, LETTERS_PER_CALL // max(max_length, 1))
    words: list[str] = []
    for begin in range(0, count, per_call):  # many words: their letters a part at a time
        words += _draw_words(model, tokenizer, cdf, count=min(per_call, count - begin), max_length=max_length,
                             prefix=prefix, device=device, batch_size=batch_size, generator=generator,
                             mask=mask)
    return words


@torch.inference_mode()
def _draw_words(model: Any, tokenizer: Any, cdf: Callable[[torch.Tensor], torch.Tensor], *, count: int,
                max_length: int, prefix: str, device: Any, batch_size: int | None,
                generator: torch.Generator | None, mask: Any) -> list[str]:
    prefix_ids = tokenizer.encode(prefix, source=f"prefix {prefix!r}")
    steps = letters_after(prefix, prefix_ids, max_length)
    at = None if mask is None else mask.start(prefix_ids)  # (1, 2): the prefix's state
    if steps == 0:
        return [tokenizer.normalize(prefix)] * count
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    boundary = tokenizer.boundary_id
    start = torch.tensor([[boundary, *prefix_ids]], device=device)  # (1, P+1)
    logits, after_prefix = model(start)  # the prefix is read once, for all the words
    # in fp32 whatever the model computes in (bf16 under autocast): a cumulative sum of
    # bfloat16 probabilities would drift from 1 by a percent
    first = logits[:, -1].float()  # (1, V): the first letter's logits
    if not prefix_ids:
        first[:, boundary] = float("-inf")  # a word has at least one letter
    sink = count  # the row of drawn where finished words write
    drawn = torch.full((count + 1, steps), boundary, dtype=torch.long, device=device)
    tree = prefix_tree.grow(model, first, after_prefix, words=count, depth=steps - 1, boundary=boundary,
                            mask=mask, at=at)
    at_node = cdf(tree.logits)  # the sampler's distribution at each node, for all the words at once
    # the words that leave the tree unfinished go on in the batch, in this order
    queued_word, queued_node, queued_ids, queued_position = prefix_tree.walk(
        tree, lambda nodes: draw(at_node[nodes], generator), drawn[:count], boundary)
    waiting = len(queued_word)
    if mask is not None:  # each word's state after the letter it left the tree with
        queued_at = mask.step(tree.constraint[queued_node], queued_ids)

    def states_of(nodes: torch.Tensor) -> Any:  # the state each of the words leaving these nodes starts from
        if tree.state is None:  # the root alone, laid out otherwise: read the prefix once per word
            return model(start.expand(len(nodes), -1))[1]
        return select_rows(tree.state, nodes, len(tree))

    width = waiting if tree.state is None else min(waiting, batch_size or waiting)
    word, position, ids = queued_word[:width].clone(), queued_position[:width].clone(), queued_ids[:width].clone()
    state = states_of(queued_node[:width])
    at = None if mask is None else queued_at[:width].clone()
    begun = width  # words given a row so far
    while begun:
        logits, state = model(ids[:, None], state)
        logits = logits[:, -1].float()
        if mask is not None:
            logits = mask.apply(logits, mask.codes(at, steps - position))
        ids = draw(cdf(logits), generator)  # (B,)
        if mask is not None:
            at = mask.step(at, ids)
        drawn[word, position] = ids
        ended = (ids == boundary) | (position == steps - 1)
        position.add_(1).masked_fill_(ended, 0)  # a finished word's row draws into the sink from 0
        if begun < waiting:  # the next words take the finished words' rows
            free = ended.nonzero().squeeze(1)
            new = min(len(free), waiting - begun)
            if new:
                rows, taken = free[:new], slice(begun, begun + new)
                word[rows], position[rows], ids[rows] = queued_word[taken], queued_position[taken], queued_ids[taken]
                state = place_rows(state, rows, states_of(queued_node[taken]), len(word))
                if mask is not None:
                    at[rows] = queued_at[taken]
                begun += new
            if new < len(free):
                word[free[new:]] = sink
        else:
            word.masked_fill_(ended, sink)
        if begun == waiting:  # no word left to begin: the batch shrinks as the last ones end
            going = word != sink
            alive = int(going.sum())  # reads back to the host: the price of shrinking
            if alive == 0:
                break
            size = batch_size_for(alive)
            if size < len(word):
                keep = torch.cat([going.nonzero(), going.logical_not().nonzero()]).squeeze(1)[:size]
                smaller = select_rows(state, keep, len(word))
                if smaller is not None:
                    word, position, ids, state = word[keep], position[keep], ids[keep], smaller
                    at = None if mask is None else at[keep]
    model.train(was_training)
    drawn = drawn[:count]
    ended = drawn == boundary
    # each word's length: up to its first boundary, or all ``steps`` letters if it never ended
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
    def __init__(self, count: int = 20, max_length: int = 50, prefix: str = "", batch_size: int = 1000):
        self.count, self.max_length, self.prefix, self.batch_size = count, max_length, prefix, batch_size

    def cdf(self, logits: torch.Tensor) -> torch.Tensor:
        """All the weight on the likeliest letter: a step up at its id."""
        ids = torch.arange(logits.shape[-1], device=logits.device)
        return (ids >= logits.argmax(dim=-1, keepdim=True)).float()  # (B, V)

    def sample(self, model: Any, tokenizer: Any, *, seed: int | None = None, device: Any = "cpu",
               constraint: Any = None) -> list[str]:
        device = torch.device(device)
        generator = _generator(seed, device)
        return draw_words(model, tokenizer, self.cdf, count=self.count, max_length=self.max_length,
                          prefix=self.prefix, device=device, batch_size=self.batch_size, generator=generator,
                          constraint=constraint)


class TemperatureSampler(GreedySampler):
    def __init__(self, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 **options: Any):
        super().__init__(**options)
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

    def cdf(self, logits: torch.Tensor) -> torch.Tensor:
        """The softmax of logits / temperature, cut to the top k and top p, accumulated."""
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]  # (B, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p is not None and self.top_p < 1.0:
            # keep the likeliest letters until their probabilities add up to top_p
            ordered, order = torch.sort(logits, dim=-1, descending=True)
            before = torch.softmax(ordered, dim=-1).cumsum(dim=-1) - torch.softmax(ordered, dim=-1)
            drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, before >= self.top_p)
            logits = logits.masked_fill(drop, float("-inf"))
        return torch.softmax(logits, dim=-1).cumsum(dim=-1)  # (B, V)
