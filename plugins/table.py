"""The ``table`` corpus: words from a CSV or TSV file with a header, with an optional label
and weight column."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from letras.core import LabelledWords, LetrasError, UsageError, option

DELIMITERS = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


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


def read_table(file: str, word: str = "word", label: str | None = None, weight: str | None = None,
               delimiter: str | None = None) -> LabelledWords:
    """Rows of a CSV/TSV file; blank lines skipped, a byte-order mark and CRLF accepted."""
    path = file
    text = _read_text(path)
    sep = _delimiter(text, path, delimiter)
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    header = [name.strip() for name in next(rows, [])]
    if not any(header):
        raise UsageError("is empty: a table starts with a header line naming its columns", where=path)
    columns = [_column(header, name, role, path) for name, role in ((word, "word"), (label, "label"),
                                                                    (weight, "weight"))]
    words, labels, weights = [], [], []
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        line = rows.line_num
        if len(row) < len(header):
            raise UsageError(f"line {line} has {len(row)} columns, the header {len(header)}", where=path,
                             hint=f"is the delimiter right? it is {sep!r}; set corpus.delimiter")
        cells = [None if c is None else row[c].strip() for c in columns]
        if not cells[0]:
            raise UsageError(f"line {line} has an empty {word!r} cell", where=path)
        words.append(cells[0])
        if label is not None:
            if not cells[1]:
                raise UsageError(f"line {line} ({cells[0]!r}) has an empty {label!r} cell", where=path,
                                 hint="give every word a label, or read the file without corpus.label")
            labels.append(cells[1])
        if weight is not None:
            weights.append(_weight(cells[2], line, weight, path))
    if not words:
        raise UsageError("holds a header but no rows", where=path)
    return LabelledWords(words, labels if label is not None else None, weights if weight is not None else None)


def _read_text(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise UsageError("is a folder, not a table" if file.is_dir() else "no such file", where=path)
    try:
        return file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise LetrasError(f"cannot read: {exc.strerror}", where=path) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"is not UTF-8 (byte {exc.start:,})", where=path,
                         hint="convert it, e.g. iconv -f latin1 -t utf-8") from None


def _delimiter(text: str, path: str, given: str | None) -> str:
    if given is not None:
        sep = DELIMITERS.get(given, given)
        if len(sep) != 1:
            raise UsageError(f"delimiter {given!r} is not tab, comma, semicolon, pipe or one character",
                             where="corpus.delimiter")
        return sep
    header = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(header, delimiters="\t,;|").delimiter
    except csv.Error:  # one column, or no delimiter the sniffer trusts: the header decides
        return next((c for c in "\t,;|" if c in header), "\t" if path.endswith(".tsv") else ",")


def _column(header: list[str], name: str | None, role: str, path: str) -> int | None:
    if name is None:
        return None
    if name not in header:
        raise UsageError(f"has no {name!r} column for the {role}s (its columns: {', '.join(header)})",
                         where=path, hint=f"name the column with corpus.{role}")
    return header.index(name)


def _weight(cell: str, line: int, column: str, path: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"line {line} has {column!r} {cell!r}: a weight is a positive number", where=path)
    return value
