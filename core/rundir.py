"""The run directory: what a training run leaves behind, and reading it back.

    runs/<name>/
      config.yaml      the fully resolved config, defaults included
      checkpoint.pt    weights, vocabulary, config, optimizer state, epoch and step
      metrics.jsonl    one line per epoch (written by the built-in metrics plugin)
      samples.txt      the words sampled at the end of training

Files are written atomically (a temporary file in the same folder, then a rename), so an
interrupted write never leaves a damaged checkpoint in place of a good one.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

from .errors import LetrasError, UsageError

CHECKPOINT_FORMAT = "letras.checkpoint"
CHECKPOINT_VERSION = 1
FILES = ("config.yaml", "checkpoint.pt", "metrics.jsonl", "samples.txt")


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through ``write(file)`` so that readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """One run's folder."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.yaml")
    checkpoint_path = property(lambda self: self.path / "checkpoint.pt")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    samples_path = property(lambda self: self.path / "samples.txt")

    def prepare(self, *, overwrite: bool = False) -> None:
        """Check, before any training, that a new run can be written here.

        A finished run is never replaced unless ``overwrite``; even then its files stay
        until the new run saves its first checkpoint (``begin``).
        """
        if self.path.exists() and not self.path.is_dir():
            raise UsageError("exists and is not a folder", where=str(self.path),
                             hint="choose another output with output=PATH")
        self._replace = [name for name in FILES if (self.path / name).exists()]
        if self._replace and not overwrite:
            raise UsageError("already holds a run", where=str(self.path),
                             hint="pass --overwrite to replace it, or choose another output=PATH")
        self._created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            tempfile.NamedTemporaryFile(dir=self.path, prefix=".letras-probe-").close()
        except OSError as exc:
            raise LetrasError(f"cannot write here: {exc.strerror}", where=str(self.path)) from None

    def begin(self, config_yaml: str) -> None:
        """The new run has something to keep: remove the run it replaces, write config.yaml."""
        for name in getattr(self, "_replace", []):
            (self.path / name).unlink(missing_ok=True)
        self._replace = []
        self.write_text("config.yaml", config_yaml)

    def abandon(self) -> None:
        """Training failed before saving anything: remove the folder if this run created it."""
        if getattr(self, "_created", False):
            try:
                self.path.rmdir()  # only if empty: never removes anything a user put there
            except OSError:
                pass

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, lambda f: f.write(text.encode("utf-8")))

    # -- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self, payload: dict[str, Any]) -> None:
        """Save a checkpoint atomically; tensors are moved to the CPU so it loads anywhere."""
        import torch

        payload = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
                   **_to_cpu(payload)}
        atomic_write(self.checkpoint_path, lambda f: torch.save(payload, f))

    def load_checkpoint(self) -> dict[str, Any]:
        """Read the checkpoint with ``weights_only=True``: no pickled code in it ever runs."""
        import pickle

        import torch

        path = self.checkpoint_path
        if not self.path.is_dir():
            raise UsageError("no such run folder", where=str(self.path))
        if not path.is_file():
            raise UsageError("holds no checkpoint.pt", where=str(self.path),
                             hint="train first with `letras run`")
        if not zipfile.is_zipfile(path):  # torch.save always writes a zip archive
            raise LetrasError("damaged or not a letras checkpoint (not a torch.save archive)",
                              where=str(path))
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            lines = [line for line in str(exc).splitlines() if "global" in line.lower()]
            detail = lines[0].strip() if lines else "it is not plain weights"
            raise LetrasError(f"refused to load: the file carries pickled code, and nothing in it "
                              f"was run ({detail})", where=str(path)) from None
        except Exception as exc:  # a truncated archive, a damaged record ...
            first = str(exc).splitlines()[0] if str(exc) else "unreadable"
            raise LetrasError(f"damaged or not a letras checkpoint ({type(exc).__name__}: {first})",
                              where=str(path)) from None
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise LetrasError("not a letras checkpoint", where=str(path))
        if data.get("format_version", 0) > CHECKPOINT_VERSION:
            raise LetrasError(f"written by a newer letras (checkpoint format "
                              f"{data['format_version']}); upgrade letras", where=str(path))
        return data

def _to_cpu(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value
