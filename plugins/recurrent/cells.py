"""The fused torch recurrent layers, built to the cell contract (batch first)."""

from torch import nn

from . import RNNCellOptions


def rnn(input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
        options: RNNCellOptions | None = None) -> nn.RNN:
    # nn.RNN drops out between layers only; with one layer it would warn and do nothing.
    return nn.RNN(input_size, hidden_size, num_layers, nonlinearity=(options or RNNCellOptions()).nonlinearity,
                  batch_first=True, dropout=dropout if num_layers > 1 else 0.0)


def lstm(input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0) -> nn.LSTM:
    return nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                   dropout=dropout if num_layers > 1 else 0.0)
