"""The sampler's tree of likely beginnings: it saves work and changes no word's probability."""

import itertools
import math

import pytest
import torch

from letras.core import components
from letras.plugins.samplers import prefix_tree
from letras.plugins.samplers.sampling import GreedySampler, TemperatureSampler, draw_words
from toy_models import BatchFirstModel, CoinModel, CountingModel


@pytest.fixture
def tokenizer():
    tokenizer = components("tokenizer").get("chars").build()
    tokenizer.fit(["ab"])  # the boundary (0), 'a' (1) and 'b' (2)
    return tokenizer


@pytest.fixture
def tree_sizes(monkeypatch):
    """The number of nodes of every tree the sampler grows."""
    sizes, grow = [], prefix_tree.grow

    def recorded(*args, **kwargs):
        tree = grow(*args, **kwargs)
        sizes.append(len(tree))
        return tree

    monkeypatch.setattr(prefix_tree, "grow", recorded)
    return sizes


class _HistoryModel(torch.nn.Module):
    """Odds set by the whole beginning: the end likelier the longer the word, 'a' likelier
    after an even number of 'b's. Its state, two tensors like nn.LSTM's, counts both."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids, state=None):
        length, bs = state or (torch.zeros(1, len(ids), 1), torch.zeros(1, len(ids), 1))
        logits = []
        for t in range(ids.shape[1]):
            length, bs = length + (ids[:, t] != 0)[None, :, None], bs + (ids[:, t] == 2)[None, :, None]
            even = bs[0, :, 0] % 2 == 0
            logits.append(torch.stack([length[0, :, 0] - 2.5, torch.where(even, 1.0, -1.0), torch.zeros(len(ids))], -1))
        return torch.stack(logits, dim=1), (length, bs)


def _lstm():
    torch.manual_seed(1)
    model = components("model").get("lstm").build(3, hidden_size=8, embedding_dim=4)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5)  # odds far from even, which depend on the letters before
    return model


def _word_probabilities(model, max_length: int) -> dict[str, float]:
    """The probability of every word of 'a' and 'b' the sampler can draw: its letters, then
    the end unless it was cut at max_length; the first letter is never the end."""
    probabilities = {}
    for length in range(1, max_length + 1):
        for letters in itertools.product("ab", repeat=length):
            ids = torch.tensor([[0] + ["_ab".index(c) for c in letters]])
            with torch.no_grad():
                p = torch.softmax(model(ids)[0][0], dim=-1)  # (length + 1, V)
            first = p[0, 1:] / p[0, 1:].sum()  # the boundary is masked at the root
            probability = float(first[ids[0, 1] - 1] * p[torch.arange(1, length), ids[0, 2:]].prod())
            probabilities["".join(letters)] = probability * (float(p[-1, 0]) if length < max_length else 1.0)
    return probabilities


@pytest.mark.parametrize("make_model", [_lstm, _HistoryModel], ids=["lstm", "history"])
@pytest.mark.parametrize("min_visits", [2.0, 500.0, float("inf")], ids=["whole", "part", "root"])
def test_words_are_drawn_with_the_models_probabilities(tokenizer, tree_sizes, monkeypatch, min_visits, make_model):
    """However much of the tree grows, every word comes out as often as the model says."""
    monkeypatch.setattr(prefix_tree, "MIN_VISITS", min_visits)
    model = make_model().eval()
    count, max_length = 40_000, 5
    sampler = TemperatureSampler(count=count, max_length=max_length, batch_size=500)
    generator = torch.Generator().manual_seed(1)
    words = draw_words(model, tokenizer, sampler.cdf, count=count, max_length=max_length, batch_size=500,
                       generator=generator)
    expected = _word_probabilities(model, max_length)
    assert math.isclose(sum(expected.values()), 1.0, rel_tol=1e-5)
    for word, p in expected.items():
        share = sum(w == word for w in words) / count
        assert abs(share - p) < 5 * math.sqrt(p * (1 - p) / count) + 1e-4, word
    (nodes,) = tree_sizes
    # the root and the 30 beginnings of 1 to 4 letters; some of them; the root alone
    assert {2.0: nodes == 31, 500.0: 1 < nodes < 31}.get(min_visits, nodes == 1)


def test_words_that_share_a_beginning_read_it_once(tokenizer, tree_sizes):
    model = CoinModel()
    generator = torch.Generator().manual_seed(0)
    coin = lambda logits: logits.softmax(-1).cumsum(-1)
    words = draw_words(model, tokenizer, coin, generator=generator, count=10_000, max_length=40, batch_size=1000)
    assert set("".join(words)) == {"a"} and 1.9 < sum(map(len, words)) / len(words) < 2.1
    # the root, 'a', 'aa', ... down to 13 letters, which 10,000 / 2**12 = 2.4 words reach
    assert tree_sizes == [14]
    # each beginning once (the tree), then only the rare words longer than the tree
    assert sum(model.batches) < 0.01 * sum(len(w) + 1 for w in words)


@pytest.mark.parametrize("prefix", ["", "a"])
def test_a_word_leaving_the_tree_goes_on_from_the_node_it_left(tokenizer, tree_sizes, monkeypatch, prefix):
    node = 4 + 3 * (4 + 8)  # the counting model's state, logits and links, in bytes
    for nodes in range(5):
        monkeypatch.setattr(prefix_tree, "MAX_BYTES", nodes * node)
        words = draw_words(CountingModel(), tokenizer, GreedySampler().cdf, count=100,
                           max_length=10, prefix=prefix, batch_size=7)
        assert words == ["aaa"] * 100
    # the root alone (room for no more), then a node more each time: words leave the tree
    # from each depth in turn
    assert tree_sizes == [1, 1, 2, 3, 4]


class _FixedOddsModel(torch.nn.Module):
    """'a' with probability 0.6, 'b' 0.3, the end 0.1, whatever came before."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids, state=None):
        logits = torch.tensor([0.1, 0.6, 0.3]).log().expand(len(ids), ids.shape[1], 3)
        return logits, torch.zeros(2, len(ids), 3)


def test_a_tree_too_large_keeps_its_likeliest_beginnings():
    model = _FixedOddsModel()
    logits, state = model(torch.zeros(1, 1, dtype=torch.long))
    tree = prefix_tree.grow(model, logits[:, -1], state, words=10**6, depth=10, boundary=0, max_nodes=4)
    assert len(tree) == 4 and tree.state.shape == (2, 4, 3)
    # the root leads to 'a' (1) and 'b' (2); 'a' to 'aa' (3), likelier than 'ab' and 'ba'
    assert tree.child.tolist() == [[-1, 1, 2], [-1, 3, -1], [-1, -1, -1], [-1, -1, -1]]
    shallow = prefix_tree.grow(model, logits[:, -1], state, words=10**6, depth=1, boundary=0)
    assert len(shallow) == 3  # the root, 'a' and 'b': no deeper than asked


def test_a_state_laid_out_otherwise_grows_no_tree():
    model = BatchFirstModel()
    logits, state = model(torch.zeros(1, 1, dtype=torch.long))
    tree = prefix_tree.grow(model, logits[:, -1], state, words=1000, depth=10, boundary=0)
    assert len(tree) == 1 and tree.state is None
