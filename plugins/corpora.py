"""Built-in corpora: the notes' 15 cities, Spain's municipalities (labelled by region if asked), any word
file, and any table."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from letras.core import LabelledWords, LetrasError, UsageError, hookimpl, option

from .table import TableOptions

# The 15 cities of the teaching notes' GeneradorCiudades, exactly as written there.
CIUDADES = (
    "MADRID", "BARCELONA", "VALENCIA", "SEVILLA", "ZARAGOZA", "MALAGA", "MURCIA", "PALMA",
    "BILBAO", "ALICANTE", "CORDOBA", "VALLADOLID", "VIGO", "GIJON", "GRANADA",
)


class WordList:
    """A corpus held in memory."""

    def __init__(self, words: list[str]):
        self._words = words

    def words(self) -> list[str]:
        return list(self._words)


def ciudades() -> WordList:
    return WordList(list(CIUDADES))


@dataclass
class MunicipiosOptions:
    label: Literal["none", "community", "province"] = option(
        "none", help="label each name with its autonomous community (19) or province (52); "
                     "a name two regions share is then a word of each")


def municipios(label: str = "none") -> WordList | LabelledWords:
    """8,238 Spanish municipality names (INE, 2021); attribution in letras/plugins/data/SOURCES.md."""
    data = resources.files("letras.plugins").joinpath("data")
    if label == "none":
        return WordList(data.joinpath("es_municipios.txt").read_text("utf-8").splitlines())
    rows = [line.split("\t") for line in data.joinpath("es_municipios_regiones.tsv").read_text("utf-8").splitlines()]
    column = rows[0].index(label)
    return LabelledWords([row[0] for row in rows[1:]], [row[column] for row in rows[1:]])


@dataclass
class FileOptions:
    path: str = option(help="a UTF-8 text file with one word per line", path=True)
    dedupe: bool = option(False, help="keep only the first occurrence of each word")
    max_word_length: int = option(200, min=1, help="longest line accepted as a word")


def read_word_file(path: str, dedupe: bool = False, max_word_length: int = 200) -> WordList:
    """One word per line; surrounding whitespace and blank lines dropped; CRLF, a byte-order
    mark and a missing final newline accepted."""
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
    return WordList(words)


@hookimpl
def register_corpora(register):
    register("ciudades", ciudades, help="The 15 Spanish cities of the teaching notes")
    register("municipios", municipios, options=MunicipiosOptions,
             help="8,238 Spanish municipality names (Fuente: INE, 2021), labelled by community or province")
    register("file", read_word_file, options=FileOptions,
             help="Any UTF-8 file with one word per line")
    register("table", "letras.plugins.table:read_table", options=TableOptions,
             help="A CSV or TSV file with a header: a word column, optional label and weight columns")
