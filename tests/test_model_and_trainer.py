import json
import math

import pytest
import torch

from letras.core import TrainingRun, components
from letras.core.cells import LayerStack, word_dropout
from letras.plugins.chars import CharVocabulary
from letras.plugins.corpora import CIUDADES
from letras.core.batching import WordBatches, loss_sum, mean_loss
from letras.plugins.word_reset.trainer import WordResetTrainer, unrolled_loss_sum


def encoded_cities():
    vocab = CharVocabulary()
    vocab.fit(CIUDADES)
    return vocab, [[0, *vocab.encode(w), 0] for w in CIUDADES]


def build(name: str, vocab_size: int, **options):
    torch.manual_seed(0)
    return components("model").get(name).build(vocab_size, options=options)


@pytest.mark.parametrize("name, options", [
    ("rnn", {"embedding_dim": 0, "hidden_size": 16}),
    ("lstm", {"embedding_dim": 8, "hidden_size": 16}),
    ("lstm", {"embedding_dim": 8, "hidden_size": 16, "num_layers": 2}),
    ("generator", {"cell": "rnn", "cell_options": {"nonlinearity": "relu"}, "hidden_size": 8}),
    ("lstm", {"embedding_dim": 8, "hidden_size": 16, "num_layers": 2, "dropout": 0.3, "dropout_mask": "word"}),
    ("generator", {"cell": "rnn", "hidden_size": 8, "num_layers": 3, "dropout_mask": "word"}),
])
def test_reading_letter_by_letter_equals_reading_the_whole_word(name, options):
    model = build(name, 10, **options).eval()
    ids = torch.randint(0, 10, (3, 7))
    whole, _ = model(ids)  # (B, T, V)
    state, steps = None, []
    for t in range(7):
        logits, state = model(ids[:, t:t + 1], state)
        steps.append(logits)
    assert whole.shape == (3, 7, 10)
    torch.testing.assert_close(torch.cat(steps, 1), whole, rtol=1e-5, atol=1e-5)


def test_one_hot_input_as_in_the_notes():
    model = build("rnn", 12, embedding_dim=0, hidden_size=128)
    assert model.embedding is None
    assert model.cell.input_size == 12 and model.cell.hidden_size == 128
    assert isinstance(model.cell, torch.nn.RNN)


def test_word_dropout_draws_one_mask_per_word():
    torch.manual_seed(0)
    x = torch.ones(200, 9, 16)
    y = word_dropout(x, 0.25)
    kept = y[:, :1, :] != 0  # (B, 1, H): what the first letter kept
    assert torch.equal(y != 0, kept.expand_as(y))  # every letter of a word: the same units
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / 0.75))  # scaled like nn.Dropout
    assert 0.2 < 1 - kept.float().mean() < 0.3
    assert word_dropout(x, 0.25, training=False) is x and word_dropout(x, 0.0) is x


@pytest.mark.parametrize("cell", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN])
def test_layer_stack_equals_the_fused_multi_layer_cell(cell):
    torch.manual_seed(0)
    fused = cell(5, 8, num_layers=3, batch_first=True)
    layers = [cell(5 if i == 0 else 8, 8, batch_first=True) for i in range(3)]
    for i, layer in enumerate(layers):  # the same weights, layer by layer
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(layer, f"{name}_l0").data.copy_(getattr(fused, f"{name}_l{i}"))
    stack = LayerStack(layers, dropout=0.5).eval()
    x = torch.randn(4, 6, 5)
    for h0 in (None, fused(x)[1]):  # from zeros, and carrying a state
        expected_out, expected_state = fused(x, h0)
        out, state = stack(x, h0)
        torch.testing.assert_close(out, expected_out)
        for got, want in zip(state if isinstance(state, tuple) else (state,),
                             expected_state if isinstance(expected_state, tuple) else (expected_state,)):
            assert got.shape == want.shape == (3, 4, 8)
            torch.testing.assert_close(got, want)


def test_word_dropout_mask_stacks_the_layers_and_shares_one_mask_per_word():
    letter = build("lstm", 10, hidden_size=16, num_layers=2, dropout=0.5)
    word = build("lstm", 10, hidden_size=16, num_layers=2, dropout=0.5, dropout_mask="word")
    assert isinstance(letter.cell, torch.nn.LSTM) and letter.cell.num_layers == 2
    assert isinstance(word.cell, LayerStack) and len(word.cell.layers) == 2
    # in training every letter of a word sees the same mask: a word of one repeated letter
    # is embedded the same at every letter
    ids = torch.full((64, 5), 3)
    torch.manual_seed(1)
    embedded = word.dropout(word.embedding(ids))
    assert torch.equal(embedded, embedded[:, :1].expand_as(embedded))


