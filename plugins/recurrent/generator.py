"""The generator: letters in, next-letter logits out, through any recurrent cell."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from letras.core import UsageError, components
from letras.core.adapt import AUTO
from letras.core.cells import LayerStack, WordDropout
from letras.core.options import given

from . import GeneratorOptions, RecurrentOptions
from .label_state import LabelState

BUILTIN = "letras.plugins.recurrent"


class Generator(nn.Module):
    """Embedding (or one-hot) -> cell -> linear head, with dropout on the connections that
    are not recurrent (the embedding, between layers, the cell's output), as Zaremba et al.
    (2014) do. ``dropout_mask="word"`` draws one mask per word instead of one per letter
    (Gal and Ghahramani, 2016); the layers are then stacked here, one cell per layer, since
    a fused multi-layer cell draws its own dropout at every letter.

    Reading a whole word at once and reading it letter by letter, carrying the state,
    give the same logits: the cell is the only place where positions meet.

    With ``num_labels`` (a labelled corpus) the word's label is an input too: its embedding
    is concatenated to every letter's, so any cell works unchanged, only wider. Without, the
    model is exactly the unlabelled one, parameter for parameter.
    """

    def __init__(self, vocab_size: int, options: GeneratorOptions | None = None, *, num_labels: int = 0,
                 **values: Any):
        """``options`` as letras builds it from a config; ``values`` for a model made by hand."""
        super().__init__()
        o = given(GeneratorOptions, options, values)
        if AUTO in (o.hidden_size, o.embedding_dim, o.num_layers, o.dropout):
            raise UsageError("a model option is 'auto', which only a run on a corpus resolves",
                             hint="train through letras.core.train or give a value")
        self.vocab_size = vocab_size
        self.num_labels = num_labels
        self.embedding = nn.Embedding(vocab_size, o.embedding_dim) if o.embedding_dim else None
        self.label_embedding = nn.Embedding(num_labels, o.label_dim) if num_labels else None
        input_size = (o.embedding_dim or vocab_size) + (o.label_dim if num_labels else 0)  # one-hot: as in the notes
        self.cell = _build_cell(o, input_size)
        self.dropout = WordDropout(o.dropout) if o.dropout_mask == "word" else nn.Dropout(o.dropout)
        self.head = nn.Linear(o.hidden_size, vocab_size)
        # the label also makes the state each word starts from (label_state.py)
        self.label_state = LabelState(self.cell, input_size, o.label_dim) if num_labels and o.label_state else None

    def forward(self, ids: torch.Tensor, state: Any = None, labels: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, Any]:
        """``labels``: each word's label id (B,), or a blend, weights over the labels (B, L)."""
        if self.embedding is None:
            x = F.one_hot(ids, self.vocab_size).float()  # (B, T, V)
        else:
            x = self.dropout(self.embedding(ids))  # (B, T, E)
        if self.label_embedding is not None:
            vectors = self._labels(labels)  # (B, D)
            x = torch.cat([x, vectors[:, None, :].expand(-1, ids.shape[1], -1).to(x.dtype)], dim=-1)  # (B, T, E + D)
            if state is None and self.label_state is not None:
                state = self.label_state(vectors.to(x.dtype))
        elif labels is not None:
            raise ValueError("this model was trained without labels")
        out, state = self.cell(x, state)  # (B, T, H)
        logits = self.head(self.dropout(out))  # (B, T, V)
        return logits, state


    def _labels(self, labels: torch.Tensor | None) -> torch.Tensor:
        """The label embedding of each word: (B, D)."""
        if labels is None:
            raise ValueError("this model was trained with labels: give each word's label")
        if labels.is_floating_point():  # a blend: the weighted mean of the label embeddings
            vectors = labels @ self.label_embedding.weight
        else:
            vectors = self.label_embedding(labels)
        return vectors


def _build_cell(o: GeneratorOptions, input_size: int) -> nn.Module:
    """The named cell; with ``dropout_mask="word"``, one single-layer cell per layer, stacked
    here so that the mask between layers is drawn once per word."""
    cell = components("cell").get(o.cell)
    cell_options = cell.checked_options(o.cell_options)
    if o.dropout_mask == "word" and o.num_layers > 1:
        return LayerStack([cell.build(input_size if i == 0 else o.hidden_size, o.hidden_size, num_layers=1,
                                      dropout=0.0, options=cell_options) for i in range(o.num_layers)], o.dropout)
    return cell.build(input_size, o.hidden_size, num_layers=o.num_layers, dropout=o.dropout, options=cell_options)


def rnn_generator(vocab_size: int, options: RecurrentOptions | None = None, *, num_labels: int = 0,
                  **values: Any) -> Generator:
    options = given(RecurrentOptions, options, values)
    return Generator(vocab_size, GeneratorOptions(**vars(options), cell=f"{BUILTIN}:rnn"), num_labels=num_labels)


def lstm_generator(vocab_size: int, options: RecurrentOptions | None = None, *, num_labels: int = 0,
                   **values: Any) -> Generator:
    options = given(RecurrentOptions, options, values)
    return Generator(vocab_size, GeneratorOptions(**vars(options), cell=f"{BUILTIN}:lstm"), num_labels=num_labels)
