"""The generator as plain arrays, the form the json and html formats hold.

A generator (embedding or one-hot -> recurrent layers -> linear head) is described by its
tensors and the equations of its cell. The json and html samplers know the equations of
torch's fused cells: rnn (tanh or relu), lstm and gru, stacked or not. A hand-written cell
(a ``step_cell``) is only Python code, so it cannot be described and is named in the error;
its model still exports to ONNX, which records the computation itself.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from torch import nn

from letras.core import LetrasError

FUSED_CELLS = {nn.RNN: "rnn", nn.LSTM: "lstm", nn.GRU: "gru"}


def cell_name(trained: Any) -> str:
    """The cell as the run's config names it (``lstm``, ``gru:mgu``), for errors."""
    section = trained.config["model"]
    return str(getattr(section.options, "cell", section.component.name))


def refuse_labels(trained: Any, fmt: str) -> None:
    """A model trained with labels reads a label beside every letter; no format carries that yet."""
    if getattr(trained, "labels", None):
        raise LetrasError(f"this run was trained with labels ({len(trained.labels)}: {', '.join(trained.labels.names[:3])}"
                          f"{', ...' if len(trained.labels) > 3 else ''}), which the {fmt} format does not carry yet",
                          hint="export a run trained without labels")


def describe(trained: Any, fmt: str, dtype: str) -> dict[str, Any]:
    """The network section of an exported document: input, cell, layers and head, each
    tensor encoded as ``{"shape", "data"}`` (``encode``)."""
    from letras.plugins.recurrent.generator import Generator

    refuse_labels(trained, fmt)
    model = trained.model
    if not isinstance(model, Generator):  # another model's forward may do anything
        raise LetrasError(f"model '{trained.config['model'].component.name}' cannot be exported to {fmt}: the "
                          "format knows the generator (embedding, cell, head)", hint="try --format onnx")
    cell = model.cell
    fused = list(cell.layers) if hasattr(cell, "layers") else [cell]  # a LayerStack holds one cell per layer
    kinds = {FUSED_CELLS.get(type(layer)) for layer in fused}
    if None in kinds or len(kinds) != 1:
        raise LetrasError(f"cell '{cell_name(trained)}' ({type(cell).__name__}) cannot be exported to {fmt}: its "
                          "sampler knows the equations of torch's fused rnn, lstm and gru", hint="try --format onnx")
    layers = [weights for layer in fused for weights in _layers(layer, trained, fmt)]
    first = fused[0]
    return {
        "input": "one-hot" if model.embedding is None else "embedding",
        "embedding": None if model.embedding is None else encode(model.embedding.weight, dtype),
        "cell": kinds.pop(),
        "nonlinearity": getattr(first, "nonlinearity", None),
        "hidden_size": first.hidden_size,
        "layers": [{name: encode(tensor, dtype) for name, tensor in layer.items()} for layer in layers],
        "head": {"weight": encode(model.head.weight, dtype), "bias": encode(model.head.bias, dtype)},
    }


def _layers(layer: nn.RNNBase, trained: Any, fmt: str) -> list[dict[str, Any]]:
    """The weights of each layer of a fused cell, in torch's gate order."""
    if not layer.bias or layer.bidirectional or getattr(layer, "proj_size", 0):
        raise LetrasError(f"cell '{cell_name(trained)}' cannot be exported to {fmt}: only unidirectional "
                          "layers with biases and no projection are")
    return [{"weight_ih": getattr(layer, f"weight_ih_l{k}"), "weight_hh": getattr(layer, f"weight_hh_l{k}"),
             "bias_ih": getattr(layer, f"bias_ih_l{k}"), "bias_hh": getattr(layer, f"bias_hh_l{k}")}
            for k in range(layer.num_layers)]


def encode(tensor: Any, dtype: str) -> dict[str, Any]:
    """``{"shape": [...], "data": base64}``: the values row by row, little-endian float32 or
    float16 (rounded to nearest even), whatever the machine's byte order."""
    import torch

    values = tensor.detach().float().cpu().contiguous().flatten()
    if dtype == "float16":
        bits, code = values.to(torch.float16).view(torch.int16).tolist(), "h"
    else:
        bits, code = values.view(torch.int32).tolist(), "i"
    data = struct.pack(f"<{len(bits)}{code}", *bits)
    return {"shape": list(tensor.shape), "data": base64.b64encode(data).decode("ascii")}