def test_manual_and_fused_unroll_give_the_same_loss_and_gradients():
    vocab, words = encoded_cities()
    batch = WordBatches(words, torch.device("cpu"))
    inputs, targets, n = next(batch.batches(15, group_by_length=False))
    for name in ("rnn", "lstm"):
        fused_model = build(name, vocab.vocab_size, hidden_size=32)
        manual_model = build(name, vocab.vocab_size, hidden_size=32)
        fused = loss_sum(fused_model, inputs, targets)
        manual = unrolled_loss_sum(manual_model, inputs, targets)
        fused.backward()
        manual.backward()
        torch.testing.assert_close(manual, fused)
        for (pname, p), q in zip(fused_model.named_parameters(), manual_model.parameters()):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=pname)


def test_padding_never_counts_and_every_word_starts_from_zero():
    """The loss of a padded batch is the sum of each word's loss computed alone."""
    vocab, words = encoded_cities()
    model = build("lstm", vocab.vocab_size, hidden_size=16).eval()
    batch = WordBatches(words, torch.device("cpu"))
    inputs, targets, n = next(batch.batches(15, group_by_length=False))
    assert (targets == -100).any()  # the batch does hold padding
    together = loss_sum(model, inputs, targets)
    alone = sum(loss_sum(model, torch.tensor([w[:-1]]), torch.tensor([w[1:]])) for w in words)
    torch.testing.assert_close(together, alone)
    assert n == sum(len(w) - 1 for w in words)


def test_padded_tensors_hold_each_word_shifted_by_one():
    words = [[0, 5, 6, 0], [0, 7, 0], [0, 0]]
    data = WordBatches(words)
    assert data.inputs.tolist() == [[0, 5, 6], [0, 7, 0], [0, 0, 0]]
    assert data.targets.tolist() == [[5, 6, 0], [7, 0, -100], [0, -100, -100]]
    assert data.lengths.tolist() == [3, 2, 1] and data.chars == 6


