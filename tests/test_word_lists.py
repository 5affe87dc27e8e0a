"""`letras run LIST`: any word list, a default sized to it, and fine-tuning (init_from)."""


import pytest
import torch
import yaml

from conftest import imports_torch, write_pipeline
from letras.core import UsageError, load_config, load_run, train, train_words
from letras.core.adapt import CorpusStats
from letras.core.testing import registered_plugin, train_tiny
from letras.plugins.corpora import municipios
from letras.plugins.recurrent import RecurrentOptions
from letras.plugins.word_reset import WordResetOptions
from test_resume import assert_resume_is_exact, weights

FAST = ["trainer.epochs=2", "trainer.device=cpu", "trainer.precision=fp32", "sampler.count=4"]


@pytest.fixture
def word_file(tmp_path):
    path = tmp_path / "pueblos.txt"
    path.write_text("\n".join(municipios().words()[:200]) + "\n", encoding="utf-8")
    return path


def stats(words: int, letters: float = 8.0, alphabet: int = 28) -> CorpusStats:
    return CorpusStats(words=words, chars=int(words * (letters + 1)), alphabet=alphabet,
                       mean_length=letters, max_length=20)


# -- letras run LIST -------------------------------------------------------------------------

def test_run_a_word_list_sizes_the_model_and_writes_what_it_chose(invoke, word_file, tmp_path):
    result = invoke("run", word_file, *FAST)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 4
    assert "Training pueblos: corpus file" in result.stderr
    chosen = [line for line in result.stderr.splitlines() if line.startswith("Chosen for this list")]
    assert len(chosen) == 1 and "200 words" in chosen[0] and "model 256 (a small list)" in chosen[0]
    text = (tmp_path / "runs" / "pueblos" / "config.yaml").read_text()
    assert text.startswith("# Chosen for this list (200 words")  # the same line, kept with the run
    config = yaml.safe_load(text)
    assert "auto" not in yaml.safe_dump(config)
    assert config["model"]["num_layers"] == 1 and config["trainer"]["val_fraction"] == 0.1
    assert config["corpus"]["path"] == str(word_file)
    again = invoke("run", tmp_path / "runs" / "pueblos" / "config.yaml", "output=again")
    assert again.exit_code == 0, again.output
    assert "Chosen for this list" not in again.stderr  # nothing left to choose
    assert yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())["model"] == config["model"]


