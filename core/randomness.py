"""The random number generators a run draws from: seeded at the start, saved in every
checkpoint and restored on resume, so that a resumed run draws what an unbroken one would."""

from __future__ import annotations

import random
from typing import Any


def seed_everything(seed: int) -> None:
    """Seed Python and torch, so the same config gives the same run on the same machine."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every random number generator a training step may draw from (dropout, Python)."""
    import torch

    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
