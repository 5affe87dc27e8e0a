"""The word-reset training loop."""

from __future__ import annotations

import math
import time
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F

from letras.core import TrainingRun, resolve_device

IGNORE = -100  # target of padded positions: cross_entropy skips it


class WordBatches:
    """Encoded words as two padded tensors, prepared once, on the training device.

    Row i holds word i as inputs ``[., c1, ..., cn]`` and targets ``[c1, ..., cn, .]``;
    the positions past its end are padding (input: the boundary id, target: IGNORE).
    """

    def __init__(self, words: Sequence[Sequence[int]], device: torch.device):
        self.lengths = torch.tensor([len(w) - 1 for w in words])  # predicted positions per word
        width = int(self.lengths.max()) if len(words) else 0
        inputs = torch.zeros(len(words), width, dtype=torch.long)
        targets = torch.full((len(words), width), IGNORE, dtype=torch.long)
        for i, w in enumerate(words):
            n = len(w) - 1
            inputs[i, :n] = torch.tensor(w[:-1])
            targets[i, :n] = torch.tensor(w[1:])
        self.inputs, self.targets = inputs.to(device), targets.to(device)
        self.device = device
        self.chars = int(self.lengths.sum())

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self, batch_size: int, *, generator: torch.Generator | None = None,
                group_by_length: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(inputs (B, T), targets (B, T), predicted characters) per batch, in random order.

        With ``group_by_length`` each batch holds words of (nearly) one length, so almost
        no position is padding; which words share a batch still changes every epoch.
        """
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        if group_by_length:
            order = order[torch.argsort(self.lengths[order], stable=True)]
        chunks = list(torch.split(order, batch_size))
        if generator is not None:
            chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
        for chunk in chunks:
            lengths = self.lengths[chunk]
            width = int(lengths.max())  # computed on the CPU: no device sync
            index = chunk.to(self.device, non_blocking=True)
            yield self.inputs[index, :width], self.targets[index, :width], int(lengths.sum())


def loss_sum(model: Any, inputs: torch.Tensor, targets: torch.Tensor, manual: bool = False) -> torch.Tensor:
    """Summed cross-entropy over the real (unpadded) positions; every word starts from a zero state."""
    if manual:
        # The notes' loop: one letter per call, the state carried from letter to letter.
        state, steps = None, []
        for t in range(inputs.shape[1]):
            logits_t, state = model(inputs[:, t:t + 1], state)  # (B, 1, V)
            steps.append(logits_t)
        logits = torch.cat(steps, dim=1)  # (B, T, V)
    else:
        logits, _ = model(inputs)  # (B, T, V), one fused call
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=IGNORE, reduction="sum")


@torch.no_grad()
def evaluate(model: Any, data: WordBatches, batch_size: int = 1024) -> float:
    """Mean nats per predicted character over all of ``data`` (a mean over characters)."""
    if len(data) == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=data.device)
    for inputs, targets, _ in data.batches(batch_size):
        total += loss_sum(model, inputs, targets)
    model.train(was_training)
    return float(total) / data.chars


class WordResetTrainer:
    def __init__(self, **options: Any):
        from . import WordResetOptions

        self.options = WordResetOptions(**options)

    def _optimizer(self, model: Any) -> torch.optim.Optimizer:
        o = self.options
        cls = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
        return cls(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)

    def _schedule(self, optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
        o = self.options

        def factor(step: int) -> float:
            if o.warmup_steps and step < o.warmup_steps:
                return (step + 1) / o.warmup_steps
            if o.schedule == "cosine":
                progress = min(1.0, (step - o.warmup_steps) / max(1, total_steps - o.warmup_steps))
                return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))
            return 1.0

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def fit(self, model: Any, words: Sequence[Sequence[int]], run: TrainingRun) -> None:
        o = self.options
        device = resolve_device(o.device)
        train_words, val_words = run.split(words, o.val_fraction)
        train, val = WordBatches(train_words, device), WordBatches(val_words, device)
        model.to(device).train()
        optimizer = self._optimizer(model)
        steps_per_epoch = math.ceil(len(train) / o.batch_size)
        total_steps = steps_per_epoch * o.epochs
        scheduler = self._schedule(optimizer, total_steps)
        generator = torch.Generator().manual_seed(run.seed)
        manual = o.unroll == "manual"
        start, step = time.monotonic(), 0
        out_of_time = False

        for epoch in range(1, o.epochs + 1):
            epoch_start = time.monotonic()
            loss_total = torch.zeros((), device=device)  # summed on the device: no sync per step
            chars = 0
            for inputs, targets, n in train.batches(o.batch_size, generator=generator,
                                                    group_by_length=o.group_by_length):
                loss = loss_sum(model, inputs, targets, manual)
                (loss / n if o.reduction == "mean" else loss).backward()
                if o.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                loss_total += loss.detach()
                chars += n
                step += 1
                if step % o.log_every == 0:
                    run.step(step, total_steps, epoch, float(loss_total) / chars)
                if o.max_seconds and time.monotonic() - start >= o.max_seconds:
                    out_of_time = True
                    break
            train_loss = float(loss_total) / max(chars, 1)
            seconds = time.monotonic() - epoch_start
            val_loss = evaluate(model, val) if len(val) else None
            metrics = {"epoch": epoch, "step": step, "train_loss": train_loss, "val_loss": val_loss,
                       "train_bpc": train_loss / math.log(2),
                       "val_bpc": val_loss / math.log(2) if val_loss is not None else None,
                       "chars_per_s": chars / seconds if seconds > 0 else None,
                       "seconds": time.monotonic() - start, "lr": scheduler.get_last_lr()[0]}
            run.end_epoch(metrics, model, {"optimizer": optimizer.state_dict(),
                                           "scheduler": scheduler.state_dict(),
                                           "epoch": epoch, "step": step})
            if out_of_time:
                break
