"""Two cells of the letras contract: factory(input_size, hidden_size, num_layers=, dropout=)."""

import torch
from torch import nn

from letras.core.cells import step_cell


def gru(input_size, hidden_size, num_layers=1, dropout=0.0):
    """A fused nn.GRU already has the sequence interface: (x, h0) -> (out, hT)."""
    return nn.GRU(input_size, hidden_size, num_layers, batch_first=True,
                  dropout=dropout if num_layers > 1 else 0.0)


class MGUStep(nn.Module):
    """One step of the minimal gated unit (Zhou et al., 2016): one forget gate f.

        f  = sigmoid(W_f x + U_f h)
        h~ = tanh(W_h x + U_h (f * h))
        h' = (1 - f) * h + f * h~
    """

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.x_to = nn.Linear(input_size, 2 * hidden_size)  # W_f and W_h together
        self.h_to_f = nn.Linear(hidden_size, hidden_size, bias=False)
        self.h_to_h = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x, h):  # x: (B, I), h: (B, H)
        xf, xh = self.x_to(x).chunk(2, dim=-1)
        f = torch.sigmoid(xf + self.h_to_f(h))
        candidate = torch.tanh(xh + self.h_to_h(f * h))
        return (1 - f) * h + f * candidate


mgu = step_cell(MGUStep)
