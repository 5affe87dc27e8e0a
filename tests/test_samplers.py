import pytest

from letras.core import UsageError, load_run
from letras.plugins.corpora import CIUDADES


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
    top1 = trained.sample(seed=1, count=5, top_k=1, prefix="B")
    assert len(set(top1)) == 1  # top-1 sampling is greedy


def test_prefix_with_unknown_letters_is_named(trained_run):
    with pytest.raises(UsageError, match=r"prefix 'Ñu': character.*'Ñ' \(U\+00D1\)"):
        load_run(trained_run).sample(prefix="Ñu")


def test_bad_sampler_options_name_the_flag(trained_run):
    with pytest.raises(UsageError, match="option --temperature: must be greater than 0.0"):
        load_run(trained_run).sample(temperature=0.0)


def test_the_trained_model_learned_the_cities(trained_run):
    trained = load_run(trained_run)
    words = trained.sample(seed=0, count=200, temperature=0.5)
    assert sum(w in CIUDADES for w in words) > 150