def test_length_grouping_keeps_every_word_once_and_cuts_padding():
    from letras.plugins.corpora import municipios

    vocab = CharVocabulary()
    names = municipios().words()[:2000]
    vocab.fit(names)
    data = WordBatches([[0, *vocab.encode(w), 0] for w in names], torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    positions = chars = 0
    seen = []
    for inputs, targets, n in data.batches(64, generator=g):
        positions += targets.numel()
        chars += n
        seen.append(inputs.shape[0])
    assert chars == data.chars and sum(seen) == len(names)
    assert positions / chars < 1.05  # under 5% padding


def fit(words, vocab_size, **options):
    model = build("lstm", vocab_size, hidden_size=32, embedding_dim=8)
    defaults = {"epochs": 2, "batch_size": 4, "lr": 0.01, "val_fraction": 0.2, "device": "cpu"}
    trainer = WordResetTrainer(**{**defaults, **options})
    saved = []
    run = TrainingRun(seed=0, save=lambda payload, best: saved.append(payload))
    trainer.fit(model, words, run)
    return model, run, saved


def test_trainer_reports_metrics_and_checkpoints_each_epoch():
    vocab, words = encoded_cities()
    model, run, saved = fit(words, vocab.vocab_size, epochs=3)
    assert [m["epoch"] for m in run.history] == [1, 2, 3]
    last = run.history[-1]
    assert last["step"] == 3 * math.ceil(12 / 4)  # 12 training words, 3 validation words
    assert last["val_loss"] is not None and last["train_bpc"] == pytest.approx(last["train_loss"] / math.log(2))
    assert len(saved) == 3 and {"model", "trainer_state", "rng", "epoch", "step"} <= set(saved[-1])
    assert {"optimizer", "order"} <= set(saved[-1]["trainer_state"])


def test_the_learning_rate_warms_up_then_anneals_on_a_cosine():
    vocab, words = encoded_cities()  # 12 training words: 3 steps of 4 an epoch, 12 in all
    _, run, _ = fit(words, vocab.vocab_size, epochs=4, schedule="cosine", warmup_steps=6)
    # the rate of each epoch's last step: 3 and 6 of 6 warm-up steps, then a third and
    # five sixths of the way down the cosine to a hundredth of lr
    expected = [0.01 * 3 / 6, 0.01, 0.01 * (0.01 + 0.99 * 0.75), 0.01 * (0.01 + 0.99 * 0.5 * (1 - 3 ** 0.5 / 2))]
    assert [m["lr"] for m in run.history] == pytest.approx(expected)
    _, constant, _ = fit(words, vocab.vocab_size, epochs=2)
    assert [m["lr"] for m in constant.history] == [0.01, 0.01]


def test_training_lowers_the_loss_and_is_reproducible():
    vocab, words = encoded_cities()
    _, first, _ = fit(words, vocab.vocab_size, epochs=30, val_fraction=0.0, batch_size=15)
    _, second, _ = fit(words, vocab.vocab_size, epochs=30, val_fraction=0.0, batch_size=15)
    assert first.history[-1]["train_loss"] < first.history[0]["train_loss"] * 0.7
    assert first.history[-1]["train_loss"] == second.history[-1]["train_loss"]


def test_weight_decay_shrinks_the_weights_and_embedding_but_not_the_biases():
    model = build("lstm", 10, hidden_size=8, num_layers=2, dropout_mask="word")
    optimizer = WordResetTrainer(optimizer="adamw", weight_decay=0.1)._optimizer(model)
    decay = {id(p) for g in optimizer.param_groups if g["weight_decay"] == 0.1 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decay) == ("weight" in name), name  # embedding, cell and head matrices
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    # without weight decay, one group as before: older checkpoints' optimizer states still load
    assert len(WordResetTrainer()._optimizer(model).param_groups) == 1


def test_max_seconds_ends_training_cleanly():
    vocab, words = encoded_cities()
    _, run, saved = fit(words, vocab.vocab_size, epochs=100000, max_seconds=0.5)
    assert len(run.history) < 100000 and saved  # stopped early, still saved


def test_mean_loss_is_a_mean_over_characters():
    vocab, words = encoded_cities()
    model = build("lstm", vocab.vocab_size, hidden_size=16)
    data = WordBatches(words, torch.device("cpu"))
    with torch.no_grad():
        total = sum(float(loss_sum(model.eval(), torch.tensor([w[:-1]]), torch.tensor([w[1:]]))) for w in words)
    assert mean_loss(model, data, batch_size=4) == pytest.approx(total / data.chars, rel=1e-5)


def test_divergence_stops_with_a_clear_message():
    from letras.core import LetrasError

    run = TrainingRun(seed=0)
    with pytest.raises(LetrasError, match="training diverged.*lower the learning rate"):
        run.end_epoch({"epoch": 1, "step": 1, "train_loss": float("nan")}, None, {})


def test_weight_average_ramps_up_swaps_and_loads():
    from letras.plugins.word_reset.averaging import WeightAverage

    model = torch.nn.Linear(2, 1)
    average = WeightAverage(model, decay=0.99)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(step=0)  # bias-corrected: the first step's weights, nothing of the initial ones
    assert torch.equal(average.average[0], start + 1)
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(step=1)  # then a weighted mean, the older step weighing 0.99 times the newer
    assert torch.allclose(average.average[0], start + 1 + 1 / 1.99)
    trained, averaged = model.weight.detach().clone(), average.average[0].clone()
    average.swap()
    assert torch.equal(model.weight, averaged) and torch.equal(average.average[0], trained)
    average.swap()
    assert torch.equal(model.weight, trained)
    with pytest.raises(ValueError, match="1 saved weight tensors for 2 parameters"):
        average.load([trained])


def test_ema_validates_saves_and_samples_the_average(invoke, tmp_path):
    result = invoke("run", "ciudades-lstm", "trainer.epochs=5", "trainer.val_fraction=0.2", "trainer.ema=0.99",
                    "output=r")
    assert result.exit_code == 0, result.output
    saved = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    trained = saved["trainer_state"]["trained_weights"]
    model = list(saved["model"].values())
    assert len(trained) == len(model) and not all(torch.equal(a, b) for a, b in zip(trained, model))
    last = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert json.loads(invoke("eval", "r", "--json").stdout)["loss"] == last["val_loss"]  # of the average
