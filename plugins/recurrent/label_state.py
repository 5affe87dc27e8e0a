"""A word's first hidden state made from its label (``model.label_state``).

Without it every word starts from a zero state, as in the notes, and the label reaches the
cell only beside each letter. With it the state a word starts from is a linear map of its
label embedding, so the label is in the memory before the first letter is read. The map
starts at zero: at initialisation the model is exactly the one without it.

Any cell whose state is laid out like nn.RNN's (a tensor, or a tuple of tensors, with the
batch at dimension 1) works: the layout is read once, from one step of the cell.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from letras.core import UsageError


class LabelState(nn.Module):
    """label vectors (B, D) -> the cell's initial state for those B words."""

    def __init__(self, cell: nn.Module, input_size: int, label_dim: int):
        super().__init__()
        with torch.no_grad():
            _, state = cell(torch.zeros(1, 1, input_size))  # one word, one letter: the state's layout
        self.shapes = _layout(state)
        self.tuple = not isinstance(state, torch.Tensor)
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.project = nn.Linear(label_dim, sum(self.sizes))
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def forward(self, vectors: torch.Tensor) -> Any:
        B = vectors.shape[0]
        parts = self.project(vectors).split(self.sizes, dim=-1)  # each (B, prod(shape))
        tensors = [p.reshape(B, shape[0], *shape[1:]).transpose(0, 1).contiguous()  # batch at dimension 1
                   for p, shape in zip(parts, self.shapes)]
        return tuple(tensors) if self.tuple else tensors[0]


def _layout(state: Any) -> list[tuple[int, ...]]:
    """The shape of each tensor of one word's state, without its batch dimension (1)."""
    tensors = list(state) if isinstance(state, (tuple, list)) else [state]
    if not all(isinstance(t, torch.Tensor) and t.dim() >= 2 and t.shape[1] == 1 for t in tensors):
        raise UsageError("this cell's state is not laid out like nn.RNN's (tensors with the batch at "
                         "dimension 1), so it cannot start from the label", where="model.label_state",
                         hint="set model.label_state=false")
    return [(t.shape[0], *t.shape[2:]) for t in tensors]
