"""The ``table`` corpus: words from a CSV or TSV file with a header, with an optional label
and weight column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from letras.core import LabelledWords, option
from letras.core.tablefile import read_table


@dataclass
class TableOptions:
    # `file`, not `path`: `corpus.path=names.txt` alone keeps meaning the one-word-per-line corpus
    file: str = option(help="a UTF-8 CSV or TSV file whose first line names the columns", path=True)
    word: str = option("word", help="the column of words")
    label: Optional[str] = option(None, help="the column of labels (a region, a sex); null = no labels")
    weight: Optional[str] = option(None, help="the column of counts: a frequent word weighs more in "
                                              "training (see docs/labels.md); null = every word weighs 1")
    delimiter: Optional[str] = option(None, help="tab, comma, semicolon, pipe or one character; "
                                                 "null = sniffed from the file")


def table(options: TableOptions) -> LabelledWords:
    """A table as a corpus (``letras.core.tablefile.read_table``)."""
    settings = {key: f"corpus.{key}" for key in ("word", "label", "weight", "delimiter")}
    return read_table(options.file, options.word, options.label, options.weight, options.delimiter,
                      settings=settings)
