"""The constraints' automaton as tensors: which tokens each word may draw next.

A sampler keeps, for every word it draws, a state: a row ``(automaton state, trie node,
key)`` (node -1 off the trie of excluded words; key: the hash of its tokens so far,
``letras.core.word_hash``). At each step ``codes(states, left)`` says which
tokens the word may draw when it has ``left`` tokens of room, the boundary included:

    need[s, v] = 1 + dist[next[s, v]]   (tokens an accepted word takes from here via v)
    need[s, boundary] = 0 if s accepts else never
    blocked[s, left] = need[s] > left   (computed once: left beyond the largest need is alike)

so that a step is a gather of rows of a table (blocked, or the fewest-tokens way on where the
word may not end), plus a scatter of the trie's few exceptions for the words still on it, and
the end blocked for the words whose key is an excluded word's.
``apply`` gives the blocked tokens probability zero; ``step`` moves the states on by the
drawn tokens. Built-in samplers use it; a plugin's sampler can too.
"""

from __future__ import annotations

from typing import Any

import torch

from .constraints import Automaton
from .word_hash import extend, key_of

NEVER = 1 << 30
ALLOWED, SOONEST, BLOCKED = 0, 1, 2  # what codes() says of each token
TABLE_BYTES = 64 << 20  # the most the blocked table may take; past it, need is compared per step
FILTER_SLOTS_PER_KEY = 32  # the excluded keys' filter: 1 word in 32 (or fewer) passes it without being excluded
MAX_FILTER_SLOTS = 1 << 24  # 16 MB: past 500,000 keys more words pass it (1 in 16 at a million)


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
        finite = [n for row in need for n in row if n < NEVER]
        self.cap = max(finite, default=0)  # left beyond this allows what this allows
        self.boundary = a.boundary
        self.code_table = self._table(self.need)  # (S * (cap+1), V), or None past TABLE_BYTES
        self.moves = torch.tensor(moves, dtype=torch.long, device=device)  # (S, V)
        self.vocab = vocab
        trie = a.trie
        empty = torch.zeros(0, dtype=torch.long)
        self.keys = (trie.keys if trie else empty).to(device)  # (E,): node * V + token, sorted
        self.child = (trie.child if trie else empty).to(device)  # (E,): the node it leads to
        # each node's exceptions, padded with the spare column V, whose need is never read:
        # (N, K) tokens and needs, scattered into a word's row of need
        self.exception_token = (trie.exception_token if trie else empty.view(0, 0)).to(device)
        self.exception_need = (trie.exception_need if trie else empty.view(0, 0).int()).to(device)
        self.need_spare = torch.nn.functional.pad(self.need, (0, 1))  # (S, V + 1)
        # (N + 1,) whether node - 1 has exceptions; the first, False, for the words off the trie
        self.has_exceptions = torch.nn.functional.pad((self.exception_token < vocab).any(dim=1), (1, 0))
        self.hashed = None if a.hashed is None else a.hashed.to(device)  # (K,) sorted keys
        self.filter = self.need_end_blocked = self.end_blocked_table = None
        if self.hashed is not None:  # the codes of a word at an excluded word's end: its end blocked
            self.filter = _filter(self.hashed)
            self.need_end_blocked = self.need.clone()
            self.need_end_blocked[:, self.boundary] = NEVER
            small = self.code_table is not None and 2 * self.code_table.numel() <= TABLE_BYTES
            self.end_blocked_table = self._table(self.need_end_blocked) if small else None

    def _table(self, need: torch.Tensor) -> torch.Tensor | None:
        """The codes for each state of ``need`` (S, V) and each room up to ``cap``, a row per
        (state, room) (None past TABLE_BYTES): a step reads its rows rather than compare."""
        states, vocab = need.shape
        if states * (self.cap + 1) * vocab > TABLE_BYTES:
            return None
        room = torch.arange(self.cap + 1, device=need.device)
        need_at = need[:, None, :].expand(-1, self.cap + 1, -1).reshape(-1, vocab)
        return self._codes(need_at, room.repeat(states))

    def start(self, prefix_ids: list[int], words: int = 1) -> torch.Tensor:
        """The states (words, 3) of words that begin with ``prefix_ids``; the prefix must
        begin an accepted word."""
        at = self.automaton.walk(prefix_ids)
        if at is None:
            from .errors import UsageError

            raise UsageError("no word with this prefix meets the constraints", where="prefix")
        row = [*at, key_of(prefix_ids) if self.hashed is not None else 0]
        return torch.tensor([row], dtype=torch.long, device=self.need.device).expand(words, 3).clone()

    def closes(self, prefix_ids: list[int]) -> bool:
        """Whether a word that begins with ``prefix_ids`` may be kept from ending other than at
        an excluded word: whether a state it can reach after the prefix does not accept. The
        states that read a --prefix, which the sampler reads first, are never met again, nor
        the start (a word without a prefix has at least one letter)."""
        accepting = torch.tensor(self.automaton.accepting, device=self.need.device)
        frontier, seen = self.start(prefix_ids)[:, 0], torch.zeros_like(accepting)
        skip = not prefix_ids  # the start
        while len(frontier):
            if not skip and not bool(accepting[frontier].all()):
                return True
            skip = False
            seen[frontier] = True
            onward = self.moves[frontier][self.need[frontier] < NEVER].unique()  # the live tokens' states
            frontier = onward[~seen[onward]]
        return False

    def codes(self, states: torch.Tensor, left: torch.Tensor | int) -> torch.Tensor:
        """(B, V) uint8, for each of the words in ``states`` (B, 3) with ``left`` (B,) tokens of
        room (an int: the same for all): BLOCKED for the tokens it may not draw, SOONEST for
        those that finish an accepted word in the fewest tokens when it may not end here,
        ALLOWED for the rest."""
        if not isinstance(left, torch.Tensor):
            left = torch.full((len(states),), left, dtype=torch.long, device=states.device)
        codes = self._read(self.code_table, self.need, states[:, 0], left)
        if self.hashed is not None:
            rows = self._excluded_rows(states[:, 2])
            if len(rows):
                codes[rows] = self._read(self.end_blocked_table, self.need_end_blocked, states[rows, 0], left[rows])
        if self.exception_token.shape[1] > 0:
            self._at_exceptions(codes, states, left)
        return codes

    def _read(self, table: torch.Tensor | None, need: torch.Tensor, state: torch.Tensor,
              left: torch.Tensor) -> torch.Tensor:
        """The codes of ``table`` (``_table(need)``, or None) for words in ``state`` with ``left``."""
        if table is None:
            return self._codes(need.index_select(0, state), left)
        # index_select: 3 to 8 times faster than indexing, on a CPU
        return table.index_select(0, state * (self.cap + 1) + left.clamp(max=self.cap))

    def _excluded_rows(self, keys: torch.Tensor) -> torch.Tensor:
        """The rows whose key (B,) is an excluded word's.

        The sorted keys of 100,000 words take 800 kB, which the model's step pushes out of the
        cache: a ``searchsorted`` for every word cost 80-100 us a step at 1,000 words. So a filter
        (a bool per slot, ``_filter``) is read first, and only the few words it lets through,
        about 8% of them under 100,000 of the model's likeliest words, are looked up."""
        maybe = self.filter.index_select(0, keys & (len(self.filter) - 1)).nonzero().squeeze(1)
        return maybe[self._excluded(keys.index_select(0, maybe))]

    def _excluded(self, keys: torch.Tensor) -> torch.Tensor:
        """(B,) bool: whether each key is an excluded word's."""
        at = torch.searchsorted(self.hashed, keys).clamp_(max=len(self.hashed) - 1)
        return self.hashed.index_select(0, at) == keys

    def _at_exceptions(self, codes: torch.Tensor, states: torch.Tensor, left: torch.Tensor) -> None:
        """The codes (in place) of the words at a node of the trie with exceptions: those
        scattered into their rows of need, the end blocked where the key is excluded too. (The
        other words on the trie, most of them, need what their state needs: a trie of the
        words near --max-length has exceptions mostly at its words' ends.)"""
        rows = self.has_exceptions.index_select(0, states[:, 1] + 1).nonzero().squeeze(1)
        if not len(rows):
            return
        at = states.index_select(0, rows)
        nodes = at[:, 1]
        need = self.need_spare.index_select(0, at[:, 0]).scatter_(1, self.exception_token[nodes],
                                                                  self.exception_need[nodes])
        if self.hashed is not None:
            need[:, self.boundary].masked_fill_(self._excluded(at[:, 2].contiguous()), NEVER)
        codes[rows] = self._codes(need[:, :-1], left[rows])

    def blocked(self, states: torch.Tensor, left: torch.Tensor | int) -> torch.Tensor:
        """(B, V) bool: the tokens each word may not draw (see ``codes``)."""
        return self.codes(states, left) == BLOCKED

    def _codes(self, need: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
        blocked = need > left[:, None]
        fewest = need.masked_fill(blocked, NEVER).min(dim=1, keepdim=True).values
        soonest = (need == fewest) & ~blocked & blocked[:, self.boundary, None]
        return torch.where(blocked, BLOCKED, torch.where(soonest, SOONEST, ALLOWED)).to(torch.uint8)

    def apply(self, logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """``logits`` (changed in place) with the blocked tokens at -inf, and, where the word
        may not end, the probability the model gave to its end moved onto the tokens that
        finish it soonest, in proportion to theirs: where the model would end a word, the
        constraints end it as soon as they can, rather than spread that probability over every
        letter and let the word run on to --max-length.

        A token the model itself gives no chance (-inf) stays below every token it gives one,
        yet is drawn rather than nothing when the constraints leave no other."""
        if logits.device.type == "cpu":  # only the rows the constraints touch (on a GPU, asking which would wait)
            # (a sum, not any(): 3x faster over the rows of a uint8 tensor on a CPU)
            rows = codes.sum(dim=1, dtype=torch.int32).nonzero().squeeze(1)  # ALLOWED is 0
            if len(rows) < len(codes):  # an exclusion list: most rows are free
                if len(rows):
                    logits[rows] = self._apply(logits[rows], codes[rows])
                return logits
        return self._apply(logits, codes)

    def _apply(self, logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        logits.clamp_(min=-1e4)
        soonest = codes == SOONEST
        rows = None
        if logits.device.type == "cpu":  # only the rows that need it (all of them: no copy)
            rows = soonest.sum(dim=1, dtype=torch.int32).nonzero().squeeze(1)
        if rows is None or len(rows) == len(logits):
            self._end_to_soonest(logits, soonest)
        elif len(rows):
            logits[rows] = self._end_to_soonest(logits[rows], soonest[rows])
        return logits.masked_fill_(codes == BLOCKED, float("-inf"))

    def _end_to_soonest(self, logits: torch.Tensor, soonest: torch.Tensor) -> torch.Tensor:
        # p(soonest tokens) / p(end), then log(1 + p(end) / p(soonest tokens)) added to their logits
        ratio = ((logits - logits[:, self.boundary, None]).clamp_(max=80.0).exp_() * soonest).sum(dim=1)
        return logits.add_(soonest * ratio.clamp_(min=1e-30).reciprocal_().log1p_()[:, None])

    def step(self, states: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The states after each word draws its token in ``ids`` (B,)."""
        after = torch.empty_like(states)
        after[:, 0] = self.moves.view(-1).index_select(0, states[:, 0] * self.vocab + ids)
        after[:, 2] = extend(states[:, 2], ids) if self.hashed is not None else 0
        after[:, 1] = -1
        if not len(self.keys):
            return after
        # the words on the trie: the child by their token, if any (on a CPU only those rows)
        on = (states[:, 1] >= 0).nonzero().squeeze(1) if states.device.type == "cpu" else slice(None)
        if isinstance(on, torch.Tensor) and not len(on):
            return after
        node = states[on, 1]
        key = node.clamp(min=0) * self.vocab + ids[on]
        at = torch.searchsorted(self.keys, key).clamp_(max=len(self.keys) - 1)
        found = (self.keys[at] == key) & (node >= 0)
        after[on, 1] = torch.where(found, self.child[at], -1)
        return after


def _filter(keys: torch.Tensor) -> torch.Tensor:
    """A bool for each of a power of two of slots, at least FILTER_SLOTS_PER_KEY per key (at
    most MAX_FILTER_SLOTS): True at each key's slot, its low bits. A key whose slot is False
    is not one of ``keys``."""
    slots = min(1 << max(len(keys) * FILTER_SLOTS_PER_KEY - 1, 1).bit_length(), MAX_FILTER_SLOTS)
    table = torch.zeros(slots, dtype=torch.bool, device=keys.device)
    return table.index_fill_(0, keys & (slots - 1), True)
