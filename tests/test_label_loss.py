"""trainer.label_loss: the classification term of a labelled run's loss."""

import pytest
import torch

from letras.core import load_config, load_run, train
from test_labels import LABELLED, towns


def write_towns(folder, label_loss: float, **trainer: object) -> str:
    """The labelled test pipeline of test_labels, with ``label_loss`` and other trainer options."""
    (folder / "towns.tsv").write_text("name\tcommunity\n" + "".join(f"{n}\t{c}\n" for n, c in towns()), "utf-8")
    options = "".join(f", {k}: {v}" for k, v in {"label_loss": label_loss, **trainer}.items())
    (folder / "labelled.yaml").write_text(LABELLED.replace("device: cpu}", f"device: cpu{options}}}"))
    return str(folder / "labelled.yaml")


def test_the_terms_are_the_word_loss_and_bayes_rule():
    """Per word: the cross-entropy under its own label, and -log P(label | word) with P(word |
    label) read under each label in turn and the prior's shares, as classify computes it."""
    from letras.core.batching import loss_sum
    from letras.plugins.word_reset.label_loss import label_log_prior, losses_under_every_label

    torch.manual_seed(0)
    embed, cell, head, labels_in = (torch.nn.Embedding(6, 4), torch.nn.LSTM(7, 8, batch_first=True),
                                    torch.nn.Linear(8, 6), torch.nn.Embedding(3, 3))

    def model(ids, state=None, labels=None):
        label = labels_in(labels)[:, None].expand(-1, ids.shape[1], -1)
        out, state = cell(torch.cat([embed(ids), label], dim=-1), state)
        return head(out), state

    inputs = torch.tensor([[0, 1, 2, 3], [0, 4, 5, 0]])
    targets = torch.tensor([[1, 2, 3, 0], [4, 5, 0, -100]])
    labels = torch.tensor([2, 0])
    log_prior = label_log_prior([0, 0, 1, 2, 2, 2], 3, torch.device("cpu"))
    assert log_prior.exp().tolist() == pytest.approx([2 / 6, 1 / 6, 3 / 6])
    own, posterior = losses_under_every_label(model, inputs, targets, labels, log_prior)
    with torch.no_grad():
        each = [[float(loss_sum(model, inputs[i:i + 1], targets[i:i + 1], torch.tensor([label])))
                 for label in range(3)] for i in range(2)]
    assert own.tolist() == pytest.approx([each[0][2], each[1][0]], rel=1e-5)
    bayes = torch.softmax(-torch.tensor(each) + log_prior, dim=1)
    assert posterior.tolist() == pytest.approx([-bayes[0, 2].log().item(), -bayes[1, 0].log().item()], rel=1e-4)


def test_the_term_trains_the_classifier(tmp_path):
    """The same run with and without the term: with it, the training words' own labels are
    likelier by Bayes' rule, and the training loss it reports is still the words' loss alone."""
    right, train_loss = {}, {}
    for label_loss in (0, 20):
        folder = tmp_path / str(label_loss)
        folder.mkdir()
        result = train(load_config(write_towns(folder, label_loss), [f"output={folder / 'run'}"]))
        guessed = load_run(folder / "run").classify([name for name, _ in towns()])
        right[label_loss] = sum(dict(g.labels)[label] for g, (_, label) in zip(guessed, towns())) / len(guessed)
        train_loss[label_loss] = result.history[-1]["train_loss"]
    assert right[20] > right[0] + 0.05  # the mean P(own label | word): 0.48 against 0.28 when written
    assert abs(train_loss[20] - train_loss[0]) < 1.0  # 20 times the term would add about 2 nats a letter


def test_resume_with_the_term_is_bit_exact(tmp_path):
    from test_resume import assert_resume_is_exact

    assert_resume_is_exact(write_towns(tmp_path, 2.0), tmp_path, 1)


def test_the_term_needs_labels_and_a_fused_call(invoke, tmp_path):
    write_towns(tmp_path, 1.0)
    result = invoke("run", tmp_path / "labelled.yaml", "corpus.label=null", f"output={tmp_path / 'run'}")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "trainer.label_loss: needs a labelled corpus" in result.stderr
    result = invoke("validate", tmp_path / "labelled.yaml", "trainer.unroll=manual")
    assert result.exit_code == 2 and "trainer.label_loss" in result.stderr and "needs unroll: fused" in result.stderr
    result = invoke("validate", tmp_path / "labelled.yaml", "trainer.label_loss=-1")
    assert result.exit_code == 2 and "must be at least 0" in result.stderr


def test_two_processes_train_with_the_term_like_one(tmp_path):
    """Under torchrun the batch's copies go through DDP in one forward: 2 processes, 1 result."""
    import subprocess
    import sys

    from conftest import run_letras

    write_towns(tmp_path, 2.0, log_every=1)
    single = run_letras("run", "labelled.yaml", "output=single", "-q", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                            "-m", "letras.core", "run", "labelled.yaml", "output=multi", "-q"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert multi.returncode == 0, multi.stderr
    a = torch.load(tmp_path / "single" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "multi" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] > 0
    for key in a["model"]:
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=1e-4, atol=1e-5, msg=key)
