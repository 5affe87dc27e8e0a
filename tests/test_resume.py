"""Checkpoints that survive anything, and resumes that continue exactly."""

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from conftest import run_letras, write_pipeline
from letras.core import Interrupted, UsageError, hookimpl, load_config, load_run, train
from letras.core.rundir import RunDir
from letras.core.testing import registered_plugin

SMALL = """
name: small
seed: 3
corpus:    {name: file, path: words.txt}
model:     {name: lstm, hidden_size: 24, embedding_dim: 8, dropout: 0.1}
trainer:   {name: word-reset, epochs: 4, batch_size: 16, lr: 0.01, val_fraction: 0.1, device: cpu}
sampler:   {name: temperature, count: 3}
"""


@pytest.fixture
def small(tmp_path):
    return write_pipeline(tmp_path, SMALL, "small", words=300)


def weights(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)


def assert_same_training(a: dict, b: dict):
    assert a["epoch"] == b["epoch"] and a["step"] == b["step"]
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key  # bit for bit
    for key, state in a["trainer_state"]["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, b["trainer_state"]["optimizer"]["state"][key][name])
    trained_a, trained_b = a["trainer_state"].get("trained_weights"), b["trainer_state"].get("trained_weights")
    assert (trained_a is None) == (trained_b is None)
    for x, y in zip(trained_a or [], trained_b or []):
        assert torch.equal(x, y)  # with trainer.ema the model is the average; these the weights trained


def interrupting_plugin(kind: str, epoch: int, action):
    """A plugin that does ``action`` once, at the first ``kind`` event of ``epoch``."""
    module = types.ModuleType("interrupter")
    done = []

    def on_train_event(event):
        if event.kind == kind and event.epoch == epoch and not done:
            done.append(True)
            action()

    module.on_train_event = hookimpl(on_train_event)
    return module


def assert_resume_is_exact(config_file: Path, folder: Path, epoch: int):
    """Trained straight, and stopped by SIGTERM after epoch ``epoch``'s checkpoint then
    resumed: the same training, bit for bit."""
    train(load_config(str(config_file), [f"output={folder / 'straight'}"]))
    config = load_config(str(config_file), [f"output={folder / 'broken'}"])
    plugin = interrupting_plugin("checkpoint_saved", epoch, lambda: os.kill(os.getpid(), signal.SIGTERM))
    with registered_plugin(plugin), pytest.raises(Interrupted):
        train(config)
    train(config, resume=True)
    assert_same_training(weights(folder / "straight"), weights(folder / "broken"))


@pytest.mark.parametrize("where,ema", [("mid-epoch", None), ("epoch-end", None), ("mid-epoch", 0.9),
                                       ("epoch-end", 0.9)])
def test_interrupted_and_resumed_equals_uninterrupted(small, tmp_path, where, ema):
    overrides = [f"trainer.ema={ema}"] if ema else []
    train(load_config(str(small), [f"output={tmp_path / 'straight'}", *overrides]))
    config = load_config(str(small), [f"output={tmp_path / 'broken'}", *overrides])
    if where == "mid-epoch":
        # SIGTERM after epoch 2's checkpoint: the trainer stops after one more step and saves
        plugin = interrupting_plugin("checkpoint_saved", 2, lambda: os.kill(os.getpid(), signal.SIGTERM))
        with registered_plugin(plugin), pytest.raises(Interrupted) as info:
            train(config)
        assert info.value.exit_code == 128 + signal.SIGTERM
        assert weights(tmp_path / "broken")["trainer_state"]["batch"] == 1
    else:
        # a crash right after epoch 2's checkpoint, as a power cut would leave it
        def crash():
            raise KeyboardInterrupt

        plugin = interrupting_plugin("epoch_end", 2, crash)
        with registered_plugin(plugin), pytest.raises(KeyboardInterrupt):
            train(config)
        assert weights(tmp_path / "broken")["epoch"] == 2
    result = train(config, resume=True)
    assert_same_training(weights(tmp_path / "straight"), weights(tmp_path / "broken"))
    assert [m["epoch"] for m in result.history] == [1, 2, 3, 4]
    assert len((tmp_path / "broken" / "metrics.jsonl").read_text().splitlines()) == 4


def test_sigkill_at_several_points_then_resume(small, tmp_path):
    reference = run_letras("run", small, "trainer.epochs=6", "output=reference", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    for after_epochs in (1, 3, 5):
        out = tmp_path / f"killed{after_epochs}"
        process = subprocess.Popen([sys.executable, "-m", "letras.core", "run", str(small), "trainer.epochs=6",
                                    f"output={out}", "-q"], cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            metrics = out / "metrics.jsonl"
            if metrics.exists() and len(metrics.read_text().splitlines()) >= after_epochs:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        saved = torch.load(out / "checkpoint.pt", weights_only=True)  # never half written
        assert saved["epoch"] >= 1
        resumed = run_letras("resume", out, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert_same_training(weights(tmp_path / "reference"), weights(out))


def test_sigterm_saves_says_so_and_exits_143(small, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "letras.core", "run", str(small), "trainer.epochs=200",
                                "output=run", "-q"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240  # a slow or busy machine may take long to start; a hang fails
    while not (tmp_path / "run" / "metrics.jsonl").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert "Interrupted: interrupted by SIGTERM" in stderr and "letras resume" in stderr
    assert "Traceback" not in stderr
    assert load_run(tmp_path / "run").sample(count=2, seed=0)


def test_resume_refuses_a_changed_model_and_allows_more_epochs(small, tmp_path):
    train(load_config(str(small), [f"output={tmp_path / 'r'}", "trainer.epochs=2"]))
    changed = load_config(str(small), [f"output={tmp_path / 'r'}", "model.hidden_size=32", "trainer.lr=0.1"])
    with pytest.raises(UsageError) as info:
        train(changed, resume=True)
    assert "model.hidden_size (24 -> 32)" in str(info.value) and "trainer.lr (0.01 -> 0.1)" in str(info.value)
    more = run_letras("resume", tmp_path / "r", "trainer.epochs=3", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert weights(tmp_path / "r")["epoch"] == 3
    assert "epochs: 3" in (tmp_path / "r" / "config.yaml").read_text()


def test_an_optimizer_state_that_does_not_fit_is_a_clear_error(small, tmp_path):
    """A checkpoint whose optimizer kept one parameter group where this trainer keeps two (an
    older letras decayed every parameter): resume says so and leaves the checkpoint as it was."""
    train(load_config(str(small), [f"output={tmp_path / 'r'}", "trainer.epochs=1", "trainer.optimizer=adamw",
                                   "trainer.weight_decay=0.1"]))
    path = tmp_path / "r" / "checkpoint.pt"
    checkpoint = torch.load(path, weights_only=True)
    groups = checkpoint["trainer_state"]["optimizer"]["param_groups"]
    groups[0]["params"] += groups.pop()["params"]
    torch.save(checkpoint, path)
    before = path.read_bytes()
    result = run_letras("resume", tmp_path / "r", "trainer.epochs=2", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "optimizer state does not fit this trainer" in result.stderr
    assert path.read_bytes() == before


def test_best_checkpoint_is_kept(small, tmp_path):
    result = train(load_config(str(small), [f"output={tmp_path / 'r'}"]))
    best_epoch = min(result.history, key=lambda m: m["val_loss"])["epoch"]
    best = torch.load(tmp_path / "r" / "best.pt", weights_only=True)
    assert best["epoch"] == best_epoch
    assert load_run(tmp_path / "r", "best").checkpoint["epoch"] == best_epoch


def test_a_second_process_cannot_train_in_the_same_folder(small, tmp_path):
    folder = RunDir(tmp_path / "busy")
    folder.path.mkdir()
    folder.lock()
    result = run_letras("run", small, "output=busy", cwd=tmp_path)
    folder.unlock()
    assert result.returncode == 2 and "another letras process is training in this folder" in result.stderr


def test_resume_without_a_checkpoint(small, tmp_path):
    result = run_letras("run", small, "output=nothing", "--resume", cwd=tmp_path)
    assert result.returncode == 2 and "nothing: holds no checkpoint.pt to resume from" in result.stderr


def test_divergence_keeps_the_last_good_checkpoint(small, tmp_path):
    from letras.core import LetrasError, components
    from letras.plugins.recurrent import RecurrentOptions

    built = []
    plugin = interrupting_plugin("checkpoint_saved", 2, lambda: poison(built[0]))

    def spy_model(vocab_size, **options):  # the built-in LSTM, kept at hand by the test
        built.append(components("model").get("letras.plugins.recurrent:lstm").build(vocab_size, options=options))
        return built[-1]

    def poison(model):  # after epoch 2 a weight becomes NaN, and so does epoch 3's loss
        with torch.no_grad():
            next(iter(model.parameters())).fill_(float("nan"))

    plugin.register_models = hookimpl(lambda register: register("spy", spy_model, options=RecurrentOptions))
    plugin.register_models.__name__ = "register_models"
    with registered_plugin(plugin):
        config = load_config(str(small), [f"output={tmp_path / 'r'}", "model=spy", "model.hidden_size=24"])
        with pytest.raises(LetrasError, match="diverged.*last good checkpoint"):
            train(config)
    saved = weights(tmp_path / "r")
    assert saved["epoch"] == 2 and all(torch.isfinite(t).all() for t in saved["model"].values())


def test_divergence_through_the_cli(small, tmp_path):
    result = run_letras("run", small, "trainer.lr=1e38", "trainer.epochs=3", "output=r", cwd=tmp_path)
    assert result.returncode == 1 and "training diverged" in result.stderr
    assert "lower the learning rate" in result.stderr and "Traceback" not in result.stderr
