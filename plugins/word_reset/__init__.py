"""The word-reset trainer: every word starts from a zero hidden state.

The notes reset the memory for each city ("hay que inicializar la memoria en cada palabra
nueva") and feed the letters one at a time. This trainer keeps that rule and, by default,
puts many words of similar length through one fused recurrent call, masking the padding so
it never counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Union

from letras.core import OptionError, UsageError, hookimpl, option
from letras.core.adapt import CorpusStats, auto_fields

Auto = Literal["auto"]


@dataclass
class WordResetOptions:
    epochs: Union[int, Auto] = option(20, min=1, resume_safe=True,
                                      help="passes over the training words; auto: planned from the list's size")
    batch_size: int = option(128, min=1, help="words per optimizer step")
    lr: float = option(0.003, min=0.0, min_exclusive=True, help="learning rate")
    optimizer: Literal["adam", "adamw"] = option("adam", help="the optimizer")
    weight_decay: Union[float, Auto] = option(
        0.0, min=0.0, help="weight decay of the weight matrices and the embedding, not the biases (decoupled "
                           "with adamw); auto: more for a small list")
    ema: Union[float, None, Auto] = option(
        None, min=0.0, max=1.0, min_exclusive=True, max_exclusive=True,
        help="keep an exponential moving average of the weights with this decay per step (e.g. 0.9997) and "
             "validate, save and sample with it; null = the weights as trained; auto: 0.99 for a small list")
    grad_clip: Optional[float] = option(None, min=0.0, min_exclusive=True,
                                        help="clip the gradient norm to this value; null = no clipping")
    schedule: Literal["constant", "cosine"] = option(
        "constant", help="learning rate schedule: constant, or cosine decay to lr/100")
    warmup_steps: int = option(0, min=0, help="steps of linear learning-rate warm-up")
    val_fraction: Union[float, Auto] = option(
        0.1, min=0.0, max=1.0, max_exclusive=True,
        help="share of the words held out for validation (seeded split); auto: 10%, down to 2% for a long list")
    max_seconds: Optional[float] = option(None, min=0.0, min_exclusive=True, resume_safe=True,
                                          help="time budget: training ends cleanly after it")
    patience: Union[int, None, Auto] = option(None, min=1, resume_safe=True,
                                              help="early stopping: end after this many epochs without a better "
                                                   "validation loss; null = never; auto: from the epochs planned")
    keep: Literal["last", "best"] = option(
        "last", resume_safe=True,
        help="the weights training ends with: the last epoch's, or the best validation epoch's")
    checkpoint_every: int = option(1, min=1, resume_safe=True,
                                   help="save a checkpoint every this many epochs (and at the end)")
    device: str = option("auto", resume_safe=True, help="auto (CUDA when available), cpu, cuda or cuda:N")
    precision: Literal["fp32", "bf16", "fp16", "auto"] = option(
        "fp32", resume_safe=True,
        help="fp32, or mixed precision: bf16 (CUDA, or a CPU with bfloat16 instructions), "
             "fp16 with a gradient scaler (CUDA), auto (bf16 where the device has it, else fp32); "
             "a run resumes in another, e.g. on a machine without bfloat16")
    log_every: int = option(50, min=1, resume_safe=True,
                            help="steps between progress updates (each reads the loss back)")
    unroll: Literal["fused", "manual"] = option(
        "fused", help="fused: one recurrent call per batch; manual: one letter at a time, as in the notes")
    reduction: Literal["mean", "sum"] = option(
        "mean", help="loss per step: mean over letters, or the notes' sum over letters")
    group_by_length: bool = option(True, help="batch words of similar length together (less padding)")
    label_loss: float = option(
        0.0, min=0.0, help="with labels, add this weight times each word's classification loss, -log P(its label | "
                           "word) by Bayes' rule from the model and the training words' label shares; it reads "
                           "every batch under every label (docs/labels.md, First names by sex); 0 = off")
    weighting: Literal["sample", "loss"] = option(
        "sample", help="a corpus with weights: sample draws each epoch's words with replacement in proportion to "
                       "their weights; loss multiplies each word's loss by its weight, every word seen once an "
                       "epoch (docs/labels.md, Weights)")

    def adapt(self, stats: CorpusStats) -> Optional[str]:
        """Resolve the ``auto`` values for this list (letras.core.adapt); a note of the choices."""
        from .planning import plan_training

        return plan_training(self, stats)

    def check_resolved(self) -> None:
        from .planning import AUTO_OPTIONS

        auto = auto_fields(self, AUTO_OPTIONS)
        if auto:
            raise UsageError(f"trainer option {auto[0]} is 'auto', which only a run on a corpus resolves",
                             hint="train through letras.core.train or give a value")

    def __post_init__(self):
        if self.device != "auto" and not (self.device == "cpu" or self.device == "cuda"
                                          or self.device.startswith("cuda:")):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.label_loss and self.unroll == "manual":  # it reads a batch under every label in one call
            raise OptionError("label_loss", "needs unroll: fused")


@hookimpl
def register_trainers(register):
    register("word-reset", "letras.plugins.word_reset.trainer:WordResetTrainer",
             options=WordResetOptions,
             help="Per-word hidden-reset trainer: many words per fused call, padding masked")
