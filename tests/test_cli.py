import json
import subprocess
import sys

import pytest

from conftest import ROOT, imports_torch, run_letras
from letras.plugins.corpora import CIUDADES

CIUDADES_RNN = str(ROOT / "configs" / "ciudades-rnn.yaml")
FAST = ["trainer.epochs=3", "trainer.log_every=5"]


def test_run_the_notes_config_in_process(invoke, tmp_path):
    result = invoke("run", CIUDADES_RNN, *FAST, "sampler.count=7")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 7  # stdout holds only the words
    assert "Saved runs/ciudades-rnn/" in result.stderr
    run = tmp_path / "runs" / "ciudades-rnn"
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "checkpoint.pt", "metrics.jsonl", "samples.txt"}
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert {"epoch", "step", "train_loss", "val_loss", "chars_per_s", "seconds"} <= set(metrics[0])
    assert metrics[-1]["step"] == 45  # one city per step, as in the notes
    assert (run / "samples.txt").read_text().splitlines() == result.stdout.splitlines()


def test_config_yaml_is_fully_resolved_and_runs_again(invoke, tmp_path):
    assert invoke("run", CIUDADES_RNN, *FAST).exit_code == 0
    resolved = tmp_path / "runs" / "ciudades-rnn" / "config.yaml"
    text = resolved.read_text()
    assert "hidden_size: 128" in text and "grad_clip: null" in text and "top_k: null" in text
    result = invoke("run", str(resolved), "output=again")
    assert result.exit_code == 0, result.output


def test_sample_command(invoke, trained_run):
    result = invoke("sample", trained_run, "-n", "20", "--temperature", "0.8", "--prefix", "B", "--seed", "1")
    assert result.exit_code == 0, result.output
    words = result.stdout.splitlines()
    assert len(words) == 20 and all(w.startswith("B") for w in words)
    again = invoke("sample", trained_run, "-n", "20", "--temperature", "0.8", "--prefix", "B", "--seed", "1")
    assert again.stdout == result.stdout
    greedy = invoke("sample", trained_run, "--sampler", "greedy", "--prefix", "M", "-n", "1")
    assert greedy.stdout.strip() in CIUDADES


def test_existing_run_is_not_overwritten_unless_asked(invoke, tmp_path):
    assert invoke("run", CIUDADES_RNN, *FAST).exit_code == 0
    checkpoint = tmp_path / "runs" / "ciudades-rnn" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    result = invoke("run", CIUDADES_RNN, *FAST)
    assert result.exit_code == 2 and "already holds a run" in result.stderr and "--overwrite" in result.stderr
    assert checkpoint.read_bytes() == before
    assert invoke("run", CIUDADES_RNN, "trainer.epochs=2", "--overwrite").exit_code == 0
    metrics = (tmp_path / "runs" / "ciudades-rnn" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 2  # the replaced run's lines are gone


def test_a_run_that_fails_before_saving_leaves_no_folder(invoke, tmp_path):
    (tmp_path / "one.txt").write_text("solo\n")
    result = invoke("run", "names-lstm", "corpus.path=one.txt")
    assert result.exit_code == 2 and "too few for a validation split" in result.stderr
    assert not (tmp_path / "runs" / "names-lstm").exists()


def test_validate(invoke):
    result = invoke("validate", CIUDADES_RNN)
    assert result.exit_code == 0 and "valid (15 words, 20 tokens)" in result.stderr
    shown = invoke("validate", "ciudades-rnn", "--show", "model.hidden_size=7")
    assert "hidden_size: 7" in shown.stdout


def test_list_and_plugins(invoke):
    result = invoke("list", "model")
    assert result.exit_code == 0
    assert "lstm" in result.stdout and "hidden_size" in result.stdout and "default 128" in result.stdout
    assert "generator" in invoke("list", "models").stdout
    data = json.loads(invoke("list", "--json").stdout)
    assert set(data) == {"corpus", "tokenizer", "cell", "model", "trainer", "sampler", "exporter"}
    plugins = json.loads(invoke("plugins", "--json").stdout)
    recurrent = next(p for p in plugins if p["name"] == "letras.plugins.recurrent")
    assert recurrent["registered"] == {"cell": ["lstm", "rnn"], "model": ["generator", "lstm", "rnn"]}
    assert all(p["error"] is None for p in plugins)
    assert "letras.plugins.corpora [builtin] loaded" in invoke("plugins").stdout


def test_the_notes_experiment_end_to_end_in_a_subprocess(tmp_path):
    result = run_letras("run", CIUDADES_RNN, "trainer.epochs=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 15
    sampled = run_letras("sample", "runs/ciudades-rnn", "-n", "3", "--seed", "1", cwd=tmp_path)
    assert sampled.returncode == 0 and len(sampled.stdout.splitlines()) == 3


def test_a_torch_without_numpy_warns_nothing(tmp_path):
    """`pip install torch` brings no NumPy, and torch warns on import when it is missing."""
    script = ("import runpy, sys; sys.modules['numpy'] = None; sys.argv[0] = 'letras'; "
              "runpy.run_module('letras.core', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", script, "run", CIUDADES_RNN, "trainer.epochs=1", "-q"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "NumPy" not in result.stderr and "Warning" not in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["plugins", "--json"], ["list"],
                                  ["list", "cell"], ["validate", CIUDADES_RNN], ["run", "--help"]])
def test_help_plugins_list_and_validate_never_import_torch(args, tmp_path):
    assert not imports_torch(*args, cwd=tmp_path)
