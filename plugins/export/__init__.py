"""Built-in exporters: a trained run as an ONNX one-step model, a self-contained web page,
or one JSON document with a plain-Python reference sampler (docs/export.md).

Registered exactly as a plugin registers a format: ``register_exporters`` names lazy
factories, so listing them never imports torch; ``letras export`` comes through
``register_commands``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from letras.core import hookimpl, option


@dataclass
class OnnxOptions:
    opset: int = option(17, min=13, help="the ONNX opset the file targets")


@dataclass
class JsonOptions:
    dtype: Literal["float32", "float16"] = option(
        "float32", help="how the weights are stored; float16 halves the file and moves the default model's "
                            "next-letter probabilities by at most 3e-4")
    known_words: bool = option(True, help="embed a hash of each corpus word, to mark generated words already in it")


@dataclass
class HtmlOptions(JsonOptions):
    dtype: Literal["float32", "float16"] = option(
        "float16", help="how the weights are stored; float32 doubles the page's weights (float16 moves the default "
                            "model's next-letter probabilities by at most 3e-4)")
    seed: Optional[int] = option(None, help="the seed of the words shown when the page opens; "
                                            "null = a new one each time")


@hookimpl
def register_exporters(register):
    register("onnx", "letras.plugins.export.to_onnx:OnnxExporter", options=OnnxOptions,
             help="The one-step model (ids and state in, logits and state out) for onnxruntime (needs letras[export])")
    register("json", "letras.plugins.export.to_json:JsonExporter", options=JsonOptions,
             help="Weights, alphabet and config in one JSON document, sampled without torch by sampler.py")
    register("html", "letras.plugins.export.to_html:HtmlExporter", options=HtmlOptions,
             help="One self-contained web page that makes words offline, from file://")


@hookimpl
def register_commands(cli):
    from .command import export

    cli.add_command(export)
