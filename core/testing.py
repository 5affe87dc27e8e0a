"""Helpers for a plugin's own test suite.

    from letras.core.testing import registered_plugin, train_tiny

    def test_my_cell_trains(tmp_path):
        with registered_plugin(my_plugin):
            trained = train_tiny(tmp_path, model={"name": "generator", "cell": "mgu"})
        assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from .config import validate
from .pipeline import TrainResult, train
from .plugins import PluginHost, get_host, set_host

TINY = {
    "corpus": {"name": "ciudades"},
    "tokenizer": {"name": "chars"},
    "model": {"name": "lstm", "hidden_size": 16, "embedding_dim": 8},
    "trainer": {"name": "word-reset", "epochs": 3, "batch_size": 8, "lr": 0.01, "val_fraction": 0.0,
                "device": "cpu"},
    "sampler": {"name": "temperature", "count": 5},
}


@contextlib.contextmanager
def registered_plugin(module: Any, name: str | None = None, *,
                      entry_points: bool = False) -> Iterator[PluginHost]:
    """Use ``module`` as a plugin for the duration of the block, beside the built-ins.

    Installed third-party plugins are left out unless ``entry_points=True``, so a test sees
    only what it registers.
    """
    host = PluginHost(entry_point_group="letras" if entry_points else None, env={})
    host.add(module, name=name or getattr(module, "__name__", "test-plugin"), source="test")
    previous = set_host(host)
    try:
        yield host
    finally:
        set_host(previous)


def train_tiny(output: str | Path, *, seed: int = 0, **sections: Any) -> TrainResult:
    """Train a tiny pipeline (the notes' 15 cities, a 16-unit LSTM, 3 epochs) into ``output``.

    Each keyword replaces one section, e.g. ``model={"name": "generator", "cell": "mgu"}``
    or ``corpus={"name": "dinosaurios"}``; a trainer section is merged with the tiny one.
    """
    data: dict[str, Any] = {"name": "tiny", "seed": seed, "output": str(output), **TINY}
    for kind, value in sections.items():
        data[kind] = {**TINY["trainer"], **value} if kind == "trainer" else value
    get_host()  # the current host: the one registered_plugin installed, if any
    return train(validate(data, source="train_tiny"))
