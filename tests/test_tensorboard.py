"""The TensorBoard writer: event files read back, and nothing written without TensorBoard."""

import pytest

from letras.core.testing import train_tiny
from letras.plugins import tensorboard as tb_plugin

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="TensorBoard is not installed (pip install 'letras[tensorboard]')")


def read_scalars(folder):
    events = event_accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_every_logged_step_and_epoch_is_in_the_event_file(tmp_path):
    result = train_tiny(tmp_path / "run", trainer={"epochs": 3, "batch_size": 5, "val_fraction": 0.2, "log_every": 1,
                                                   "schedule": "cosine"})
    scalars = read_scalars(tmp_path / "run" / "tensorboard")
    steps = result.history[-1]["step"]
    assert [s for s, _ in scalars["step/train_loss"]] == list(range(1, steps + 1))
    assert len(scalars["step/lr"]) == steps and scalars["step/lr"][-1][1] < scalars["step/lr"][0][1]  # annealed
    epochs = [(m["step"], m["val_loss"]) for m in result.history]
    assert [(s, pytest.approx(v)) for s, v in scalars["epoch/val_loss"]] == epochs
    assert {"epoch/train_loss", "epoch/train_bpc", "epoch/val_bpc", "epoch/chars_per_s", "epoch/lr"} <= set(scalars)


def test_without_tensorboard_nothing_is_written_and_metrics_stay(tmp_path, monkeypatch):
    monkeypatch.setattr(tb_plugin, "available", lambda: False)
    train_tiny(tmp_path / "run", trainer={"epochs": 2, "val_fraction": 0.2})
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2  # the core writes them
