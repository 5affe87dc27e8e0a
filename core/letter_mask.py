"""The constraints' automaton as tensors: which tokens each word may draw next.

A sampler keeps, for every word it draws, a state: a row ``(automaton state, trie node)``
(node -1 off the trie of excluded words). At each step ``allowed(states, left)`` says which
tokens the word may draw when it has ``left`` tokens of room, the boundary included:

    need[s, v] = 1 + dist[next[s, v]]   (tokens an accepted word takes from here via v)
    need[s, boundary] = 0 if s accepts else never
    allowed = need[state] <= left

a gather of a table computed once, plus a lookup of the trie's few exceptions for the words
still on it. ``apply`` gives the disallowed tokens probability zero; ``step`` moves the
states on by the drawn tokens. Built-in samplers use it; a plugin's sampler can too.
"""

from __future__ import annotations

from typing import Any

import torch

from .constraints import Automaton

NEVER = 1 << 30


class LetterMask:
    """``automaton``'s tables on ``device``."""

    def __init__(self, automaton: Automaton, device: Any):
        self.automaton = automaton
        a, vocab = automaton, automaton.vocab_size
        need = [[1 + a.dist[t] if t >= 0 else NEVER for t in row] for row in a.next]
        moves = [[max(t, 0) for t in row] for row in a.next]
        for s, row in enumerate(need):
            row[a.boundary] = 0 if a.accepting[s] else NEVER
            moves[s][a.boundary] = s  # a finished word's row stays where it ended
        self.need = torch.tensor(need, dtype=torch.int32, device=device)  # (S, V)
        self.moves = torch.tensor(moves, dtype=torch.long, device=device)  # (S, V)
        self.vocab = vocab
        trie = a.trie
        keys, child, starts, letters, needs = [], [], [0], [], []
        for node in range(len(trie) if trie else 0):
            for v, c in sorted(trie.children[node].items()):
                keys.append(node * vocab + v)
                child.append(c)
            letters += [v for v, _ in trie.exceptions[node]]
            needs += [min(n, NEVER) for _, n in trie.exceptions[node]]
            starts.append(len(letters))
        tensor = lambda xs, dtype=torch.long: torch.tensor(xs, dtype=dtype, device=device)
        self.keys, self.child = tensor(keys), tensor(child)  # (E,): node * V + token, sorted; the child
        self.exception_start = tensor(starts)  # (N + 1,): each node's exceptions, a slice of:
        self.exception_token, self.exception_need = tensor(letters), tensor(needs, torch.int32)

    def start(self, prefix_ids: list[int], words: int = 1) -> torch.Tensor:
        """The states (words, 2) of words that begin with ``prefix_ids``; the prefix must
        begin an accepted word."""
        at = self.automaton.walk(prefix_ids)
        if at is None:
            from .errors import UsageError

            raise UsageError("no word with this prefix meets the constraints", where="prefix")
        return torch.tensor([at], dtype=torch.long, device=self.need.device).expand(words, 2).clone()

    def allowed(self, states: torch.Tensor, left: torch.Tensor | int) -> torch.Tensor:
        """(B, V) bool: the tokens each of the words in ``states`` (B, 2) may draw with
        ``left`` (B,) tokens of room (an int: the same for all)."""
        need = self.need[states[:, 0]]  # (B, V)
        on = (states[:, 1] >= 0).nonzero().squeeze(1)
        if len(on) and len(self.exception_token):
            nodes = states[on, 1]
            first, count = self.exception_start[nodes], self.exception_start[nodes + 1] - self.exception_start[nodes]
            total = int(count.sum())
            if total:
                rows = on.repeat_interleave(count, output_size=total)
                begins = (count.cumsum(0) - count).repeat_interleave(count, output_size=total)
                index = torch.arange(total, device=need.device) - begins + first.repeat_interleave(count, output_size=total)
                need = need.clone()
                need[rows, self.exception_token[index]] = self.exception_need[index]
        left = left[:, None] if isinstance(left, torch.Tensor) else left
        return need <= left

    def apply(self, logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """``logits`` with the disallowed tokens at -inf. A token the model itself gives no
        chance (-inf) stays below every token it gives one, yet is drawn rather than nothing
        when the constraints leave no other."""
        return torch.where(allowed, logits.clamp(min=-1e4), float("-inf"))

    def step(self, states: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The states after each word draws its token in ``ids`` (B,)."""
        after = torch.empty_like(states)
        after[:, 0] = self.moves[states[:, 0], ids]
        node = states[:, 1]
        if len(self.keys):
            key = node.clamp(min=0) * self.vocab + ids
            at = torch.searchsorted(self.keys, key).clamp_(max=len(self.keys) - 1)
            found = (self.keys[at] == key) & (node >= 0)
            after[:, 1] = torch.where(found, self.child[at], -1)
        else:
            after[:, 1] = -1
        return after
