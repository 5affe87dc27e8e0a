"""What the core hands a trainer: the seed, the split, progress, metrics and checkpoints.

A trainer plugin owns its loop; ``TrainingRun`` owns everything around it, so that every
trainer writes the same run folder and every plugin sees the same events.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from typing import Any, Callable, Sequence, TextIO

from .errors import LetrasError, UsageError


@dataclasses.dataclass(frozen=True)
class TrainEvent:
    """What ``on_train_event`` receives.

    kind: "epoch_end" (metrics holds epoch, step, train_loss, val_loss, chars_per_s,
    seconds), "checkpoint_saved" or "training_finished".
    """

    kind: str
    run_dir: str | None
    epoch: int
    step: int
    metrics: dict[str, Any]


def resolve_device(spec: str = "auto") -> Any:
    """``auto`` is CUDA when there is one, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` as given."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"unknown device '{spec}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device '{spec}' asked for, but torch finds no CUDA GPU "
                             "(use device=auto or device=cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device '{spec}' asked for, but there are only "
                             f"{torch.cuda.device_count()} CUDA devices")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device '{spec}' (use auto, cpu, cuda or cuda:N)")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python and torch, so the same config gives the same run on the same machine."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def split_words(words: Sequence[Any], val_fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """A seeded train/validation split; the same arguments always give the same split."""
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"val_fraction must be at least 0 and less than 1, got {val_fraction}")
    order = list(range(len(words)))
    random.Random(seed).shuffle(order)
    n_val = int(round(len(words) * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if val_fraction > 0 and n_val >= len(words):
        raise UsageError(f"the corpus has {len(words)} words: too few for a validation split of "
                         f"{val_fraction} that leaves words to train on (lower val_fraction or set it to 0)")
    val = [words[i] for i in sorted(order[:n_val])]
    train = [words[i] for i in sorted(order[n_val:])]
    return train, val


class Progress:
    """Training progress on stderr: a bar with the running loss on a terminal, lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False, interval: float = 2.0):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last = 0.0
        self._last_line = float("-inf")

    def step(self, step: int, total: int | None, epoch: int, loss: float | None) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if now - self._last < (0.1 if self.tty else self.interval) and step != total:
            return
        self._last = now
        loss_text = f"loss {loss:.4f}" if loss is not None else ""
        if self.tty:
            width = 30
            done = int(width * step / total) if total else 0
            bar = "#" * done + "-" * (width - done)
            of = f"/{total}" if total else ""
            self.stream.write(f"\r[{bar}] step {step}{of} epoch {epoch} {loss_text}  ")
        else:
            of = f"/{total}" if total else ""
            self.stream.write(f"step {step}{of} epoch {epoch} {loss_text}\n")
        self.stream.flush()

    def line(self, text: str, *, force: bool = True) -> None:
        """Print a line; with ``force=False`` only if none came in the last ``interval`` seconds."""
        if self.quiet:
            return
        now = time.monotonic()
        if not force and now - self._last_line < self.interval:
            return
        self._last_line = now
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()


class TrainingRun:
    """The services a trainer calls while it trains one model.

    ``checkpoint(state)`` receives what the trainer wants to keep beside the weights
    (optimizer state, epoch, step); the run adds the config, the vocabulary and the weights.
    """

    def __init__(self, *, seed: int, save: Callable[[dict[str, Any]], None] | None = None,
                 emit: Callable[[TrainEvent], None] | None = None, progress: Progress | None = None,
                 run_dir: str | None = None):
        self.seed = seed
        self.run_dir = run_dir
        self.progress = progress or Progress(quiet=True)
        self._save = save
        self._emit = emit or (lambda event: None)
        self.history: list[dict[str, Any]] = []
        self.checkpoints = 0
        self.val_fraction: float | None = None  # set by split(); saved so eval can redo it

    def split(self, words: Sequence[Any], val_fraction: float) -> tuple[list[Any], list[Any]]:
        """The seeded train/validation split of this run (`letras eval` redoes it)."""
        self.val_fraction = val_fraction
        return split_words(words, val_fraction, self.seed)

    def step(self, step: int, total: int | None, epoch: int, loss: float | None) -> None:
        """Report progress; cheap enough to call every step (it redraws at most 10 times/s)."""
        self.progress.step(step, total, epoch, loss)

    def end_epoch(self, metrics: dict[str, Any], model: Any, state: dict[str, Any]) -> None:
        """Record an epoch's metrics and save a checkpoint of ``model`` with ``state``."""
        for key in ("train_loss", "val_loss"):
            value = metrics.get(key)
            if value is not None and not math.isfinite(value):
                raise LetrasError(f"the {key.replace('_', ' ')} became {value} at epoch "
                                 f"{metrics.get('epoch')}: training diverged",
                                 hint="lower the learning rate (trainer.lr) or set trainer.grad_clip")
        self.history.append(dict(metrics))
        epoch, step = metrics.get("epoch", 0), metrics.get("step", 0)
        self.progress.line(_format_metrics(metrics), force=False)
        # The checkpoint first: the first save is where a replaced run's files go away.
        if self._save is not None:
            split = {"val_fraction": self.val_fraction, "seed": self.seed}
            self._save({"model": model.state_dict(), **state, "metrics": dict(metrics), "split": split})
            self.checkpoints += 1
        self._emit(TrainEvent("epoch_end", self.run_dir, epoch, step, dict(metrics)))
        if self._save is not None:
            self._emit(TrainEvent("checkpoint_saved", self.run_dir, epoch, step, dict(metrics)))

    def finish(self) -> None:
        last = self.history[-1] if self.history else {}
        self._emit(TrainEvent("training_finished", self.run_dir, last.get("epoch", 0),
                              last.get("step", 0), dict(last)))


def _format_metrics(m: dict[str, Any]) -> str:
    parts = [f"epoch {m.get('epoch')}", f"step {m.get('step')}"]
    if m.get("train_loss") is not None:
        parts.append(f"train {m['train_loss']:.4f}")
    if m.get("val_loss") is not None:
        parts.append(f"val {m['val_loss']:.4f}")
    if m.get("chars_per_s") is not None:
        parts.append(f"{m['chars_per_s']:,.0f} chars/s")
    if m.get("seconds") is not None:
        parts.append(f"{m['seconds']:.1f}s")
    return "  ".join(parts)
