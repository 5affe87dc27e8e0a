"""Novel sampling, beam search, scoring, explanations, evaluation figures and plots."""

import json
import math

import pytest

from letras.core import LetrasError, load_run
from letras.core.scoring import sample_statistics
from letras.plugins.corpora import CIUDADES


def test_novel_unique_words_are_exactly_n_new_distinct_words(invoke, trained_run):
    result = invoke("sample", trained_run, "--novel", "--unique", "-n", "25", "--temperature", "1.5", "--seed", "2")
    assert result.exit_code == 0, result.output
    words = result.stdout.splitlines()
    assert len(words) == 25 and len(set(words)) == 25
    assert not set(words) & set(CIUDADES)


def test_novelty_is_judged_after_normalisation(trained_run):
    trained = load_run(trained_run)  # its tokenizer folds to upper case
    samples = trained.generate(30, novel=True, seed=1, temperature=1.5)
    assert all(s.novel for s in samples)
    assert not {s.word.upper() for s in samples} & set(CIUDADES)


@pytest.mark.precision
def test_sampling_in_bf16_where_the_device_has_it(invoke, trained_run):
    result = invoke("sample", trained_run, "-n", "200", "--temperature", "0.5", "--seed", "0", "--precision", "auto")
    assert result.exit_code == 0, result.output
    words = result.stdout.splitlines()
    assert len(words) == 200 and sum(w in CIUDADES for w in words) > 150  # the model's words all the same
    novel = invoke("sample", trained_run, "--novel", "-n", "5", "--temperature", "1.5", "--precision", "auto")
    assert novel.exit_code == 0 and len(novel.stdout.splitlines()) == 5
    fp16 = invoke("sample", trained_run, "--precision", "fp16")
    assert fp16.exit_code == 2 and "precision fp16 needs a CUDA device, not cpu" in fp16.stderr
    assert "use --precision auto" in fp16.stderr


def test_greedy_novel_unique_words_come_one_round_at_a_time(invoke, trained_run):
    """Greedy gives one word per round; each round excludes the words given before it."""
    result = invoke("sample", trained_run, "--sampler", "greedy", "--novel", "--unique", "-n", "3")
    assert result.exit_code == 0, result.output
    words = result.stdout.splitlines()
    assert len(set(words)) == 3 and not set(words) & set(CIUDADES)


def test_impossible_request_is_a_clear_error(invoke, trained_run):
    result = invoke("sample", trained_run, "--novel", "--unique", "-n", "3", "--max-draws", "2",
                    "--temperature", "0.1")
    assert result.exit_code == 1
    assert "the model gave only" in result.stderr and "unique words of the 3 asked for" in result.stderr


def test_min_length_and_jsonl(invoke, trained_run):
    result = invoke("sample", trained_run, "--min-length", "7", "-n", "10", "--format", "jsonl", "--seed", "0")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 10 and all(len(r["word"]) >= 7 for r in rows)
    assert all(r["logprob"] < 0 and isinstance(r["novel"], bool) for r in rows)
    scored = load_run(trained_run).score([rows[0]["word"]])[0]
    assert scored.logprob == pytest.approx(rows[0]["logprob"])


def test_top_p_keeps_only_the_nucleus(trained_run):
    trained = load_run(trained_run)
    tiny = trained.sample(count=50, seed=0, top_p=1e-6, prefix="B")  # nucleus of one letter: greedy
    assert len(set(tiny)) == 1


def test_beam_width_one_is_greedy(invoke, trained_run):
    for prefix in ("", "M", "VA", "G"):
        args = ["--prefix", prefix] if prefix else []
        greedy = invoke("sample", trained_run, "--sampler", "greedy", "-n", "1", *args).stdout
        beam = invoke("sample", trained_run, "--sampler", "beam", "-o", "width=1", "-n", "1", *args).stdout
        assert beam == greedy, prefix


