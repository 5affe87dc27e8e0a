"""What the core hands a trainer: the device, the split, progress, metrics and checkpoints.

A trainer plugin owns its loop; ``TrainingRun`` owns everything around it, so that every
trainer writes the same run folder and every plugin sees the same events.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

from . import distributed
from .distributed import World
from .devices import resolve_device
from .errors import LetrasError
from .progress import Progress, format_metrics
from .randomness import rng_state
from .split import split_words


@dataclasses.dataclass(frozen=True)
class TrainEvent:
    """What ``on_train_event`` receives.

    kind: "step" (every ``log_every`` steps: metrics holds step, epoch, train_loss, the running
    mean of the epoch so far, and lr), "epoch_end" (metrics holds epoch, step, train_loss,
    val_loss, chars_per_s, seconds, lr, ...), "checkpoint_saved" or "training_finished".
    """

    kind: str
    run_dir: str | None
    epoch: int
    step: int
    metrics: dict[str, Any]


class TrainingRun:
    """The services a trainer calls while it trains one model.

    A trainer reports progress with ``step()``, ends each epoch with ``end_epoch()``, and
    checks ``stop_requested`` after each step: when Ctrl-C or SIGTERM arrived, it saves
    with ``checkpoint()`` and returns. The ``state`` it passes is its own (optimizer,
    epoch, step, data order, ...); when the run is resumed, ``resume_state`` gives it back.
    """

    def __init__(self, *, seed: int, save: Callable[[dict[str, Any], bool], None] | None = None,
                 record: Callable[[dict[str, Any]], None] | None = None,
                 emit: Callable[[TrainEvent], None] | None = None, progress: Progress | None = None,
                 run_dir: str | None = None, resume_state: dict[str, Any] | None = None,
                 best_val: float | None = None, history: list[dict[str, Any]] | None = None,
                 world: World | None = None, labels: Sequence[int] | None = None,
                 label_names: Sequence[str] | None = None, weights: Sequence[float] | None = None):
        self.seed = seed
        # A labelled corpus: each word's label id (names in label_names), and its weight.
        self.labels, self.label_names, self.weights = labels, label_names, weights
        self.world = world or World()  # this process among those training together (torchrun)
        self.run_dir = run_dir
        self.progress = progress or Progress(quiet=True)
        self._save = save
        self._record = record or (lambda metrics: None)  # an epoch's line of metrics.jsonl
        self._emit = emit or (lambda event: None)
        self.resume_state = resume_state  # what the trainer saved, when this run resumes
        self.best_val = best_val
        self.history: list[dict[str, Any]] = list(history or [])
        self.checkpoints = 0
        self.stop_signal: int | None = None
        self.val_fraction: float | None = None  # set by split(); saved so eval can redo it

    def device(self, spec: str = "auto") -> Any:
        """The device to train on (``auto``, ``cpu``, ``cuda``, ``cuda:N``). Under torchrun each
        process takes its own GPU and joins the process group here."""
        device = resolve_device(distributed.device_for(self.world, spec))
        distributed.init(self.world, device)
        return device

    def wrap(self, model: Any) -> Any:
        """The model to call in the training loop: under torchrun, a DistributedDataParallel
        around it that averages the gradients of all processes; the model itself otherwise."""
        if not self.world.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    def agree(self, *flags: bool) -> list[bool]:
        """Each flag, true if it is true in any process (all processes stop together)."""
        if not self.world.distributed:
            return list(flags)
        import torch

        device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
        votes = torch.tensor([float(f) for f in flags], device=device)
        return [bool(v) for v in distributed.all_reduce_sum(votes).tolist()]

    @property
    def stop_requested(self) -> bool:
        """True once Ctrl-C or SIGTERM arrived: save with ``checkpoint()`` and return."""
        return self.stop_signal is not None

    def request_stop(self, signum: int) -> None:
        self.stop_signal = signum

    def split(self, words: Sequence[Any], val_fraction: float) -> tuple[list[Any], list[Any]]:
        """The seeded train/validation split of this run (`letras eval` redoes it)."""
        self.val_fraction = val_fraction
        return split_words(words, val_fraction, self.seed)

    def labelled_split(self, words: Sequence[Any], val_fraction: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """``split``, with each part's labels and weights (None where the corpus has none):
        ``{"words": [...], "labels": [...], "weights": [...]}``. The weights of the training
        words are scaled to a mean of 1, so weighting keeps the loss's scale."""
        train, val = self.split(range(len(words)), val_fraction)

        def part(index: list[int]) -> dict[str, Any]:
            return {"words": [words[i] for i in index],
                    "labels": None if self.labels is None else [self.labels[i] for i in index],
                    "weights": None if self.weights is None else [self.weights[i] for i in index]}

        parts = part(train), part(val)
        if parts[0]["weights"]:
            mean = sum(parts[0]["weights"]) / len(parts[0]["weights"])
            parts[0]["weights"] = [w / mean for w in parts[0]["weights"]]
        return parts

    def step(self, step: int, total: int | None, epoch: int, loss: float | None, *,
             lr: float | None = None) -> None:
        """Report progress (redrawn at most 10 times/s) and hand listeners a "step" event with
        the loss and the learning rate, so a run can be watched within an epoch."""
        self.progress.step(step, total, epoch, loss)
        if loss is not None:
            self._emit(TrainEvent("step", self.run_dir, epoch, step,
                                  {"step": step, "epoch": epoch, "train_loss": loss, "lr": lr}))

    def end_epoch(self, metrics: dict[str, Any], model: Any, state: dict[str, Any], *,
                  save: bool = True) -> None:
        """Record an epoch's metrics and, with ``save``, checkpoint ``model`` with ``state``."""
        for key in ("train_loss", "val_loss"):
            value = metrics.get(key)
            if value is not None and not math.isfinite(value):
                raise LetrasError(f"the {key.replace('_', ' ')} became {value} at epoch "
                                  f"{metrics.get('epoch')}: training diverged; the last good "
                                  "checkpoint is kept",
                                  hint="lower the learning rate, or clip the gradients: see the trainer's "
                                       "options with `letras list trainer`")
        self.history.append(dict(metrics))
        self.progress.line(format_metrics(metrics), force=False)
        # The checkpoint first: the first save is where a replaced run's files go away.
        if save:
            self.checkpoint(model, state, end_of_epoch=True)
        self._record(dict(metrics))
        self._emit(TrainEvent("epoch_end", self.run_dir, metrics.get("epoch", 0),
                              metrics.get("step", 0), dict(metrics)))

    def checkpoint(self, model: Any, state: dict[str, Any], *, end_of_epoch: bool = False) -> None:
        """Save the model and the trainer's ``state`` now (at an epoch's end, or when stopping)."""
        if self._save is None:
            return
        metrics = self.history[-1] if self.history else {}
        val = metrics.get("val_loss") if end_of_epoch else None
        is_best = val is not None and (self.best_val is None or val < self.best_val)
        if is_best:
            self.best_val = val
        payload = {"model": model.state_dict(), "trainer_state": state, "rng": rng_state(),
                   "epoch": state.get("epoch", metrics.get("epoch", 0)),
                   "step": state.get("step", metrics.get("step", 0)),
                   "metrics": dict(metrics), "history": list(self.history), "best_val": self.best_val,
                   "split": {"val_fraction": self.val_fraction, "seed": self.seed}}
        self._save(payload, is_best)
        self.checkpoints += 1
        self._emit(TrainEvent("checkpoint_saved", self.run_dir, payload["epoch"], payload["step"],
                              dict(metrics)))

    def finish(self) -> None:
        last = self.history[-1] if self.history else {}
        self._emit(TrainEvent("training_finished", self.run_dir, last.get("epoch", 0),
                              last.get("step", 0), dict(last)))

