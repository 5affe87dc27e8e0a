"""The interfaces a plugin implements: the reference for plugin writers.

letras never checks these with ``isinstance``; they document what each factory registered
through a ``register_*`` hook must return. Shapes follow makemore's habit: ``B`` words in a
batch, ``T`` positions, ``V`` tokens in the vocabulary, ``H`` hidden units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # torch stays out of anything --help touches
    import torch

    from .training import TrainingRun


@runtime_checkable
class Corpus(Protocol):
    """A list of words. The factory is called with the corpus options as keyword arguments.

    Optionally, and only if it has them, a corpus also has ``labels() -> list[str]`` (a label
    per word: a region, a sex; letras then trains a conditional model) and ``weights() ->
    list[float]`` (a positive weight per word, multiplying its loss); either may return None.
    ``letras.core.LabelledWords`` is such a corpus."""

    def words(self) -> list[str]:
        """Every word of the corpus, in a fixed order. An empty list is an error."""


@runtime_checkable
class Tokenizer(Protocol):
    """The vocabulary: words to token ids and back, with one boundary token.

    The boundary token (the notes' ``.``) starts and ends every encoded word, so a model
    learns to choose the first letter and to stop.
    """

    boundary_id: int
    vocab_size: int

    def fit(self, words: Sequence[str]) -> None:
        """Learn the vocabulary from the training words."""

    def normalize(self, word: str) -> str:
        """The word as the tokenizer sees it (Unicode NFC, the case policy).

        Optionally, a tokenizer also has ``normalize_lines(text) -> str``: ``text``, words
        one a line, each normalised as ``normalize`` would, in one call (letras then reads
        100,000 excluded words in a few milliseconds, not word by word)."""

    def encode(self, word: str, *, source: str = "") -> list[int]:
        """Token ids of ``word`` without boundaries. A character the vocabulary never saw is
        ``letras.core.UnknownCharacters`` (a UsageError) naming the characters and ``source``
        (where the word came from): `score`, `explain` and `eval` then report the word as
        unscorable and go on."""

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; boundary tokens are left out."""

    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild the vocabulary, as plain data (saved in checkpoints)."""

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``state()`` returned."""


def framed(tokenizer: Tokenizer, word: str, source: str = "") -> list[int]:
    """A word as a model reads it: its token ids between two boundaries, ``[., c1, ..., cn, .]``
    (the notes' start and end markers). ``source`` names the word in the tokenizer's errors."""
    return [tokenizer.boundary_id, *tokenizer.encode(word, source=source), tokenizer.boundary_id]


class Cell(Protocol):
    """A recurrent layer with the ``nn.RNN`` sequence interface (batch first).

    Built as ``factory(input_size, hidden_size, num_layers=..., dropout=..., **options)``.
    ``h0=None`` means a zero state. The state may be a tensor or a tuple of tensors
    (``nn.LSTM``'s ``(h, c)``); letras only passes it back in.
    """

    def __call__(self, x: "torch.Tensor", h0: Any = None) -> tuple["torch.Tensor", Any]:
        """x: (B, T, input_size) -> out: (B, T, hidden_size), hT."""


class Model(Protocol):
    """A generator: token ids in, logits for the next token out.

    Built as ``factory(vocab_size, **options)``; an ``nn.Module``. Calling it with one
    position at a time and the state it returned must give the same logits as calling it on
    the whole sequence: samplers and the manual unroll rely on that. A state laid out like
    ``nn.RNN``'s (tensors, or tuples of tensors, with the batch at dimension 1) lets the
    samplers drop finished words from the batch and lets beam search reorder it.
    """

    def __call__(self, ids: "torch.Tensor", state: Any = None) -> tuple["torch.Tensor", Any]:
        """ids: (B, T) int64 -> logits: (B, T, V), state after the last position."""


class Trainer(Protocol):
    """Fits a model. Built as ``factory(**options)``."""

    def fit(self, model: Any, words: Sequence[Sequence[int]], run: "TrainingRun") -> None:
        """Train ``model`` on encoded words (each ``[boundary, ..., boundary]``).

        ``run`` (``letras.core.TrainingRun``) gives what every trainer needs:
        ``run.device(spec)`` and ``run.wrap(model)`` (one process, or DDP under torchrun),
        ``run.split(words, fraction)``, ``run.seed``, ``run.step(...)`` for progress,
        ``run.end_epoch(metrics, model, state)`` for metrics and checkpoints,
        ``run.stop_requested`` with ``run.checkpoint(model, state)`` for Ctrl-C, and
        ``run.resume_state``: the ``state`` it saved last, when the run resumes.
        """


class Sampler(Protocol):
    """Draws new words. Built as ``factory(options=...)`` or ``factory(**options)``.

    Three option names are the contract between a sampler and the core; a sampler that
    declares them gets what they promise, and one that doesn't keeps working without:

    - ``count`` (int): how many words one ``sample`` call returns. ``--novel``, ``--unique``,
      ``--exact`` and the jsonl output set it to draw in rounds;
    - ``max_length`` (int): the longest word, in letters; length constraints use it;
    - ``prefix`` (str): the letters every word starts with; the constraints start from it.

    Every other option is the sampler's own; `letras sample` gets a flag for each."""

    def sample(self, model: Any, tokenizer: Tokenizer, *, seed: int | None = None,
               device: str = "cpu", constraint: Any = None) -> list[str]:
        """New words, decoded; the options (count, prefix, ...) were given to the factory.

        ``constraint`` (optional to accept): a ``letras.core.constraints.Automaton`` every
        word must be accepted by (suffix, pattern, banned substrings, excluded words, ...);
        ``letras.core.letter_mask.LetterMask`` gives, for each word's state, the tokens it
        may draw next. It is passed only when the user asks for constraints; a sampler whose
        ``sample`` takes no ``constraint`` keeps working without them, and a request for
        constraints on it is refused with a pointer to ``--exact``, which filters its words."""
