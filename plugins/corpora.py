"""Built-in corpora: the notes' 15 cities, Spain's municipalities (labelled by region if asked), any word
file, and any table."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from letras.core import LabelledWords, hookimpl, option
from letras.core.options import given
from letras.core.wordfile import read_words

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


def municipios(options: MunicipiosOptions | None = None, **values: Any) -> WordList | LabelledWords:
    """8,238 Spanish municipality names (INE, 2021); attribution in letras/plugins/data/SOURCES.md."""
    label = given(MunicipiosOptions, options, values).label
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


def read_word_file(options: FileOptions) -> WordList:
    """A word file as a corpus (``letras.core.wordfile.read_words``)."""
    return WordList(read_words(options.path, dedupe=options.dedupe, max_word_length=options.max_word_length))


@hookimpl
def register_corpora(register):
    register("ciudades", ciudades, help="The 15 Spanish cities of the teaching notes")
    register("municipios", municipios, options=MunicipiosOptions,
             help="8,238 Spanish municipality names (Fuente: INE, 2021), labelled by community or province")
    register("file", read_word_file, options=FileOptions,
             help="Any UTF-8 file with one word per line")
    register("table", "letras.plugins.table:table", options=TableOptions,
             help="A CSV or TSV file with a header: a word column, optional label and weight columns")
