"""The plugin's own tests, written with letras.core.testing: no install needed."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the plugin's source folder

import letras_gru  # noqa: E402
from letras_gru.corpus import dinosaurios  # noqa: E402
from letras.core import UsageError, components, load_run  # noqa: E402
from letras.core.testing import registered_plugin, train_tiny  # noqa: E402


def test_registers_two_cells_and_a_corpus():
    with registered_plugin(letras_gru, "gru") as host:
        assert {"gru", "mgu"} <= set(host.registry("cell").names())
        assert host.registry("corpus").get("dinosaurios").qualified_name == "gru:dinosaurios"


@pytest.mark.parametrize("cell", ["gru", "mgu"])
def test_cells_follow_the_sequence_contract(cell):
    with registered_plugin(letras_gru, "gru"):
        layer = components("cell").get(cell).build(5, 7, num_layers=2, dropout=0.1).eval()
    x = torch.randn(3, 4, 5)
    out, h = layer(x)
    assert out.shape == (3, 4, 7) and h.shape == (2, 3, 7)
    # one step at a time, carrying the state, gives the same outputs
    state, steps = None, []
    for t in range(4):
        o, state = layer(x[:, t:t + 1], state)
        steps.append(o)
    torch.testing.assert_close(torch.cat(steps, 1), out)


def test_corpus_period_option():
    everything = dinosaurios().words()
    jurassic = dinosaurios("jurassic").words()
    assert "Stegosaurus" in jurassic and "Tyrannosaurus" not in jurassic
    assert set(jurassic) < set(everything)


@pytest.mark.parametrize("cell", ["gru", "mgu"])
def test_trains_and_samples_from_yaml_sections(tmp_path, cell):
    with registered_plugin(letras_gru, "gru"):
        result = train_tiny(tmp_path / cell, corpus={"name": "dinosaurios", "period": "triassic"},
                            model={"name": "generator", "cell": cell, "hidden_size": 16},
                            trainer={"epochs": 20})
        assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
        words = load_run(tmp_path / cell).sample(count=5, seed=0)
    assert len(words) == 5 and all(words)


def test_bad_period_is_a_clear_error(tmp_path):
    with registered_plugin(letras_gru, "gru"), pytest.raises(UsageError, match="corpus.period"):
        train_tiny(tmp_path, corpus={"name": "dinosaurios", "period": "permian"})
