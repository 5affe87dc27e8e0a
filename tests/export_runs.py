"""Tiny trained runs shared by the export tests: a one-layer lstm, a two-layer one-hot rnn,
a two-layer lstm stacked for word dropout, and the example plugin's gru and mgu cells."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "examples" / "letras-gru"))  # the example plugin's source folder

import letras_gru  # noqa: E402
import torch  # noqa: E402

from letras.core import load_run  # noqa: E402
from letras.core.testing import registered_plugin, train_tiny  # noqa: E402

MODELS = {
    "lstm": {"name": "lstm", "hidden_size": 16, "embedding_dim": 8},
    "rnn-2-layers-one-hot": {"name": "rnn", "hidden_size": 12, "embedding_dim": 0, "num_layers": 2},
    "lstm-2-layers-stacked": {"name": "lstm", "hidden_size": 10, "embedding_dim": 6, "num_layers": 2,
                              "dropout": 0.1, "dropout_mask": "word"},
    "gru": {"name": "generator", "cell": "gru", "hidden_size": 12, "embedding_dim": 6},
    "mgu": {"name": "generator", "cell": "mgu", "hidden_size": 12, "embedding_dim": 6},
}
WORDS = ["MADRID", "VIGO", "ZARAGOZA"]


def train_runs(folder: Path) -> dict[str, Path]:
    """Every run of MODELS, trained for 2 epochs into ``folder``."""
    with registered_plugin(letras_gru, "gru"):
        for name, model in MODELS.items():
            train_tiny(folder / name, model=model, trainer={"epochs": 2})
    return {name: folder / name for name in MODELS}


def open_run(path: Path):
    """The run read back, with the example plugin registered (its cells are in the config)."""
    with registered_plugin(letras_gru, "gru"):
        return load_run(path)


def plugin():
    return registered_plugin(letras_gru, "gru")


def torch_probabilities(trained, word: str) -> torch.Tensor:
    """The torch model's next-token probabilities after the boundary and after each letter of
    ``word``, in float64: (letters + 1, V)."""
    ids = [trained.tokenizer.boundary_id, *trained.tokenizer.encode(word)]
    with torch.no_grad():
        return torch.softmax(trained.model(torch.tensor([ids]))[0][0].double(), dim=-1)


def round_weights_to_float16(trained) -> None:
    """Round the model's weights to float16 (nearest even) in place, as a float16 export stores them."""
    with torch.no_grad():
        for p in trained.model.parameters():
            p.copy_(p.half().float())


def assert_probabilities(got: list, trained, word: str, atol: float) -> None:
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), torch_probabilities(trained, word),
                               atol=atol, rtol=0)
