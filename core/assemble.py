"""From a validated config to its parts: the words, the fitted vocabulary, the model.

Shared by training (``pipeline``), by reading a run back (``trained``) and by `letras
validate`, which runs ``prepare`` without importing torch.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Sequence

from . import config as cfg
from .errors import LetrasError, UsageError
from .plugins import get_host


def letras_version() -> str:
    try:
        return metadata.version("letras")
    except metadata.PackageNotFoundError:
        return "unknown"


def load_words(config: cfg.PipelineConfig) -> list[str]:
    """The corpus of a config, checked: a non-empty list of non-empty strings."""
    section = config["corpus"]
    corpus = section.component.build(options=section.options)
    words = corpus.words()
    where = f"corpus '{section.component.name}'"
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise LetrasError("words() must return a list of strings", where=where)
    words = [w for w in words if w]
    if not words:
        raise UsageError("the corpus holds no words", where=where)
    return words


def build_tokenizer(config: cfg.PipelineConfig, words: Sequence[str]) -> Any:
    """The config's tokenizer, fitted on the words."""
    section = config["tokenizer"]
    tokenizer = section.component.build(options=section.options)
    tokenizer.fit(words)
    return tokenizer


def encode_words(tokenizer: Any, words: Sequence[str], source: str) -> list[list[int]]:
    """Every word as ``[boundary, ..., boundary]`` token ids."""
    b = tokenizer.boundary_id
    return [[b, *tokenizer.encode(w, source=f"{source}, word {i + 1}"), b]
            for i, w in enumerate(words)]


def build_model(config: cfg.PipelineConfig, vocab_size: int) -> Any:
    section = config["model"]
    return section.component.build(vocab_size, options=section.options)


def plugin_versions() -> dict[str, str]:
    """Name -> version of every loaded plugin (saved in checkpoints)."""
    host = get_host()
    return {name: info.version or letras_version() for name, info in host.plugins.items() if info.loaded}


def prepare(config: cfg.PipelineConfig, origin: dict[str, Any] | None = None
            ) -> tuple[list[str], Any, list[list[int]]]:
    """Everything before torch: the words, the fitted tokenizer and the encoded words; the
    config's ``auto`` options resolved for the list (``letras.core.adapt``), what they became
    noted in ``config.notes``. With ``origin``, the checkpoint of the run ``init_from`` names,
    the vocabulary is the union of the list's and the origin's.

    `letras validate` runs this too, so a config that validates also loads.
    """
    from .adapt import adapt_sections, corpus_stats
    from .finetune import inherit

    words = load_words(config)
    letters = inherit(config, origin) if origin is not None else []
    tokenizer = build_tokenizer(config, [*words, *letters])
    encoded = encode_words(tokenizer, words, f"corpus '{config['corpus'].component.name}'")
    stats = corpus_stats(encoded, tokenizer.vocab_size)
    notes = adapt_sections(config.sections, stats)
    if notes:
        config.notes = [f"Chosen for this list ({stats.describe()}): " + "; ".join(notes)]
    return words, tokenizer, encoded
