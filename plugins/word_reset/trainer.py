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

from . import WordResetOptions
from .adam import make_adam
from .averaging import WeightAverage


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
        self.options = options if options is not None else WordResetOptions(**values)
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
        o = self.options
        device = run.device(o.device)
        train_part, val_part = run.labelled_split(words, o.val_fraction)
        train = WordBatches(train_part["words"], device, labels=train_part["labels"], weights=train_part["weights"])
        val = WordBatches(val_part["words"], device, labels=val_part["labels"])
        precision = resolve_precision(o.precision, device, setting="trainer.precision={}")
        scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")  # fp16 gradients underflow
        model.to(device).train()
        net = run.wrap(model)  # under torchrun: gradients averaged over the processes
        world = run.world
        optimizer = self._optimizer(model)
        steps_per_epoch = math.ceil(len(train) / o.batch_size)
        # "mean" divides every batch by the same number, the characters of an average batch:
        # batches grouped by length differ in size, and dividing each by its own count would
        # weigh a character of a short word more than one of a long word.
        per_batch = train.chars / steps_per_epoch if o.reduction == "mean" else 1.0
        # Each process sees part of every batch and DDP averages their gradients: scaling by
        # the number of processes makes that average the gradient of the whole batch.
        per_batch /= world.size
        total_steps = steps_per_epoch * o.epochs
        generator = torch.Generator().manual_seed(run.seed)  # the order of the words

        # Resuming: everything the loop below depends on comes back from the checkpoint.
        saved = run.resume_state or {}
        step, done, skip = saved.get("step", 0), saved.get("epoch", 0), saved.get("batch", 0)
        best, stale = saved.get("best_val"), saved.get("stale", 0)
        kept = saved.get("kept")  # keep: best: the best epoch's weights so far
        start = time.monotonic() - saved.get("seconds", 0.0)
        if saved:
            try:
                optimizer.load_state_dict(saved["optimizer"])
            except ValueError as error:  # e.g. saved by a letras that grouped the parameters otherwise
                raise UsageError(f"the checkpoint's optimizer state does not fit this trainer: {error}",
                                 hint="train anew with --overwrite, or resume with the letras that saved it") from None
            scaler.load_state_dict(saved.get("scaler") or {})
            generator.set_state(saved["order"])
        manual = o.unroll == "manual"
        average = WeightAverage(model, o.ema) if o.ema else None
        if saved and average is not None:  # the checkpoint's model is the average
            average.load(saved["trained_weights"])

        @contextlib.contextmanager
        def averaged() -> Iterator[None]:
            """The model holds the average while it is validated and saved."""
            if average is not None:
                average.swap()
            try:
                yield
            finally:
                if average is not None:
                    average.swap()

        def state(epochs_done: int, batch: int, order: torch.Tensor, loss_total: Any = 0.0,
                  chars: int = 0) -> dict[str, Any]:
            return {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                    "epoch": epochs_done, "step": step, "batch": batch, "order": order,
                    "loss_total": float(loss_total), "chars": chars,
                    "seconds": time.monotonic() - start, "best_val": best, "stale": stale,
                    **({"kept": kept} if kept is not None else {}),
                    # inside averaged(): the weights training goes on from
                    **({"trained_weights": [t.clone() for t in average.average]} if average else {})}

        for epoch in range(done + 1, o.epochs + 1):
            epoch_start = time.monotonic()
            order = generator.get_state()  # this epoch's batches follow from it
            # summed on the device: no sync per step
            loss_total = torch.tensor(saved.get("loss_total", 0.0) if skip else 0.0, device=device)
            chars = saved.get("chars", 0) if skip else 0
            out_of_time = False
            batches = train.labelled_batches(o.batch_size, generator=generator, group_by_length=o.group_by_length,
                                             shard=(world.rank, world.size))
            for i, (inputs, targets, n, labels, weights) in enumerate(batches):
                if i < skip:
                    continue  # trained before the interruption this run resumes from
                if n == 0:  # this process got no word of a small last batch: take part all the same
                    inputs, targets = train.inputs[:1, :1], torch.full_like(train.targets[:1, :1], IGNORE)
                    labels = None if labels is None else train.labels[:1]
                    weights = None if weights is None else train.weights[:1]
                with autocast(device, precision):
                    loss = (unrolled_loss_sum if manual else loss_sum)(net, inputs, targets, labels, weights)
                scaler.scale(loss / per_batch).backward()
                if o.grad_clip:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
                lr = self._learning_rate(step, total_steps, start)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if average is not None:
                    average.update(step)
                loss_total += loss.detach()
                chars += n
                step += 1
                if step % o.log_every == 0:
                    run.step(step, total_steps, epoch, float(loss_total) / chars, lr=lr)
                stopping, out_of_time = run.agree(
                    run.stop_requested, bool(o.max_seconds) and time.monotonic() - start >= o.max_seconds)
                if stopping:  # Ctrl-C or SIGTERM: save mid-epoch, resumable exactly
                    with averaged():
                        run.checkpoint(model, state(epoch - 1, i + 1, order, loss_total, chars))
                    return
                if out_of_time:
                    break
            skip = 0
            if world.distributed:  # the epoch's loss over every process's words
                totals = all_reduce_sum(torch.stack([loss_total.double(), torch.tensor(float(chars), device=device,
                                                                                      dtype=torch.float64)]))
                loss_total, chars = totals[0], int(totals[1])
            train_loss = float(loss_total) / max(chars, 1)
            seconds = time.monotonic() - epoch_start
            with averaged():  # validated and saved: the average, when there is one
                val_loss = mean_loss(model, val) if len(val) else None
                if val_loss is not None and (best is None or val_loss < best):
                    best, stale = val_loss, 0
                    if o.keep == "best":
                        kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
                elif val_loss is not None:
                    stale += 1
                stop = out_of_time or (o.patience is not None and stale >= o.patience)
                metrics = {"epoch": epoch, "step": step, "chars": chars,
                           "train_loss": train_loss, "val_loss": val_loss,
                           "train_bpc": train_loss / math.log(2),
                           "val_bpc": val_loss / math.log(2) if val_loss is not None else None,
                           "chars_per_s": chars / seconds if seconds > 0 else None,
                           "seconds": time.monotonic() - start, "lr": optimizer.param_groups[0]["lr"]}
                if run.label_names and len(val):
                    metrics["val_loss_per_label"] = loss_per_label(model, val, run.label_names)
                save = stop or epoch == o.epochs or epoch % o.checkpoint_every == 0
                run.end_epoch(metrics, model, state(epoch, 0, generator.get_state()), save=save)
            if stop:
                break
        if average is not None:
            average.swap()  # the model leaves training with the average, to be sampled
        if kept is not None and stale:  # keep: best, and the last epoch was not the best
            model.load_state_dict(kept)
            last = run.history[-1]["epoch"] if run.history else done
            run.checkpoint(model, state(last, 0, generator.get_state()))
