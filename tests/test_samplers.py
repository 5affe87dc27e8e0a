import pytest
import torch

from letras.core import UsageError, components, load_run
from letras.plugins.corpora import CIUDADES
from letras.plugins.samplers.sampling import GreedySampler
from conftest import needs_bf16_cpu
from toy_models import BatchFirstModel, CoinModel, CountingModel


def test_same_seed_same_words(trained_run):
    trained = load_run(trained_run)
    first = trained.sample(seed=3, count=50)
    assert first == trained.sample(seed=3, count=50)
    assert first != trained.sample(seed=4, count=50)
    assert len(first) == 50 and all(first)  # no empty words


def test_greedy_from_m_gives_one_of_the_notes_cities(trained_run):
    trained = load_run(trained_run)
    greedy = trained.with_sampler("greedy", prefix="M", count=3)
    words = greedy.sample(seed=0)
    assert len(set(words)) == 1 and words[0] in CIUDADES and words[0].startswith("M")


def test_prefix_max_length_and_top_k(trained_run):
    trained = load_run(trained_run)
    words = trained.sample(seed=0, count=30, prefix="va")  # the model's case policy is upper
    assert all(w.startswith("VA") for w in words)
    assert all(len(w) <= 4 for w in trained.sample(seed=0, count=30, max_length=4))
    assert trained.sample(count=3, prefix="mad", max_length=3) == ["MAD"] * 3  # no room for a letter more
    for sampler in ("temperature", "beam"):
        with pytest.raises(UsageError, match=r"sampler option prefix: 'madr' has 4 letters, more than max_length \(3\)"):
            trained.with_sampler(sampler, count=3, prefix="madr", max_length=3).sample()


def test_a_prefix_longer_than_max_length_is_named_however_the_sampler_is_called(trained_run):
    from letras.plugins.samplers.sampling import draw_words

    trained = load_run(trained_run)
    with pytest.raises(UsageError, match=r"prefix 'madr': the prefix has 4 letters, more than max_length \(3\)"):
        draw_words(trained.model, trained.tokenizer, GreedySampler().cdf, count=3, max_length=3, prefix="madr")
    top1 = trained.sample(seed=1, count=5, top_k=1, prefix="B")
    assert len(set(top1)) == 1  # top-1 sampling is greedy


def test_prefix_with_unknown_letters_is_named(trained_run):
    with pytest.raises(UsageError, match=r"prefix 'Ñu': character.*'Ñ' \(U\+00D1\)"):
        load_run(trained_run).sample(prefix="Ñu")


def test_bad_sampler_options_name_the_option(trained_run):
    # the Python API names the option; `letras sample` names its flag (tests/test_errors.py)
    with pytest.raises(UsageError, match="sampler option temperature: must be greater than 0.0"):
        load_run(trained_run).sample(temperature=0.0)


def test_the_trained_model_learned_the_cities(trained_run):
    trained = load_run(trained_run)
    words = trained.sample(seed=0, count=200, temperature=0.5)
    assert sum(w in CIUDADES for w in words) > 150


@pytest.fixture
def no_tree(monkeypatch):
    """Sampling without the prefix tree: every word draws all its letters in the batch."""
    from letras.plugins.samplers import prefix_tree

    monkeypatch.setattr(prefix_tree, "MIN_VISITS", float("inf"))


def test_the_batch_shrinks_with_the_unfinished_words_on_a_ladder_of_sizes(no_tree):
    from letras.plugins.samplers.sampling import batch_size_for, draw_words

    tokenizer = components("tokenizer").get("chars").build()
    tokenizer.fit(["a"])
    model = CoinModel()
    generator = torch.Generator().manual_seed(0)
    coin = lambda logits: logits.softmax(-1).cumsum(-1)
    words = draw_words(model, tokenizer, coin, generator=generator, count=1000, max_length=40)
    assert len(words) == 1000 and set("".join(words)) == {"a"}
    batches = model.batches[1:]  # after the first call, which reads the prefix once (the tree is the root)
    letters = sum(len(w) for w in words)
    assert letters <= sum(batches) <= 1.25 * letters  # every unfinished word, at most 1/4 more
    assert batches == sorted(batches, reverse=True) and batches[0] == 1000
    assert all(batch_size_for(b) == b for b in batches[1:])  # few sizes: each builds a kernel
    assert len(set(batches)) < 25
    assert [batch_size_for(n) for n in (1, 8, 9, 17, 100, 1000)] == [1, 8, 10, 20, 112, 1024]


