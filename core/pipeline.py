"""The pipeline: corpus -> tokenizer -> model -> trainer -> run folder -> sampler.

``train()`` runs a validated config end to end; ``load_run()`` reads a run folder back
into a ``TrainedModel`` that samples. The CLI is a thin layer over these two.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import config as cfg
from . import distributed
from . import options as opts
from .errors import Interrupted, LetrasError, UsageError
from .plugins import get_host
from .distributed import world_from_env
from .rundir import RunDir
from .training import (Progress, TrainingRun, resolve_device, seed_everything, set_rng_state,
                       split_words)


def letras_version() -> str:
    try:
        return metadata.version("letras")
    except metadata.PackageNotFoundError:
        return "unknown"


def load_words(config: cfg.PipelineConfig) -> list[str]:
    """The corpus of a config, checked: a non-empty list of non-empty strings."""
    section = config["corpus"]
    corpus = section.component.build(options=section.options)
    words = corpus.words()
    where = f"corpus '{section.component.name}'"
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise LetrasError("words() must return a list of strings", where=where)
    words = [w for w in words if w]
    if not words:
        raise UsageError("the corpus holds no words", where=where)
    return words


def build_tokenizer(config: cfg.PipelineConfig, words: Sequence[str]) -> Any:
    """The config's tokenizer, fitted on the words."""
    section = config["tokenizer"]
    tokenizer = section.component.build(options=section.options)
    tokenizer.fit(words)
    return tokenizer


def encode_words(tokenizer: Any, words: Sequence[str], source: str) -> list[list[int]]:
    """Every word as ``[boundary, ..., boundary]`` token ids."""
    b = tokenizer.boundary_id
    return [[b, *tokenizer.encode(w, source=f"{source}, word {i + 1}"), b]
            for i, w in enumerate(words)]


def build_model(config: cfg.PipelineConfig, vocab_size: int) -> Any:
    section = config["model"]
    return section.component.build(vocab_size, options=section.options)


def plugin_versions() -> dict[str, str]:
    """Name -> version of every loaded plugin (saved in checkpoints)."""
    host = get_host()
    return {name: info.version or letras_version() for name, info in host.plugins.items() if info.loaded}


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    history: list[dict[str, Any]]
    samples: list[str]


def prepare(config: cfg.PipelineConfig) -> tuple[list[str], Any, list[list[int]]]:
    """Everything before torch: the words, the fitted tokenizer and the encoded words.

    `letras validate` runs this too, so a config that validates also loads.
    """
    words = load_words(config)
    tokenizer = build_tokenizer(config, words)
    encoded = encode_words(tokenizer, words, f"corpus '{config['corpus'].component.name}'")
    return words, tokenizer, encoded


def train(config: cfg.PipelineConfig, *, overwrite: bool = False, resume: bool = False,
          progress: Progress | None = None) -> TrainResult:
    """Train a validated config, write its run folder and sample from the result.

    With ``resume``, continue the run in the config's output folder from its last checkpoint.
    """
    words, tokenizer, encoded = prepare(config)
    run_dir = RunDir(config.output)
    try:
        return _train(config, words, tokenizer, encoded, run_dir, overwrite, resume, progress)
    finally:
        run_dir.unlock()  # on success, on a mistake, on Ctrl-C: the folder is free again


