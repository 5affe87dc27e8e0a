"""The word-reset training loop."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Iterator, Sequence

import torch

from letras.core import TrainingRun, UsageError, autocast, resolve_precision
from letras.core.distributed import all_reduce_sum
from letras.core.batching import IGNORE, WordBatches, loss_sum, mean_loss, weighted_cross_entropy
from letras.core.conditioning import loss_per_label
from letras.core.options import given

from . import WordResetOptions
from .adam import make_adam
from .averaging import WeightAverage
from .label_loss import label_log_prior, losses_under_every_label


def unrolled_loss_sum(model: Any, inputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None = None,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """The notes' loop: one letter per call, the state carried from letter to letter."""
    state, steps = None, []
    given = {} if labels is None else {"labels": labels}
    for t in range(inputs.shape[1]):
        logits_t, state = model(inputs[:, t:t + 1], state, **given)  # (B, 1, V)
        steps.append(logits_t)
    logits = torch.cat(steps, dim=1)  # (B, T, V)
    return weighted_cross_entropy(logits, targets, weights)


class WordResetTrainer:
    def __init__(self, options: WordResetOptions | None = None, **values: Any):
        """``options`` as letras builds it from a config; ``values`` for a trainer made by hand."""
        self.options = given(WordResetOptions, options, values)
        self.options.check_resolved()

    def _optimizer(self, model: Any) -> Any:
        o = self.options
        params: Any = [p for p in model.parameters() if p.requires_grad]
        if o.weight_decay:
            # Decay the weight matrices and the embedding, not the biases, as nanoGPT does:
            # pulling an LSTM's forget-gate bias towards zero only makes it forget sooner.
            params = [{"params": [p for p in params if p.dim() >= 2]},
                      {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return make_adam(params, lr=o.lr, weight_decay=o.weight_decay, decoupled=o.optimizer == "adamw")

    def _learning_rate(self, step: int, total_steps: int, start: float) -> float:
        """The learning rate of optimizer step ``step`` (from 0): warm-up, then the schedule."""
        o = self.options
        if o.warmup_steps and step < o.warmup_steps:
            return o.lr * (step + 1) / o.warmup_steps
        if o.schedule == "cosine":
            progress = (step - o.warmup_steps) / max(1, total_steps - o.warmup_steps)
            if o.max_seconds:  # a time budget: anneal by whichever runs out first
                progress = max(progress, (time.monotonic() - start) / o.max_seconds)
            return o.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        return o.lr

    def fit(self, model: Any, words: Sequence[Sequence[int]], run: TrainingRun) -> None:
        """The loop, as nanoGPT's: an epoch of steps, then validation, a record and a checkpoint.
        Everything it carries lives in ``_Loop``, which a checkpoint saves and a resume restores."""
        loop = _Loop(self, model, words, run)
        for epoch in range(loop.epochs_done + 1, self.options.epochs + 1):
            trained = loop.train_epoch(epoch)  # one pass over the batches
            if trained is None:  # Ctrl-C or SIGTERM: saved mid-epoch, resumable exactly
                return
            if loop.end_epoch(epoch, *trained):  # validate, record, checkpoint; True: stop here
                break
        loop.finish()  # the model leaves with the average of the weights, or the best epoch's


class _Loop:
    """One fit: the data, the optimizer and everything the loop carries from step to step."""

    def __init__(self, trainer: WordResetTrainer, model: Any, words: Sequence[Sequence[int]], run: TrainingRun):
        o = self.options = trainer.options
        self.trainer, self.model, self.run = trainer, model, run
        self.device = device = run.device(o.device)
        train_part, val_part = run.labelled_split(words, o.val_fraction)
        self.train = WordBatches(train_part["words"], device, labels=train_part["labels"],
                                 weights=train_part["weights"])
        self.val = WordBatches(val_part["words"], device, labels=val_part["labels"])
        self.log_prior = self._label_prior(train_part["labels"])
        self.precision = resolve_precision(o.precision, device, setting="trainer.precision={}")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")  # fp16 gradients underflow
        model.to(device).train()
        self.net = run.wrap(model)  # under torchrun: gradients averaged over the processes
        self.optimizer = trainer._optimizer(model)
        steps_per_epoch = math.ceil(len(self.train) / o.batch_size)
        # "mean" divides every batch by the same number, the characters of an average batch:
        # batches grouped by length differ in size, and dividing each by its own count would
        # weigh a character of a short word more than one of a long word. Each process sees part
        # of every batch and DDP averages their gradients: dividing by the number of processes
        # makes that average the gradient of the whole batch.
        self.per_batch = (self.train.chars / steps_per_epoch if o.reduction == "mean" else 1.0) / run.world.size
        self.total_steps = steps_per_epoch * o.epochs
        self.generator = torch.Generator().manual_seed(run.seed)  # the order of the words
        self.average = WeightAverage(model, o.ema) if o.ema else None
        self._resume(run.resume_state or {})

    def _label_prior(self, labels: Sequence[int] | None) -> torch.Tensor | None:
        """The training words' label shares, logged, for ``label_loss``; None when it is off."""
        o = self.options
        if not o.label_loss:
            return None
        if labels is None:
            raise UsageError("needs a labelled corpus", where="trainer.label_loss",
                             hint="give the corpus a label column (docs/labels.md), or set label_loss to 0")
        return label_log_prior(labels, len(self.run.label_names), self.device)

    def _resume(self, saved: dict[str, Any]) -> None:
        """Everything the loop depends on, from the checkpoint a resumed run starts from."""
        self.step, self.epochs_done, self.skip = saved.get("step", 0), saved.get("epoch", 0), saved.get("batch", 0)
        self.best, self.stale = saved.get("best_val"), saved.get("stale", 0)
        self.kept = saved.get("kept")  # keep: best: the best epoch's weights so far
        self.start = time.monotonic() - saved.get("seconds", 0.0)
        self.partial = (saved.get("loss_total", 0.0), saved.get("chars", 0))  # of the epoch it stopped in
        self.weighting = self.options.weighting
        if not saved:
            return
        # a run saved before trainer.weighting existed weighted the loss: it goes on as it began
        self.weighting = saved.get("weighting", "loss")
        try:
            self.optimizer.load_state_dict(saved["optimizer"])
        except ValueError as error:  # e.g. saved by a letras that grouped the parameters otherwise
            raise UsageError(f"the checkpoint's optimizer state does not fit this trainer: {error}",
                             hint="train anew with --overwrite, or resume with the letras that saved it") from None
        self.scaler.load_state_dict(saved.get("scaler") or {})
        self.generator.set_state(saved["order"])
        if self.average is not None:  # the checkpoint's model is the average
            self.average.load(saved["trained_weights"])

    def train_epoch(self, epoch: int) -> tuple[float, int, bool, float] | None:
        """One pass over the training batches: (train loss, characters, out of time, seconds),
        or None when a stop request saved the run mid-epoch."""
        o, run, start = self.options, self.run, time.monotonic()
        order = self.generator.get_state()  # this epoch's batches follow from it
        loss_total, chars = self.partial if self.skip else (0.0, 0)
        loss_total = torch.tensor(loss_total, device=self.device)  # summed on the device: no sync per step
        out_of_time = False
        batches = self.train.labelled_batches(o.batch_size, generator=self.generator,
                                              group_by_length=o.group_by_length, shard=(run.world.rank, run.world.size),
                                              draw_by_weight=self.weighting == "sample")
        for i, batch in enumerate(batches):
            if i < self.skip:
                continue  # trained before the interruption this run resumes from
            loss, n, lr = self._train_step(*batch)
            loss_total += loss
            chars += n
            if self.step % o.log_every == 0:
                run.step(self.step, self.total_steps, epoch, float(loss_total) / chars, lr=lr)
            stopping, out_of_time = run.agree(
                run.stop_requested, bool(o.max_seconds) and time.monotonic() - self.start >= o.max_seconds)
            if stopping:
                with self.averaged():
                    run.checkpoint(self.model, self.state(epoch - 1, i + 1, order, loss_total, chars))
                return None
            if out_of_time:
                break
        self.skip = 0
        if run.world.distributed:  # the epoch's loss over every process's words
            totals = all_reduce_sum(torch.stack([loss_total.double(),
                                                 torch.tensor(float(chars), device=self.device, dtype=torch.float64)]))
            loss_total, chars = totals[0], int(totals[1])
        return float(loss_total) / max(chars, 1), chars, out_of_time, time.monotonic() - start

    def _train_step(self, inputs: torch.Tensor, targets: torch.Tensor, n: int, labels: Any,
                    weights: Any) -> tuple[torch.Tensor, int, float]:
        """One optimizer step on a batch: (its summed loss, its characters, the learning rate)."""
        o, train = self.options, self.train
        if n == 0:  # this process got no word of a small last batch: take part all the same
            inputs, targets = train.inputs[:1, :1], torch.full_like(train.targets[:1, :1], IGNORE)
            labels = None if labels is None else train.labels[:1]
            weights = None if weights is None else train.weights[:1]
        with autocast(self.device, self.precision):
            if self.log_prior is None:
                loss = total = (unrolled_loss_sum if o.unroll == "manual" else loss_sum)(
                    self.net, inputs, targets, labels, weights)
            else:
                loss, total = self._with_label_loss(inputs, targets, labels, weights)
        self.scaler.scale(total / self.per_batch).backward()
        if o.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), o.grad_clip)
        lr = self.trainer._learning_rate(self.step, self.total_steps, self.start)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.average is not None:
            self.average.update(self.step)
        self.step += 1
        return loss.detach(), n, lr

    def _with_label_loss(self, inputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor,
                         weights: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(the batch's summed loss, as reported; it plus ``label_loss`` times the words'
        classification loss, -log P(label | word), which is what is trained)."""
        own, posterior = losses_under_every_label(self.net, inputs, targets, labels, self.log_prior)
        if weights is not None:
            own, posterior = own * weights, posterior * weights
        loss = own.sum()
        return loss, loss + self.options.label_loss * posterior.sum()

    def end_epoch(self, epoch: int, train_loss: float, chars: int, out_of_time: bool, seconds: float) -> bool:
        """Validate (the average of the weights, when there is one), record the epoch, save when
        due; True when training should stop: out of time, or out of patience."""
        o, model, val = self.options, self.model, self.val
        with self.averaged():
            val_loss = mean_loss(model, val) if len(val) else None
            if val_loss is not None and (self.best is None or val_loss < self.best):
                self.best, self.stale = val_loss, 0
                if o.keep == "best":
                    self.kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif val_loss is not None:
                self.stale += 1
            stop = out_of_time or (o.patience is not None and self.stale >= o.patience)
            metrics = {"epoch": epoch, "step": self.step, "chars": chars,
                       "train_loss": train_loss, "val_loss": val_loss,
                       "train_bpc": train_loss / math.log(2),
                       "val_bpc": val_loss / math.log(2) if val_loss is not None else None,
                       "chars_per_s": chars / seconds if seconds > 0 else None,
                       "seconds": time.monotonic() - self.start, "lr": self.optimizer.param_groups[0]["lr"]}
            if self.run.label_names and len(val):
                metrics["val_loss_per_label"] = loss_per_label(model, val, self.run.label_names)
            save = stop or epoch == o.epochs or epoch % o.checkpoint_every == 0
            self.run.end_epoch(metrics, model, self.state(epoch, 0, self.generator.get_state()), save=save)
        return stop

    def finish(self) -> None:
        """The model leaves training with the average of the weights (``ema``), and with the
        best epoch's weights (``keep: best``), saved, where the last epoch was not the best."""
        if self.average is not None:
            self.average.swap()
        if self.kept is not None and self.stale:
            self.model.load_state_dict(self.kept)
            last = self.run.history[-1]["epoch"] if self.run.history else self.epochs_done
            self.run.checkpoint(self.model, self.state(last, 0, self.generator.get_state()))

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """The model holds the average of the weights while it is validated and saved."""
        if self.average is not None:
            self.average.swap()
        try:
            yield
        finally:
            if self.average is not None:
                self.average.swap()

    def state(self, epochs_done: int, batch: int, order: torch.Tensor, loss_total: Any = 0.0,
              chars: int = 0) -> dict[str, Any]:
        """What a checkpoint keeps of the loop, so that a resumed run goes on exactly."""
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": epochs_done, "step": self.step, "batch": batch, "order": order,
                "loss_total": float(loss_total), "chars": chars, "weighting": self.weighting,
                "seconds": time.monotonic() - self.start, "best_val": self.best, "stale": self.stale,
                **({"kept": self.kept} if self.kept is not None else {}),
                # inside averaged(): the weights training goes on from
                **({"trained_weights": [t.clone() for t in self.average.average]} if self.average else {})}
