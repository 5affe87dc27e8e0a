"""`letras plot`: training and validation loss per epoch, as a PNG (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path

from .errors import LetrasError, UsageError
from .rundir import RunDir


def plot_losses(run_dir: str, output: str | None = None) -> str:
    """Write the loss curves of a run to ``output`` (default RUN_DIR/loss.png); returns a line to show."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no screen needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise LetrasError("plotting needs matplotlib, which is not installed",
                          hint="pip install 'letras[plot]'") from None
    folder = RunDir(run_dir)
    if not folder.path.is_dir():
        raise UsageError("no such run folder", where=run_dir)
    rows = folder.metrics()
    if not rows:
        raise UsageError("holds no metrics.jsonl to plot", where=run_dir, hint="train first with `letras run`")
    epochs = [r["epoch"] for r in rows]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    axes.plot(epochs, [r["train_loss"] for r in rows], label="train", marker="." if len(rows) < 50 else None)
    val = [(r["epoch"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    if val:
        axes.plot(*zip(*val), label="validation", marker="." if len(rows) < 50 else None)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss (nats per character)")
    axes.set_title(f"{folder.path.name}")
    axes.grid(alpha=0.3)
    axes.legend()
    path = Path(output) if output else folder.path / "loss.png"
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return f"Wrote {path}"
