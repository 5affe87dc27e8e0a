"""The look-ahead proposal for particles (``--proposal lookahead``): psi counted from the
sampler's own words, each draft's letters and weight against a brute force on a model whose
probabilities are known, and the chosen words against the conditioned distribution. (Random
combinations of constraints: test_constraints.py, which draws with it too.)"""

import math
import random
from itertools import product

import pytest
import torch

from letras.core import components
from letras.core.constraints import Constraints, compile_constraints
from letras.core.letter_mask import BLOCKED, SOONEST, LetterMask
from letras.plugins.samplers import lookahead, outlook, prefix_tree
from letras.plugins.samplers.sampling import TemperatureSampler
from test_constraints import Bigram, frequencies, total_variation, word_probability
from toy_models import CoinModel


@pytest.fixture(scope="module")
def ab():
    tokenizer = components("tokenizer").get("chars").build()
    tokenizer.fit(["ab"])
    return tokenizer


def bigram_words(n: int, max_length: int, seed: int = 0) -> tuple[list[str], list[list[float]]]:
    """n words of the Bigram model drawn in Python, and the model's chance of ending before
    each of their letters."""
    rng, probs = random.Random(seed), Bigram.TABLE.softmax(-1).tolist()
    words, ends = [], []
    for _ in range(n):
        word, end, last = "", [], 0
        while len(word) < max_length:
            weights = [0.0 if last == 0 else probs[last][0], *probs[last][1:]]  # a word has a letter
            t = rng.choices(range(3), weights)[0]
            if t == 0:
                break
            end.append(weights[0] / sum(weights))
            word, last = word + " ab"[t], t
        words.append(word)
        ends.append(end)
    return words, ends


