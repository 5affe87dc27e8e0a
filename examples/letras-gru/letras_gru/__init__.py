"""letras-gru: a GRU cell, a minimal gated unit and a corpus of dinosaur names.

This module is what the entry point names. It only registers: the torch code lives in
letras_gru.cells and is imported when a cell is built, so `letras --help` stays fast.
"""

from dataclasses import dataclass
from typing import Literal

from letras.core import hookimpl, option


@dataclass
class DinosauriosOptions:
    period: Literal["all", "triassic", "jurassic", "cretaceous"] = option(
        "all", help="keep only the genera of one period")


@hookimpl
def register_cells(register):
    register("gru", "letras_gru.cells:gru", help="Gated recurrent unit (fused nn.GRU)")
    register("mgu", "letras_gru.cells:mgu", help="Minimal gated unit, written as one step")


@hookimpl
def register_corpora(register):
    register("dinosaurios", "letras_gru.corpus:dinosaurios", options=DinosauriosOptions,
             help="Dinosaur genus names, by period")
