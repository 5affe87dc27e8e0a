import json
import re

import pytest
from conftest import cpu_has_bf16, run_letras

FIGURES = {"notes", "plain", "letras", "ratios", "sampling", "peak_memory_mib"}


def test_bench_reports_every_figure(tmp_path):
    result = run_letras("bench", "--corpus", "ciudades", "--seconds", "1", "--hidden", "16",
                        "--batch-size", "8", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert FIGURES <= set(report)
    for loop in ("notes", "plain", "letras"):
        assert report[loop]["chars_per_s"] > 0 and 0 <= report[loop]["padding"] < 1
    assert report["ratios"]["letras_vs_notes"] == report["letras"]["chars_per_s"] / report["notes"]["chars_per_s"]
    assert report["ratios"]["letras_vs_plain"] > 0
    assert report["sampling"]["batch"] == 1000 and report["sampling"]["words_per_s"] > 0
    assert report["sampling"]["words_per_call"] > 1000 and report["sampling"]["one_batch_per_call_words_per_s"] > 0
    assert report["sampling"]["chars_per_s"] >= 2 * report["sampling"]["words_per_s"]  # a letter and the end, at least
    assert report["sampling"]["corpus_chars_per_word"] == pytest.approx(7.8)  # the 15 cities: 102 letters, 15 ends
    assert report["peak_memory_mib"] > 0 and report["device"] == "cpu" and report["precision"] == "fp32"


@pytest.mark.precision
def test_bench_table_on_a_word_file(tmp_path):
    (tmp_path / "w.txt").write_text("ana\nbea\ncarla\ndiana\nelena\n")
    result = run_letras("bench", "--corpus", "w.txt", "--seconds", "0.5", "--hidden", "8", "--precision", "auto",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "letras / notes' loop" in result.stdout and "words/s" in result.stdout
    # words/s moves with the words' length, shown beside the corpus's: 21 letters and 5 ends in 5 words
    assert re.search(r"chars/s, \d+\.\d a word with its end; corpus 5\.2\)", result.stdout)
    expected = "bf16" if cpu_has_bf16() else "fp32"
    assert f"device cpu, {expected}," in result.stdout.splitlines()[0]


def test_eval_equals_the_trainers_validation_loss(invoke, tmp_path):
    result = invoke("run", "ciudades-lstm", "trainer.epochs=5", "trainer.val_fraction=0.2", "output=r")
    assert result.exit_code == 0, result.output
    last = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    report = json.loads(invoke("eval", "r", "--json").stdout)
    assert report["loss"] == last["val_loss"]
    assert report["words"] == 3 and report["source"] == "validation split"


def test_eval_on_a_file_is_weighted_by_characters(invoke, tmp_path):
    assert invoke("run", "ciudades-lstm", "trainer.epochs=5", "output=r").exit_code == 0
    (tmp_path / "a.txt").write_text("MADRID\n")
    (tmp_path / "b.txt").write_text("VIGO\n")
    (tmp_path / "ab.txt").write_text("MADRID\nVIGO\n")
    reports = {n: json.loads(invoke("eval", "r", "--file", f"{n}.txt", "--json").stdout) for n in ("a", "b", "ab")}
    a, b, ab = reports["a"], reports["b"], reports["ab"]
    assert (a["chars"], b["chars"], ab["chars"]) == (7, 5, 12)
    assert abs(ab["loss"] - (a["loss"] * 7 + b["loss"] * 5) / 12) < 1e-6
    text = invoke("eval", "r", "--file", "ab.txt").stdout
    assert "nats/char" in text and "bits/char" in text and "perplexity" in text


def test_default_run_finishes_and_invents_new_names(tmp_path):
    """The README's first command: `letras run` on its built-in default."""
    from letras.plugins.corpora import municipios

    result = run_letras("run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = result.stdout.splitlines()
    assert len(names) == 20
    known = set(municipios().words())
    assert sum(n not in known for n in names) >= 10


def test_bench_constraints_compares_the_cases_given(invoke, trained_run):
    from letras.plugins.bench.constraints import parse_case

    assert parse_case("--suffix o --contains ll --contains r --min-length 4 --pattern '(SAN|SANTA) .*'") == {
        "suffix": "o", "contains": ["ll", "r"], "min_length": 4, "pattern": "(SAN|SANTA) .*"}
    result = invoke("bench-constraints", trained_run, "--count", "20", "--repeats", "1", "--exclude-words", "20",
                    "--compare", "1,2", "--draws", "30", "--case", "--suffix A --min-length 5",
                    "--proposal", "closing", "--proposal", "lookahead", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [d["constraint"] for d in report["distribution"]] == ["--suffix A --min-length 5"]
    assert set(report["distribution"][0]["rows"]) == {"exact", "1 particle, closing", "2 particles, closing",
                                                       "1 particle, lookahead", "2 particles, lookahead"}
    assert "suffix ez, contains rr, min-length 6, 1 particle, lookahead" in report["speed"]
    for case in ("--suffix", "--prefix VA", "--min-length many", "--suffix 'o", ""):
        bad = invoke("bench-constraints", trained_run, "--case", case)
        assert bad.exit_code == 2 and f"--case {case!r}: " in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and not bad.stdout
