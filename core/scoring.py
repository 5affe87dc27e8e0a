"""How much a model likes a word: per-word log-probabilities, letter-by-letter explanations,
and statistics of what it samples."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from .batching import IGNORE, WordBatches


@dataclasses.dataclass
class WordScore:
    """A word's log-probability under the model: every letter and the end of the word."""

    word: str
    logprob: float  # natural log, summed over the predicted characters
    chars: int  # predicted characters: the letters plus the end of word

    @property
    def per_char(self) -> float:
        return self.logprob / self.chars

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "logprob": self.logprob, "chars": self.chars,
                "logprob_per_char": self.per_char}


@torch.inference_mode()
def score_words(model: Any, tokenizer: Any, words: Sequence[str], *, source: str = "word",
                device: Any = "cpu", chunk: int = 1024) -> list[WordScore]:
    """The log-probability of each word, in order, from one fused call per chunk of words."""
    was_training = model.training
    model.eval()
    b = tokenizer.boundary_id
    scores: list[WordScore] = []
    for start in range(0, len(words), chunk):
        part = words[start:start + chunk]
        encoded = [[b, *tokenizer.encode(w, source=f"{source} {w!r}"), b] for w in part]
        data = WordBatches(encoded, device)
        logits, _ = model(data.inputs)  # (B, T, V)
        nll = F.cross_entropy(logits.transpose(1, 2), data.targets, ignore_index=IGNORE,
                              reduction="none")  # (B, T), zero at padding
        totals = (-nll.double().sum(dim=1)).tolist()
        scores += [WordScore(w, lp, n) for w, lp, n in zip(part, totals, data.lengths.tolist())]
    model.train(was_training)
    return scores


@dataclasses.dataclass
class Step:
    """One position of an explanation: the token read, the likeliest next tokens, and the
    probability the model gave to the token that really comes next."""

    read: str
    top: list[tuple[str, float]]
    next: str
    prob: float


@torch.inference_mode()
def explain_word(model: Any, tokenizer: Any, word: str, *, top_k: int = 5, device: Any = "cpu") -> list[Step]:
    """The notes' walkthrough: at each position, what the model reads and what it expects."""
    was_training = model.training
    model.eval()
    b = tokenizer.boundary_id
    ids = [b, *tokenizer.encode(word, source=f"word {word!r}"), b]
    logits, _ = model(torch.tensor([ids[:-1]], device=device))  # (1, T, V)
    probs = torch.softmax(logits[0].double(), dim=-1)  # (T, V)
    top = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1)
    model.train(was_training)

    def show(i: int) -> str:
        return "." if i == b else tokenizer.decode([i])

    return [Step(show(ids[t]), [(show(i), p) for i, p in zip(top.indices[t].tolist(), top.values[t].tolist())],
                 show(ids[t + 1]), float(probs[t, ids[t + 1]]))
            for t in range(len(ids) - 1)]


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
