"""Batched sampling that carries the hidden state from letter to letter."""

from __future__ import annotations

from typing import Any, Callable

import torch


@torch.no_grad()
def draw_words(model: Any, tokenizer: Any, pick: Callable[[torch.Tensor], torch.Tensor], *,
               count: int, max_length: int, prefix: str = "", device: Any = None) -> list[str]:
    """``count`` words, each ``prefix`` plus letters chosen by ``pick(logits (B, V)) -> ids (B,)``."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    boundary = tokenizer.boundary_id
    prefix_ids = tokenizer.encode(prefix, source=f"prefix {prefix!r}")
    start = torch.tensor([boundary, *prefix_ids], device=device).expand(count, -1)  # (B, P+1)
    logits, state = model(start)  # the prefix is read once
    logits = logits[:, -1]  # (B, V)
    steps = max(0, max_length - len(prefix_ids))
    drawn = torch.full((count, steps), boundary, dtype=torch.long, device=device)
    finished = torch.zeros(count, dtype=torch.bool, device=device)
    for t in range(steps):
        if t == 0 and not prefix_ids:
            logits = logits.clone()
            logits[:, boundary] = float("-inf")  # a word has at least one letter
        ids = pick(logits)  # (B,)
        drawn[:, t] = ids
        finished |= ids == boundary
        # Reading back `finished` waits for the device; every 8 letters is often enough.
        if t % 8 == 7 and bool(finished.all()):
            break
        logits, state = model(ids[:, None], state)
        logits = logits[:, -1]
    model.train(was_training)
    words = []
    for row in drawn.tolist():
        end = row.index(boundary) if boundary in row else len(row)
        words.append(tokenizer.normalize(prefix) + tokenizer.decode(row[:end]))
    return words


def _generator(seed: int | None, device: Any) -> torch.Generator:
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


class GreedySampler:
    def __init__(self, count: int = 20, max_length: int = 50, prefix: str = ""):
        self.count, self.max_length, self.prefix = count, max_length, prefix

    def pick(self, logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return logits.argmax(dim=-1)

    def sample(self, model: Any, tokenizer: Any, *, seed: int | None = None, device: Any = "cpu") -> list[str]:
        device = torch.device(device)
        generator = _generator(seed, device)
        return draw_words(model, tokenizer, lambda logits: self.pick(logits, generator),
                          count=self.count, max_length=self.max_length, prefix=self.prefix, device=device)


class TemperatureSampler(GreedySampler):
    def __init__(self, temperature: float = 1.0, top_k: int | None = None, **options: Any):
        super().__init__(**options)
        self.temperature, self.top_k = temperature, top_k

    def pick(self, logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        logits = logits / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]  # (B, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)
