"""Words from a letras model exported as JSON, in plain Python: no torch, no NumPy, no letras.

    python sampler.py municipios.json -n 10 --seed 7 --temperature 0.8
    python sampler.py municipios.json --probabilities Madrid

Copy this one file beside the JSON (``letras export RUN -f json -o model.json``) wherever
Python 3.8+ runs. It reads the document described in docs/export.md, computes the model's
next-letter probabilities in double precision (those of the torch model, within 1e-6 for
float32 weights) and draws words with the portable generator the html page uses, so one
seed gives the same words here and in the page exported from the same weights.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import math
import struct
import sys
import unicodedata
from operator import mul
from typing import List, Optional, Sequence

FORMAT, FORMAT_VERSION = "letras-model", 1
Vector = List[float]


class Mulberry32:
    """The page's random numbers: mulberry32, 32-bit integer arithmetic that JavaScript
    (Math.imul) and Python compute alike. ``random()`` is uniform in [0, 1)."""

    def __init__(self, seed: int):
        self.state = seed % 2**32

    def random(self) -> float:
        self.state = (self.state + 0x6D2B79F5) % 2**32
        t = self.state
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) % 2**32
        return (t ^ (t >> 14)) / 2**32


def _imul(a: int, b: int) -> int:
    return (a * b) % 2**32


def fnv1a(word: str) -> int:
    """The 32-bit FNV-1a hash of the word's UTF-8 bytes: how known words are stored."""
    h = 0x811C9DC5
    for byte in word.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) % 2**32
    return h


def decode(tensor: dict, dtype: str) -> Vector:
    """The values of an encoded tensor, as Python floats (exact: float16 and float32 fit a double)."""
    data = base64.b64decode(tensor["data"])
    code = {"float16": "e", "float32": "f"}[dtype]
    return list(struct.unpack(f"<{len(data) // struct.calcsize(code)}{code}", data))


def rows(tensor: dict, dtype: str) -> List[Vector]:
    values, width = decode(tensor, dtype), tensor["shape"][-1]
    return [values[i:i + width] for i in range(0, len(values), width)]


def affine(weight: List[Vector], x: Vector, bias: Vector) -> Vector:
    """weight @ x + bias, each sum begun at the bias, in double precision."""
    return [sum(map(mul, row, x), b) for row, b in zip(weight, bias)]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0  # exp(709) overflows a double


class Layer:
    """One recurrent layer: its weights, in torch's layout and gate order."""

    def __init__(self, weights: dict, cell: str, nonlinearity: Optional[str], dtype: str):
        self.cell, self.relu = cell, nonlinearity == "relu"
        self.w_ih, self.w_hh = rows(weights["weight_ih"], dtype), rows(weights["weight_hh"], dtype)
        self.b_ih, self.b_hh = decode(weights["bias_ih"], dtype), decode(weights["bias_hh"], dtype)
        self.size = len(self.w_hh[0])

    def step(self, x: Vector, state: List[Vector]) -> List[Vector]:
        """The layer's next state ([h], or [h, c] for an lstm) after reading ``x``."""
        H, h = self.size, state[0]
        a, b = affine(self.w_ih, x, self.b_ih), affine(self.w_hh, h, self.b_hh)
        if self.cell == "rnn":
            s = [u + v for u, v in zip(a, b)]
            return [[max(v, 0.0) for v in s] if self.relu else [math.tanh(v) for v in s]]
        if self.cell == "lstm":  # gates i, f, g, o
            g = [u + v for u, v in zip(a, b)]
            c = [sigmoid(g[H + j]) * state[1][j] + sigmoid(g[j]) * math.tanh(g[2 * H + j]) for j in range(H)]
            return [[sigmoid(g[3 * H + j]) * math.tanh(c[j]) for j in range(H)], c]
        # gru: gates r, z, n; the reset gate scales the hidden part of n
        r = [sigmoid(a[j] + b[j]) for j in range(H)]
        z = [sigmoid(a[H + j] + b[H + j]) for j in range(H)]
        n = [math.tanh(a[2 * H + j] + r[j] * b[2 * H + j]) for j in range(H)]
        return [[(1.0 - z[j]) * n[j] + z[j] * h[j] for j in range(H)]]


