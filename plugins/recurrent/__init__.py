"""Built-in recurrent cells (rnn, lstm) and the generators around them.

The generator is the notes' ``GeneradorCiudades`` made general: embedding (or the notes'
one-hot input) -> recurrent cell -> linear head over the vocabulary. ``rnn`` and ``lstm``
are generators with those cells; ``generator`` takes any registered cell by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

from letras.core import hookimpl, option
from letras.core.adapt import CorpusStats

Auto = Literal["auto"]


@dataclass
class RNNCellOptions:
    nonlinearity: Literal["tanh", "relu"] = option("tanh", help="the activation of nn.RNN")


@dataclass
class RecurrentOptions:
    hidden_size: Union[int, Auto] = option(128, min=1, help="units in the hidden state; auto: sized to the list")
    embedding_dim: Union[int, Auto] = option(
        32, min=0, help="size of the letter embedding; 0 = one-hot input as in the notes; auto: by the alphabet")
    num_layers: Union[int, Auto] = option(1, min=1, help="stacked recurrent layers; auto: sized to the list")
    dropout: Union[float, Auto] = option(
        0.0, min=0.0, max=1.0, max_exclusive=True,
        help="dropout on the embedding, between layers and on the cell's output; auto: more for a short list")
    dropout_mask: Literal["letter", "word"] = option(
        "letter", help="letter: a new dropout mask at every letter (nn.Dropout); word: one mask for all the "
                       "letters of a word (variational dropout), faster on a CPU and better on names.txt")
    label_dim: int = option(16, min=1, help="size of the label embedding concatenated to every letter's, "
                                            "when the corpus has labels (docs/labels.md); unused otherwise")
    label_state: bool = option(False, help="with labels, also start each word's hidden state from its label "
                                           "(a linear map of the label embedding) instead of zeros")

    def adapt(self, stats: CorpusStats) -> Optional[str]:
        """Resolve the ``auto`` values for this list (letras.core.adapt); a note of the choices."""
        from .sizing import size_generator

        return size_generator(self, stats)


@dataclass
class GeneratorOptions(RecurrentOptions):
    cell: str = option("lstm", component="cell", help="any registered cell (see `letras list cell`)")
    cell_options: Any = option(default_factory=dict, options_of="cell",
                               help="options of that cell (a mapping, checked against the cell's options)")


@hookimpl
def register_cells(register):
    register("rnn", "letras.plugins.recurrent.cells:rnn", options=RNNCellOptions,
             help="Elman RNN, h = tanh(W_ih x + W_hh h) (fused nn.RNN)")
    register("lstm", "letras.plugins.recurrent.cells:lstm",
             help="Long short-term memory (fused nn.LSTM)")


@hookimpl
def register_models(register):
    register("rnn", "letras.plugins.recurrent.generator:rnn_generator", options=RecurrentOptions,
             help="Generator with an rnn cell: the notes' GeneradorCiudades")
    register("lstm", "letras.plugins.recurrent.generator:lstm_generator", options=RecurrentOptions,
             help="Generator with an lstm cell")
    register("generator", "letras.plugins.recurrent.generator:Generator", options=GeneratorOptions,
             help="Generator around any registered cell (model.cell)")
