"""The likeliest beginnings of words, each read once for all the words that share it.

Words drawn from one model share their beginnings: one Spanish municipality in eighteen
begins "San", one in twenty-two "Villa", a model of them draws them about as often, and the
state after "San" is the same for every word that begins so. So before the words are drawn,
the sampler grows a tree of the beginnings that enough words are expected to pass through,
reading each once, one recurrent call per level. Every word then walks down from the root,
drawing a letter at each node, until it ends or draws a letter that leaves the tree; only
then does it take a row of the batch, starting from the state of the node it left.

Nothing is approximated: at every node a word draws from the sampler's distribution over
the model's own logits for its beginning. What the tree saves is work: four of the thirteen
recurrent steps a municipality name takes, at 20,000 names per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .rows import join_rows, row_bytes, select_rows

# A node costs one row of one recurrent call to grow and saves a row to every word that
# passes through it; the words' rows also pay for the draw and the bookkeeping.
MIN_VISITS = 2.0
MAX_BYTES = 32 << 20  # the tree's states, logits and links together


@dataclass
class PrefixTree:
    logits: torch.Tensor  # (N, V) fp32: the model's next-letter logits after each node's beginning
    state: Any  # the state after it, N rows laid out like nn.RNN's; None: the root alone
    child: torch.Tensor  # (N, V): the node each letter leads to, or -1 where it leaves the tree
    constraint: torch.Tensor | None = None  # (N, 3): each node's state in the constraints' automaton
    codes: torch.Tensor | None = None  # (N, V) uint8: what the constraints say of each letter there
    depth: torch.Tensor | None = None  # (N,): each node's letters past the root

    def __len__(self) -> int:
        return len(self.logits)


def grow(model: Any, logits: torch.Tensor, state: Any, *, words: int, depth: int, boundary: int,
         max_nodes: int | None = None, mask: Any = None, at: torch.Tensor | None = None,
         room: int | None = None) -> PrefixTree:
    """The tree whose root has ``logits`` (1, V) and ``state`` (one word's): every beginning
    at least MIN_VISITS of ``words`` words are expected to reach (by the model's probabilities),
    up to ``depth`` letters past the root, and up to ``max_nodes`` nodes (as many as MAX_BYTES
    holds by default), likeliest first.

    Under constraints (``mask``, a ``letras.core.letter_mask.LetterMask``; ``at``, the root's
    state in it, (1, 3); ``room``, the tokens a word may still draw at the root, ``depth`` + 1
    by default), each node keeps its state in the automaton and its codes (``LetterMask.codes``):
    a beginning determines both, so the words that share a node are in the same state. The
    tree grows only where the constraints let the words go; its logits are the model's own.

    A state not laid out like nn.RNN's (tensors with the batch at dimension 1) cannot be
    split into rows, so the tree is then the root alone."""
    vocab, room = logits.shape[-1], depth + 1 if room is None else room
    codes = None if mask is None else [mask.codes(at, room)]
    child = [torch.full((1, vocab), -1, dtype=torch.long, device=logits.device)]
    if select_rows(state, torch.zeros(1, dtype=torch.long, device=logits.device), 1) is None:
        return PrefixTree(logits, None, child[0], at, None if codes is None else codes[0],
                          torch.zeros(1, dtype=torch.long, device=logits.device))
    levels, states, constraint = [logits], [state], [at]
    if max_nodes is None:
        # a node's state, logits, links and (under constraints) codes
        max_nodes = MAX_BYTES // (row_bytes(state) + vocab * (logits.element_size() + 8 + (mask is not None)))
    left = max(max_nodes - 1, 0)  # nodes left to grow
    visits = words * _allowed(logits, mask, codes)  # (nodes of the last level, V): words expected to draw each letter
    for _ in range(depth):
        visits[:, boundary] = 0.0  # a word that ends leaves no beginning to read
        grown = (visits >= MIN_VISITS).nonzero()  # (K, 2): a node of the last level, a letter
        if len(grown) > left:  # keep the likeliest
            grown = grown[visits[grown[:, 0], grown[:, 1]].topk(left).indices]
        if not len(grown):
            break
        node, letter = grown.unbind(1)
        first = sum(len(level) for level in levels)
        child[-1][node, letter] = torch.arange(first, first + len(grown), device=logits.device)
        out, after = model(letter[:, None], select_rows(states[-1], node, len(levels[-1])))
        out = out[:, -1].float()
        if mask is not None:  # the new level is len(levels) letters past the root
            constraint.append(mask.step(constraint[-1][node], letter))
            codes.append(mask.codes(constraint[-1], room - len(levels)))
        visits = visits[node, letter][:, None] * _allowed(out, mask, codes)
        levels.append(out)
        states.append(after)
        child.append(torch.full((len(grown), vocab), -1, dtype=torch.long, device=logits.device))
        left -= len(grown)
    depth = torch.cat([torch.full((len(level),), d, dtype=torch.long, device=logits.device)
                       for d, level in enumerate(levels)])
    return PrefixTree(torch.cat(levels), join_rows(states), torch.cat(child),
                      None if mask is None else torch.cat(constraint), None if mask is None else torch.cat(codes),
                      depth)


def _allowed(logits: torch.Tensor, mask: Any, codes: list[torch.Tensor] | None) -> torch.Tensor:
    """The model's probabilities over the letters the constraints allow (the last level's codes)."""
    if mask is not None:
        logits = mask.apply(logits.clone(), codes[-1])
    return torch.softmax(logits, dim=-1)


def walk(tree: PrefixTree, pick: Callable[[torch.Tensor, torch.Tensor], Any], drawn: torch.Tensor,
         boundary: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each word, a row of ``drawn`` (W, L), walks down the tree from the root, drawing each
    letter with ``pick(words (B,), nodes (B,)) -> (ids (B,), leave)``, a letter for each word
    at its node; ``leave`` (B,) bool, or None for none, sends words out of the tree after
    their letter even where it has a node for them (a word whose next letter is drawn unlike
    its node's: its own distribution is not the node's). Its letters are written into its row
    as it draws them; a word ends at the boundary or at its L-th letter.

    Returns the words that left the tree unfinished, shallowest first: their rows of drawn, the
    node each left from, the letter it drew there (the word's next input) and that letter's
    position plus one (where its next letter goes)."""
    count, length = drawn.shape
    word = torch.arange(count, device=drawn.device)
    node = torch.zeros(count, dtype=torch.long, device=drawn.device)
    left: list[tuple[torch.Tensor, ...]] = []
    for position in range(length):
        if not len(word):
            break
        ids, leave = pick(word, node)
        drawn[word, position] = ids
        onward = tree.child[node, ids]
        if leave is not None:
            onward = onward.masked_fill(leave, -1)
        going = ids != boundary if position < length - 1 else torch.zeros_like(ids, dtype=torch.bool)
        leaving = going & (onward < 0)
        left.append((word[leaving], node[leaving], ids[leaving], torch.full_like(ids[leaving], position + 1)))
        going &= onward >= 0
        word, node = word[going], onward[going]
    if not left:
        empty = torch.zeros(0, dtype=torch.long, device=drawn.device)
        return empty, empty, empty, empty
    return tuple(torch.cat(parts) for parts in zip(*left))  # type: ignore[return-value]
