"""From a validated config to its parts: the words, the fitted vocabulary, the model.

Shared by training (``pipeline``), by reading a run back (``trained``) and by `letras
validate`, which runs ``prepare`` without importing torch.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Sequence

from . import config as cfg
from .errors import UsageError
from .interfaces import framed
from .labels import CorpusData, LabelSet, read_corpus
from .plugins import get_host


def letras_version() -> str:
    try:
        return metadata.version("letras")
    except metadata.PackageNotFoundError:
        return "unknown"


def load_words(config: cfg.PipelineConfig) -> list[str]:
    """The corpus of a config, checked: a non-empty list of non-empty strings."""
    return load_corpus(config).words


def load_corpus(config: cfg.PipelineConfig) -> CorpusData:
    """The corpus of a config, checked: its words, and their labels and weights if it has them."""
    section = config["corpus"]
    corpus = section.component.build(options=section.options)
    return read_corpus(corpus, f"corpus '{section.component.name}'")


def build_tokenizer(config: cfg.PipelineConfig, words: Sequence[str]) -> Any:
    """The config's tokenizer, fitted on the words."""
    section = config["tokenizer"]
    tokenizer = section.component.build(options=section.options)
    tokenizer.fit(words)
    return tokenizer


def encode_words(tokenizer: Any, words: Sequence[str], source: str) -> list[list[int]]:
    """Every word as ``[boundary, ..., boundary]`` token ids."""
    return [framed(tokenizer, w, f"{source}, word {i + 1}") for i, w in enumerate(words)]


def build_model(config: cfg.PipelineConfig, vocab_size: int, labels: LabelSet | None = None) -> Any:
    """The config's model; with ``labels``, conditioned on them (``num_labels=`` is passed to
    the factory only then, so a model that knows nothing of labels builds as before)."""
    section = config["model"]
    if not labels:
        return section.component.build(vocab_size, options=section.options)
    try:
        return section.component.build(vocab_size, options=section.options, num_labels=len(labels))
    except TypeError as exc:
        if "num_labels" not in str(exc):
            raise
        raise UsageError(f"model '{section.component.name}' cannot be conditioned on labels",
                         where="corpus labels", hint="use a built-in model (lstm, rnn, generator), "
                         "or a corpus without labels") from None


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
    data, tokenizer, encoded = prepare_corpus(config, origin)
    return data.words, tokenizer, encoded


def prepare_corpus(config: cfg.PipelineConfig, origin: dict[str, Any] | None = None
                   ) -> tuple[CorpusData, Any, list[list[int]]]:
    """``prepare``, with the corpus's labels and weights."""
    from .adapt import adapt_sections, corpus_stats
    from .finetune import inherit

    data = load_corpus(config)
    letters = inherit(config, origin) if origin is not None else []
    tokenizer = build_tokenizer(config, [*data.words, *letters])
    encoded = encode_words(tokenizer, data.words, f"corpus '{config['corpus'].component.name}'")
    stats = corpus_stats(encoded, tokenizer.vocab_size)
    notes = adapt_sections(config.sections, stats)
    if notes:
        config.notes = [f"Chosen for this list ({stats.describe()}): " + "; ".join(notes)]
    return data, tokenizer, encoded
