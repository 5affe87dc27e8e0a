"""The CUDA path: training, precisions, sampling, evaluation and the bench on a GPU.

Skipped where torch finds no CUDA GPU (CI has none); run on a GPU machine with
`pytest tests/test_cuda.py`. What a GPU computes differs from the CPU in the last digits
(cuDNN sums in another order), so these compare with tolerances, never bit for bit.
"""

import json

import pytest
import torch

from conftest import run_letras, write_pipeline
from letras.core import load_run
from letras.core.batching import WordBatches, loss_sum
from letras.plugins.word_reset.adam import Adam
from letras.plugins.word_reset.trainer import unrolled_loss_sum
from test_adam import groups, parameters, train
from test_model_and_trainer import build, encoded_cities

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CONFIG = """
name: gpu
seed: 2
corpus:    {name: file, path: words.txt}
model:     {name: lstm, hidden_size: 64, embedding_dim: 16, num_layers: 2, dropout: 0.1}
trainer:   {name: word-reset, epochs: 4, batch_size: 64, lr: 0.01, val_fraction: 0.1, device: auto}
sampler:   {name: temperature, count: 5}
"""


@pytest.fixture
def gpu_config(tmp_path):
    write_pipeline(tmp_path, CONFIG, "gpu", words=2000)
    return tmp_path


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_fused_and_manual_unroll_agree_on_the_gpu_and_with_the_cpu(name, monkeypatch):
    # cuDNN computes fp32 recurrences in TF32 by default (10-bit mantissa, 1e-3 apart from the
    # CPU): compared at full precision, the GPU must compute the same function
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    vocab, words = encoded_cities()
    cpu_batch = next(WordBatches(words, "cpu").batches(15, group_by_length=False))
    gpu_batch = next(WordBatches(words, "cuda").batches(15, group_by_length=False))
    cpu_model = build(name, vocab.vocab_size, hidden_size=32)
    fused_model = build(name, vocab.vocab_size, hidden_size=32).cuda()
    manual_model = build(name, vocab.vocab_size, hidden_size=32).cuda()
    on_cpu = loss_sum(cpu_model, *cpu_batch[:2])
    fused = loss_sum(fused_model, *gpu_batch[:2])
    manual = unrolled_loss_sum(manual_model, *gpu_batch[:2])
    for loss in (on_cpu, fused, manual):
        loss.backward()
    torch.testing.assert_close(fused.cpu(), on_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(manual, fused, rtol=1e-4, atol=1e-4)
    for (pname, p), q, c in zip(fused_model.named_parameters(), manual_model.parameters(), cpu_model.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-3, atol=1e-5, msg=pname)
        torch.testing.assert_close(p.grad.cpu(), c.grad, rtol=1e-3, atol=1e-5, msg=pname)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_run_trained_on_the_gpu_learns_and_reads_back_anywhere(gpu_config, precision):
    result = run_letras("run", "gpu.yaml", f"trainer.precision={precision}", "output=r", cwd=gpu_config)
    assert result.returncode == 0, result.stderr
    metrics = [json.loads(line) for line in (gpu_config / "r" / "metrics.jsonl").open()]
    losses = [m["train_loss"] for m in metrics if "train_loss" in m]
    assert len(losses) == 4 and losses[-1] < losses[0] * 0.85  # it learns
    checkpoint = torch.load(gpu_config / "r" / "checkpoint.pt", weights_only=True)
    assert all(w.device.type == "cpu" and w.dtype == torch.float32 for w in checkpoint["model"].values())
    # trained on the GPU: sampled, scored and evaluated on either, alike
    trained = load_run(gpu_config / "r")
    on_gpu, on_cpu = trained.evaluate(["MADRID", "TOLEDO"], device="cuda"), trained.evaluate(["MADRID", "TOLEDO"])
    assert on_gpu["loss"] == pytest.approx(on_cpu["loss"], rel=1e-4)  # TF32 on the GPU
    assert trained.score(["LUGO"], device="cuda")[0].logprob == pytest.approx(
        trained.score(["LUGO"])[0].logprob, rel=1e-4)
    for device in ("cuda", "cpu"):
        sampled = run_letras("sample", "r", "-n", "7", "--seed", "1", "--device", device, cwd=gpu_config)
        assert sampled.returncode == 0, sampled.stderr
        assert len(sampled.stdout.splitlines()) == 7
    resumed = run_letras("resume", "r", "trainer.epochs=5", cwd=gpu_config)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(gpu_config / "r" / "checkpoint.pt", weights_only=True)["epoch"] == 5


def test_sampling_on_the_gpu_is_seeded_and_shrinks_its_batch(gpu_config):
    assert run_letras("run", "gpu.yaml", "output=r", "trainer.epochs=2", cwd=gpu_config).returncode == 0
    trained = load_run(gpu_config / "r")
    kwargs = dict(count=3000, max_length=40, device="cuda")
    first, again = trained.sample(seed=5, **kwargs), trained.sample(seed=5, **kwargs)
    assert first == again and len(first) == 3000
    assert len(set(first)) > 1000  # not one word repeated
    # in bf16, words that leave the prefix tree take finished words' rows
    assert len(trained.sample(seed=5, device="cuda", precision="bf16", count=2000, batch_size=100)) == 2000
    truncated = trained.sample(seed=1, device="cuda", top_k=3, top_p=0.9, prefix="SAN", count=200)
    assert all(w.startswith("SAN") for w in truncated)
    for sampler in ("greedy", "beam"):
        result = run_letras("sample", "r", "--sampler", sampler, "-n", "3", "--device", "cuda", cwd=gpu_config)
        assert result.returncode == 0, result.stderr


def test_bench_runs_on_the_gpu(tmp_path):
    result = run_letras("bench", "--corpus", "ciudades", "--seconds", "1", "--hidden", "32", "--batch-size", "8",
                        "--device", "cuda", "--precision", "auto", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["device"].startswith("cuda") and report["precision"] == "bf16"
    assert report["cuda_peak_mib"] > 0 and report["sampling"]["words_per_s"] > 0


@pytest.mark.parametrize("decoupled", [True, False])
def test_adam_steps_as_torch_optim_does_on_the_gpu(decoupled):
    ours, theirs = parameters(device="cuda"), parameters(device="cuda")
    reference = torch.optim.AdamW if decoupled else torch.optim.Adam
    train(Adam(groups(ours), lr=0.01, weight_decay=0.1, decoupled=decoupled), ours, 6)
    train(reference(groups(theirs), lr=0.01, weight_decay=0.1, fused=True), theirs, 6)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # the same kernel
