"""Training progress on stderr: a bar with the running loss on a terminal, a line per
epoch's metrics, and nothing at all with ``--quiet``."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """Training progress on stderr: a bar with the running loss on a terminal, lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False, interval: float = 2.0):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last = 0.0
        self._last_line = float("-inf")

    def step(self, step: int, total: int | None, epoch: int, loss: float | None) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if now - self._last < (0.1 if self.tty else self.interval) and step != total:
            return
        self._last = now
        loss_text = f"loss {loss:.4f}" if loss is not None else ""
        if self.tty:
            width = 30
            done = int(width * step / total) if total else 0
            bar = "#" * done + "-" * (width - done)
            of = f"/{total}" if total else ""
            self.stream.write(f"\r[{bar}] step {step}{of} epoch {epoch} {loss_text}  ")
        else:
            of = f"/{total}" if total else ""
            self.stream.write(f"step {step}{of} epoch {epoch} {loss_text}\n")
        self.stream.flush()

    def line(self, text: str, *, force: bool = True) -> None:
        """Print a line; with ``force=False`` only if none came in the last ``interval`` seconds."""
        if self.quiet:
            return
        now = time.monotonic()
        if not force and now - self._last_line < self.interval:
            return
        self._last_line = now
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()


def format_metrics(m: dict[str, Any]) -> str:
    parts = [f"epoch {m.get('epoch')}", f"step {m.get('step')}"]
    if m.get("train_loss") is not None:
        parts.append(f"train {m['train_loss']:.4f}")
    if m.get("val_loss") is not None:
        parts.append(f"val {m['val_loss']:.4f}")
    if m.get("chars_per_s") is not None:
        parts.append(f"{m['chars_per_s']:,.0f} chars/s")
    if m.get("seconds") is not None:
        parts.append(f"{m['seconds']:.1f}s")
    return "  ".join(parts)
