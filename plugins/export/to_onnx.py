"""The onnx format: the one-step model, with its state as explicit inputs and outputs.

ONNX runtimes keep no state between calls, so a recurrent model exported as it is would
start every letter from a zero state (pytorch#16025). The exported graph reads one token per
word and the state, and returns the next token's logits and the new state; the caller feeds
the state back in. Inputs and outputs are in docs/export.md.

torch.onnx.export is called with ``dynamo=False``, the TorchScript-based exporter: it needs
only the ``onnx`` package, writes torch's recurrent layers as ONNX's own RNN, LSTM and GRU
operators, and traces a hand-written step cell through its Python loop. The default
(dynamo) exporter needs onnxscript besides, and gains nothing for graphs this small.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from letras.core import LetrasError

from . import OnnxOptions
from .network import cell_name, refuse_labels

NAMES = {1: ["h"], 2: ["h", "c"]}  # the state's tensors, named as torch names an LSTM's


class OneStep(nn.Module):
    """``(ids (B, 1), *state) -> (logits (B, V), *new state)``: the model, one token a call."""

    def __init__(self, model: nn.Module, parts: int):
        super().__init__()
        self.model, self.parts = model, parts

    def forward(self, ids: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, new_state = self.model(ids, state[0] if self.parts == 1 else tuple(state))  # (B, 1, V)
        new_state = (new_state,) if isinstance(new_state, torch.Tensor) else tuple(new_state)
        return (logits[:, -1], *new_state)


def state_layout(model: nn.Module, boundary: int) -> list[torch.Tensor]:
    """The model's state after one token, for two words: its tensors, each laid out like
    nn.RNN's (layers, batch, hidden), which the exported graph takes and returns."""
    with torch.no_grad():
        _, state = model(torch.full((2, 1), boundary, dtype=torch.long))
    tensors = [state] if isinstance(state, torch.Tensor) else list(state)
    if not all(isinstance(t, torch.Tensor) and t.dim() == 3 and t.shape[1] == 2 for t in tensors):
        raise LetrasError("the model's state is not laid out like nn.RNN's (layers, batch, hidden), which the "
                          "onnx format takes as inputs")
    return tensors


class OnnxExporter:
    def __init__(self, options: OnnxOptions | None = None):
        self.opset = (options or OnnxOptions()).opset

    def export(self, trained: Any, path: Path) -> None:
        refuse_labels(trained, "onnx")
        onnx = _require_onnx()
        model = trained.model.to("cpu").eval()
        boundary = trained.tokenizer.boundary_id
        state = state_layout(model, boundary)
        names = NAMES.get(len(state), [f"state{i}" for i in range(len(state))])
        outputs = ["logits", *[f"{name}_out" for name in names]]
        batch = {name: {0: "batch"} for name in ("ids", "logits")}
        batch.update({name: {1: "batch"} for name in [*names, *outputs[1:]]})
        # eval mode, so that the exporter restores eval mode, not a new module's training mode
        step = OneStep(model, len(state)).eval()
        inputs = (torch.full((2, 1), boundary, dtype=torch.long), *[torch.zeros_like(t) for t in state])
        buffer = io.BytesIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # the exporter's notes on tracing and its own deprecation
                torch.onnx.export(step, inputs, buffer, dynamo=False, input_names=["ids", *names],
                                  output_names=outputs, dynamic_axes=batch, opset_version=self.opset)
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [""])[0]
            raise LetrasError(f"cell '{cell_name(trained)}' cannot be exported to onnx: "
                              f"{type(exc).__name__}: {first_line}") from None
        graph = onnx.load_from_string(buffer.getvalue())
        for key, value in _metadata(trained, names).items():
            graph.metadata_props.add(key=key, value=value)
        graph.doc_string = f"letras {trained.config.name}: one step of the model (docs/export.md)"
        onnx.save(graph, str(path))


def _metadata(trained: Any, names: list[str]) -> dict[str, str]:
    """What a user of the file needs beside the graph: the alphabet, the boundary, the state's names."""
    from letras.core.assemble import letras_version

    vocabulary = trained.tokenizer.state()
    return {"letras_version": letras_version(), "name": trained.config.name,
            "alphabet": json.dumps(vocabulary.get("chars"), ensure_ascii=False),
            "boundary_id": str(trained.tokenizer.boundary_id), "case": str(vocabulary.get("case", "")),
            "state": json.dumps(names), "config": json.dumps(trained.config.to_dict(), ensure_ascii=False)}


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise LetrasError("the onnx format needs the onnx package",
                          hint="pip install 'letras[export]', which brings onnx and onnxruntime") from None
    return onnx
