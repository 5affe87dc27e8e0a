"""The extension surface of letras: one hook per kind of component.

Each ``register_*`` hook receives a ``register`` callback and calls it once per component::

    register(name, factory, *, options=None, help="")

``factory`` is a callable or a lazy ``"module:attr"`` string, imported only when the
component is built. ``options`` is a dataclass whose fields are the YAML keys the
component accepts. What each factory must return is written down in
``letras.core.interfaces``.
"""

import pluggy

hookspec = pluggy.HookspecMarker("letras")
hookimpl = pluggy.HookimplMarker("letras")


@hookspec
def register_corpora(register):
    """Register corpora: factories that take their options and return an object with words()."""


@hookspec
def register_tokenizers(register):
    """Register tokenizers: the vocabulary that turns words into token ids and back."""


@hookspec
def register_cells(register):
    """Register recurrent cells with the nn.RNN sequence interface."""


@hookspec
def register_models(register):
    """Register models: generators that map token ids to next-token logits."""


@hookspec
def register_trainers(register):
    """Register trainers: loops that fit a model to encoded words."""


@hookspec
def register_samplers(register):
    """Register samplers: ways of drawing new words from a trained model."""


@hookspec
def register_exporters(register):
    """Register exporters: formats a trained run is written to (onnx, html, json, ...)."""


@hookspec
def register_commands(cli):
    """Add click commands to the letras command group."""


@hookspec
def on_train_event(event):
    """Receive a training event (epoch end with metrics, checkpoint saved, training finished)."""
