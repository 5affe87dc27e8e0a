"""The generator sized to a word list: what ``auto`` becomes for its options.

Measured on splits of first names and of Spanish municipalities, 800 to 36,000 words, on a
2-core CPU with a one-minute budget (docs/performance.md, "Any word list"). Two layers of 128
(as `names-lstm`) read a list of 60,000 characters and more best in a minute; a shorter list
is learnt better by one wider layer (1,950 municipalities: 1.44 nats/char against 1.46), and
the fewer characters a list has, the more dropout it needs. A larger alphabet (capitals,
accents, other scripts) gets a wider embedding.
"""

from __future__ import annotations

from typing import Any, Optional

from letras.core.adapt import AUTO, CorpusStats, auto_fields

SMALL_LIST_CHARS = 60_000  # below this (about 6,000 words), one layer of 256
# (fewest characters, dropout): the first row the list reaches from the top
DROPOUT_BY_CHARS = ((400_000, 0.1), (150_000, 0.2), (SMALL_LIST_CHARS, 0.25), (0, 0.3))


def size_generator(options: Any, stats: CorpusStats) -> Optional[str]:
    """Set the generator's ``auto`` options for ``stats`` in place; say what was chosen."""
    o = options
    if not auto_fields(o, ("hidden_size", "num_layers", "embedding_dim", "dropout")):
        return None
    small = stats.chars < SMALL_LIST_CHARS
    if o.num_layers == AUTO:
        o.num_layers = 1 if small else 2
    if o.hidden_size == AUTO:
        o.hidden_size = 256 if o.num_layers == 1 else 128
    if o.embedding_dim == AUTO:
        o.embedding_dim = 32 if stats.alphabet <= 40 else 48
    if o.dropout == AUTO:
        o.dropout = next(p for chars, p in DROPOUT_BY_CHARS if stats.chars >= chars)
    size = f"{o.num_layers} x {o.hidden_size}" if o.num_layers > 1 else f"{o.hidden_size}"
    why = " (a small list)" if small else ""
    return (f"{size}{why}, embedding {o.embedding_dim} for {stats.alphabet} symbols, "
            f"dropout {o.dropout:g} for {stats.chars:,} characters")