def test_sampler_options_from_the_command_line(invoke, trained_run):
    wide = invoke("sample", trained_run, "--sampler", "beam", "-n", "3", "-o", "width=8")
    assert wide.exit_code == 0 and len(wide.stdout.splitlines()) == 3
    bad = invoke("sample", trained_run, "--sampler", "beam", "-n", "3", "-o", "width=2")
    assert bad.exit_code == 2 and "option -o width: must be at least count (3), got 2" in bad.stderr
    long = invoke("sample", trained_run, "--prefix", "madrid", "--max-length", "4")
    assert long.exit_code == 2 and "option --prefix: 'madrid' has 6 letters, more than max_length (4)" in long.stderr
    typo = invoke("sample", trained_run, "-o", "widht=2")
    assert typo.exit_code == 2 and "unknown key 'widht'" in typo.stderr


def test_beam_gives_the_most_probable_words_in_order(trained_run):
    trained = load_run(trained_run)
    words = trained.with_sampler("beam", count=5, width=20).sample()
    assert len(words) == 5 and len(set(words)) == 5
    scores = [s.logprob for s in trained.score(words)]
    assert scores == sorted(scores, reverse=True)
    # nothing sampled is more probable than the fifth beam word
    sampled = trained.score(sorted(set(trained.sample(count=300, seed=0))))
    assert all(s.logprob <= scores[0] + 1e-9 for s in sampled)


def test_score_equals_the_sum_of_what_explain_prints(invoke, trained_run):
    scored = invoke("score", trained_run, "MADRID", "--json")
    row = json.loads(scored.stdout)
    explained = load_run(trained_run).explain("MADRID")
    assert [s.read for s in explained] == list(".MADRID") and [s.next for s in explained] == list("MADRID.")
    assert sum(math.log(s.prob) for s in explained) == pytest.approx(row["logprob"], abs=1e-6)
    assert row["chars"] == 7 and row["logprob_per_char"] == pytest.approx(row["logprob"] / 7)
    text = invoke("explain", trained_run, "MADRID", "-k", "3").stdout
    assert f"log-probability {row['logprob']:.4f} nats" in text
    assert "\x1b[" not in text  # plain text when not on a terminal


def test_score_reads_stdin_and_sorts(invoke, trained_run):
    from click.testing import CliRunner

    from letras.core.cli import cli

    result = CliRunner().invoke(cli, ["score", str(trained_run), "--sort"], input="ZOZOZO\nMADRID\n\n")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and [line.split()[-1] for line in lines] == ["MADRID", "ZOZOZO"]


def test_a_word_with_unknown_letters_scores_minus_infinity_and_the_rest_are_scored(invoke, trained_run):
    result = invoke("score", trained_run, "MAÑANA", "MADRID", "QWXÑ", "--sort")
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()][1:] == [["-inf", "-inf", "MAÑANA"],
                                                                          ["-inf", "-inf", "QWXÑ"]]
    assert result.stdout.splitlines()[0].split()[-1] == "MADRID"
    assert result.stderr.strip() == ("Warning: 2 of 3 words hold letters the model never saw, so their "
                                     "log-probability is -inf: 'MAÑANA' (Ñ), 'QWXÑ' (Q, W, X, Ñ)")
    rows = [json.loads(line) for line in invoke("score", trained_run, "MAÑANA", "MADRID", "--json").stdout.splitlines()]
    assert rows[0] == {"word": "MAÑANA", "logprob": None, "chars": 7, "logprob_per_char": None, "unknown": ["Ñ"]}
    assert rows[1]["word"] == "MADRID" and rows[1]["logprob"] < 0 and "unknown" not in rows[1]
    scored = load_run(trained_run).score(["MAÑANA"])[0]
    assert scored.logprob == float("-inf") and scored.unknown == ["Ñ"]