def _train(config: cfg.PipelineConfig, words: list[str], tokenizer: Any, encoded: list[list[int]],
           run_dir: RunDir, overwrite: bool, resume: bool, progress: Progress | None) -> TrainResult:
    world = world_from_env()  # under torchrun, rank 0 alone writes the run folder
    saved = None
    if resume:
        if world.is_main:
            run_dir.prepare_resume()
        saved = run_dir.load_checkpoint()
        check_resumable(config, saved.get("config", {}), run_dir)
        tokenizer.load_state(saved["tokenizer"])  # the ids the weights were trained with
        encoded = encode_words(tokenizer, words, f"corpus '{config['corpus'].component.name}'")
    elif world.is_main:
        run_dir.prepare(overwrite=overwrite)

    seed_everything(config.seed)
    model = build_model(config, tokenizer.vocab_size)
    header = {"letras_version": letras_version(), "plugins": plugin_versions(),
              "config": config.to_dict(), "tokenizer": tokenizer.state()}

    def save(payload: dict[str, Any], best: bool) -> None:
        if run.checkpoints == 0 and not resume:
            run_dir.begin(config.to_yaml())
        run_dir.save_checkpoint({**header, **payload}, best=best)

    history = []
    if saved is not None:
        model.load_state_dict(saved["model"])
        history = list(saved.get("history") or [])  # the epochs up to the checkpoint, no more
        if world.is_main:
            run_dir.write_metrics(history)
            run_dir.write_text("config.yaml", config.to_yaml())  # harmless changes, e.g. more epochs
    run = TrainingRun(seed=config.seed, save=save if world.is_main else None,
                      emit=get_host().emit if world.is_main else None,
                      progress=progress if world.is_main else None,
                      run_dir=str(run_dir.path), history=history, world=world,
                      resume_state=saved.get("trainer_state") if saved else None,
                      best_val=saved.get("best_val") if saved else None)
    section = config["trainer"]
    try:
        trainer = section.component.build(options=section.options)
        if saved is not None:
            set_rng_state(saved["rng"])  # dropout continues exactly where it stopped
        with _stop_on_signals(run):
            trainer.fit(model, encoded, run)
    finally:
        distributed.shutdown()
        if run.checkpoints == 0 and not resume and world.is_main:
            run_dir.abandon()
    if not world.is_main:
        return TrainResult(run_dir.path, run.history, [])
    if run.stop_requested:
        signame = signal.Signals(run.stop_signal).name
        where = f"epoch {run.history[-1]['epoch']}" if run.history else "the first epoch"
        raise Interrupted(f"interrupted by {signame} after {where}; the checkpoint in {run_dir.path} "
                          f"is saved: continue with `letras resume {run_dir.path}`", run.stop_signal)
    if run.checkpoints == 0 and not resume:
        raise LetrasError(f"trainer '{section.component.name}' finished without saving a checkpoint")
    run.finish()

    trained = TrainedModel(config=config, tokenizer=tokenizer, model=model.eval(), run_dir=run_dir.path)
    samples = trained.sample(seed=config.seed)
    run_dir.write_text("samples.txt", "".join(f"{w}\n" for w in samples))
    return TrainResult(run_dir.path, run.history, samples)


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
    new, old = _flatten(config.to_dict()), _flatten(saved)
    changed = [key for key in sorted(set(new) | set(old))
               if new.get(key) != old.get(key) and key not in safe and not key.startswith("sampler.")]
    if changed:
        shown = ", ".join(f"{key} ({old.get(key)!r} -> {new.get(key)!r})" for key in changed)
        raise UsageError(f"cannot resume with a changed config: {shown}", where=str(run_dir.path),
                         hint="these change what is trained; start a new run with another output=PATH "
                              "or --overwrite")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclasses.dataclass
