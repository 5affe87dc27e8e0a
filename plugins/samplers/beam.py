"""Beam search: the most probable words, not random ones."""

from __future__ import annotations

from typing import Any

import torch

from letras.core import LetrasError
from letras.core.batching import evaluating
from letras.core.options import given

from . import BeamOptions
from .rows import select_rows
from .sampling import letters_after


class BeamSampler:
    """Keeps the ``width`` most probable partial words at each step. A candidate that ends
    the word (the boundary token) among the ``width`` best is finished; the others go on.
    Returns the ``count`` most probable finished words, most probable first; width 1 is greedy."""

    def __init__(self, options: BeamOptions | None = None, **values: Any):
        """Built with its validated ``BeamOptions`` (``values`` for one made by hand in Python)."""
        self.options = given(BeamOptions, options, values)
        o = self.options
        self.width, self.count, self.max_length, self.prefix = o.width, o.count, o.max_length, o.prefix

    @torch.inference_mode()
    def sample(self, model: Any, tokenizer: Any, *, seed: int | None = None, device: Any = "cpu",
               constraint: Any = None) -> list[str]:
        """Under a ``constraint``, each beam carries its automaton state, and a candidate
        that cannot become an accepted word within the room left is never kept."""
        with evaluating(model):
            finished = self._search(model, tokenizer, torch.device(device), constraint)
        text = tokenizer.normalize(self.prefix)
        return [text + tokenizer.decode(ids) for _, ids in finished]

    def _search(self, model: Any, tokenizer: Any, device: torch.device,
                constraint: Any) -> list[tuple[float, list[int]]]:
        """The ``count`` most probable finished words: (log-probability, letters after the prefix)."""
        b = tokenizer.boundary_id
        prefix_ids = tokenizer.encode(self.prefix, source=f"prefix {self.prefix!r}")
        logits, state = model(torch.tensor([[b, *prefix_ids]], device=device))
        steps = letters_after(self.prefix, prefix_ids, self.max_length)
        mask = None
        if constraint is not None:
            from letras.core.letter_mask import LetterMask

            mask = LetterMask(constraint, device)
            at = mask.start(prefix_ids)  # (W, 3): each beam's state in the automaton
        beams: list[list[int]] = [[]]  # the letters each beam drew after the prefix
        scores = torch.zeros(1, dtype=torch.float64, device=device)  # their log-probabilities
        finished: list[tuple[float, list[int]]] = []
        for t in range(steps):
            candidates = scores[:, None] + torch.log_softmax(logits[:, -1].double(), dim=-1)  # (W, V)
            if mask is not None:
                candidates = candidates.masked_fill(mask.blocked(at, steps - t), float("-inf"))
            if t == 0 and not prefix_ids:
                candidates[:, b] = float("-inf")  # a word has at least one letter
            vocab = candidates.shape[1]
            top, flat = torch.topk(candidates.flatten(), min(2 * self.width, candidates.numel()))
            keep_rows, keep_ids, keep_scores = [], [], []
            for rank, (score, index) in enumerate(zip(top.tolist(), flat.tolist())):
                if score == float("-inf") or len(keep_rows) == self.width:
                    break
                row, token = divmod(index, vocab)
                if token == b or t == steps - 1:  # the end, or a word as long as max_length
                    if rank < self.width:
                        finished.append((score, beams[row] + ([] if token == b else [token])))
                else:
                    keep_rows.append(row)
                    keep_ids.append(token)
                    keep_scores.append(score)
            finished = sorted(finished, key=lambda item: -item[0])[: self.count]
            # a partial word only loses probability as it grows: stop when none can enter the top
            if not keep_rows or (len(finished) == self.count and keep_scores[0] <= finished[-1][0]):
                break
            rows = torch.tensor(keep_rows, device=device)
            beams = [beams[r] + [i] for r, i in zip(keep_rows, keep_ids)]
            scores = torch.tensor(keep_scores, dtype=torch.float64, device=device)
            if mask is not None:
                at = mask.step(at[rows], torch.tensor(keep_ids, device=device))
            chosen = select_rows(state, rows, len(candidates))
            if chosen is None:
                raise LetrasError("beam search needs a model whose state is laid out like nn.RNN's "
                                  "(tensors with the batch at dimension 1)")
            logits, state = model(torch.tensor(keep_ids, device=device)[:, None], chosen)
        return finished
