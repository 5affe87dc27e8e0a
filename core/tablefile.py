"""Tables: CSV or TSV files with a header line, a word column and optional label and weight
columns, the format labelled word lists come in.

The core reads them (`eval --file labelled.tsv`) and so does the built-in `table` corpus,
through the same function, so a table reads alike everywhere.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from .errors import LetrasError, UsageError
from .labels import LabelledWords

DELIMITERS = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
SUFFIXES = (".tsv", ".csv")


def read_table(file: str, word: str = "word", label: str | None = None, weight: str | None = None,
               delimiter: str | None = None, *, settings: dict[str, str] | None = None) -> LabelledWords:
    """Rows of a CSV/TSV file; blank lines skipped, a byte-order mark and CRLF accepted.

    ``settings`` says how the reader's user sets each of ``word``, ``label``, ``weight`` and
    ``delimiter`` (``corpus.label``, ``--label-column``), for the hints of its errors."""
    path = file
    setting = {"word": "word", "label": "label", "weight": "weight", "delimiter": "delimiter", **(settings or {})}
    text = _read_text(path)
    sep = _delimiter(text, delimiter, path, setting["delimiter"])
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    header = [name.strip() for name in next(rows, [])]
    if not any(header):
        raise UsageError("is empty: a table starts with a header line naming its columns", where=path)
    columns = [_column(header, name, role, path, setting[role])
               for name, role in ((word, "word"), (label, "label"), (weight, "weight"))]
    words, labels, weights = [], [], []
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        line = rows.line_num
        if len(row) < len(header):
            raise UsageError(f"line {line} has {len(row)} columns, the header {len(header)}", where=path,
                             hint=f"is the delimiter right? it is {sep!r}; set {setting['delimiter']}")
        cells = [None if c is None else row[c].strip() for c in columns]
        if not cells[0]:
            raise UsageError(f"line {line} has an empty {word!r} cell", where=path)
        words.append(cells[0])
        if label is not None:
            if not cells[1]:
                raise UsageError(f"line {line} ({cells[0]!r}) has an empty {label!r} cell", where=path,
                                 hint=f"give every word a label, or read the file without {setting['label']}")
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


def _delimiter(text: str, given: str | None, path: str, setting: str) -> str:
    if given is not None:
        sep = DELIMITERS.get(given, given)
        if len(sep) != 1:
            raise UsageError(f"delimiter {given!r} is not tab, comma, semicolon, pipe or one character",
                             where=setting)
        return sep
    header = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(header, delimiters="\t,;|").delimiter
    except csv.Error:  # one column, or no delimiter the sniffer trusts: the header decides
        return next((c for c in "\t,;|" if c in header), "\t" if path.endswith(".tsv") else ",")


def _column(header: list[str], name: str | None, role: str, path: str, setting: str) -> int | None:
    if name is None:
        return None
    if name not in header:
        raise UsageError(f"has no {name!r} column for the {role}s (its columns: {', '.join(header)})",
                         where=path, hint=f"name the column with {setting}")
    return header.index(name)


def _weight(cell: str, line: int, column: str, path: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"line {line} has {column!r} {cell!r}: a weight is a positive number", where=path)
    return value
