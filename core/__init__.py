"""letras.core: the plugin API and the pipeline.

For plugin writers: ``hookimpl``, ``option``, the error classes, ``components(kind)`` to
build another registered component, and the interfaces in ``letras.core.interfaces``.
For notebooks: ``load_config``, ``train``, ``train_words`` (any word list, sized to it) and
``load_run``.

Nothing here imports torch; the functions that need it import it when called.
"""

from .config import PipelineConfig, load_config
from .errors import ConfigError, Interrupted, LetrasError, PluginError, UnknownCharacters, UsageError
from .hookspecs import hookimpl
from .labels import LabelledWords
from .options import OptionError, option
from .pipeline import train, train_words
from .trained import TrainedModel, load_run
from .plugins import components
from .devices import autocast, resolve_device, resolve_precision
from .split import split_words
from .training import TrainEvent, TrainingRun

__all__ = [
    "ConfigError", "Interrupted", "LabelledWords", "LetrasError", "OptionError", "PipelineConfig", "PluginError",
    "TrainEvent", "TrainedModel", "TrainingRun", "UnknownCharacters", "UsageError", "components", "hookimpl",
    "load_config", "load_run", "option", "autocast", "resolve_device", "resolve_precision", "split_words", "train",
    "train_words",
]
