"""The classification term of the loss (``trainer.label_loss``).

A conditional model classifies a word by Bayes' rule: P(label | word) is P(word | label), the
model's, times the label's share of the training words, normalised over the labels
(letras.core.conditioning.classify_words). Maximum likelihood trains P(word | label) alone;
this term also trains the posterior, adding -log P(word's label | word) for every word. It
reads each word under every label, so it costs one forward (and backward) per label.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from letras.core.batching import IGNORE


def label_log_prior(labels: Sequence[int], count: int, device: torch.device) -> torch.Tensor:
    """log of each label's share of ``labels`` (ids below ``count``): the prior of Bayes' rule."""
    counts = torch.bincount(torch.tensor(list(labels), dtype=torch.long), minlength=count).double()
    return (counts / counts.sum()).log().float().to(device)


def losses_under_every_label(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                             labels: torch.Tensor, log_prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per word (B,): its summed cross-entropy under its own label, and -log P(its label | word).

    The batch is read once under each label, in one call (L copies of it), so that a model
    wrapped for torchrun sees a single forward before its backward."""
    n_labels, batch = log_prior.shape[0], inputs.shape[0]
    every = torch.arange(n_labels, device=labels.device).repeat_interleave(batch)  # (L * B,)
    logits, _ = model(inputs.repeat(n_labels, 1), labels=every)
    nll = F.cross_entropy(logits.transpose(1, 2).float(), targets.repeat(n_labels, 1), ignore_index=IGNORE,
                          reduction="none").sum(dim=1)
    log_likelihood = -nll.view(n_labels, batch).T  # (B, L): log P(word | label)
    own = -log_likelihood.gather(1, labels[:, None]).squeeze(1)
    return own, F.cross_entropy(log_likelihood + log_prior, labels, reduction="none")
