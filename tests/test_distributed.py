"""Data-parallel training through torchrun: 2 CPU processes (gloo) equal 1 with the same batch."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import cpu_has_bf16, run_letras, write_pipeline

CONFIG = """
name: ddp
seed: 1
corpus:    {name: file, path: words.txt}
model:     {name: lstm, hidden_size: 16, embedding_dim: 8}
trainer:   {name: word-reset, epochs: 2, batch_size: 15, lr: 0.01, val_fraction: 0.1, device: cpu, log_every: 1}
sampler:   {name: temperature, count: 4}
"""


def test_two_processes_train_like_one_and_write_one_folder(tmp_path):
    write_pipeline(tmp_path, CONFIG, "ddp", words=200)
    single = run_letras("run", "ddp.yaml", "output=single", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    before = {p.name for p in tmp_path.iterdir()}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "letras.core", "run", "ddp.yaml", "output=multi"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 4  # rank 0 alone prints the words
    assert "on 2 processes" in result.stderr
    assert {p.name for p in tmp_path.iterdir()} - before == {"multi"}  # one run folder, nothing else
    a = torch.load(tmp_path / "single" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "multi" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 2 * 12  # 180 training words in batches of 15, twice
    for key in a["model"]:
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=1e-4, atol=1e-5, msg=key)
    assert abs(a["metrics"]["train_loss"] - b["metrics"]["train_loss"]) < 1e-4
    # the run trained on two processes samples and resumes on one
    sampled = run_letras("sample", "multi", "-n", "2", cwd=tmp_path)
    assert sampled.returncode == 0 and len(sampled.stdout.splitlines()) == 2
    resumed = run_letras("resume", "multi", "trainer.epochs=3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    # and resumes under torchrun the same way
    again = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                            "-m", "letras.core", "resume", "multi", "trainer.epochs=4"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert torch.load(tmp_path / "multi" / "checkpoint.pt", weights_only=True)["epoch"] == 4


def test_fp16_needs_cuda(tmp_path):
    result = run_letras("run", "ciudades-lstm", "trainer.precision=fp16", "trainer.device=cpu", "trainer.epochs=1",
                        cwd=tmp_path)
    assert result.returncode == 2 and "precision fp16 needs a CUDA device" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.precision
def test_bf16_on_the_cpu_trains_where_the_cpu_has_bfloat16(tmp_path):
    result = run_letras("run", "ciudades-lstm", "trainer.precision=bf16", "trainer.device=cpu", "trainer.epochs=30",
                        "trainer.log_every=1000", "-q", cwd=tmp_path)
    if not cpu_has_bf16():
        assert result.returncode == 2 and "a CPU needs AVX512-BF16 or AMX" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    metrics = [json.loads(line) for line in (tmp_path / "runs" / "ciudades-lstm" / "metrics.jsonl").open()]
    losses = [m["train_loss"] for m in metrics if "train_loss" in m]
    assert losses[-1] < losses[0] * 0.8  # it learns
    # the weights stay fp32: the run samples and evaluates like any other
    weights = torch.load(tmp_path / "runs" / "ciudades-lstm" / "checkpoint.pt", weights_only=True)["model"]
    assert all(w.dtype == torch.float32 for w in weights.values())


@pytest.mark.precision
def test_precision_auto_is_bf16_where_the_cpu_has_it():
    from letras.core import resolve_precision

    cpu = torch.device("cpu")
    expected = "bf16" if cpu_has_bf16() else "fp32"
    assert resolve_precision("auto", cpu) == expected
    assert resolve_precision("fp32", cpu) == "fp32"


LEAVE = """
import gc, sys, weakref
import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from letras.core import distributed

dist.init_process_group("gloo", init_method="file://" + sys.argv[1], rank=0, world_size=1)
gc.disable()  # as if no collection ran between the end of training and the exit

def trained_wrapper():
    ddp = DistributedDataParallel(torch.nn.LSTM(4, 4))
    ddp(torch.randn(3, 2, 4))[0].sum().backward()
    return weakref.ref(ddp)

wrapper = trained_wrapper()
print(wrapper() is not None, end=" ")  # a reference cycle keeps it, and with it the group
distributed.shutdown()
print(wrapper() is None, dist.is_initialized())
"""


def test_leaving_the_group_frees_the_ddp_wrapper_first(tmp_path):
    """In a fresh process, as each torchrun rank is, the trainer's DistributedDataParallel
    outlives the training in a reference cycle that holds the process group: left to the
    interpreter's exit, gloo can abort the process after a good run."""
    result = subprocess.run([sys.executable, "-c", LEAVE, str(tmp_path / "store")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "False"]  # kept by the cycle, freed on leaving
