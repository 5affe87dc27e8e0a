"""A batch's state, row by row: the hidden state of nn.RNN and nn.LSTM (a tensor, or a tuple
of tensors, with the batch at dimension 1), or any cell's laid out alike.

Each function returns None for a state laid out otherwise; the samplers then keep the batch
whole."""

from __future__ import annotations

from typing import Any, Callable

import torch


def select_rows(state: Any, keep: torch.Tensor, batch: int) -> Any:
    """The state of the words in ``keep``, out of a state of ``batch`` words."""
    return _map_rows(state, batch, lambda s: s.index_select(1, keep))  # on a CPU, faster than s[:, keep]


def place_rows(state: Any, rows: torch.Tensor, new: Any, batch: int) -> Any:
    """``state`` (of ``batch`` words) with the states ``new`` (laid out alike, a word per
    entry of ``rows``) written in place: the sampler owns the state a step returned, and a
    copy of it per step cost 2-5%."""
    parts = iter(_tensors(new))  # _map_rows meets the tensors of state in the same order
    # .to: in case a cell under autocast hands back its state in another dtype than it was given
    return _map_rows(state, batch, lambda s: s.index_copy_(1, rows, next(parts).to(s.dtype)))


def join_rows(states: list[Any]) -> Any:
    """States laid out alike, one after the other along the batch."""
    if isinstance(states[0], torch.Tensor):
        return torch.cat(states, dim=1)
    return type(states[0])(join_rows(list(parts)) for parts in zip(*states))


def row_bytes(state: Any) -> int:
    """The memory one word's row of ``state`` takes."""
    return sum(t[:, 0].numel() * t.element_size() for t in _tensors(state))


def _map_rows(state: Any, batch: int, f: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(state, torch.Tensor):
        return f(state) if state.dim() >= 2 and state.shape[1] == batch else None
    if isinstance(state, (tuple, list)):
        parts = [_map_rows(s, batch, f) for s in state]
        return None if any(p is None for p in parts) else type(state)(parts)
    return None


def _tensors(state: Any) -> list[torch.Tensor]:
    if isinstance(state, (tuple, list)):
        return [t for s in state for t in _tensors(s)]
    return [state]
