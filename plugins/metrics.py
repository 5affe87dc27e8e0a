"""Writes metrics.jsonl in the run folder: one JSON line per epoch, from training events."""

from __future__ import annotations

import json
from pathlib import Path

from letras.core import TrainEvent, hookimpl


@hookimpl
def on_train_event(event: TrainEvent) -> None:
    if event.kind != "epoch_end" or event.run_dir is None:
        return
    with open(Path(event.run_dir) / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(event.metrics) + "\n")