def test_tails_counted_as_a_brute_force_counts_them(ab):
    """Every tail after every letter, read from every state with the automaton's own walk:
    the counts accepted_tails computes for all states at once, backwards."""
    c = Constraints(suffix="ab", contains=("ba",), min_length=3, max_length=7)
    automaton = compile_constraints(c, ab)
    mask = LetterMask(automaton, "cpu")
    words, ends = bigram_words(300, 7)
    words[:2] = ["bbabab", "ab" * 4]  # one a letter short of the room, one that never ends within it
    ends[:2] = [[0.5] * 6, [0.05] * 8]
    drawn = torch.zeros(len(words), 7, dtype=torch.long)
    bucket = torch.zeros(len(words), 7, dtype=torch.long)
    for i, (word, end) in enumerate(zip(words, ends)):
        ids = ab.encode(word)[:7]
        drawn[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        bucket[i, :len(ids)] = outlook.end_bucket(torch.tensor(end[:7]), torch.arange(len(ids)) == 0)
    moves, accepting = outlook._live_moves(mask)
    by_letter, by_length, after = outlook.accepted_tails(drawn, bucket, 0, moves, accepting)

    S, V, B = len(automaton.next), ab.vocab_size, outlook.BUCKETS
    letter, length, tails = torch.zeros(S, B * V), torch.zeros(S, B, 8), torch.zeros(B * V)
    for i, word in enumerate(words):
        ids = ab.encode(word)[:7]
        for cut in range(1, len(ids) + 1):
            context = int(bucket[i, cut - 1]) * V + ids[cut - 1]
            tails[context] += 1
            if len(ids) == 7:
                continue  # cut at the room, not ended: no tail of it ends accepted
            for s in range(S):
                at = automaton.walk(ids[cut:], (s, -1))
                if at is not None and automaton.accepting[at[0]]:
                    letter[s, context] += 1
                    length[s, context // V, len(ids) - cut] += 1
    assert torch.equal(after, tails) and torch.equal(by_letter, letter) and torch.equal(by_length, length)
    assert by_letter.sum() > 100  # the constraints accept enough tails to test something


def draft_chances(estimated, mask, max_length: int) -> dict[str, float]:
    """The chance one look-ahead draft gives each word on the Bigram model, brute force over
    every beginning: at each letter, p times psi (``estimated``'s) times 1 + the end's share
    moved onto the soonest letters, renormalised over the letters the mask allows."""
    probs, found = Bigram.TABLE.softmax(-1), {}
    first = Bigram.TABLE[0].clone()
    first[0] = float("-inf")  # a word has at least one letter
    stack = [("", mask.start([]), 1.0, first.softmax(-1))]
    while stack:
        word, at, chance, p = stack.pop()
        left = max_length - len(word)
        codes = mask.codes(at, left)[0]
        soonest, allowed = (codes == SOONEST).float(), (codes != BLOCKED).float()
        bucket = outlook.end_bucket(p[:1], torch.tensor([word == ""]))
        psi = estimated.rows(at[:, 0], torch.tensor([left]), bucket)[0]
        moved = p[0] / (p * soonest).sum() if soonest.any() else 0.0
        q = p * psi * allowed * (1 + moved * soonest)
        q = q / q.sum()
        for v in range(3):
            if q[v] == 0:
                continue
            if v == 0:
                found[word] = found.get(word, 0.0) + chance * float(q[v])
            else:
                stack.append((word + " ab"[v], mask.step(at, torch.tensor([v])), chance * float(q[v]), probs[v]))
    return found


@pytest.fixture(scope="module")
def toy_outlook(ab):
    """The Bigram's look-ahead under --suffix ab --min-length 3 --max-length 6, estimated once
    from its own words, as the sampler estimates it."""
    from letras.plugins.samplers.sampling import _draw_words

    automaton = compile_constraints(Constraints(suffix="ab", min_length=3, max_length=6), ab)
    draw_with = lambda letters, n: _draw_words(Bigram(), letters, [], 6, count=n, device="cpu", batch_size=None,
                                               boundary=0, mask=None)
    estimated = outlook.Outlook.estimate(LetterMask(automaton, "cpu"), 6, draw_with, TemperatureSampler().transform,
                                         torch.Generator().manual_seed(0))
    return automaton, estimated


@pytest.mark.parametrize("min_visits", [0.01, float("inf")], ids=["deep tree", "no tree"])
def test_one_draft_draws_q_and_weighs_p_over_q(ab, toy_outlook, min_visits, monkeypatch):
    """One draft's words against the brute force over every beginning, with the psi the
    sampler estimated; each word's weight is log p - log q exactly. The drafts walk a tree
    as deep as the words (every beginning a node), or none."""
    automaton, estimated = toy_outlook
    monkeypatch.setattr(prefix_tree, "MIN_VISITS", min_visits)
    monkeypatch.setattr(outlook.Outlook, "estimate", classmethod(lambda cls, *args, **kwargs: estimated))
    weights = []
    choose = lookahead.LookaheadDrafts.choose
    monkeypatch.setattr(lookahead.LookaheadDrafts, "choose",
                        lambda self: weights.append(self.weight[:-1].clone()) or choose(self))
    expected = draft_chances(estimated, LetterMask(automaton, "cpu"), 6)
    assert sum(expected.values()) == pytest.approx(1.0)
    n = 20_000  # the sampling error of a total-variation distance over these words: about 0.02
    words = TemperatureSampler(count=n, max_length=6, particles=1, proposal="lookahead").sample(
        Bigram(), ab, seed=1, constraint=automaton)
    assert total_variation(frequencies(words), expected) < 0.03
    for word in set(words):
        gain = weights[0][words.index(word)].item()
        assert gain == pytest.approx(math.log(word_probability(word)) - math.log(expected[word]), abs=1e-4), word


def test_many_drafts_reach_the_conditioned_distribution(ab):
    """Chosen by weight among 64 drafts, the words come within sampling error of the model's
    distribution conditioned on the constraints; one draft does not."""
    c = Constraints(suffix="ab", min_length=3, max_length=6)
    automaton = compile_constraints(c, ab)
    accepted = [w for n in range(1, 7) for w in map("".join, product("ab", repeat=n)) if automaton.accepts(w)]
    total = sum(word_probability(w) for w in accepted)
    conditioned = {w: word_probability(w) / total for w in accepted}
    n = 20_000  # measured: 0.010-0.015 at 64 drafts, 0.06 at 4, 0.19 at 1
    words = TemperatureSampler(count=n, max_length=6, particles=64, proposal="lookahead").sample(
        Bigram(), ab, seed=0, constraint=automaton)
    assert set(words) <= set(accepted) and total_variation(frequencies(words), conditioned) < 0.035
    few = TemperatureSampler(count=n, max_length=6, particles=1, proposal="lookahead").sample(
        Bigram(), ab, seed=0, constraint=automaton)
    assert total_variation(frequencies(few), conditioned) > 0.1


def test_psi_gathered_from_a_table_or_computed_per_step_alike(ab, toy_outlook, monkeypatch):
    automaton, estimated = toy_outlook
    states = torch.arange(len(automaton.next)).repeat_interleave(7 * outlook.BUCKETS)
    left = torch.arange(7).repeat(len(automaton.next) * outlook.BUCKETS)
    bucket = torch.arange(outlook.BUCKETS).repeat_interleave(7).repeat(len(automaton.next))
    assert estimated.table is not None
    table = estimated.rows(states, left, bucket)
    estimated.table = None
    try:
        assert torch.equal(estimated.rows(states, left, bucket), table)
    finally:
        estimated.table = table


def test_letters_with_no_chance_are_never_drawn(ab):
    """The coin model says 'a' or the end, never 'b' (-inf): under constraints that keep its
    words from ending, the look-ahead's drafts never say 'b' either, whatever psi says of it."""
    automaton = compile_constraints(Constraints(min_length=3, max_length=6), ab)
    for k in (1, 4):
        words = TemperatureSampler(count=2000, max_length=6, temperature=3.0, particles=k, proposal="lookahead").sample(
            CoinModel(), ab, seed=0, constraint=automaton)
        assert set(words) == {"a" * n for n in range(3, 7)}


def test_the_proposal_on_the_command_line(invoke, trained_run):
    result = invoke("sample", trained_run, "-n", "20", "--seed", "0", "--suffix", "A", "--min-length", "5",
                    "--proposal", "lookahead")
    assert result.exit_code == 0, result.output
    words = result.stdout.splitlines()
    assert len(words) == 20 and all(w.endswith("A") and len(w) >= 5 for w in words)
    bad = invoke("sample", trained_run, "--suffix", "A", "--proposal", "peek")
    assert bad.exit_code == 2 and "Invalid value for '--proposal'" in bad.stderr and "Traceback" not in bad.stderr


def test_an_automaton_too_large_for_psi_draws_closing_drafts(ab, monkeypatch):
    automaton = compile_constraints(Constraints(suffix="ab", min_length=3, max_length=6), ab)
    sampler = TemperatureSampler(count=200, max_length=6, particles=2, proposal="lookahead")
    assert outlook.Outlook.fits(LetterMask(automaton, "cpu"), 6)
    monkeypatch.setattr(outlook, "COUNT_BYTES", 0)
    monkeypatch.setattr(lookahead.LookaheadDrafts, "__init__", lambda *args, **kwargs: pytest.fail("look-ahead"))
    words = sampler.sample(Bigram(), ab, seed=0, constraint=automaton)
    assert len(words) == 200 and all(w.endswith("ab") and len(w) >= 3 for w in words)
