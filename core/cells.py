"""Building blocks for cells of the letras contract: ``step_cell`` turns a single-step
module into a sequence cell; ``LayerStack`` and ``word_dropout`` stack single-layer cells with
a dropout mask drawn once per word.

The notes write the RNN as one step, ``h = tanh(W_ih x + W_hh h)``. A plugin author can do
the same: write a module whose ``forward(x_t, h) -> h`` computes one step, and ``step_cell``
makes it a cell that reads whole sequences like ``nn.RNN`` (batch first, stacked layers,
dropout between them, ``h0=None`` meaning zeros)::

    class ElmanStep(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.ih, self.hh = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)

        def forward(self, x, h):          # x: (B, I), h: (B, H)
            return torch.tanh(self.ih(x) + self.hh(h))

    elman = step_cell(ElmanStep)          # register("elman", "my_plugin.cells:elman")

The state of one layer is a tensor ``(B, H)``, or a tuple of them (an LSTM's ``(h, c)``),
whose first element is the layer's output. The sequence cell stacks the layers' states
along a first dimension, ``(num_layers, B, H)``, as ``nn.RNN`` does.

``LayerStack([cell_0, cell_1], dropout=p)`` makes one cell of single-layer cells (any cells of
this contract) and drops out between them with ``word_dropout``: the units dropped at a
word's first letter stay dropped for the whole word. The built-in generator stacks its layers
so when ``model.dropout_mask`` is ``word``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

State = Any  # a tensor, or a tuple of tensors


class StepCell(nn.Module):
    """A stack of single-step modules read over a sequence: ``forward(x, h0=None) -> (out, hT)``."""

    def __init__(self, make_step: Callable[[int], nn.Module], input_size: int, hidden_size: int,
                 num_layers: int = 1, dropout: float = 0.0, state_size: int = 1):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.state_size = state_size  # tensors per layer state: 1 for an RNN, 2 for an LSTM
        self.steps = nn.ModuleList(make_step(input_size if i == 0 else hidden_size) for i in range(num_layers))
        self.dropout = nn.Dropout(dropout)

    def zero_state(self, batch: int, like: torch.Tensor) -> State:
        zeros = like.new_zeros(self.num_layers, batch, self.hidden_size)
        return zeros if self.state_size == 1 else tuple(zeros.clone() for _ in range(self.state_size))

    def forward(self, x: torch.Tensor, h0: State = None) -> tuple[torch.Tensor, State]:
        B, T, _ = x.shape
        state = self.zero_state(B, x) if h0 is None else h0
        layer_states = [_layer(state, i) for i in range(self.num_layers)]
        out = x  # (B, T, I)
        for i, step in enumerate(self.steps):
            h = layer_states[i]
            outputs = []
            for t in range(T):
                h = step(out[:, t], h)  # (B, H), or a tuple whose first element is (B, H)
                outputs.append(h if isinstance(h, torch.Tensor) else h[0])
            layer_states[i] = h
            out = torch.stack(outputs, dim=1)  # (B, T, H)
            if i < self.num_layers - 1:
                out = self.dropout(out)
        return out, _stack(layer_states)


def _layer(state: State, i: int) -> State:
    return state[i] if isinstance(state, torch.Tensor) else tuple(s[i] for s in state)


def _stack(layer_states: list[State]) -> State:
    if isinstance(layer_states[0], torch.Tensor):
        return torch.stack(layer_states)
    return tuple(torch.stack(parts) for parts in zip(*layer_states))


def step_cell(step_cls: Callable[..., nn.Module], *, state_size: int = 1) -> Callable[..., StepCell]:
    """A cell factory of the letras contract from a step module class
    ``step_cls(input_size, hidden_size, **options)`` with ``forward(x_t, h) -> h``."""

    def factory(input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                **options: Any) -> StepCell:
        return StepCell(lambda n_in: step_cls(n_in, hidden_size, **options), input_size, hidden_size,
                        num_layers, dropout, state_size)

    factory.__name__ = getattr(step_cls, "__name__", "step_cell")
    factory.__doc__ = getattr(step_cls, "__doc__", None)
    return factory


def word_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Dropout with one mask per word: the units dropped at a word's first letter stay dropped
    for all its letters (variational dropout, Gal and Ghahramani 2016). ``x`` is (B, T, H) and
    the mask (B, 1, H): T times fewer random numbers than ordinary dropout, and measured a
    better regulariser for these models (docs/performance.md)."""
    if not training or p == 0.0:
        return x
    mask = torch.empty(x.shape[0], 1, x.shape[2], dtype=x.dtype, device=x.device).bernoulli_(1 - p)
    return x * mask.div_(1 - p)  # scaled while small: one pass over x


class WordDropout(nn.Module):
    """``word_dropout`` as a module: active in training, the identity in eval mode."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return word_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerStack(nn.Module):
    """Single-layer cells stacked into one cell of the letras contract, with ``word_dropout``
    between the layers. A fused multi-layer cell (``nn.LSTM(num_layers=2, dropout=p)``) draws
    its dropout afresh at every letter; this stack draws it once per word. The state is
    stacked along the first dimension, ``(num_layers, B, H)``, as the fused cell's is."""

    def __init__(self, layers: Sequence[nn.Module], dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dropout = WordDropout(dropout)

    def forward(self, x: torch.Tensor, h0: State = None) -> tuple[torch.Tensor, State]:
        out, states = x, []
        for i, layer in enumerate(self.layers):
            if i:
                out = self.dropout(out)
            out, state = layer(out, None if h0 is None else _layers(h0, i, i + 1))
            states.append(state)
        return out, _concat(states)


def _layers(state: State, start: int, stop: int) -> State:
    return state[start:stop] if isinstance(state, torch.Tensor) else tuple(s[start:stop] for s in state)


def _concat(layer_states: list[State]) -> State:
    if isinstance(layer_states[0], torch.Tensor):
        return torch.cat(layer_states)
    return tuple(torch.cat(parts) for parts in zip(*layer_states))
