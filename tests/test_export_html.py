"""The html export in a real browser: Debian's chromium, headless, opening the file from
file:// with no network. The page writes its words (and, asked by #probe=..., its
next-letter probabilities) into the DOM, which --dump-dom prints.

.ci/install-browser installs chromium in CI; where it is missing these tests skip.
"""

import html
import json
import re
import shutil
import subprocess

import pytest

from export_runs import WORDS, assert_probabilities, open_run, plugin, round_weights_to_float16, train_runs
from letras.plugins.export import sampler as reference

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/install-browser "
                                                          "installs Debian's)")


def chromium(*args, tmp_path):
    """Run headless chromium with no network, no profile and no GPU; its stdout."""
    profile = tmp_path / "profile"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               "--disable-dev-shm-usage",  # containers often give /dev/shm 64 MB
               f"--user-data-dir={profile}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def open_page(path, fragment, tmp_path):
    """The words the page shows at ``path#fragment``, and its probe (None if not asked)."""
    dom = chromium("--dump-dom", f"{path.as_uri()}#{fragment}", tmp_path=tmp_path)
    error = re.search(r'<p id="letras-error"[^>]*>(.*?)</p>', dom, re.S).group(1)
    assert error == "", html.unescape(error)
    items = re.findall(r"<li( class=\"known\")?>(.*?)</li>", dom)
    probe = re.search(r'<pre id="letras-probe"[^>]*>(.*?)</pre>', dom, re.S)
    return ([(html.unescape(word), bool(known)) for known, word in items],
            json.loads(html.unescape(probe.group(1))) if probe else None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_runs(tmp_path_factory.mktemp("runs"))


def test_page_draws_the_same_words_on_reload_as_the_reference_sampler(runs, tmp_path):
    trained = open_run(runs["lstm"])
    page = trained.export("html", tmp_path / "page.html")
    settings = "seed=11&count=12&temperature=0.9&top_k=8"
    first, _ = open_page(page, settings, tmp_path)
    again, _ = open_page(page, settings, tmp_path)
    assert first == again and len(first) == 12
    assert all(word and set(word) <= set(trained.tokenizer.chars) for word, _ in first)
    # the page holds float16 weights: the json export with those computes the same words
    model = reference.load(str(trained.export("json", tmp_path / "m.json", dtype="float16")))
    expected = model.sample(12, seed=11, temperature=0.9, top_k=8)
    assert [word for word, _ in first] == expected
    assert [known for _, known in first] == [model.is_known(w) for w in expected]
    other, _ = open_page(page, "seed=12&count=12&temperature=0.9&top_k=8", tmp_path)
    assert other != first


def test_page_marks_corpus_words_and_keeps_the_prefix(runs, tmp_path):
    page = open_run(runs["lstm"]).export("html", tmp_path / "page.html")
    greedy, _ = open_page(page, "seed=1&count=4&top_k=1&prefix=MADRI", tmp_path)
    assert len(set(greedy)) == 1 and greedy[0][0].startswith("MADRI")  # top-k 1: the likeliest letters
    known, _ = open_page(page, "count=2&prefix=MADRID&max_length=6", tmp_path)
    assert known == [("MADRID", True)] * 2
    new, _ = open_page(page, "count=1&prefix=MADRIDZ&max_length=7", tmp_path)
    assert new == [("MADRIDZ", False)]


@pytest.mark.parametrize("name", ["lstm", "rnn-2-layers-one-hot", "lstm-2-layers-stacked", "gru"])
def test_page_probabilities_equal_torchs(runs, tmp_path, name):
    """float32 weights: the page's probabilities are torch's, within 1e-4."""
    with plugin():
        trained = open_run(runs[name])
        page = trained.export("html", tmp_path / "page.html", dtype="float32")
    _, probe = open_page(page, "seed=0&count=2&probe=" + ",".join(WORDS), tmp_path)
    for word in WORDS:
        assert_probabilities(probe[word], trained, word, atol=1e-4)


def test_float16_page_computes_with_the_rounded_weights(runs, tmp_path):
    trained = open_run(runs["lstm"])
    page = trained.export("html", tmp_path / "page.html")
    _, probe = open_page(page, "probe=" + ",".join(WORDS), tmp_path)
    round_weights_to_float16(trained)
    for word in WORDS:
        assert_probabilities(probe[word], trained, word, atol=1e-4)


def test_a_bad_prefix_is_shown_on_the_page(runs, tmp_path):
    page = open_run(runs["lstm"]).export("html", tmp_path / "page.html")
    dom = chromium("--dump-dom", f"{page.as_uri()}#prefix=%C3%91", tmp_path=tmp_path)
    assert "'Ñ' is not in the model's alphabet" in html.unescape(dom)
    assert "<li>" not in dom


def test_screenshot_on_a_phone_sized_window(runs, tmp_path):
    page = open_run(runs["lstm"]).export("html", tmp_path / "page.html")
    shot = tmp_path / "page.png"
    chromium(f"--screenshot={shot}", "--window-size=412,900", f"{page.as_uri()}#seed=3&count=8", tmp_path=tmp_path)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000


def test_default_model_page_is_under_500_kb(tmp_path):
    """The shipped municipalities pipeline's model (one epoch: the size depends only on its
    shape and its corpus) makes a page under 500 KB."""
    from letras.core import load_config, load_run, train

    config = load_config("municipios-lstm", ["trainer.epochs=1", "trainer.device=cpu", f"output={tmp_path / 'run'}"])
    train(config)
    page = load_run(tmp_path / "run").export("html", tmp_path / "page.html")
    assert page.stat().st_size < 500_000
    shown, _ = open_page(page, "seed=5&count=20", tmp_path)
    assert len(shown) == 20
