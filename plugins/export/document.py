"""The exported document: one JSON object holding a run's alphabet, network, sampler
settings and config. The json format writes it as it is; the html page embeds it. Its
schema is in docs/export.md; ``sampler.py`` reads it."""

from __future__ import annotations

import base64
import struct
from typing import Any

from letras.core import LetrasError

from .network import describe
from .sampler import FORMAT, FORMAT_VERSION, fnv1a

# The sampler settings a page opens with, taken from the run's sampler where it has them.
SAMPLER_DEFAULTS = {"temperature": 1.0, "top_k": None, "max_length": 50, "count": 20, "prefix": ""}


def build_document(trained: Any, fmt: str, *, dtype: str, known_words: bool) -> dict[str, Any]:
    """The document for ``trained``, its weights stored as ``dtype``."""
    from letras.core.assemble import letras_version

    vocabulary = trained.tokenizer.state()
    alphabet = vocabulary.get("chars")
    if not isinstance(alphabet, list) or getattr(trained.tokenizer, "boundary_id", None) != 0:
        raise LetrasError(f"tokenizer '{trained.config['tokenizer'].component.name}' cannot be exported to {fmt}: "
                          "the format needs a character vocabulary (ids 1.. the characters, 0 the boundary)")
    sampler = trained.config["sampler"].options
    corpus = trained.corpus_words()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "letras_version": letras_version(),
        "name": trained.config.name,
        "alphabet": alphabet,
        "boundary_id": 0,
        "case": vocabulary.get("case", "keep"),
        "dtype": dtype,
        "network": describe(trained, fmt, dtype),
        "sampler": {key: getattr(sampler, key, default) for key, default in SAMPLER_DEFAULTS.items()},
        "corpus": _corpus(corpus, known_words),
        "config": trained.config.to_dict(),
    }


def _corpus(words: list[str] | None, known_words: bool) -> dict[str, Any]:
    """How many words the run trained on and, if asked, the sorted 32-bit FNV-1a hashes of
    the distinct ones: 4 bytes a word, against about 12 for the words themselves."""
    if words is None:
        return {"words": None, "known": None}
    hashes = sorted({fnv1a(word) for word in words}) if known_words else None
    known = None if hashes is None else {
        "hash": "fnv1a-32", "count": len(hashes),
        "data": base64.b64encode(struct.pack(f"<{len(hashes)}I", *hashes)).decode("ascii")}
    return {"words": len(words), "known": known}
