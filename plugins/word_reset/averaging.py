"""An exponential moving average of the weights (Polyak averaging).

Small-batch training ends with weights that still jitter from batch to batch; their
average over the last few thousand steps generalises a little better. The average is what
the trainer validates, saves and samples with; the trained weights go on learning.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch


class WeightAverage:
    """After every optimizer step, ``average += (weights - average) * (1 - decay) / (1 - decay**n)``
    at the n-th step: the average of the weights of every step so far, each step weighing
    ``decay`` times less than the next. The bias correction (Adam's, for its moments) starts it
    from the first step's weights, so the random initial weights never count."""

    def __init__(self, model: Any, decay: float):
        self.decay = decay
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.average = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        weight = (1.0 - self.decay) / (1.0 - self.decay ** (step + 1))  # step counts from 0
        for average, param in zip(self.average, self.params):
            average.lerp_(param.detach(), weight)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the model's weights and the average; twice leaves both as they were."""
        for average, param in zip(self.average, self.params):
            trained = param.detach().clone()
            param.copy_(average)
            average.copy_(trained)

    @torch.no_grad()
    def load(self, weights: Sequence[torch.Tensor]) -> None:
        """Put the trained ``weights`` a checkpoint saved back in the model: resuming, the
        model holds the saved average, and training goes on from these."""
        if len(weights) != len(self.params):
            raise ValueError(f"{len(weights)} saved weight tensors for {len(self.params)} parameters")
        for param, saved in zip(self.params, weights):
            param.copy_(saved)