def test_many_words_stream_through_a_full_batch(no_tree):
    """Continuous batching: a finished word's row goes to the next word, so every call but
    the last few works on the whole batch."""
    from letras.plugins.samplers.sampling import draw_words

    tokenizer = components("tokenizer").get("chars").build()
    tokenizer.fit(["a"])
    model = CoinModel()
    generator = torch.Generator().manual_seed(0)
    coin = lambda logits: logits.softmax(-1).cumsum(-1)
    words = draw_words(model, tokenizer, coin, generator=generator, count=5000, max_length=12, batch_size=500)
    assert len(words) == 5000 and set("".join(words)) == {"a"}
    assert max(len(w) for w in words) == 12  # the longest are cut at max_length
    lengths = [len(w) for w in words]
    assert 1.9 < sum(lengths) / len(lengths) < 2.1  # 'a', then the end with probability 1/2
    batches = model.batches[1:]
    assert max(batches) == 500
    # a word's first letter comes from the prefix's logits; each other letter and the end (if
    # the word was not cut) takes a row of a call
    rows = sum(n - (n == 12) for n in lengths)
    full = batches.index(next(b for b in batches if b < 500))
    assert rows <= sum(batches) < 1.05 * rows  # next to no row computed in vain
    assert sum(batches[:full]) > 0.9 * rows  # nearly all at the full batch: the rest is the last 500 words


def test_a_long_list_is_drawn_a_part_at_a_time(monkeypatch):
    from letras.plugins.samplers import sampling

    tokenizer = components("tokenizer").get("chars").build()
    tokenizer.fit(["a"])
    monkeypatch.setattr(sampling, "LETTERS_PER_CALL", 12 * 300)  # 300 words of max_length 12 a part
    model, prefixes = CoinModel(), []
    model.register_forward_pre_hook(lambda module, args: prefixes.append(len(args) == 1))
    generator = torch.Generator().manual_seed(0)
    coin = lambda logits: logits.softmax(-1).cumsum(-1)
    words = sampling.draw_words(model, tokenizer, coin, generator=generator, count=1000, max_length=12, batch_size=100)
    assert len(words) == 1000 and set("".join(words)) == {"a"}
    assert sum(prefixes) == 4  # a part reads the prefix (no state yet): 300, 300, 300 and 100 words


@pytest.mark.parametrize("prefix", ["", "a"])
def test_a_word_that_takes_a_finished_words_row_starts_from_the_prefix(prefix):
    from letras.plugins.samplers.sampling import draw_words

    tokenizer = components("tokenizer").get("chars").build()
    tokenizer.fit(["a"])
    words = draw_words(CountingModel(), tokenizer, GreedySampler().cdf, count=100, max_length=10,
                       prefix=prefix, batch_size=7)
    assert words == ["aaa"] * 100


def test_a_state_laid_out_otherwise_reads_the_prefix_per_word_and_keeps_the_batch():
    from letras.plugins.samplers.sampling import draw_words

    tokenizer = components("tokenizer").get("chars").build()
    tokenizer.fit(["a"])
    model, batches = BatchFirstModel(), []
    model.register_forward_pre_hook(lambda module, args: batches.append(len(args[0])))
    words = draw_words(model, tokenizer, GreedySampler().cdf, count=50, max_length=10,
                       prefix="a", batch_size=10)
    assert words == ["aaa"] * 50
    assert batches[1:] == [50, 50, 50]  # the prefix for each word, then every letter, all together


def test_streaming_and_one_call_draw_alike(trained_run, no_tree):
    trained = load_run(trained_run)
    stream = trained.sample(seed=0, count=3000, batch_size=100, temperature=0.8)
    at_once = trained.sample(seed=0, count=3000, batch_size=3000, temperature=0.8)
    assert stream != at_once and len(stream) == 3000
    share = lambda words, w: sum(x == w for x in words) / len(words)
    for city in ("MADRID", "SEVILLA", "BILBAO"):
        assert abs(share(stream, city) - share(at_once, city)) < 0.03
    assert abs(sum(map(len, stream)) - sum(map(len, at_once))) / sum(map(len, at_once)) < 0.03


@pytest.mark.precision
@needs_bf16_cpu
def test_sampling_under_bf16_autocast_hands_fp32_logits_to_the_sampler():
    from letras.plugins.samplers.sampling import draw_words

    tokenizer = components("tokenizer").get("chars").build()
    tokenizer.fit(["ana", "bea"])
    model = components("model").get("lstm").build(tokenizer.vocab_size, hidden_size=8, embedding_dim=4)
    dtypes = set()

    def cdf(logits):
        dtypes.add(logits.dtype)
        return logits.softmax(-1).cumsum(-1)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        words = draw_words(model, tokenizer, cdf, count=2000, max_length=6, batch_size=100)
    assert len(words) == 2000 and dtypes == {torch.float32}