class Sample:
    """A generated word, its log-probability under the model, and whether it is new
    (None when the corpus can no longer be read)."""

    word: str
    logprob: float
    novel: bool | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainedModel:
    """A trained model with its vocabulary and config: what notebooks and the CLI sample from."""

    config: cfg.PipelineConfig
    tokenizer: Any
    model: Any
    run_dir: Path | None = None
    checkpoint: dict[str, Any] | None = None

    def sample(self, *, seed: int | None = None, device: str = "cpu", **options: Any) -> list[str]:
        """Words from the run's sampler; ``options`` override its config (count, prefix, ...)."""
        section = self.config["sampler"]
        values = {**dataclasses.asdict(section.options),
                  **{k: v for k, v in options.items() if v is not None}}
        sampler_options = cfg.build_options(section.component, values, "sampler", where=_option_where)
        sampler = section.component.build(options=sampler_options)
        torch_device = resolve_device(device)
        self.model.to(torch_device)
        return sampler.sample(self.model, self.tokenizer, seed=seed, device=torch_device)

    def with_sampler(self, name: str, **options: Any) -> TrainedModel:
        """The same model with another registered sampler (``greedy``, ``beam``, a plugin's),
        given only ``options``: the run's sampler options belong to the run's sampler."""
        component = get_host().registry("sampler").get(name)
        built = cfg.build_options(component, options, "sampler", where=_option_where)
        sections = {**self.config.sections, "sampler": cfg.Section("sampler", component, built)}
        return dataclasses.replace(self, config=dataclasses.replace(self.config, sections=sections))

    def generate(self, count: int, *, novel: bool = False, unique: bool = False,
                 min_length: int | None = None, seed: int | None = None, device: str = "cpu",
                 max_draws: int | None = None, **options: Any) -> list[Sample]:
        """Exactly ``count`` words with their log-probabilities, drawn in batches and
        rejected until they fit: ``novel`` (not in the corpus, after the tokenizer's
        normalisation), ``unique``, ``min_length``. At most ``max_draws`` words are drawn
        (default 200 per word asked for); fewer fitting words than asked is an error."""
        import random

        if count < 1:
            raise UsageError(f"count must be at least 1, got {count}")
        if novel:  # the corpus must be readable to tell what is new
            known: set[str] | None = {self.tokenizer.normalize(w) for w in load_words(self.config)}
        else:
            corpus = self.corpus_words()
            known = None if corpus is None else set(corpus)
        max_draws = max_draws or 200 * count
        rng = random.Random(seed)
        kept: dict[str, None] = {}
        words: list[str] = []
        drawn = 0
        while len(words) < count and drawn < max_draws:
            batch = min(max(2 * (count - len(words)), 256), max_draws - drawn, 10_000)
            for word in self.sample(seed=rng.randrange(2**62), device=device, count=batch, **options):
                drawn += 1
                if (novel and word in known) or (unique and word in kept) or \
                        (min_length is not None and len(word) < min_length):
                    continue
                kept[word] = None
                words.append(word)
                if len(words) == count:
                    break
        if len(words) < count:
            wanted = " ".join(f for f, on in (("novel", novel), ("unique", unique)) if on)
            raise LetrasError(f"the model gave only {len(words)} {wanted} words of the {count} asked for "
                              f"in {drawn:,} draws",
                              hint="ask for fewer, raise the temperature, or train on more words")
        scores = self.score(words, device=device)
        return [Sample(s.word, s.logprob, None if known is None else s.word not in known) for s in scores]

    def corpus_words(self) -> list[str] | None:
        """The training corpus as the tokenizer sees it; None if it can no longer be read."""
        try:
            return [self.tokenizer.normalize(w) for w in load_words(self.config)]
        except LetrasError:
            return None

    def score(self, words: Sequence[str], *, device: str = "cpu") -> list[Any]:
        """Each word's log-probability (letters and end of word), total and per character."""
        from .scoring import score_words

        torch_device = resolve_device(device)
        return score_words(self.model.to(torch_device), self.tokenizer, list(words), device=torch_device)

    def explain(self, word: str, *, top_k: int = 5, device: str = "cpu") -> list[Any]:
        """Letter by letter: what the model reads, its likeliest next letters, and the
        probability it gave to the letter that really follows."""
        from .scoring import explain_word

        torch_device = resolve_device(device)
        return explain_word(self.model.to(torch_device), self.tokenizer, word, top_k=top_k, device=torch_device)

    def sample_statistics(self, count: int = 1000, *, seed: int = 0, device: str = "cpu") -> dict[str, Any] | None:
        """Novel and unique shares of ``count`` samples, and their length distance to the
        corpus (None when the corpus can no longer be read)."""
        from .scoring import sample_statistics

        corpus = self.corpus_words()
        if corpus is None:
            return None
        return {"count": count, **sample_statistics(self.sample(seed=seed, device=device, count=count), corpus)}

    def validation_words(self) -> list[str]:
        """The words the run held out for validation (its corpus, split as in training)."""
        split = (self.checkpoint or {}).get("split") or {}
        if not split.get("val_fraction"):
            raise UsageError("this run held out no validation words", hint="evaluate a word file with --file")
        words = load_words(self.config)
        return split_words(words, split["val_fraction"], split["seed"])[1]

    def evaluate(self, words: Sequence[str] | None = None, *, source: str = "validation split",
                 device: str = "cpu") -> dict[str, Any]:
        """Loss in nats and bits per character, and perplexity, over ``words`` (default: the
        validation split), weighted by characters."""
        import math

        from .batching import WordBatches, mean_loss

        words = self.validation_words() if words is None else list(words)
        if not words:
            raise UsageError("no words to evaluate", where=source)
        encoded = encode_words(self.tokenizer, words, source)
        torch_device = resolve_device(device)
        data = WordBatches(encoded, torch_device)
        loss = mean_loss(self.model.to(torch_device), data)
        return {"loss": loss, "bpc": loss / math.log(2), "perplexity": math.exp(loss),
                "words": len(words), "chars": data.chars, "source": source}


def _option_where(dotted: str) -> str:
    return f"option --{dotted.split('.')[-1].replace('_', '-')}"


def load_run(path: str | Path, checkpoint: str = "last") -> TrainedModel:
    """Read a run folder back: the checkpoint (``last`` or ``best``), config, vocabulary, weights."""
    run_dir = RunDir(path)
    data = run_dir.load_checkpoint(checkpoint)
    try:
        config = cfg.validate(data["config"], source=f"{run_dir.checkpoint_path} config")
    except UsageError as exc:
        raise LetrasError(f"the run's config no longer validates: {exc}",
                          hint="is a plugin it used still installed? see `letras plugins`") from None
    except KeyError:
        raise LetrasError("checkpoint has no config", where=str(run_dir.checkpoint_path)) from None
    tokenizer = config["tokenizer"].component.build(options=config["tokenizer"].options)
    tokenizer.load_state(data["tokenizer"])
    model = build_model(config, tokenizer.vocab_size)
    try:
        model.load_state_dict(data["model"])
    except (RuntimeError, KeyError) as exc:
        raise LetrasError(f"the weights do not fit the model the config describes ({str(exc).splitlines()[0]})",
                          where=str(run_dir.checkpoint_path)) from None
    model.eval()
    return TrainedModel(config=config, tokenizer=tokenizer, model=model, run_dir=run_dir.path,
                        checkpoint=data)