class Model:
    """An exported letras model: ``step`` reads one token, ``sample`` draws words."""

    def __init__(self, document: dict):
        if document.get("format") != FORMAT or document.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} document of version {FORMAT_VERSION}")
        net, dtype = document["network"], document["dtype"]
        self.document, self.alphabet, self.case = document, document["alphabet"], document["case"]
        self.boundary = document["boundary_id"]
        self.vocab_size = len(self.alphabet) + 1
        self.ids = {c: i + 1 for i, c in enumerate(self.alphabet)}
        self.embedding = rows(net["embedding"], dtype) if net["input"] == "embedding" else None
        self.layers = [Layer(w, net["cell"], net.get("nonlinearity"), dtype) for w in net["layers"]]
        self.head = rows(net["head"]["weight"], dtype), decode(net["head"]["bias"], dtype)
        known = (document.get("corpus") or {}).get("known")
        self.known = decode_hashes(known) if known else None

    def zero_state(self) -> List[List[Vector]]:
        parts = 2 if self.document["network"]["cell"] == "lstm" else 1
        return [[[0.0] * layer.size for _ in range(parts)] for layer in self.layers]

    def step(self, token: int, state: List[List[Vector]]) -> tuple:
        """(logits of the next token, the new state) after reading ``token``."""
        if self.embedding is None:
            x = [1.0 if i == token else 0.0 for i in range(self.vocab_size)]
        else:
            x = self.embedding[token]
        new_state = []
        for layer, layer_state in zip(self.layers, state):
            layer_state = layer.step(x, layer_state)
            new_state.append(layer_state)
            x = layer_state[0]
        return affine(self.head[0], x, self.head[1]), new_state

    def normalize(self, word: str) -> str:
        word = unicodedata.normalize("NFC", word)
        return word.upper() if self.case == "upper" else word.lower() if self.case == "lower" else word

    def encode(self, word: str) -> List[int]:
        unknown = sorted({c for c in self.normalize(word) if c not in self.ids})
        if unknown:
            raise ValueError(f"{word!r}: characters {''.join(unknown)!r} are not in the model's alphabet")
        return [self.ids[c] for c in self.normalize(word)]

    def probabilities(self, word: str) -> List[Vector]:
        """The next-token probabilities after the boundary and after each letter of ``word``."""
        state, table = self.zero_state(), []
        for token in [self.boundary, *self.encode(word)]:
            logits, state = self.step(token, state)
            table.append(softmax(logits))
        return table

    def is_known(self, word: str) -> Optional[bool]:
        """Whether ``word`` is in the training corpus (None if the document has no hashes)."""
        if self.known is None:
            return None
        h = fnv1a(self.normalize(word))
        i = bisect.bisect_left(self.known, h)
        return i < len(self.known) and self.known[i] == h

    def sample(self, count: int = 20, *, seed: int = 0, temperature: float = 1.0, top_k: Optional[int] = None,
               prefix: str = "", max_length: int = 50) -> List[str]:
        """``count`` words, drawn one after another from one generator seeded with ``seed``."""
        rng, prefix_ids = Mulberry32(seed), self.encode(prefix)
        state = self.zero_state()
        for token in [self.boundary, *prefix_ids]:  # the prefix is read once, for all the words
            logits, state = self.step(token, state)
        return [self.normalize(prefix) + self._letters(logits, state, rng, temperature, top_k, not prefix_ids,
                                                       max_length - len(prefix_ids)) for _ in range(count)]

    def _letters(self, logits: Vector, state: list, rng: Mulberry32, temperature: float, top_k: Optional[int],
                 first_of_word: bool, steps: int) -> str:
        letters = []
        for n in range(steps):
            weights = distribution(logits, temperature, top_k, self.boundary if n == 0 and first_of_word else None)
            token = draw(weights, rng)
            if token == self.boundary:
                break
            letters.append(self.alphabet[token - 1])
            logits, state = self.step(token, state)
        return "".join(letters)


def decode_hashes(known: dict) -> List[int]:
    data = base64.b64decode(known["data"])
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def softmax(logits: Vector) -> Vector:
    top = max(logits)
    weights = [math.exp(v - top) for v in logits]
    total = sum(weights)
    return [w / total for w in weights]


def distribution(logits: Vector, temperature: float, top_k: Optional[int], forbidden: Optional[int]) -> Vector:
    """Unnormalised weights: the softmax of logits / temperature, cut to the ``top_k``
    likeliest tokens (ties at the k-th kept), ``forbidden`` (the end of a word before its
    first letter) given none."""
    scaled = [v / temperature for v in logits]
    if forbidden is not None:
        scaled[forbidden] = -math.inf
    if top_k is not None and top_k < len(scaled):
        kth = sorted(scaled, reverse=True)[top_k - 1]
        scaled = [v if v >= kth else -math.inf for v in scaled]
    top = max(scaled)
    return [math.exp(v - top) if v != -math.inf else 0.0 for v in scaled]


def draw(weights: Sequence[float], rng: Mulberry32) -> int:
    """The first token whose running sum of weights exceeds u * total (an inverse-CDF draw)."""
    running, cdf = 0.0, []
    for w in weights:
        running += w
        cdf.append(running)
    u = rng.random() * running
    return min(bisect.bisect_right(cdf, u), len(cdf) - 1)


def load(path: str) -> Model:
    with open(path, encoding="utf-8") as file:
        return Model(json.load(file))


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Draw words from a letras model exported as JSON.")
    parser.add_argument("model", help="the JSON file `letras export RUN -f json` wrote")
    parser.add_argument("-n", "--count", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--probabilities", metavar="WORD", help="print the next-letter probabilities along WORD")
    args = parser.parse_args(argv)
    try:
        model = load(args.model)
        if args.probabilities is not None:
            tokens = [".", *model.normalize(args.probabilities)]
            for read, probs in zip(tokens, model.probabilities(args.probabilities)):
                best = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)[:5]
                print(read, "  ".join(f"{(model.alphabet[i - 1] if i else '.')} {probs[i]:.4f}" for i in best))
            return
        settings = model.document["sampler"]
        for word in model.sample(args.count or settings["count"], seed=args.seed,
                                 temperature=args.temperature or settings["temperature"],
                                 top_k=args.top_k or settings["top_k"], prefix=args.prefix,
                                 max_length=args.max_length or settings["max_length"]):
            print(word + ("  (in the corpus)" if model.is_known(word) else ""))
    except (OSError, ValueError, KeyError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
