"""Encoded words as padded tensors, batches grouped by length, and the masked loss.

Public API for trainers and for evaluation: the trainer's validation loss and `letras eval`
go through the same ``mean_loss``, so they agree to the last digit.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F

IGNORE = -100  # target of padded positions: cross_entropy skips it


class WordBatches:
    """Encoded words as two padded tensors, prepared once, on one device.

    Row i holds word i as inputs ``[., c1, ..., cn]`` and targets ``[c1, ..., cn, .]``;
    the positions past its end are padding (input: the boundary id, target: IGNORE).
    ``labels`` (a label id per word) and ``weights`` (a weight per word) go with the rows
    into ``labelled_batches``.
    """

    def __init__(self, words: Sequence[Sequence[int]], device: Any = "cpu", *,
                 labels: Sequence[int] | None = None, weights: Sequence[float] | None = None):
        self.device = torch.device(device)
        self.labels = None if labels is None else torch.tensor(labels, dtype=torch.long, device=self.device)
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=self.device)
        self.lengths = torch.tensor([len(w) - 1 for w in words], dtype=torch.long)  # predicted positions
        width = int(self.lengths.max()) if len(words) else 0
        flat = torch.tensor([i for w in words for i in w], dtype=torch.long)
        starts = torch.cumsum(self.lengths + 1, 0) - (self.lengths + 1)  # where each word begins in flat
        offsets = torch.arange(width)
        inside = offsets[None, :] < self.lengths[:, None]  # (N, W) real positions
        index = (starts[:, None] + offsets[None, :]).clamp(max=max(len(flat) - 2, 0))
        boundary = words[0][0] if len(words) else 0
        inputs = torch.where(inside, flat[index], torch.full_like(index, boundary)) if len(words) else index
        targets = torch.where(inside, flat[index + 1], torch.full_like(index, IGNORE)) if len(words) else index
        self.inputs, self.targets = inputs.to(self.device), targets.to(self.device)
        self.chars = int(self.lengths.sum())

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self, batch_size: int, *, generator: torch.Generator | None = None,
                group_by_length: bool = True, shard: tuple[int, int] = (0, 1),
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(inputs (B, T), targets (B, T), predicted characters) per batch; ``labelled_batches``
        adds the batch's labels and weights.

        With a ``generator`` the words are shuffled and the batches come in random order.
        With ``group_by_length`` each batch holds words of (nearly) one length, so almost no
        position is padding; which words share a batch still changes every epoch.
        ``shard=(rank, size)`` yields this process's part of every batch (words rank, rank +
        size, ...): the processes of a data-parallel run see the same batches together. A
        part can be empty (B = 0) when a batch has fewer words than processes.
        """
        for inputs, targets, chars, _, _ in self.labelled_batches(
                batch_size, generator=generator, group_by_length=group_by_length, shard=shard):
            yield inputs, targets, chars

    def labelled_batches(self, batch_size: int, *, generator: torch.Generator | None = None,
                         group_by_length: bool = True, shard: tuple[int, int] = (0, 1),
                         draw_by_weight: bool = False,
                         ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int, Any, Any]]:
        """As ``batches``, with the batch's labels (B,) and weights (B,), or None for each the
        words do not have.

        ``draw_by_weight`` (words with weights, and a ``generator``): the pass holds as many
        words as there are, drawn with replacement in proportion to their weights, so a word
        that weighs 50 times another comes 50 times as often; the batches then carry no
        weights, each drawn word counting once."""
        rank, size = shard
        n = len(self)
        weights = self.weights
        if draw_by_weight and weights is not None and generator is not None:
            order = torch.multinomial(weights.cpu(), n, replacement=True, generator=generator)
            weights = None
        elif generator is not None:
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        if group_by_length:
            order = order[torch.argsort(self.lengths[order], stable=True)]
        chunks = list(torch.split(order, batch_size))
        if generator is not None:
            chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
        for chunk in chunks:
            chunk = chunk[rank::size]
            if len(chunk) == 0:
                yield self.inputs[:0, :1], self.targets[:0, :1], 0, self._rows(self.labels, chunk), \
                    self._rows(weights, chunk)
                continue
            lengths = self.lengths[chunk]
            width = int(lengths.max())  # known on the CPU: no device sync
            index = chunk.to(self.device, non_blocking=True)
            yield self.inputs[index, :width], self.targets[index, :width], int(lengths.sum()), \
                self._rows(self.labels, index), self._rows(weights, index)

    @staticmethod
    def _rows(values: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor | None:
        return None if values is None else values[index.to(values.device)]


@contextlib.contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """The model in eval mode (no dropout) for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def loss_sum(model: Any, inputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None = None,
             weights: torch.Tensor | None = None) -> torch.Tensor:
    """Summed cross-entropy over the real (unpadded) positions, every word from a zero state;
    with ``labels``, each word read under its label; with ``weights``, each word's loss
    multiplied by its weight."""
    logits, _ = model(inputs) if labels is None else model(inputs, labels=labels)  # (B, T, V), one fused call
    return weighted_cross_entropy(logits, targets, weights)


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                           weights: torch.Tensor | None = None) -> torch.Tensor:
    """The summed cross-entropy of logits (B, T, V) against targets (B, T), padding skipped,
    each word's loss multiplied by its weight (B,) if given."""
    if weights is None:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=IGNORE, reduction="sum")
    nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")  # (B, T)
    return (nll.sum(dim=1) * weights.to(nll.dtype)).sum()


@torch.no_grad()
def mean_loss(model: Any, data: WordBatches, batch_size: int = 1024) -> float:
    """Mean nats per predicted character over all of ``data``: a mean over characters, not
    a mean of batch means. NaN when ``data`` is empty."""
    if len(data) == 0:
        return float("nan")
    total = torch.zeros((), dtype=torch.float64, device=data.device)
    with evaluating(model):
        for inputs, targets, _, labels, _ in data.labelled_batches(batch_size):
            total += loss_sum(model, inputs, targets, labels).double()
    return float(total) / data.chars
