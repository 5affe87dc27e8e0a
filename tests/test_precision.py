"""Every path that picks a precision by itself falls back to fp32 on a CPU without bfloat16.

In this process such a CPU is simulated (``no_bf16``); in subprocesses it is emulated for real
by capping oneDNN at AVX2, and CI runs this whole file (marker ``precision``) once more with
the cap set for the test process too.
"""

import math
import platform
import shutil

import pytest
import torch

from conftest import NO_BF16_ENV, run_letras
from letras.core import UsageError, devices, load_run, resolve_precision

pytestmark = pytest.mark.precision
CPU = torch.device("cpu")
x86_only = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                              reason="ONEDNN_MAX_CPU_ISA=AVX2 takes bfloat16 away on x86-64 CPUs only")


@pytest.fixture
def no_bf16(monkeypatch):
    """This process sees a CPU without bfloat16 instructions."""
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)


@pytest.fixture
def bf16_run(trained_run, tmp_path):
    """The tiny trained run as if it had been trained in bf16 on another machine."""
    run = tmp_path / "bf16-run"
    shutil.copytree(trained_run, run)
    for name in ("checkpoint.pt",):  # it held out no validation words: no best.pt
        data = torch.load(run / name, weights_only=True)
        data["config"]["trainer"]["precision"] = "bf16"
        torch.save(data, run / name)
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("precision: fp32", "precision: bf16"))
    return run


def test_fp32_and_fp16_probe_no_cpu_feature(monkeypatch):
    def probe():
        raise AssertionError("probed the CPU for a choice that does not need it")

    monkeypatch.setattr(devices, "cpu_has_bf16", probe)
    assert resolve_precision("fp32", CPU) == "fp32"
    with pytest.raises(UsageError, match="precision fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)


def test_a_probe_that_raises_means_no_bfloat16(monkeypatch):
    class Changed:
        def __getattr__(self, name):
            raise RuntimeError("this private call is gone")

    monkeypatch.setattr(torch.ops, "mkldnn", Changed())
    devices.cpu_has_bf16.cache_clear()
    try:
        assert devices.cpu_has_bf16() is False
        assert resolve_precision("auto", CPU) == "fp32"
    finally:
        devices.cpu_has_bf16.cache_clear()


def test_auto_is_fp32_and_bf16_a_clear_error_without_bfloat16(no_bf16):
    assert resolve_precision("auto", CPU) == "fp32"
    with pytest.raises(UsageError, match="a CPU needs AVX512-BF16 or AMX") as error:
        resolve_precision("bf16", CPU, setting="trainer.precision={}")
    assert "use trainer.precision=auto" in str(error.value)


def test_a_run_trained_in_bf16_is_read_back_in_fp32_without_bfloat16(no_bf16, bf16_run):
    trained = load_run(bf16_run)
    assert trained.config["trainer"].options.precision == "bf16"
    assert len(trained.sample(seed=0, count=50, precision="auto")) == 50
    assert math.isfinite(trained.evaluate(["MADRID", "BILBAO"])["loss"])
    assert math.isfinite(trained.score(["MADRID"])[0].logprob)
    with pytest.raises(UsageError, match="precision bf16 needs a device"):
        trained.sample(count=5, precision="bf16")


@x86_only
def test_commands_on_a_bf16_run_on_a_cpu_without_bfloat16(bf16_run, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("MADRID\nBILBAO\n")
    for args in (("sample", bf16_run, "-n", "5", "--precision", "auto"), ("sample", bf16_run, "--novel", "-n", "3"),
                 ("eval", bf16_run, "--file", words, "--samples", "50"), ("score", bf16_run, "MADRID"),
                 ("explain", bf16_run, "MADRID")):
        result = run_letras(*args, cwd=tmp_path, env=NO_BF16_ENV)
        assert result.returncode == 0, (args, result.stderr)
    asked = run_letras("resume", bf16_run, "trainer.epochs=152", cwd=tmp_path, env=NO_BF16_ENV)
    assert asked.returncode == 2 and "a CPU needs AVX512-BF16 or AMX" in asked.stderr
    assert "use trainer.precision=auto" in asked.stderr and "Traceback" not in asked.stderr
    resumed = run_letras("resume", bf16_run, "trainer.epochs=152", "trainer.precision=auto", "-q",
                         cwd=tmp_path, env=NO_BF16_ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert "precision: auto" in (bf16_run / "config.yaml").read_text()


@x86_only
def test_training_in_auto_precision_on_a_cpu_without_bfloat16(tmp_path):
    result = run_letras("run", "ciudades-lstm", "trainer.precision=auto", "trainer.device=auto", "trainer.epochs=2",
                        "-q", cwd=tmp_path, env=NO_BF16_ENV)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) > 0
