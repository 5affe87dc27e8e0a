"""The word-reset trainer's Adam: torch.optim's update and checkpoints, without its import of
torch._dynamo."""

import subprocess
import sys

import pytest
import torch

from letras.plugins.word_reset import adam
from letras.plugins.word_reset.adam import Adam


def parameters(seed=0, device="cpu"):
    torch.manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(4, 3).to(device)), torch.nn.Parameter(torch.randn(3).to(device))]


def groups(params):
    # as the trainer groups them: decay on the matrices, none on the biases
    return [{"params": [params[0]]}, {"params": [params[1]], "weight_decay": 0.0}]


def train(optimizer, params, steps, seed=1):
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator).to(p.device)
        for group in optimizer.param_groups:
            group["lr"] = 0.01 * (step + 1)  # scheduled, as the trainer does
        optimizer.step()
        optimizer.zero_grad()


@pytest.mark.parametrize("decoupled", [True, False])
def test_adam_steps_as_torch_optim_does(decoupled):
    ours, theirs = parameters(), parameters()
    reference = torch.optim.AdamW if decoupled else torch.optim.Adam
    optimizer = adam.make_adam(groups(ours), lr=0.01, weight_decay=0.1, decoupled=decoupled)
    assert isinstance(optimizer, Adam)  # this torch has the fused kernel on the CPU
    train(optimizer, ours, 6)
    train(reference(groups(theirs), lr=0.01, weight_decay=0.1, fused=True), theirs, 6)
    for p, q in zip(ours, theirs):  # the same kernel: the same numbers
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("failure", [AttributeError, TypeError, RuntimeError, NotImplementedError, ValueError])
@pytest.mark.parametrize("decoupled", [True, False])
def test_a_fused_kernel_that_fails_its_probe_means_torch_optim(decoupled, failure, monkeypatch):
    """Any exception from the private kernel (missing, a changed signature) means torch.optim's
    own optimizer, and the kernel of the other variant is probed on its own."""
    name = "_fused_adamw_" if decoupled else "_fused_adam_"

    def broken(*args, **kwargs):
        raise failure("the private kernel changed")

    monkeypatch.setattr(torch, name, broken)
    adam.has_fused_kernel.cache_clear()
    try:
        assert not adam.has_fused_kernel("cpu", decoupled) and adam.has_fused_kernel("cpu", not decoupled)
        ours, theirs = parameters(), parameters()
        optimizer = adam.make_adam(groups(ours), lr=0.01, weight_decay=0.1, decoupled=decoupled)
        reference = torch.optim.AdamW if decoupled else torch.optim.Adam
        assert type(optimizer) is reference
        train(optimizer, ours, 6)
        train(reference(groups(theirs), lr=0.01, weight_decay=0.1), theirs, 6)
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
    finally:
        adam.has_fused_kernel.cache_clear()  # the next test probes the real kernels again


def test_a_checkpoint_of_torch_optim_resumes_and_ours_round_trips():
    ours, theirs = parameters(), parameters()
    reference = torch.optim.AdamW(groups(theirs), lr=0.01, weight_decay=0.1, fused=True)
    train(reference, theirs, 3)
    with torch.no_grad():
        for p, q in zip(ours, theirs):
            p.copy_(q)
    optimizer = Adam(groups(ours), lr=0.01, weight_decay=0.1, decoupled=True)
    optimizer.load_state_dict(reference.state_dict())  # what letras saved before this class
    train(reference, theirs, 3, seed=2)
    train(optimizer, ours, 3, seed=2)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, rtol=0, atol=0)

    again = Adam(groups(parameters()), lr=0.01, weight_decay=0.1, decoupled=True)
    again.load_state_dict(optimizer.state_dict())
    assert again.param_groups[1]["weight_decay"] == 0.0
    for p, q in zip(again.state.values(), optimizer.state.values()):
        assert p.keys() == q.keys() and all(torch.equal(p[k], q[k]) for k in p)


def test_a_saved_state_that_does_not_fit_is_refused_and_changes_nothing():
    optimizer = Adam(parameters(), lr=0.01)
    train(optimizer, optimizer.param_groups[0]["params"], 1)
    saved = optimizer.state_dict()
    other = Adam(groups(parameters()), lr=0.02)
    with pytest.raises(ValueError, match=r"groups of sizes \[2\], this optimizer \[1, 1\]"):
        other.load_state_dict(saved)
    transposed = Adam([torch.nn.Parameter(torch.zeros(3, 4)), torch.nn.Parameter(torch.zeros(3))], lr=0.02)
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(4, 3\), the parameter \(3, 4\)"):
        transposed.load_state_dict(saved)
    del saved["state"][1]["exp_avg_sq"]
    with pytest.raises(ValueError, match="not an Adam state: it has no 'exp_avg_sq'"):
        Adam(parameters(), lr=0.02).load_state_dict(saved)
    assert other.state == {} and other.param_groups[0]["lr"] == 0.02


def test_training_does_not_import_torch_dynamo():
    """torch.optim would: 70 MiB of the 400 training names.txt may take."""
    script = """
import sys
from letras.core import TrainingRun
from letras.plugins.word_reset.trainer import WordResetTrainer
from letras.plugins.recurrent.generator import lstm_generator
words = [[0, 1, 2, 0], [0, 2, 1, 1, 0], [0, 1, 0]] * 4
trainer = WordResetTrainer(epochs=2, batch_size=4, lr=0.01, optimizer="adamw", weight_decay=0.1,
                           grad_clip=1.0, schedule="cosine", warmup_steps=2, ema=0.99, device="cpu")
trainer.fit(lstm_generator(3, hidden_size=8), words, TrainingRun(seed=0))
print("torch._dynamo" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_training_goes_on_with_torch_optim_where_the_kernel_is_missing(monkeypatch):
    from letras.core import TrainingRun
    from letras.plugins.recurrent.generator import lstm_generator
    from letras.plugins.word_reset.trainer import WordResetTrainer

    monkeypatch.setattr(adam, "has_fused_kernel", lambda device_type, decoupled=False: False)
    words = [[0, 1, 2, 0], [0, 2, 1, 1, 0], [0, 1, 0]] * 4
    trainer = WordResetTrainer(epochs=3, batch_size=4, lr=0.01, optimizer="adamw", weight_decay=0.1,
                               val_fraction=0.0, device="cpu")
    assert isinstance(trainer._optimizer(lstm_generator(3, hidden_size=8)), torch.optim.AdamW)
    run = TrainingRun(seed=0)
    trainer.fit(lstm_generator(3, hidden_size=8), words, run)
    losses = [m["train_loss"] for m in run.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
