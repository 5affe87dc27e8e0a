import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from letras.core.cli import cli

ROOT = Path(__file__).resolve().parent.parent

# oneDNN capped below AVX-512: bfloat16 as on a CPU without it, whatever this CPU has.
NO_BF16_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2"}


def cpu_has_bf16() -> bool:
    from letras.core.devices import cpu_has_bf16

    return cpu_has_bf16()


def pytest_report_header(config):
    """What a failure may depend on, at the top of every run: torch, bfloat16, cores, oneDNN's cap."""
    import torch

    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return (f"letras: torch {torch.__version__}, {os.cpu_count()} cores, CPU computes bfloat16: "
            f"{'yes' if cpu_has_bf16() else 'no'}" + (f" (ONEDNN_MAX_CPU_ISA={cap})" if cap else ""))


needs_bf16_cpu = pytest.mark.skipif(not cpu_has_bf16(), reason="needs a CPU that computes bfloat16 "
                                    "(AVX512-BF16 or AMX, as oneDNN sees it); this one does not")

# A pipeline small enough to train in a second or two.
TINY = """
name: tiny
seed: 0
corpus:    {name: ciudades}
tokenizer: {name: chars}
model:     {name: lstm, hidden_size: 32, embedding_dim: 8}
trainer:   {name: word-reset, epochs: 3, batch_size: 5, lr: 0.01, val_fraction: 0.2, device: cpu}
sampler:   {name: temperature, count: 5}
"""


def write_pipeline(folder: Path, config: str, name: str, words: int) -> Path:
    """``folder/NAME.yaml`` holding ``config``, beside the ``words.txt`` it trains on: the first
    ``words`` municipalities."""
    from letras.plugins.corpora import municipios

    (folder / "words.txt").write_text("\n".join(municipios().words()[:words]) + "\n", encoding="utf-8")
    (folder / f"{name}.yaml").write_text(config)
    return folder / f"{name}.yaml"


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML config into tmp_path and return its path."""

    def write(text: str = TINY, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    """Run the CLI in-process (click's runner) from tmp_path; stdout and stderr kept apart."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)

    return run


def run_letras(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300):
    """Run the installed `letras` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LETRAS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "letras.core", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=full_env, timeout=timeout)


# Runs the CLI like `letras ARGS...`, then reports on stderr whether torch was imported.
NO_TORCH = """
import runpy, sys
try:
    runpy.run_module("letras.core", run_name="__main__")
    code = 0
except SystemExit as exit:
    code = exit.code
print("TORCH" if "torch" in sys.modules else "NO-TORCH", file=sys.stderr)
sys.exit(code)
"""


def imports_torch(*args: str, cwd: Path, env: dict | None = None) -> bool:
    """Whether `letras ARGS...` imports torch; the command itself must succeed."""
    result = subprocess.run([sys.executable, "-c", NO_TORCH, *map(str, args)], cwd=cwd,
                            capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return not result.stderr.strip().endswith("NO-TORCH")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A tiny run folder trained once for the tests that only read it."""
    from letras.core import load_config, train

    folder = tmp_path_factory.mktemp("trained")
    config = load_config(str(ROOT / "configs" / "ciudades-lstm.yaml"),
                         [f"output={folder / 'run'}", "trainer.epochs=150", "trainer.device=cpu"])
    train(config)
    return folder / "run"
