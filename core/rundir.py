"""The run directory: what a training run leaves behind, and reading it back.

    runs/<name>/
      config.yaml      the fully resolved config, defaults included
      checkpoint.pt    the last checkpoint: weights, vocabulary, config, trainer state, RNG states
      best.pt          the checkpoint with the lowest validation loss so far
      metrics.jsonl    one line per epoch, appended as each epoch ends
      samples.txt      the words sampled at the end of training
      .lock            held while a process trains here

Files are written atomically (a temporary file in the same folder, then a rename), so an
interrupted write never leaves a damaged checkpoint in place of a good one.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

from .errors import LetrasError, UsageError

CHECKPOINT_FORMAT = "letras.checkpoint"
CHECKPOINT_VERSION = 1
FILES = ("config.yaml", "checkpoint.pt", "best.pt", "metrics.jsonl", "samples.txt")
CHECKPOINTS = {"last": "checkpoint.pt", "best": "best.pt"}


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through ``write(file)`` so that readers see the old or the new file, never half.

    The file gets the permissions of any file the user creates (0666 less the umask), not
    tempfile's private 0600: a run folder is shared with colleagues and served by web servers.
    After the rename the folder itself is synced, so the new name survives a power cut too."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename inside it is on disk; where folders cannot be opened
    (Windows), renames are durable without it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder: the rename stands all the same
        pass
    finally:
        os.close(fd)


class RunDir:
    """One run's folder."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._replace: list[str] = []  # files of an older run, removed when the new one first saves
        self._created = False  # this run made the folder, so it may remove it if it saves nothing
        self._lock: Any = None  # the open lock file while this process trains here

    config_path = property(lambda self: self.path / "config.yaml")
    checkpoint_path = property(lambda self: self.path / "checkpoint.pt")
    best_path = property(lambda self: self.path / "best.pt")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")

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
        self.lock()

    def lock(self) -> None:
        """Hold the folder's lock while training: two processes never write one run."""
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock, as before
            return
        handle = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise UsageError("another letras process is training in this folder", where=str(self.path),
                             hint="wait for it, or choose another output=PATH") from None
        self._lock = handle  # released when the process ends or unlock() is called

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def prepare_resume(self) -> None:
        """Check that a run can continue here; take the lock."""
        if not self.checkpoint_path.is_file():
            raise UsageError("holds no checkpoint.pt to resume from", where=str(self.path),
                             hint="start it with `letras run` (without --resume)")
        self.lock()

    def metrics(self) -> list[dict[str, Any]]:
        """The lines of metrics.jsonl (a damaged last line, from a killed process, is skipped)."""
        if not self.metrics_path.is_file():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Add one epoch's line to metrics.jsonl (a line is appended whole or, if the process is
        killed mid-write, skipped as damaged by ``metrics``)."""
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl (a resumed run rewrites it from its checkpoint's history)."""
        self.write_text("metrics.jsonl", "".join(json.dumps(row) + "\n" for row in rows))

    def begin(self, config_yaml: str) -> None:
        """The new run has something to keep: remove the run it replaces, write config.yaml."""
        for name in self._replace:
            (self.path / name).unlink(missing_ok=True)
        self._replace = []
        self.write_text("config.yaml", config_yaml)

    def abandon(self) -> None:
        """Training failed before saving anything: remove the folder if this run created it."""
        if self._created:
            self.unlock()
            (self.path / ".lock").unlink(missing_ok=True)
            try:
                self.path.rmdir()  # only if empty: never removes anything a user put there
            except OSError:
                pass

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, lambda f: f.write(text.encode("utf-8")))

    # -- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self, payload: dict[str, Any], *, best: bool = False) -> None:
        """Save the last checkpoint (and the best one) atomically; tensors go to the CPU, so a
        model trained on a GPU loads anywhere."""
        import torch

        payload = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
                   **_to_cpu(payload)}
        atomic_write(self.checkpoint_path, lambda f: torch.save(payload, f))
        if best:
            atomic_write(self.best_path, lambda f: torch.save(payload, f))

    def load_checkpoint(self, which: str = "last") -> dict[str, Any]:
        """Read a checkpoint with ``weights_only=True``: no pickled code in it ever runs."""
        import pickle

        import torch

        path = self.path / CHECKPOINTS[which]
        if not self.path.is_dir():
            raise UsageError("no such run folder", where=str(self.path))
        if not path.is_file():
            if which == "best" and self.checkpoint_path.is_file():
                raise UsageError("holds no best.pt (the run held out no validation words)",
                                 where=str(self.path), hint="use the last checkpoint")
            raise UsageError(f"holds no {path.name}", where=str(self.path),
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