def test_stdin_list_is_kept_in_the_run_folder(invoke, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from click.testing import CliRunner

    from letras.core.cli import cli

    words = "\n".join(municipios().words()[:120]) + "\n"
    result = CliRunner().invoke(cli, ["run", "-", *FAST], input=words)
    assert result.exit_code == 0, result.output
    kept = tmp_path / "runs" / "stdin" / "words.txt"
    assert kept.read_text() == words
    assert yaml.safe_load((tmp_path / "runs" / "stdin" / "config.yaml").read_text())["corpus"]["path"] == \
        str(kept.resolve())
    again = CliRunner().invoke(cli, ["run", "-", *FAST], input="otra\n")
    assert again.exit_code == 2 and "already holds a run" in again.stderr
    assert kept.read_text() == words  # nothing saved is lost
    empty = CliRunner().invoke(cli, ["run", "-", *FAST, "output=empty"], input="\n \n")
    assert empty.exit_code == 2 and "the word list is empty" in empty.stderr


def test_which_argument_is_a_config_and_which_a_list(invoke, tmp_path, word_file):
    (tmp_path / "bad.yaml").write_text("Madrid\nSevilla\n")
    result = invoke("run", tmp_path / "bad.yaml")
    assert result.exit_code == 2 and "a config must be a mapping of sections, got str" in result.stderr
    missing = invoke("run", "nothere.txt")
    assert missing.exit_code == 2 and "nothere.txt: no such file, nor a shipped config" in missing.stderr
    assert invoke("validate", "names-lstm", f"corpus.path={word_file}").exit_code == 0  # a bare name: shipped


def test_corpus_path_alone_implies_the_corpus_that_reads_a_file(invoke, word_file):
    result = invoke("validate", f"corpus.path={word_file}", "--show")
    assert result.exit_code == 0, result.output
    assert "name: file" in result.stdout and "valid (200 words" in result.stderr


def test_an_override_that_fits_no_key_names_the_component_meant(invoke):
    result = invoke("validate", "corpus.pathh=x.txt")
    assert result.exit_code == 2
    assert ("command line 'corpus.pathh=x.txt': unknown key 'pathh' (accepted keys: label), "
            "for corpus 'municipios'") in result.stderr
    typo = invoke("validate", "names-lstm", "corpus.pathh=x.txt")
    assert typo.exit_code == 2 and "did you mean 'path'?" in typo.stderr and "for corpus 'file'" in typo.stderr


def test_validate_a_word_list_shows_the_choices_without_torch(tmp_path, word_file):
    assert not imports_torch("validate", word_file, "--show", cwd=tmp_path)


def test_train_words_from_python(tmp_path, word_file):
    result = train_words(word_file, FAST, output=tmp_path / "api")
    assert (tmp_path / "api" / "checkpoint.pt").is_file() and len(result.samples) == 4
    listed = train_words(["Uno", "Dos", "Tres", "Cuatro", "Cinco"] * 4, FAST, output=tmp_path / "inline")
    assert (tmp_path / "inline" / "words.txt").read_text().splitlines()[:2] == ["Uno", "Dos"]
    assert listed.run_dir == tmp_path / "inline"


# -- the choices -------------------------------------------------------------------------------

def test_the_model_grows_with_the_list_and_regularises_a_short_one():
    auto = {k: "auto" for k in ("hidden_size", "num_layers", "dropout", "embedding_dim")}
    small, large = RecurrentOptions(**auto), RecurrentOptions(**auto)
    small.adapt(stats(1_300))
    note = large.adapt(stats(40_000, alphabet=60))
    assert (small.num_layers, large.num_layers) == (1, 2)
    assert small.dropout > large.dropout
    assert large.embedding_dim > small.embedding_dim  # a larger alphabet
    assert "2 x 128" in note and "60 symbols" in note
    fixed = RecurrentOptions(hidden_size=64)
    assert fixed.adapt(stats(1_300)) is None and fixed.hidden_size == 64  # nothing auto: nothing changes


def test_the_trainer_plans_more_epochs_and_decay_for_a_short_list():
    def planned(words: int) -> WordResetOptions:
        options = WordResetOptions(epochs="auto", weight_decay="auto", val_fraction="auto", patience="auto",
                                   ema="auto", max_seconds=50, schedule="cosine", keep="best")
        assert "up to 50 s" in options.adapt(stats(words))
        return options

    small, large = planned(1_300), planned(90_000)
    assert small.epochs > large.epochs and small.weight_decay > large.weight_decay
    assert small.val_fraction == 0.1 and large.val_fraction == 0.02
    assert small.ema == 0.99 and large.ema is None  # a small list's weights averaged
    assert all(isinstance(getattr(o, f), (int, float)) for o in (small, large)
               for f in ("epochs", "weight_decay", "val_fraction", "patience"))


def test_auto_outside_a_run_is_a_clear_error():
    from letras.plugins.recurrent.generator import lstm_generator
    from letras.plugins.word_reset.trainer import WordResetTrainer

    with pytest.raises(UsageError, match="'auto', which only a run on a corpus resolves"):
        lstm_generator(10, hidden_size="auto")
    with pytest.raises(UsageError, match="trainer option epochs is 'auto'"):
        WordResetTrainer(epochs="auto")


# -- keep: best ---------------------------------------------------------------------------------

OVERFIT = """
name: overfit
seed: 1
corpus:    {name: file, path: words.txt}
model:     {name: lstm, hidden_size: 64, embedding_dim: 8}
trainer:   {name: word-reset, epochs: 30, batch_size: 8, lr: 0.02, val_fraction: 0.3, device: cpu, keep: best}
sampler:   {name: temperature, count: 3}
"""


def test_keep_best_ends_with_the_best_epochs_weights(tmp_path):
    config = write_pipeline(tmp_path, OVERFIT, "overfit", words=60)
    result = train(load_config(str(config), [f"output={tmp_path / 'run'}"]))
    vals = [row["val_loss"] for row in result.history]
    best_epoch = vals.index(min(vals))
    assert best_epoch < len(vals) - 1  # it overfits: the last epoch is not the best
    last, best = weights(tmp_path / "run"), torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    for key, tensor in best["model"].items():
        assert torch.equal(tensor, last["model"][key]), key
    evaluated = load_run(tmp_path / "run").evaluate()["loss"]
    assert evaluated == pytest.approx(min(vals), abs=1e-5)


def test_keep_best_resumes_exactly(tmp_path):
    config_file = write_pipeline(tmp_path, OVERFIT.replace("epochs: 30", "epochs: 8"), "overfit", words=60)
    assert_resume_is_exact(config_file, tmp_path, 5)


# -- init_from ---------------------------------------------------------------------------------

def test_fine_tuning_keeps_known_letters_rows_and_adds_new_ones(tmp_path):
    train_tiny(tmp_path / "origin")  # the notes' 15 cities, upper case: no Ñ, no Ü
    origin = load_run(tmp_path / "origin")
    (tmp_path / "new.txt").write_text("ESPAÑA\nMADRID\nPEÑÍSCOLA\nCIGÜEÑA\nGIJON\n" * 3, encoding="utf-8")
    config = load_config(str(tmp_path / "new.txt"), [f"init_from={tmp_path / 'origin'}", "trainer.epochs=1",
                                                     "trainer.val_fraction=0", "trainer.lr=1e-9",
                                                     "trainer.warmup_steps=0", "trainer.device=cpu",
                                                     "trainer.precision=fp32", f"output={tmp_path / 'tuned'}"])
    train(config)
    tuned = load_run(tmp_path / "tuned")
    old, new = origin.tokenizer, tuned.tokenizer
    assert set(new.chars) == set(old.chars) | set("ÑÍÜ")
    assert (tuned.config["model"].options.hidden_size, tuned.config["model"].options.embedding_dim) == (16, 8)
    for letter in "MADRIDGJ":
        i, j = new.encode(letter)[0], old.encode(letter)[0]
        assert torch.allclose(tuned.model.embedding.weight[i], origin.model.embedding.weight[j], atol=1e-5)
        assert torch.allclose(tuned.model.head.weight[i], origin.model.head.weight[j], atol=1e-5)
    saved = yaml.safe_load((tmp_path / "tuned" / "config.yaml").read_text())
    assert saved["init_from"] == str(tmp_path / "origin")
    assert "Starts from the weights of" in (tmp_path / "tuned" / "config.yaml").read_text()
    assert "3 new letters (Í Ñ Ü)" in (tmp_path / "tuned" / "config.yaml").read_text()


def test_fine_tuning_names_the_options_that_do_not_fit(invoke, tmp_path):
    train_tiny(tmp_path / "origin")
    (tmp_path / "new.txt").write_text("ESPAÑA\nMADRID\n" * 5, encoding="utf-8")
    result = invoke("run", "new.txt", "--init-from", "origin", "model.hidden_size=24", *FAST)
    assert result.exit_code == 2
    assert "init_from origin: the model does not fit the trained run's weights: model.hidden_size (16 there, 24 here) (" \
        in result.stderr
    case = invoke("run", "new.txt", "init_from=origin", "tokenizer.case=lower", *FAST)
    assert case.exit_code == 2 and "the tokenizer differs from the trained run's: case ('keep' there, " \
        "'lower' here)" in case.stderr
    nothing = invoke("run", "new.txt", "init_from=nowhere", *FAST)
    assert nothing.exit_code == 2 and "nowhere: no such run folder" in nothing.stderr
    assert not (tmp_path / "runs" / "new").exists()


def test_resume_of_a_fine_tuned_run_continues_it(invoke, tmp_path):
    train_tiny(tmp_path / "origin")
    (tmp_path / "new.txt").write_text("ESPAÑA\nMADRID\nSEVILLA\nCADIZ\n" * 5, encoding="utf-8")
    assert invoke("run", "new.txt", "init_from=origin", *FAST).exit_code == 0
    result = invoke("resume", "runs/new", "trainer.epochs=3")
    assert result.exit_code == 0, result.output
    assert [m["epoch"] for m in load_run(tmp_path / "runs" / "new").checkpoint["history"]] == [1, 2, 3]
    assert (tmp_path / "runs" / "new" / "config.yaml").read_text().startswith("# Chosen for this list")


def test_a_word_list_run_resumes_with_its_choices_made_again(invoke, word_file, tmp_path):
    assert invoke("run", word_file, *FAST).exit_code == 0
    result = invoke("run", word_file, *FAST[1:], "trainer.epochs=3", "--resume")
    assert result.exit_code == 0, result.output
    assert [row["epoch"] for row in load_run(tmp_path / "runs" / "pueblos").checkpoint["history"]] == [1, 2, 3]


def test_a_key_two_corpora_accept_is_not_guessed(invoke):
    import types
    from dataclasses import dataclass

    from letras.core import hookimpl, option

    @dataclass
    class Other:
        path: str = option(help="another file", path=True)

    plugin = types.ModuleType("other_corpus")
    plugin.register_corpora = hookimpl(lambda register: register("other", lambda path: None, options=Other))
    with registered_plugin(plugin):
        result = invoke("validate", "corpus.path=x.txt")
    assert result.exit_code == 2
    assert "unknown key 'path' (accepted keys: label), for corpus 'municipios'; corpora that accept it: " \
           "file, other" in result.stderr
