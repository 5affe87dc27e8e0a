"""Labelled corpora, conditional models, sampling and scoring by label, classification."""

import json
import sys
import types

import pytest
import torch

from conftest import ROOT
from letras.core import LabelledWords, LetrasError, UsageError, hookimpl, load_config, load_run, train
from letras.core.testing import registered_plugin, train_tiny

REGIONS = ("Galicia", "Cataluña", "País Vasco", "Castilla y León")  # labels with spaces and accents

LABELLED = """
name: labelled
seed: 1
corpus:    {name: table, file: towns.tsv, word: name, label: community}
model:     {name: lstm, hidden_size: 24, embedding_dim: 8, label_dim: 4}
trainer:   {name: word-reset, epochs: 3, batch_size: 16, lr: 0.01, val_fraction: 0.2, device: cpu}
sampler:   {name: temperature, count: 5}
"""


def towns(per_region: int = 60) -> list[tuple[str, str]]:
    """The first ``per_region`` municipalities of each of REGIONS."""
    rows = [line.split("\t") for line in
            (ROOT / "plugins" / "data" / "es_municipios_regiones.tsv").read_text("utf-8").splitlines()[1:]]
    return [(name, community) for region in REGIONS
            for name, community, _ in [row for row in rows if row[1] == region][:per_region]]


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled")
    (folder / "towns.tsv").write_text("name\tcommunity\n" + "".join(f"{n}\t{c}\n" for n, c in towns()), "utf-8")
    (folder / "labelled.yaml").write_text(LABELLED)
    train(load_config(str(folder / "labelled.yaml"), [f"output={folder / 'run'}"]))
    return folder / "run"


# --- labelled corpora ---------------------------------------------------------------------

def test_table_corpus_sniffs_the_delimiter_and_reads_labels_and_weights(tmp_path):
    from letras.core.tablefile import read_table

    (tmp_path / "names.csv").write_text("\ufeffname;sex;count\r\nLucía;mujer;120\r\n\r\nHugo;hombre;3.5\r\n", "utf-8")
    table = read_table(str(tmp_path / "names.csv"), word="name", label="sex", weight="count")
    assert table.words() == ["Lucía", "Hugo"] and table.labels() == ["mujer", "hombre"]
    assert table.weights() == [120.0, 3.5]
    (tmp_path / "plain.txt").write_text("word|x\nLeón|1\n", "utf-8")
    assert read_table(str(tmp_path / "plain.txt"), delimiter="pipe").words() == ["León"]
    assert read_table(str(tmp_path / "plain.txt")).labels() is None


@pytest.mark.parametrize("text,options,message", [
    ("word\tlabel\nVigo\tGalicia\nLugo\t\n", {"label": "label"}, "line 3 ('Lugo') has an empty 'label' cell"),
    ("word\tcount\nVigo\t3\nLugo\t0\n", {"weight": "count"}, "line 3 has 'count' '0': a weight is a positive number"),
    ("word\tcount\nVigo\tmany\n", {"weight": "count"}, "line 2 has 'count' 'many'"),
    ("name\tcommunity\nVigo\tGalicia\n", {"label": "region", "word": "name"},
     "has no 'region' column for the labels (its columns: name, community)"),
    ("word\tlabel\nVigo\n", {"label": "label"}, "line 2 has 1 columns, the header 2"),
])
def test_bad_tables_are_one_clear_line(invoke, tmp_path, text, options, message):
    (tmp_path / "t.tsv").write_text(text, "utf-8")
    args = [f"corpus.{k}={v}" for k, v in options.items()]
    (tmp_path / "c.yaml").write_text(LABELLED.replace("word: name, label: community", "").replace("towns.tsv", "t.tsv"))
    result = invoke("validate", tmp_path / "c.yaml", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) <= 2  # the error, and perhaps its hint


def test_a_table_read_by_eval_names_evals_flags(tmp_path):
    from letras.core import UsageError
    from letras.core.label_commands import read_eval_file

    (tmp_path / "t.tsv").write_text("name\tcommunity\nVigo\tGalicia\n", "utf-8")
    assert read_eval_file(str(tmp_path / "t.tsv"), "name", "community") == (["Vigo"], ["Galicia"])
    with pytest.raises(UsageError) as info:
        read_eval_file(str(tmp_path / "t.tsv"), None, "region")
    assert "has no 'word' column" in str(info.value) and info.value.hint == "name the column with --word-column"


def test_municipios_labelled_by_community_and_province():
    from letras.plugins.corpora import municipios

    assert municipios().words() == municipios(label="none").words()  # unchanged without a label
    community, province = municipios(label="community"), municipios(label="province")
    assert len(set(community.labels())) == 19 and len(set(province.labels())) == 52
    assert dict(zip(community.words(), community.labels()))["Sanxenxo"] == "Galicia"
    assert set(community.words()) == set(municipios().words())


def test_a_corpus_checks_what_labels_and_weights_return():
    from letras.core.labels import read_corpus

    assert read_corpus(LabelledWords(["a", "", "b"], ["x", "y", "z"]), "c").labels == ["x", "z"]
    with pytest.raises(LetrasError, match="one entry per word"):
        read_corpus(LabelledWords(["a", "b"], ["x"]), "c")
    with pytest.raises(UsageError, match="word 2 \\('b'\\) has weight -1"):
        read_corpus(LabelledWords(["a", "b"], weights=[1, -1]), "c")


def test_a_corpus_plugin_with_labels_trains_a_third_party_cell(tmp_path):
    """The example plugin's corpus is unchanged; a plugin returning LabelledWords from the same
    data trains its gru cell conditioned on the period."""
    sys.path.insert(0, str(ROOT / "examples" / "letras-gru"))
    try:
        import letras_gru
        from letras_gru.corpus import dinosaurios
    finally:
        sys.path.pop(0)
    rows = [(name, period) for period in ("triassic", "jurassic", "cretaceous") for name in dinosaurios(period).words()]
    plugin = types.ModuleType("periods")
    plugin.register_corpora = hookimpl(lambda register: register(
        "periodos", lambda: LabelledWords([n for n, _ in rows], [p for _, p in rows])))
    with registered_plugin(plugin) as host:
        host.add(letras_gru, name="gru", source="test")
        result = train_tiny(tmp_path / "run", corpus={"name": "periodos"},
                            model={"name": "generator", "cell": "gru", "hidden_size": 16, "embedding_dim": 8})
        trained = load_run(tmp_path / "run")
        assert trained.labels.names == ["cretaceous", "jurassic", "triassic"]
        assert len(trained.sample(label="triassic", count=4, seed=0)) == 4
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


# --- the conditional model ----------------------------------------------------------------

def test_without_labels_the_model_is_todays(tmp_path):
    train_tiny(tmp_path / "run")
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert "labels" not in saved
    assert not any(key.startswith("label") for key in saved["model"])
    assert load_run(tmp_path / "run").labels is None


def test_a_labelled_run_saves_its_labels_and_reports_loss_per_label(labelled_run):
    saved = torch.load(labelled_run / "checkpoint.pt", weights_only=True)
    assert saved["labels"]["names"] == sorted(REGIONS) and saved["labels"]["counts"] == [60] * 4
    assert saved["model"]["label_embedding.weight"].shape == (4, 4)
    metrics = [json.loads(line) for line in (labelled_run / "metrics.jsonl").read_text().splitlines()]
    assert set(metrics[-1]["val_loss_per_label"]) == set(REGIONS)



def test_label_state_fits_any_state_laid_out_like_nn_rnn():
    """label_state builds the initial state of a two-layer LSTM (h, c) and of a GRU-like cell
    (one tensor) from the label; a cell whose state is laid out otherwise is one clear error."""
    from letras.plugins.recurrent.label_state import LabelState

    for cell in (torch.nn.LSTM(5, 7, num_layers=2, batch_first=True), torch.nn.GRU(5, 7, batch_first=True)):
        made = LabelState(cell, 5, 3)
        state = made(torch.randn(4, 3))
        shapes = [t.shape for t in (state if isinstance(state, tuple) else (state,))]
        assert all(shape == (cell.num_layers, 4, 7) for shape in shapes)
        assert all(not t.detach().any() for t in (state if isinstance(state, tuple) else (state,)))  # starts at zero
        cell(torch.randn(4, 2, 5), state)  # the cell takes it

    class DictState(torch.nn.Module):
        def forward(self, x, h0=None):
            return x, {"h": x[:, -1]}

    with pytest.raises(UsageError, match="not laid out like nn.RNN's"):
        LabelState(DictState(), 5, 3)

def test_a_model_without_labels_support_is_a_clear_error(tmp_path):
    plugin = types.ModuleType("plain")
    plugin.register_models = hookimpl(lambda register: register(
        "plain", lambda vocab_size: torch.nn.Linear(1, 1)))
    with registered_plugin(plugin), pytest.raises(UsageError, match="model 'plain' cannot be conditioned on labels"):
        train_tiny(tmp_path / "run", corpus={"name": "municipios", "label": "community"}, model={"name": "plain"})


def test_resume_with_labels_is_bit_exact(labelled_run, tmp_path):
    from test_resume import assert_resume_is_exact

    assert_resume_is_exact(labelled_run.parent / "labelled.yaml", tmp_path, 1)


def test_drawing_by_weight_gives_each_word_its_share_of_an_epoch():
    from letras.core.batching import WordBatches

    data = WordBatches([[0, 1, 0], [0, 2, 2, 0], [0, 3, 0]], weights=[6.0, 3.0, 1.0])
    drawn = []
    for _ in range(200):
        for inputs, _, _, _, weights in data.labelled_batches(2, generator=torch.Generator().manual_seed(_),
                                                                draw_by_weight=True):
            assert weights is None  # each drawn word counts once
            drawn += inputs[:, 1].tolist()
    assert len(drawn) == 600
    assert [drawn.count(i) / 600 for i in (1, 2, 3)] == pytest.approx([0.6, 0.3, 0.1], abs=0.05)


@pytest.mark.parametrize("weighting", ["loss", "sample"])
def test_weights_draw_frequent_words_more(tmp_path, weighting):
    """Two words, one weighing 50 times the other: the model learns to prefer it, whether the
    loss is weighted or the words are drawn by weight."""
    (tmp_path / "w.csv").write_text("word,count\nAbc,50\nXyz,1\n", "utf-8")
    train_tiny(tmp_path / "run", corpus={"name": "table", "file": str(tmp_path / "w.csv"), "weight": "count"},
               trainer={"epochs": 40, "batch_size": 2, "weighting": weighting})
    abc, xyz = load_run(tmp_path / "run").score(["Abc", "Xyz"])
    assert abc.logprob > xyz.logprob + 1.0


def first_letter_words(per_label: int = 120) -> list[tuple[str, str]]:
    """Label 'zeta' holds only words that begin with 'a', label 'alfa' only words with 'b':
    listed zeta first, though it is the second label in id order (names sorted)."""
    import random

    rng = random.Random(0)
    tail = lambda: "".join(rng.choice("eilmnorstu") for _ in range(rng.randint(2, 5)))  # noqa: E731
    return [(letter + tail(), label) for label, letter in (("zeta", "a"), ("alfa", "b")) for _ in range(per_label)]


@pytest.fixture(scope="module", params=[False, True], ids=["letters", "letters-and-state"])
def first_letter_run(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("first-letter")
    (folder / "words.tsv").write_text("word\tlabel\n" + "".join(f"{w}\t{l}\n" for w, l in first_letter_words()))
    train_tiny(folder / "run", corpus={"name": "table", "file": str(folder / "words.tsv"), "label": "label"},
               model={"name": "lstm", "hidden_size": 24, "embedding_dim": 8, "label_dim": 4,
                      "label_state": request.param},
               trainer={"epochs": 8, "batch_size": 16, "val_fraction": 0.1})
    return load_run(folder / "run")


def share_starting(words: list[str], letter: str) -> float:
    return sum(w.startswith(letter) for w in words) / len(words)


def test_a_label_reaches_every_sampler_path(first_letter_run):
    """Sampling with a label gives that label's words, whatever path the words take: the prefix
    tree and continuous batching (temperature), greedy and beam, constraints, a blend that puts
    all its weight on one label, and the mixture of labels; label ids follow the sorted names
    in training, in the checkpoint and in sampling alike."""
    trained = first_letter_run
    assert trained.labels.names == ["alfa", "zeta"]
    for label, letter in (("zeta", "a"), ("alfa", "b")):
        for sampler in ("temperature", "greedy", "beam"):
            words = trained.with_sampler(sampler, count=40 if sampler == "temperature" else 3).sample(
                label=label, seed=0)
            assert share_starting(words, letter) >= 0.9, (label, sampler, words)
        for spec in ({label: 1.0}, f"{label}=1,{'alfa' if label == 'zeta' else 'zeta'}=0"):
            assert share_starting(trained.sample(label=spec, count=40, seed=1), letter) >= 0.9
        steered = trained.sample(label=label, suffix="o", count=20, seed=2, batch_size=4)
        assert all(w.endswith("o") for w in steered) and share_starting(steered, letter) >= 0.9
        assert [c.label for c in trained.classify([letter + "mino", letter + "elo"])] == [label, label]
    mixed = trained.sample(label="zeta=0.5,alfa=0.5", count=200, seed=3)
    assert 0.3 <= share_starting(mixed, "a") <= 0.7 and share_starting(mixed, "b") >= 0.3


def test_a_labelled_run_starts_from_a_run_without_labels(tmp_path):
    """init_from a run without labels: the labelled model starts as exactly that model (the
    label's input columns and initial state at zero), whatever the label."""
    (tmp_path / "towns.tsv").write_text("name\tcommunity\n" + "".join(f"{n}\t{c}\n" for n, c in towns(15)), "utf-8")
    corpus = {"name": "table", "file": str(tmp_path / "towns.tsv"), "word": "name"}
    model = {"name": "lstm", "hidden_size": 16, "embedding_dim": 8, "label_dim": 4, "label_state": True}
    train_tiny(tmp_path / "plain", corpus=corpus, model=model)
    train_tiny(tmp_path / "tuned", corpus={**corpus, "label": "community"}, model=model, init_from=str(tmp_path / "plain"),
               trainer={"epochs": 1, "lr": 1e-9, "val_fraction": 0.0})
    plain, tuned = load_run(tmp_path / "plain"), load_run(tmp_path / "tuned")
    words = ["Vigo", "Lleida", "Getxo"]
    for label in ("Galicia", "País Vasco"):
        assert [s.logprob for s in tuned.score(words, label=label)] == pytest.approx(
            [s.logprob for s in plain.score(words)], abs=1e-3)


def test_init_from_refuses_labels_that_do_not_fit(invoke, labelled_run, tmp_path):
    config = labelled_run.parent / "labelled.yaml"
    result = invoke("run", config, f"init_from={labelled_run}", "corpus.label=null", f"output={tmp_path / 'a'}")
    assert result.exit_code == 2, result.output
    assert "the trained run was trained with labels, this corpus has none" in result.stderr
    (tmp_path / "two.tsv").write_text("name\tcommunity\nVigo\tGalicia\nLeón\tCastilla y León\n", "utf-8")
    result = invoke("run", config, f"init_from={labelled_run}", f"corpus.file={tmp_path / 'two.tsv'}",
                    f"output={tmp_path / 'b'}")
    assert result.exit_code == 2 and "the trained run's labels (Castilla y León, Cataluña, Galicia, País Vasco) " \
        "are not this corpus's (Castilla y León, Galicia)" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- sampling, scoring and classifying by label ---------------------------------------------

def test_sample_by_label_and_blend_with_every_sampler(labelled_run):
    trained = load_run(labelled_run)
    for sampler in ("temperature", "greedy", "beam"):
        chosen = trained.with_sampler(sampler, count=3)
        assert len(chosen.sample(label="País Vasco", seed=0)) == 3
        assert len(chosen.sample(label="Galicia=0.7,Cataluña=0.3", seed=0)) == 3
        assert len(chosen.sample(label={"Galicia": 1, "Cataluña": 1}, blend="embedding", seed=0)) == 3
    assert trained.sample(label="Galicia", seed=5, count=6) == trained.sample(label="Galicia", seed=5, count=6)
    novel = trained.generate(4, novel=True, label="Castilla y León", seed=0)
    assert all(s.novel for s in novel) and all(s.word not in dict(towns()) for s in novel)


def test_sampling_constraints_hold_under_a_label(labelled_run):
    trained = load_run(labelled_run)
    for label in ("Galicia", "Galicia=0.5,País Vasco=0.5"):
        words = trained.sample(label=label, suffix="o", contains=["a"], count=4, seed=0)
        assert len(words) == 4 and all(w.endswith("o") and "a" in w for w in words)


def test_a_mixture_blend_is_the_mixture_of_word_probabilities(labelled_run):
    """The mixture's letter-by-letter Bayes update gives exactly the mixture of word probabilities."""
    trained = load_run(labelled_run)
    words = ["Vigo", "Lleida", "Getxo"]
    per_label = {name: [s.logprob for s in trained.score(words, label=name)] for name in REGIONS}
    mixed = [s.logprob for s in trained.score(words, label="Galicia=0.5,Cataluña=0.5")]
    for i in range(len(words)):
        expected = torch.logsumexp(torch.tensor([per_label["Galicia"][i], per_label["Cataluña"][i]],
                                                dtype=torch.float64) + torch.tensor(0.5).log(), 0)
        assert mixed[i] == pytest.approx(float(expected), abs=1e-4)


def test_sample_cli_label_errors_name_the_labels(invoke, labelled_run):
    result = invoke("sample", labelled_run, "--label", "Galizia", "-n", "2")
    assert result.exit_code == 2
    assert "unknown label 'Galizia'; this run's labels are: Castilla y León, Cataluña, Galicia, País Vasco" \
        in result.stderr
    result = invoke("sample", labelled_run, "--label", "Galicia=lots", "-n", "2")
    assert result.exit_code == 2 and "LABEL=WEIGHT" in result.stderr
    ok = invoke("sample", labelled_run, "--label", "País Vasco", "-n", "3", "--novel", "--seed", "1")
    assert ok.exit_code == 0, ok.output
    assert len(ok.stdout.splitlines()) == 3


def test_score_and_explain_under_a_label(invoke, labelled_run):
    galicia = invoke("score", labelled_run, "--label", "Galicia", "--json", "Sanxenxo")
    basque = invoke("score", labelled_run, "--label", "País Vasco", "--json", "Sanxenxo")
    assert galicia.exit_code == 0 and basque.exit_code == 0
    assert json.loads(galicia.stdout)["logprob"] != json.loads(basque.stdout)["logprob"]
    explained = invoke("explain", labelled_run, "--label", "Cataluña", "Lleida")
    assert explained.exit_code == 0 and "log-probability" in explained.stdout


def test_a_run_without_labels_refuses_a_label(invoke, trained_run):
    result = invoke("sample", trained_run, "--label", "Galicia")
    assert result.exit_code == 2 and "trained without labels" in result.stderr
    result = invoke("classify", trained_run, "Vigo")
    assert result.exit_code == 2 and "cannot classify" in result.stderr


def test_classify_cli_words_stdin_json_top(labelled_run, invoke):
    result = invoke("classify", labelled_run, "Sanxenxo", "Getxo", "--top", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Sanxenxo\t") and len(lines[0].split("  ")) == 2
    from click.testing import CliRunner

    from letras.core.cli import cli

    piped = CliRunner().invoke(cli, ["classify", str(labelled_run), "--json", "--top", "1"], input="Vigo\nLleida\n")
    rows = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["word"] for r in rows] == ["Vigo", "Lleida"] and len(rows[0]["labels"]) == 1
    full = load_run(labelled_run).classify(["Vigo"])[0]
    assert sum(p for _, p in full.labels) == pytest.approx(1.0) and full.label == rows[0]["label"]


def test_classify_uses_bayes_rule(labelled_run):
    import math

    trained = load_run(labelled_run)
    result = dict(trained.classify(["Ourense"])[0].labels)
    scores = {name: trained.score(["Ourense"], label=name)[0].logprob for name in REGIONS}
    total = sum(math.exp(s) * 0.25 for s in scores.values())  # equal shares of the training words
    for name in REGIONS:
        assert result[name] == pytest.approx(math.exp(scores[name]) * 0.25 / total, rel=1e-5)


def test_eval_a_labelled_file_reports_accuracy_and_confusion(invoke, labelled_run, tmp_path):
    (tmp_path / "held.tsv").write_text("town\tregion\nVigo\tGalicia\nLleida\tCataluña\nGetxo\tPaís Vasco\n", "utf-8")
    result = invoke("eval", labelled_run, "--file", tmp_path / "held.tsv", "--word-column", "town",
                    "--label-column", "region", "--samples", "0", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["classification"]["words"] == 3 and 0 <= report["classification"]["accuracy"] <= 1
    assert sum(sum(row.values()) for row in report["classification"]["confusion"].values()) == 3
    assert set(report["loss_per_label"]) == {"Galicia", "Cataluña", "País Vasco"}
    text = invoke("eval", labelled_run, "--file", tmp_path / "held.tsv", "--word-column", "town",
                  "--label-column", "region", "--samples", "0")
    assert "classification:" in text.stdout and "loss per label" in text.stdout
    default = invoke("eval", labelled_run, "--samples", "0", "--json")  # the validation split has its labels
    assert "classification" in json.loads(default.stdout)


def test_eval_a_label_unseen_in_training_is_an_error(invoke, labelled_run, tmp_path):
    (tmp_path / "held.tsv").write_text("word\tlabel\nMurcia\tRegión de Murcia\n", "utf-8")
    result = invoke("eval", labelled_run, "--file", tmp_path / "held.tsv", "--label-column", "label")
    assert result.exit_code == 2
    assert "unknown label 'Región de Murcia'; this run's labels are:" in result.stderr


def test_export_refuses_a_labelled_run(invoke, labelled_run, tmp_path):
    result = invoke("export", labelled_run, "--format", "json", "-o", tmp_path / "m.json")
    assert result.exit_code == 1 and "trained with labels" in result.stderr
    assert not (tmp_path / "m.json").exists()


def test_a_run_saved_before_labels_existed_still_resumes(tmp_path):
    """Its config has no model.label_dim nor corpus.label: they take their defaults."""
    train_tiny(tmp_path / "run", corpus={"name": "municipios"}, trainer={"epochs": 1, "val_fraction": 0.0})
    path = tmp_path / "run" / "checkpoint.pt"
    saved = torch.load(path, weights_only=True)
    del saved["config"]["model"]["label_dim"], saved["config"]["corpus"]["label"]
    torch.save(saved, path)
    config = load_config(str(tmp_path / "run" / "config.yaml"), ["trainer.epochs=2"])
    assert [m["epoch"] for m in train(config, resume=True).history] == [1, 2]


def test_bench_measures_the_price_of_a_label(invoke):
    result = invoke("bench", "--corpus", "ciudades", "--seconds", "0.4", "--hidden", "8", "--labels", "3", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    labelled = report["labelled"]
    assert labelled["labels"] == 3 and len(labelled["ratios_per_turn"]) == labelled["turns"] == 20
    assert labelled["steps_per_turn"] >= 4 and labelled["quartiles"][0] <= labelled["speed_ratio"]
    assert report["ratios"]["labelled_vs_letras"] == labelled["speed_ratio"] > 0
    text = invoke("bench", "--corpus", "ciudades", "--seconds", "0.2", "--hidden", "8", "--labels", "2",
                  "--label-dim", "6", "--label-state")
    assert "(label_dim 6, label_state; median of 20 turns" in text.stdout


def test_a_weighted_run_saved_before_trainer_weighting_resumes_as_it_began(tmp_path):
    """Before trainer.weighting (whose default is now sample) a weighted run weighted the loss:
    resumed, it goes on weighting the loss, to the same weights as an unbroken run."""
    (tmp_path / "w.csv").write_text("word,count\nAbc,50\nXyz,1\nAbd,3\nXya,2\n", "utf-8")
    corpus = {"name": "table", "file": str(tmp_path / "w.csv"), "weight": "count"}
    trainer = {"batch_size": 2, "val_fraction": 0.0, "weighting": "loss"}
    train_tiny(tmp_path / "whole", corpus=corpus, trainer={**trainer, "epochs": 2})
    train_tiny(tmp_path / "old", corpus=corpus, trainer={**trainer, "epochs": 1})
    path = tmp_path / "old" / "checkpoint.pt"
    saved = torch.load(path, weights_only=True)
    del saved["config"]["trainer"]["weighting"], saved["trainer_state"]["weighting"]
    torch.save(saved, path)
    config_file = tmp_path / "old" / "config.yaml"
    lines = config_file.read_text("utf-8").splitlines(keepends=True)
    config_file.write_text("".join(line for line in lines if line.strip() != "weighting: loss"), "utf-8")
    config = load_config(str(config_file), ["trainer.epochs=2"])
    assert config["trainer"].options.weighting == "sample"  # what the config now says, by default
    train(config, resume=True)
    whole = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)["model"]
    resumed = torch.load(path, weights_only=True)["model"]
    assert all(torch.equal(whole[key], resumed[key]) for key in whole)


def test_guidance_leans_each_letter_towards_the_label_by_bayes_rule():
    """Guided by g, a label's next letter has log-probability (1 + g) log P(letter | so far,
    label) - g log P(letter | so far), normalised, where the second is the mixture of the labels
    by their share, each weighted by how well it explains the letters so far; only letters at
    least a tenth as likely as the label's likeliest are raised; a blend is the mixture of its
    labels so guided. Checked against brute force on a toy whose every
    probability is known, at every position of every two-letter prefix."""
    from toy_models import LabelledToyModel

    from letras.core.conditioning import LabelMixture

    table = torch.tensor([[[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.6, 0.2, 0.2]],   # label 0, after 0, 1, 2+ letters
                          [[0.1, 0.3, 0.6], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]],   # label 1
                          [[0.1, 0.45, 0.45], [0.4, 0.4, 0.2], [0.9, 0.05, 0.05]]])  # label 2
    priors, g = torch.tensor([0.5, 0.3, 0.2]), 1.5

    def mixture(next_letter, weights, ids, t):
        """P(letter | letters before t) of the mixture of ``next_letter(label, n)`` by ``weights``."""
        seen = torch.tensor([[next_letter(l, n)[ids[n + 1]] for n in range(t)] for l in range(3)]).prod(dim=1)
        posterior = weights * seen / (weights * seen).sum()
        return sum(posterior[l] * next_letter(l, t) for l in range(3))

    def guided(ids):
        def next_letter(label, n):
            p = table[label, min(n, 2)]
            lean = g * (p.log() - mixture(lambda l, m: table[l, min(m, 2)], priors, ids, n).log())
            lean = torch.where(p >= 0.1 * p.max(), lean, lean.clamp(max=0))  # raise only plausible letters
            return torch.softmax(p.log() + lean, dim=0)
        return next_letter

    for weights in ([0.0, 1.0, 0.0], [0.6, 0.0, 0.4]):
        model = LabelMixture(LabelledToyModel(table), weights, guidance=g, priors=priors.tolist())
        for first in (1, 2):
            for second in (1, 2):
                ids = [0, first, second]
                out, state = model(torch.tensor([ids[:2]]))  # the last letter through the state, as samplers do
                out = torch.cat([out, model(torch.tensor([ids[2:]]), state)[0]], dim=1)
                for t in range(3):
                    expected = mixture(guided(ids), torch.tensor(weights), ids, t).log()
                    assert out[0, t] == pytest.approx(expected, abs=1e-5), (weights, ids, t)
    plain = LabelMixture(LabelledToyModel(table), [0.0, 1.0, 0.0])
    assert plain(torch.tensor([[0, 1, 2]]))[0][0] == pytest.approx(table[1, [0, 1, 2]].log(), abs=1e-6)


def test_guidance_from_the_cli_and_the_api(invoke, labelled_run):
    trained = load_run(labelled_run)
    for blend in ("mixture", "embedding"):
        assert len(trained.sample(label="Galicia=0.7,Cataluña=0.3", blend=blend, guidance=3, count=4, seed=0)) == 4
    assert trained.sample(label="Galicia", guidance=0, count=6, seed=2) != \
        trained.sample(label="Galicia", guidance=4, count=6, seed=2)
    result = invoke("sample", labelled_run, "--label", "Galicia", "--guidance", "-1")
    assert result.exit_code == 2 and "--guidance" in result.stderr
    result = invoke("sample", labelled_run, "--guidance", "3")
    assert result.exit_code == 2 and "--guidance leans words towards a label: give one with --label" in result.stderr
    with pytest.raises(UsageError, match="guidance must be a number of at least 0"):
        trained.sample(label="Galicia", guidance=float("nan"))
    ok = invoke("sample", labelled_run, "--label", "País Vasco", "--guidance", "1.5", "-n", "3", "--seed", "1")
    assert ok.exit_code == 0 and len(ok.stdout.splitlines()) == 3, ok.output


def test_guidance_of_a_letter_no_label_can_write_stays_a_number():
    """A model may give a letter no chance under every label (a plugin's masking model): guided,
    that letter keeps no chance and the others stay a distribution, not NaN."""
    from toy_models import LabelledToyModel

    from letras.core.conditioning import LabelMixture

    table = torch.tensor([[[0.5, 0.5, 0.0]], [[0.2, 0.8, 0.0]]])  # 'b' never, under either label
    out, _ = LabelMixture(LabelledToyModel(table), [1.0, 0.0], guidance=2.0, priors=[0.5, 0.5])(
        torch.tensor([[0, 1, 1]]))
    assert torch.isfinite(out[..., :2]).all() and (out[..., 2] == float("-inf")).all()
    assert out.exp().sum(dim=-1) == pytest.approx(torch.ones(1, 3))