def test_explain_stops_at_the_unknown_letter_and_says_where_it_stands(invoke, trained_run):
    steps = load_run(trained_run).explain("MAÑANA")
    assert [s.read for s in steps] == [".", "M", "A"] and [s.next for s in steps] == ["M", "A", "Ñ"]
    assert steps[-1].unknown and steps[-1].prob == 0.0 and len(steps[-1].top) == 5
    assert not any(s.unknown for s in steps[:-1]) and all(s.prob > 0 for s in steps[:-1])
    result = invoke("explain", trained_run, "MAÑANA")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == ("log-probability -inf: letter 3 of 'MAÑANA', 'Ñ' (U+00D1), is not in "
                                              "the model's alphabet, so it reads no further")


def test_eval_leaves_out_the_words_it_cannot_score_and_counts_them(invoke, trained_run, tmp_path):
    (tmp_path / "mixed.txt").write_text("MADRID\nMAÑANA\nBILBAO\nWÜRZBURG\n")
    (tmp_path / "known.txt").write_text("MADRID\nBILBAO\n")
    report = json.loads(invoke("eval", trained_run, "--file", "mixed.txt", "--samples", "0", "--json").stdout)
    known = json.loads(invoke("eval", trained_run, "--file", "known.txt", "--samples", "0", "--json").stdout)
    assert report["loss"] == known["loss"] and report["words"] == 2 and report["chars"] == known["chars"]
    assert report["unscored"] == {"words": 2, "chars": 16, "reason": "letters the model never saw",
                                  "letters": ["Ñ", "W", "Ü"]}
    text = invoke("eval", trained_run, "--file", "mixed.txt", "--samples", "0").stdout
    assert "not scored: 2 words (16 characters) with letters the model never saw: Ñ, W, Ü" in text
    (tmp_path / "foreign.txt").write_text("ÑU\nWÜ\n")
    none = invoke("eval", trained_run, "--file", "foreign.txt")
    assert none.exit_code == 2 and "Traceback" not in none.output
    assert "foreign.txt: none of its 2 words can be scored: they hold letters the model never saw (Ñ, W, Ü)" in none.stderr


def test_eval_reports_sample_figures(invoke, trained_run, tmp_path):
    (tmp_path / "c.txt").write_text("\n".join(CIUDADES))
    report = json.loads(invoke("eval", trained_run, "--file", "c.txt", "--samples", "200", "--json").stdout)
    stats = report["samples"]
    assert stats["count"] == 200 and 0 <= stats["novel"] <= 1 and 0 < stats["unique"] <= 1
    assert stats["length_distance"] >= 0
    text = invoke("eval", trained_run, "--file", "c.txt", "--samples", "100").stdout
    assert "novel" in text and "unique" in text and "length distance" in text


def test_sample_statistics_by_hand():
    stats = sample_statistics(["ab", "ab", "abc", "x"], ["ab", "abcd"])
    assert stats["novel"] == 0.5 and stats["unique"] == 0.75
    # lengths 2,2,3,1 against 2,4: CDF gaps at 1: .25, 2: .25, 3: .5 -> 1.0 letter
    assert stats["length_distance"] == pytest.approx(1.0)


def test_plot_writes_a_png(invoke, trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    result = invoke("plot", trained_run, "-o", "loss.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_get_it(invoke, trained_run, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    result = invoke("plot", trained_run)
    assert result.exit_code == 1 and "pip install 'letras[plot]'" in result.stderr


def test_python_api_matches_the_cli(invoke, trained_run, tmp_path):
    trained = load_run(trained_run)
    cli_words = invoke("sample", trained_run, "-n", "5", "--seed", "9").stdout.splitlines()
    assert trained.sample(count=5, seed=9) == cli_words
    (tmp_path / "c.txt").write_text("\n".join(CIUDADES))
    cli_eval = json.loads(invoke("eval", trained_run, "--file", "c.txt", "--samples", "0", "--json").stdout)
    assert trained.evaluate(list(CIUDADES), source="c.txt")["loss"] == cli_eval["loss"]


def test_generate_bound_is_respected(trained_run):
    with pytest.raises(LetrasError, match="in 50 draws"):
        load_run(trained_run).generate(40, unique=True, novel=True, max_draws=50, temperature=0.3)
