"""Every mistake a user can make: one clear line, the right exit code, no traceback.

Each case runs the real CLI in a subprocess, from a folder prepared by ``setup``.
"""

import os

import pytest
import torch

from conftest import ROOT, run_letras

CIUDADES_RNN = str(ROOT / "configs" / "ciudades-rnn.yaml")


def files(**contents):
    """A setup that writes files (bytes or text) into the working folder."""

    def setup(folder, run_dir):
        for name, data in contents.items():
            path = folder / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return setup


def checkpoint(payload_or_bytes):
    """A setup that replaces the trained run's checkpoint."""

    def setup(folder, run_dir):
        target = folder / "run"
        target.mkdir()
        (target / "config.yaml").write_text("")
        if isinstance(payload_or_bytes, bytes):
            (target / "checkpoint.pt").write_bytes(payload_or_bytes)
        elif callable(payload_or_bytes):
            payload_or_bytes(run_dir, target)
        else:
            torch.save(payload_or_bytes, target / "checkpoint.pt")

    return setup


def from_missing_plugin(run_dir, target):
    data = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    data["config"]["model"] = {"name": "mgu-generator", "hidden_size": 4}
    torch.save(data, target / "checkpoint.pt")


def truncated(run_dir, target):
    blob = (run_dir / "checkpoint.pt").read_bytes()
    (target / "checkpoint.pt").write_bytes(blob[: len(blob) // 2])


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


nothing = files()
CASES = [
    # (id, args, setup, exit code, text in the message)
    ("yaml-syntax", ["validate", "c.yaml"], files(**{"c.yaml": "model: [1, 2\n"}), 2, "c.yaml:2: not valid YAML"),
    ("section-not-mapping", ["validate", "c.yaml"], files(**{"c.yaml": "trainer: 5\n"}), 2,
     "c.yaml:1 (trainer): section 'trainer' must be a mapping"),
    ("misspelled-key", ["run", "c.yaml"], files(**{"c.yaml": "trainer:\n  epocs: 3\n"}), 2,
     "c.yaml:2 (trainer.epocs): unknown key 'epocs' (did you mean 'epochs'?"),
    ("wrong-type", ["validate", "c.yaml"], files(**{"c.yaml": "model: {hidden_size: lots}\n"}), 2,
     "c.yaml:1 (model.hidden_size): expected integer | 'auto', got 'lots'"),
    ("negative-size", ["validate", "c.yaml"], files(**{"c.yaml": "model: {hidden_size: -8}\n"}), 2,
     "(model.hidden_size): must be at least 1, got -8"),
    ("temperature-zero", ["validate", "ciudades-rnn", "sampler.temperature=0"], nothing, 2,
     "command line 'sampler.temperature=0': must be greater than 0.0"),
    ("val-fraction-one", ["validate", "ciudades-rnn", "trainer.val_fraction=1"], nothing, 2,
     "command line 'trainer.val_fraction=1': must be less than 1.0"),
    ("unknown-component", ["validate", "ciudades-rnn", "model=transformer"], nothing, 2,
     "unknown model 'transformer' (available: generator, lstm, rnn)"),
    ("unknown-config", ["run", "ciudades"], nothing, 2, "ciudades: no such file, nor a shipped config"),
    ("two-configs", ["run", "a.yaml", "b.yaml"], nothing, 2, "two configs given"),
    ("bad-override", ["validate", "ciudades-rnn", "=3"], nothing, 2, "an override must look like KEY=VALUE"),
    ("duplicate-key", ["validate", "c.yaml"], files(**{"c.yaml": "seed: 1\nseed: 2\n"}), 2,
     "c.yaml:2: key 'seed' appears twice (first on line 1)"),
    ("corpus-missing", ["validate", "names-lstm", "corpus.path=nope.txt"], nothing, 2, "nope.txt: no such file"),
    ("corpus-empty", ["validate", "names-lstm", "corpus.path=w.txt"], files(**{"w.txt": "\n\n"}), 2,
     "w.txt: holds no words"),
    ("corpus-not-utf8", ["run", "names-lstm", "corpus.path=w.txt"], files(**{"w.txt": b"ana\nJos\xe9\n"}), 2,
     "w.txt: line 2 is not UTF-8"),
    ("corpus-binary", ["validate", "names-lstm", "corpus.path=w.txt"],
     files(**{"w.txt": b"\x7fELF\x02\x01\x00\x00"}), 2, "line 1 holds a NUL byte"),
    ("corpus-huge-line", ["validate", "names-lstm", "corpus.path=w.txt"],
     files(**{"w.txt": "ana\n" + "x" * 2_000_000 + "\n"}), 2, "line 2 is 2,000,000 characters long"),
    ("corpus-too-small", ["run", "names-lstm", "corpus.path=w.txt"], files(**{"w.txt": "solo\n"}), 2,
     "too few for a validation split"),
    ("output-is-a-file", ["run", "ciudades-rnn", "output=taken"], files(taken="x"), 2,
     "taken: exists and is not a folder"),
    ("output-unwritable", ["run", "ciudades-rnn", "output=/proc/letras-run"], nothing, 1, "cannot write here"),
    ("no-cuda", ["run", "ciudades-rnn", "trainer.device=cuda:7"], nothing, 2, "device 'cuda:7' asked for"),
    ("sample-no-folder", ["sample", "nowhere"], nothing, 2, "nowhere: no such run folder"),
    ("sample-no-checkpoint", ["sample", "empty"], files(**{"empty__notes.txt": "hi"}), 2,
     "empty: holds no checkpoint.pt"),
    ("sample-unknown-prefix", ["sample", "RUN", "--prefix", "Ñu"], nothing, 2,
     "prefix 'Ñu': character 'Ñ' (U+00D1) of 'ÑU' not in the vocabulary"),
    ("sample-count-zero", ["sample", "RUN", "-n", "0"], nothing, 2, "option --count: must be at least 1, got 0"),
    ("sample-novel-count-zero", ["sample", "RUN", "--novel", "-n", "0"], nothing, 2,
     "option --count: must be at least 1, got 0"),
    ("sample-top-k-zero", ["sample", "RUN", "--top-k", "0"], nothing, 2, "option --top-k: must be at least 1"),
    ("sample-temperature-zero", ["sample", "RUN", "--temperature", "0"], nothing, 2,
     "option --temperature: must be greater than 0.0"),
    ("sample-batch-size-zero", ["sample", "RUN", "-o", "batch_size=0"], nothing, 2,
     "option -o batch_size: must be at least 1, got 0"),
    ("sample-unknown-sampler", ["sample", "RUN", "--sampler", "beem"], nothing, 2, "unknown sampler 'beem'"),
    ("checkpoint-garbage", ["sample", "run"], checkpoint(b"not a checkpoint at all"), 1,
     "run/checkpoint.pt: damaged or not a letras checkpoint"),
    ("checkpoint-truncated", ["sample", "run"], checkpoint(truncated), 1, "damaged or not a letras checkpoint"),
    ("checkpoint-foreign", ["sample", "run"], checkpoint({"weights": torch.zeros(2)}), 1, "not a letras checkpoint"),
    ("checkpoint-pickled-code", ["sample", "run"], checkpoint({"format": "letras.checkpoint", "x": Payload()}), 1,
     "refused to load: the file carries pickled code"),
    ("checkpoint-plugin-gone", ["sample", "run"], checkpoint(from_missing_plugin), 1,
     "unknown model 'mgu-generator'"),
    ("list-unknown-kind", ["list", "cellz"], nothing, 2, "'cellz' is not a kind of component"),
]


@pytest.mark.parametrize("args, setup, code, text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_user_error(args, setup, code, text, tmp_path, trained_run):
    setup(tmp_path, trained_run)
    args = [str(trained_run) if a == "RUN" else a for a in args]
    result = run_letras(*args, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert text in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert not (tmp_path / "PWNED").exists()  # nothing in a checkpoint ever runs


def test_debug_shows_the_traceback(tmp_path):
    result = run_letras("--debug", "validate", "ciudades-rnn", "model.hidden_size=-1", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr
