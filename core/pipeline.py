"""Training: corpus -> tokenizer -> model -> trainer -> run folder -> sampler.

``train()`` runs a validated config end to end, or resumes it from its last checkpoint; the
CLI's `run` and `resume` are thin layers over it. ``letras.core.trained`` reads a run back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from . import config as cfg
from . import distributed
from . import options as opts
from .assemble import build_model, encode_words, letras_version, plugin_versions, prepare_corpus
from .distributed import world_from_env
from .errors import Interrupted, LetrasError, UsageError
from .labels import CorpusData, LabelSet
from .plugins import get_host
from .finetune import load_origin, transplant
from .rundir import FILES, RunDir, atomic_write
from .progress import Progress
from .randomness import seed_everything, set_rng_state
from .trained import TrainedModel
from .training import TrainingRun


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    history: list[dict[str, Any]]
    samples: list[str]


def train(config: cfg.PipelineConfig, *, overwrite: bool = False, resume: bool = False,
          progress: Progress | None = None) -> TrainResult:
    """Train a validated config, write its run folder and sample from the result.

    With ``resume``, continue the run in the config's output folder from its last checkpoint.
    With ``config.init_from``, start a new run from the weights of the run it names.
    """
    origin = load_origin(config)
    data, tokenizer, encoded = prepare_corpus(config, origin)
    if progress is not None and config.notes:
        progress.line(config.notes[0])  # what `auto` became, on one line
    run_dir = RunDir(config.output)
    try:
        return _train(config, data, tokenizer, encoded, run_dir, overwrite, resume, progress, origin)
    finally:
        run_dir.unlock()  # on success, on a mistake, on Ctrl-C: the folder is free again


def train_words(words: str | Path | Sequence[str], overrides: Sequence[str] = (), *,
                init_from: str | Path | None = None, output: str | Path | None = None,
                overwrite: bool = False, progress: Progress | None = None) -> TrainResult:
    """Train a word list with the shipped word-list pipeline, sized to the list, as
    `letras run LIST` does: ``words`` is a file with one word per line, or the words
    themselves (kept in ``<output>/words.txt``). ``overrides`` are KEY=VALUE strings."""
    extra = [*overrides, *([f"init_from={init_from}"] if init_from else []),
             *([f"output={output}"] if output else [])]
    if isinstance(words, (str, Path)):
        return train(cfg.word_list_config(str(words), extra), overwrite=overwrite, progress=progress)
    config = cfg.word_list_config("-", extra)
    keep_words(config, words, overwrite=overwrite)
    return train(config, overwrite=overwrite, progress=progress)


def keep_words(config: cfg.PipelineConfig, words: Iterable[str], *, overwrite: bool = False) -> None:
    """Write a list given on stdin (or as Python strings) into its run folder, where the
    config's corpus reads it, without touching a run already there unless ``overwrite``."""
    folder = RunDir(config.output)
    if not overwrite and any((folder.path / name).exists() for name in FILES):
        raise UsageError("already holds a run", where=str(folder.path),
                         hint="pass --overwrite to replace it, or choose another output=PATH")
    text = "".join(f"{w.strip()}\n" for w in words if w.strip())
    if not text:
        raise UsageError("the word list is empty", where="stdin")
    try:
        folder.path.mkdir(parents=True, exist_ok=True)
        atomic_write(folder.path / cfg.STDIN_WORDS, lambda f: f.write(text.encode("utf-8")))
    except OSError as exc:
        raise LetrasError(f"cannot write here: {exc.strerror}", where=str(folder.path)) from None


def _train(config: cfg.PipelineConfig, data: CorpusData, tokenizer: Any, encoded: list[list[int]],
           run_dir: RunDir, overwrite: bool, resume: bool, progress: Progress | None,
           origin: dict[str, Any] | None = None) -> TrainResult:
    labels = LabelSet.of(data.labels) if data.labels is not None else None
    world = world_from_env()  # under torchrun, rank 0 alone writes the run folder
    saved = None
    if resume:  # the vocabulary and labels the weights were trained with
        saved, labels, encoded = _restore(config, run_dir, tokenizer, labels, data.words, world)

    seed_everything(config.seed)
    model = build_model(config, tokenizer.vocab_size, labels)
    if origin is not None and saved is None:
        note = transplant(model, tokenizer, config, origin, labels)  # before the folder: a misfit leaves none
        config.notes.append(note[0].upper() + note[1:])
        if progress is not None:
            progress.line(config.notes[-1])
    if saved is None and world.is_main:
        run_dir.prepare(overwrite=overwrite)
    history = _continue(config, run_dir, model, saved, world) if saved is not None else []
    header = {"letras_version": letras_version(), "plugins": plugin_versions(),
              "config": config.to_dict(), "tokenizer": tokenizer.state(),
              **({"labels": labels.state()} if labels else {})}
    main = world.is_main
    run = TrainingRun(seed=config.seed, save=_Saver(run_dir, header, config, resume) if main else None,
                      record=run_dir.append_metrics if main else None, emit=get_host().emit if main else None,
                      progress=progress if main else None, run_dir=str(run_dir.path), history=history, world=world,
                      resume_state=saved.get("trainer_state") if saved else None,
                      best_val=saved.get("best_val") if saved else None,
                      labels=labels.ids(data.labels) if labels else None,
                      label_names=labels.names if labels else None, weights=data.weights)
    _fit(config, model, encoded, run, run_dir, saved, resume)
    if not main:
        return TrainResult(run_dir.path, run.history, [])
    _check_finished(config, run, run_dir, resume)
    run.finish()
    trained = TrainedModel(config=config, tokenizer=tokenizer, model=model.eval(), run_dir=run_dir.path,
                           labels=labels)
    samples = trained.sample(seed=config.seed)
    run_dir.write_text("samples.txt", "".join(f"{w}\n" for w in samples))
    return TrainResult(run_dir.path, run.history, samples)


def _restore(config: cfg.PipelineConfig, run_dir: RunDir, tokenizer: Any, labels: LabelSet | None,
             words: list[str], world: Any) -> tuple[dict[str, Any], LabelSet | None, list[list[int]]]:
    """A resumed run's checkpoint, checked against the config, with the vocabulary and the label
    ids its weights were trained with, and the words encoded with them."""
    if world.is_main:
        run_dir.prepare_resume()
    saved = run_dir.load_checkpoint()
    check_resumable(config, saved.get("config", {}), run_dir)
    tokenizer.load_state(saved["tokenizer"])
    if labels:  # an unknown label is an error
        labels = LabelSet.from_state(saved.get("labels")) or labels
    return saved, labels, encode_words(tokenizer, words, f"corpus '{config['corpus'].component.name}'")


def _continue(config: cfg.PipelineConfig, run_dir: RunDir, model: Any, saved: dict[str, Any], world: Any) -> list:
    """The saved weights in the model; the epochs up to the checkpoint, no more, as the run's
    history and metrics.jsonl; config.yaml with the harmless changes (more epochs, say)."""
    model.load_state_dict(saved["model"])
    history = list(saved.get("history") or [])
    if world.is_main:
        run_dir.write_metrics(history)
        comments = [line[2:] for line in _read_lines(run_dir.config_path) if line.startswith("# ")]
        config.notes = config.notes or comments  # the choices made when the run began
        run_dir.write_text("config.yaml", config.to_yaml())
    return history


class _Saver:
    """Saves a checkpoint (``TrainingRun``'s ``save``): the run's header with the trainer's
    payload. A new run's first save is where the run it replaces goes away and config.yaml is
    written."""

    def __init__(self, run_dir: RunDir, header: dict[str, Any], config: cfg.PipelineConfig, resume: bool):
        self.run_dir, self.header, self.config = run_dir, header, config
        self.begun = resume  # a resumed run's folder already holds its run

    def __call__(self, payload: dict[str, Any], best: bool) -> None:
        if not self.begun:
            self.run_dir.begin(self.config.to_yaml())
            self.begun = True
        self.run_dir.save_checkpoint({**self.header, **payload}, best=best)


def _fit(config: cfg.PipelineConfig, model: Any, encoded: list[list[int]], run: TrainingRun, run_dir: RunDir,
         saved: dict[str, Any] | None, resume: bool) -> None:
    """The trainer's fit, stopping cleanly on Ctrl-C or SIGTERM; a new run that saved nothing
    leaves no folder behind."""
    try:
        trainer = config["trainer"].component.build(options=config["trainer"].options)
        if saved is not None:
            set_rng_state(saved["rng"])  # dropout continues exactly where it stopped
        with _stop_on_signals(run):
            trainer.fit(model, encoded, run)
        distributed.barrier()  # every process finishes its work before any leaves the group
    finally:
        distributed.shutdown()
        if run.checkpoints == 0 and not resume and run.world.is_main:
            run_dir.abandon()


def _check_finished(config: cfg.PipelineConfig, run: TrainingRun, run_dir: RunDir, resume: bool) -> None:
    """Interrupted (saved, and how to go on), or a trainer that never saved: both said plainly."""
    if run.stop_requested:
        signame = signal.Signals(run.stop_signal).name
        where = f"epoch {run.history[-1]['epoch']}" if run.history else "the first epoch"
        raise Interrupted(f"interrupted by {signame} after {where}; the checkpoint in {run_dir.path} "
                          f"is saved: continue with `letras resume {run_dir.path}`", run.stop_signal)
    if run.checkpoints == 0 and not resume:
        raise LetrasError(f"trainer '{config['trainer'].component.name}' finished without saving a checkpoint")


@contextlib.contextmanager
def _stop_on_signals(run: TrainingRun) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM asks the trainer to save and stop; a second one quits now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if run.stop_requested:
            raise KeyboardInterrupt
        run.request_stop(signum)
        run.progress.line(f"{signal.Signals(signum).name}: saving a checkpoint and stopping "
                          "(again to quit at once)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def check_resumable(config: cfg.PipelineConfig, saved: dict[str, Any], run_dir: RunDir) -> None:
    """Refuse to resume with a config that would train something else; name the keys."""
    safe = {"name", "output"}
    if config["trainer"].component.name == saved.get("trainer", {}).get("name"):
        safe |= {f"trainer.{key}" for key in opts.resume_safe_fields(config["trainer"].component.options)}
    new, old = _flatten(config.to_dict()), _flatten(_with_defaults(saved))
    changed = [key for key in sorted(set(new) | set(old))
               if new.get(key) != old.get(key) and key not in safe and not key.startswith("sampler.")]
    if changed:
        shown = ", ".join(f"{key} ({old.get(key)!r} -> {new.get(key)!r})" for key in changed)
        raise UsageError(f"cannot resume with a changed config: {shown}", where=str(run_dir.path),
                         hint="these change what is trained; start a new run with another output=PATH "
                              "or --overwrite")


def _with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config with the defaults of options added since it was saved (e.g.
    ``model.label_dim``): a run from before them resumes as it was. As saved if it no longer
    validates (the comparison then names what differs)."""
    try:
        return cfg.validate(saved, source="the checkpoint's config").to_dict()
    except LetrasError:
        return saved


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
