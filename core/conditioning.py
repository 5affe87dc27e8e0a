"""A conditional model seen through the plain model interface, and what labels make possible:
classification by Bayes' rule, and the loss per label.

Samplers, scoring and explanations call ``model(ids, state)``. ``LabelBound`` fixes the
label (or a blend of label embeddings) a conditional model reads, and ``LabelMixture`` makes
a mixture of the labels' word distributions; both answer that same call, so every sampler,
a plugin's included, draws from a label without knowing labels exist.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import torch
from torch import nn

from .batching import IGNORE, WordBatches, evaluating
from .labels import LabelSet


class LabelBound(nn.Module):
    """``model`` reading every word under one label (an id) or a blend of label embeddings
    (weights over the labels, summing to 1)."""

    def __init__(self, model: nn.Module, label: int | Sequence[float]):
        super().__init__()
        self.model = model
        self.register_buffer("label", torch.tensor(label, dtype=torch.long if isinstance(label, int)
                                                   else torch.float32), persistent=False)

    def forward(self, ids: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        label = self.label.to(ids.device)
        labels = label.expand(ids.shape[0]) if label.dim() == 0 else label.expand(ids.shape[0], -1)
        return self.model(ids, state, labels=labels)


class LabelMixture(nn.Module):
    """The mixture of the labels' word distributions, sum over l of w_l P(word | l), read
    letter by letter: each next letter is drawn from the labels' next-letter distributions
    weighted by P(l | the letters so far), which starts at ``weights`` and follows Bayes'
    rule as letters are read. With the labels' shares of the corpus as weights, this is the model
    of the whole corpus.

    With ``guidance`` g > 0, each label leans towards itself and away from the others: its
    next letter's log-probability becomes (1 + g) log P(letter | so far, label) - g log
    P(letter | so far, whole corpus), normalised, except that the lean only raises letters at
    least PLAUSIBLE times as likely as the label's likeliest (``_guide``). Letter by letter
    this draws from P(word | label) P(label | word)^g, up to each step's normalisation:
    classifier-free guidance (Ho and Salimans, 2022; for language models, Sanchez et al.,
    2023), whose unconditional model is here the exact mixture of the labels by ``priors``. A blend is then the mixture of its
    labels so guided, so it keeps its weights. ``embedding`` guides one blend of label
    embeddings (weights over the labels) instead of the mixture ``weights``.

    The model reads R label inputs per word: the labels that have weight, and the blended
    embedding if any. The state holds each input's state, the log-weights (1, B, P, R) of the
    P mixtures read (the asked one, and the whole corpus under guidance) and each one's
    log-probabilities at the last position (1, B, P, R, V): all with the batch at dimension 1,
    so samplers can drop and reorder words as they do with nn.RNN's state.
    """

    def __init__(self, model: nn.Module, weights: Sequence[float], *, guidance: float = 0.0,
                 priors: Sequence[float] | None = None, embedding: Sequence[float] | None = None):
        super().__init__()
        self.model = model
        self.guidance = guidance
        mixtures = [list(weights)] if not guidance else [list(weights), list(priors)]
        labels = [i for i in range(len(weights)) if any(m[i] > 0 for m in mixtures)]  # weight 0: never read
        inputs: torch.Tensor = torch.tensor(labels)
        mixtures = [[m[i] for i in labels] for m in mixtures]
        if embedding is not None:  # the blend is one more input, the asked mixture's only one
            inputs = torch.cat([torch.tensor([embedding]), torch.eye(len(weights))[labels]])
            mixtures = [[1.0] + [0.0] * len(labels)] + [[0.0] + m for m in mixtures[1:]]
        log = [[math.log(w) if w > 0 else float("-inf") for w in m] for m in mixtures]
        self.register_buffer("inputs", inputs, persistent=False)  # (R,) label ids, or (R, labels) blends
        self.register_buffer("log_weights", torch.tensor(log), persistent=False)  # (P, R)
        self.batched = True

    def forward(self, ids: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        B, R = len(ids), len(self.inputs)
        if state is None:
            states, log_w, last = [None] * R, self.log_weights.to(ids.device).expand(B, -1, -1), None
        else:
            states, log_w, last = list(state[0]), state[1][0], state[2][0]
        logp, new_states = self._every_input(ids, states)  # (B, R, T, V)
        if self.guidance:  # each input leans away from the whole corpus, read letter by letter alike
            corpus, corpus_w = _mixture(logp, ids, log_w[:, 1], None if last is None else last[:, 1])
            guided = _guide(logp, corpus[:, None], self.guidance)
            mixed, asked_w = _mixture(guided, ids, log_w[:, 0], None if last is None else last[:, 0])
            carried = torch.stack([asked_w, corpus_w], dim=1), torch.stack([guided[:, :, -1], logp[:, :, -1]], dim=1)
        else:
            mixed, asked_w = _mixture(logp, ids, log_w[:, 0], None if last is None else last[:, 0])
            carried = asked_w[:, None], logp[:, None, :, -1]
        return mixed, (tuple(new_states), carried[0][None], carried[1][None])

    def _every_input(self, ids: torch.Tensor, states: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        """Each label input's log-probabilities (B, R, T, V) and states: in one call of the
        model, the batch repeated once per input, when its state has the batch at dimension 1
        (as nn.RNN's has); else one call per input."""
        B, R = ids.shape[0], len(self.inputs)
        inputs = self.inputs.to(ids.device)
        if self.batched:
            joined = None if states[0] is None else _join(states)
            logits, state = self.model(ids.repeat(R, 1), joined, labels=inputs.repeat_interleave(B, dim=0))
            parts = _split(state, R, B)
            if parts is not None:
                return torch.log_softmax(logits.float(), dim=-1).unflatten(0, (R, B)).transpose(0, 1), parts
            self.batched = False  # a state laid out otherwise: only the first call gets here
        logps, new_states = [], []
        for label, s in zip(inputs, states):
            logits, s = self.model(ids, s, labels=label.expand(B, *label.shape))
            logps.append(torch.log_softmax(logits.float(), dim=-1))
            new_states.append(s)
        return torch.stack(logps, dim=1), new_states


PLAUSIBLE = 0.1  # guidance raises only letters at least this share of the label's likeliest


def _guide(logp: torch.Tensor, corpus: torch.Tensor, guidance: float) -> torch.Tensor:
    """``logp`` leaning away from ``corpus`` by ``guidance``: log P(letter | label) plus
    g (log P(letter | label) - log P(letter)), normalised. The lean raises only the letters the
    label itself finds plausible, at least PLAUSIBLE times its likeliest (the adaptive
    plausibility constraint of contrastive decoding, Li et al., 2023): a letter rare everywhere
    but rarer still elsewhere, an accented capital, would otherwise begin many words. It can
    still lower any letter, and never to zero, so constraints always keep a letter to draw."""
    # a letter no label can write (a plugin's model may mask some): nothing to lean, not NaN
    lean = torch.where(torch.isfinite(logp), guidance * (logp - corpus), 0.0)
    plausible = logp >= logp.amax(dim=-1, keepdim=True) + math.log(PLAUSIBLE)
    return torch.log_softmax(logp + torch.where(plausible, lean, lean.clamp(max=0)), dim=-1)


def _mixture(logp: torch.Tensor, ids: torch.Tensor, log_w: torch.Tensor, last: torch.Tensor | None,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The mixture of R inputs' next-letter log-probabilities ``logp`` (B, R, T, V) at each
    position of ``ids``, each input weighted by ``log_w`` (B, R) times how well it explains the
    letters read so far; and the log-weights after the last position. ``last``: each input's
    log-probabilities at the previous call's last position (B, R, V), which read ``ids``'s first."""
    B, R = logp.shape[:2]
    read = logp[:, :, :-1].gather(-1, ids[:, None, 1:, None].expand(-1, R, -1, 1)).squeeze(-1)
    first = torch.zeros(B, R, 1, device=ids.device) if last is None else \
        last.gather(-1, ids[:, None, :1].expand(-1, R, 1))
    posterior = log_w[..., None] + torch.cat([first, read], dim=2).cumsum(dim=2)  # (B, R, T)
    posterior = posterior - torch.logsumexp(posterior, dim=1, keepdim=True)
    return torch.logsumexp(posterior[..., None] + logp, dim=1), posterior[..., -1]


def _join(states: list[Any]) -> Any:
    """States laid out alike, one after the other along the batch (dimension 1)."""
    if isinstance(states[0], torch.Tensor):
        return torch.cat(states, dim=1)
    return type(states[0])(_join(list(parts)) for parts in zip(*states))


def _split(state: Any, parts: int, batch: int) -> list[Any] | None:
    """``state`` of ``parts`` x ``batch`` words cut into ``parts`` states along dimension 1;
    None if a tensor of it does not hold the batch there."""
    if isinstance(state, torch.Tensor):
        rows = parts * batch
        # a batch-first state (rows, F) with F == rows would pass the first test: refuse it, and
        # with it the rare nn.RNN-like state whose first dimension is rows too (one call per input)
        fits = state.dim() >= 2 and state.shape[1] == rows and (rows == 1 or state.shape[0] != rows)
        return list(state.split(batch, dim=1)) if fits else None
    if isinstance(state, (tuple, list)):
        cut = [_split(s, parts, batch) for s in state]
        return None if any(c is None for c in cut) else [type(state)(c[i] for c in cut) for i in range(parts)]
    return None


@dataclasses.dataclass
class Classification:
    """A word's labels, likeliest first, with P(label | word); empty when the word holds
    letters the model never saw (``unknown`` names them)."""

    word: str
    labels: list[tuple[str, float]]
    unknown: list[str] = dataclasses.field(default_factory=list)

    @property
    def label(self) -> str | None:
        return self.labels[0][0] if self.labels else None

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        shown = self.labels[:top] if top else self.labels
        return {"word": self.word, "label": self.label, "labels": [{"label": n, "p": p} for n, p in shown],
                **({"unknown": self.unknown} if self.unknown else {})}


@torch.inference_mode()
def classify_words(model: nn.Module, tokenizer: Any, words: Sequence[str], labels: LabelSet, *,
                   device: Any = "cpu") -> list[Classification]:
    """P(label | word) by Bayes' rule: P(word | label), the model's, times the label's share
    of the training words, normalised over the labels."""
    from .scoring import score_words

    columns = [score_words(LabelBound(model, i), tokenizer, words, device=device) for i in range(len(labels))]
    logp = torch.tensor([[s.logprob for s in column] for column in columns], dtype=torch.float64).T  # (W, L)
    posterior = torch.softmax(logp + torch.tensor(labels.priors(), dtype=torch.float64).log(), dim=1)
    result = []
    for i, word in enumerate(words):
        if columns[0][i].unknown:
            result.append(Classification(word, [], columns[0][i].unknown))
            continue
        order = torch.argsort(posterior[i], descending=True).tolist()
        result.append(Classification(word, [(labels.names[j], float(posterior[i, j])) for j in order]))
    return result


@torch.no_grad()
def loss_per_label(model: nn.Module, data: WordBatches, names: Sequence[str],
                   batch_size: int = 1024) -> dict[str, float]:
    """Mean nats per predicted character of the words of each label, in one pass over ``data``
    (which carries the labels); labels without words are left out."""
    totals = torch.zeros(len(names), dtype=torch.float64, device=data.device)
    chars = torch.zeros(len(names), dtype=torch.float64, device=data.device)
    with evaluating(model):
        for inputs, targets, _, labels, _ in data.labelled_batches(batch_size):
            logits, _ = model(inputs, labels=labels)
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), targets, ignore_index=IGNORE,
                                                    reduction="none")  # (B, T)
            totals.index_add_(0, labels, nll.double().sum(dim=1))
            chars.index_add_(0, labels, (targets != IGNORE).sum(dim=1).double())
    return {name: float(t / c) for name, t, c in zip(names, totals.tolist(), chars.tolist()) if c}


BLENDS = ("mixture", "embedding")


def conditioned_model(model: nn.Module, labels: LabelSet | None, label: str | dict[str, float] | None,
                      blend: str = "mixture", where: str = "--label", guidance: float = 0.0) -> nn.Module:
    """``model`` reading ``label`` (a name, ``A=0.7,B=0.3`` or a dict), as ``TrainedModel.conditioned``
    describes; the model itself for a run without labels."""
    from .errors import UsageError

    if blend not in BLENDS:
        raise UsageError(f"blend must be {' or '.join(BLENDS)}, got {blend!r}", where="--blend")
    if labels is None:
        if label is not None:
            raise UsageError("this run was trained without labels", where=where,
                             hint="train on a labelled corpus (docs/labels.md)")
        return model
    if not (math.isfinite(guidance) and guidance >= 0):
        raise UsageError(f"guidance must be a number of at least 0, got {guidance}", where="--guidance")
    if label is None:
        return LabelMixture(model, labels.priors())  # the whole corpus: nothing to guide towards
    weights = labels.blend(label, where)
    if guidance:
        embedding = weights if blend == "embedding" and max(weights) < 1.0 else None
        return LabelMixture(model, weights, guidance=guidance, priors=labels.priors(), embedding=embedding)
    if max(weights) == 1.0:
        return LabelBound(model, weights.index(1.0))
    return LabelMixture(model, weights) if blend == "mixture" else LabelBound(model, weights)


def classification_report(truth: Sequence[str], predicted: Sequence[Classification]) -> dict[str, Any]:
    """Accuracy, and the confusion table: true label -> predicted label -> words."""
    confusion: dict[str, dict[str, int]] = {}
    for label, guess in zip(truth, predicted):
        row = confusion.setdefault(label, {})
        row[guess.label] = row.get(guess.label, 0) + 1
    right = sum(row.get(label, 0) for label, row in confusion.items())
    return {"accuracy": right / len(truth) if truth else float("nan"), "words": len(truth),
            "confusion": confusion}
