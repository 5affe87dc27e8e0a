"""TensorBoard event files for every run, where TensorBoard is installed (``pip install
'letras[tensorboard]'``): the training loss and learning rate every ``log_every`` steps, and
the losses, bits per character and speed of every epoch, in ``RUN_DIR/tensorboard/``.

TensorBoard, W&B (``wandb.init(sync_tensorboard=True)``) and MLflow read these files, so a
letras run shows up where those users already look. It is a listener like any plugin's
(``on_train_event``); without TensorBoard (or the NumPy it needs) it does nothing, and
``LETRAS_BLOCK_PLUGINS=letras.plugins.tensorboard`` turns it off.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from letras.core import TrainEvent, hookimpl

FOLDER = "tensorboard"
# the epoch's figures worth a curve, under TensorBoard's tag for each
EPOCH_SCALARS = {"train_loss": "epoch/train_loss", "val_loss": "epoch/val_loss", "train_bpc": "epoch/train_bpc",
                 "val_bpc": "epoch/val_bpc", "chars_per_s": "epoch/chars_per_s", "lr": "epoch/lr"}

_writers: dict[str, Any] = {}  # run folder -> its SummaryWriter, open while the run trains
_available: bool | None = None


def available() -> bool:
    """Whether TensorBoard can be used: torch's writer imports it, and it imports NumPy.
    Asked once, at the first event; a failed import means no event files, and no warning."""
    global _available
    if _available is None:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            _available = False
        else:
            _available = True
    return _available


def _writer(event: TrainEvent) -> Any:
    writer = _writers.get(event.run_dir)
    if writer is None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run drops what an interrupted one logged after its checkpoint
        writer = _writers[event.run_dir] = SummaryWriter(str(Path(event.run_dir) / FOLDER),
                                                         purge_step=event.step or None)
    return writer


@hookimpl
def on_train_event(event: TrainEvent) -> None:
    if event.run_dir is None or not available():
        return
    if event.kind == "training_finished":
        writer = _writers.pop(event.run_dir, None)
        if writer is not None:
            writer.close()
        return
    if event.kind == "step":
        writer = _writer(event)
        writer.add_scalar("step/train_loss", event.metrics["train_loss"], event.step)
        if event.metrics.get("lr") is not None:
            writer.add_scalar("step/lr", event.metrics["lr"], event.step)
    elif event.kind == "epoch_end":
        writer = _writer(event)
        for key, tag in EPOCH_SCALARS.items():
            value = event.metrics.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                writer.add_scalar(tag, value, event.step)
        writer.flush()  # an epoch is seen at once, and survives a kill
