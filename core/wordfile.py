"""Word files: UTF-8 text with one word per line, the format every word list comes in.

The core reads them (`eval --file`, the bench) and so does the built-in `file` corpus, through
the same function, so a file reads alike everywhere.
"""

from __future__ import annotations

from pathlib import Path

from .errors import LetrasError, UsageError


def read_words(path: str, *, dedupe: bool = False, max_word_length: int = 200) -> list[str]:
    """The words of a UTF-8 file, one a line: surrounding whitespace and blank lines dropped;
    CRLF, a byte-order mark and a missing final newline accepted. A missing, binary, non-UTF-8
    or empty file, or a line too long to be a word, is one UsageError naming the file and line."""
    file = Path(path)
    if not file.exists():
        raise UsageError("no such file", where=path)
    if file.is_dir():
        raise UsageError("is a folder, not a word file", where=path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise LetrasError(f"cannot read: {exc.strerror}", where=path) from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise UsageError(f"line {line} holds a NUL byte: this looks like a binary file, "
                         "not a word list", where=path)
    words, seen = [], set()
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"line {number} is not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                             f"{exc.start + 1})", where=path,
                             hint="convert it, e.g. iconv -f latin1 -t utf-8") from None
        word = line.strip()
        if not word:
            continue
        if len(word) > max_word_length:
            raise UsageError(f"line {number} is {len(word):,} characters long: a word list holds "
                             f"one word per line (max_word_length is {max_word_length})", where=path)
        if dedupe:
            if word in seen:
                continue
            seen.add(word)
        words.append(word)
    if not words:
        raise UsageError("holds no words (it is empty or only blank lines)", where=path)
    return words
