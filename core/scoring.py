"""How much a model likes a word: per-word log-probabilities, letter-by-letter explanations,
and statistics of what it samples."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from .batching import IGNORE, WordBatches, evaluating
from .interfaces import framed
from .errors import UnknownCharacters


@dataclasses.dataclass
class WordScore:
    """A word's log-probability under the model: every letter and the end of the word.

    A word holding letters the model never saw has log-probability -inf; ``unknown`` names
    those letters."""

    word: str
    logprob: float  # natural log, summed over the predicted characters
    chars: int  # predicted characters: the letters plus the end of word
    unknown: list[str] = dataclasses.field(default_factory=list)

    @property
    def per_char(self) -> float:
        return self.logprob / self.chars

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: an unscorable word's log-probabilities are null (JSON has no -inf), and
        ``unknown`` lists its unknown letters."""
        if self.unknown:
            return {"word": self.word, "logprob": None, "chars": self.chars, "logprob_per_char": None,
                    "unknown": self.unknown}
        return {"word": self.word, "logprob": self.logprob, "chars": self.chars,
                "logprob_per_char": self.per_char}


@dataclasses.dataclass
class Encoded:
    """Words split into those the vocabulary can encode and those it cannot."""

    ids: dict[int, list[int]]  # position in the words -> [boundary, ..., boundary]
    unknown: dict[int, UnknownCharacters]  # position -> why it cannot be encoded

    def letters(self) -> list[str]:
        """Every unknown letter, once, in the order met."""
        return list(dict.fromkeys(c for error in self.unknown.values() for c in error.chars))


def encode_known(tokenizer: Any, words: Sequence[str], source: str) -> Encoded:
    """Each word as ``[boundary, ..., boundary]``, or, where it holds a letter the vocabulary
    never saw, the tokenizer's ``UnknownCharacters`` error."""
    encoded = Encoded({}, {})
    for i, word in enumerate(words):
        try:
            encoded.ids[i] = framed(tokenizer, word, f"{source} {word!r}")
        except UnknownCharacters as error:
            encoded.unknown[i] = error
    return encoded


@torch.inference_mode()
def score_words(model: Any, tokenizer: Any, words: Sequence[str], *, source: str = "word",
                device: Any = "cpu", chunk: int = 1024) -> list[WordScore]:
    """The log-probability of each word, in order, from one fused call per chunk of words. A
    word with letters the model never saw scores -inf and names them; the rest are scored."""
    encoded = encode_known(tokenizer, words, source)
    scores: dict[int, WordScore] = {i: WordScore(words[i], float("-inf"), len(e.word) + 1, e.chars)
                                    for i, e in encoded.unknown.items()}
    known = list(encoded.ids)
    with evaluating(model):
        for start in range(0, len(known), chunk):
            part = known[start:start + chunk]
            data = WordBatches([encoded.ids[i] for i in part], device)
            logits, _ = model(data.inputs)  # (B, T, V)
            nll = F.cross_entropy(logits.transpose(1, 2), data.targets, ignore_index=IGNORE,
                                  reduction="none")  # (B, T), zero at padding
            totals = (-nll.double().sum(dim=1)).tolist()
            scores.update({i: WordScore(words[i], lp, n) for i, lp, n in zip(part, totals, data.lengths.tolist())})
    return [scores[i] for i in range(len(words))]


@dataclasses.dataclass
class Step:
    """One position of an explanation: the token read, the likeliest next tokens, and the
    probability the model gave to the token that really comes next (0 for a letter it never
    saw: ``unknown`` is then true, and the explanation ends there)."""

    read: str
    top: list[tuple[str, float]]
    next: str
    prob: float
    unknown: bool = False


@torch.inference_mode()
def explain_word(model: Any, tokenizer: Any, word: str, *, top_k: int = 5, device: Any = "cpu") -> list[Step]:
    """The notes' walkthrough: at each position, what the model reads and what it expects.

    Where the word holds a letter the model never saw, the walkthrough goes up to it, shows
    what the model expected there, and stops: it cannot read a letter it has no input for."""
    b = tokenizer.boundary_id
    try:
        ids, unknown = framed(tokenizer, word, f"word {word!r}"), None
    except UnknownCharacters as error:
        # the letters before the first unknown one, read as usual, and no end
        unknown = next(c for c in error.word if c in error.chars)
        ids = framed(tokenizer, error.word[:error.word.index(unknown)], f"word {word!r}")[:-1]
    with evaluating(model):
        logits, _ = model(torch.tensor([ids if unknown else ids[:-1]], device=device))  # (1, T, V)
    probs = torch.softmax(logits[0].double(), dim=-1)  # (T, V)
    top = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1)

    def show(i: int) -> str:
        return "." if i == b else tokenizer.decode([i])

    def likeliest(t: int) -> list[tuple[str, float]]:
        return [(show(i), p) for i, p in zip(top.indices[t].tolist(), top.values[t].tolist())]

    steps = [Step(show(ids[t]), likeliest(t), show(ids[t + 1]), float(probs[t, ids[t + 1]]))
             for t in range(len(ids) - 1)]
    if unknown:
        steps.append(Step(show(ids[-1]), likeliest(len(ids) - 1), unknown, 0.0, unknown=True))
    return steps


def sample_statistics(samples: Sequence[str], corpus: Sequence[str]) -> dict[str, float]:
    """Share of novel and of unique samples, and how far their lengths are from the corpus's.

    length_distance is the earth mover's distance between the two length distributions: the
    average number of letters by which one must be shifted to look like the other.
    """
    known = set(corpus)
    novel = sum(w not in known for w in samples) / len(samples)
    unique = len(set(samples)) / len(samples)
    a, b = Counter(map(len, samples)), Counter(map(len, corpus))
    cdf_a = cdf_b = 0.0
    distance = 0.0
    for length in range(max(max(a), max(b)) + 1):
        cdf_a += a[length] / len(samples)
        cdf_b += b[length] / len(corpus)
        distance += abs(cdf_a - cdf_b)
    return {"novel": novel, "unique": unique, "length_distance": distance,
            "mean_length": sum(map(len, samples)) / len(samples),
            "corpus_mean_length": sum(map(len, corpus)) / len(corpus)}
