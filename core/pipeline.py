"""The pipeline: corpus -> tokenizer -> model -> trainer -> run folder -> sampler.

``train()`` runs a validated config end to end; ``load_run()`` reads a run folder back
into a ``TrainedModel`` that samples. The CLI is a thin layer over these two.
"""

from __future__ import annotations

import dataclasses
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from . import config as cfg
from .errors import LetrasError, UsageError
from .plugins import get_host
from .rundir import RunDir
from .training import Progress, TrainingRun, resolve_device, seed_everything, split_words


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


def train(config: cfg.PipelineConfig, *, overwrite: bool = False,
          progress: Progress | None = None) -> TrainResult:
    """Train a validated config, write its run folder and sample from the result."""
    words, tokenizer, encoded = prepare(config)
    run_dir = RunDir(config.output)
    run_dir.prepare(overwrite=overwrite)

    seed_everything(config.seed)
    model = build_model(config, tokenizer.vocab_size)
    header = {"letras_version": letras_version(), "plugins": plugin_versions(),
              "config": config.to_dict(), "tokenizer": tokenizer.state()}

    def save(state: dict[str, Any]) -> None:
        if run.checkpoints == 0:
            run_dir.begin(config.to_yaml())
        run_dir.save_checkpoint({**header, **state})

    run = TrainingRun(seed=config.seed, save=save, emit=get_host().emit, progress=progress,
                      run_dir=str(run_dir.path))
    section = config["trainer"]
    try:
        trainer = section.component.build(options=section.options)
        trainer.fit(model, encoded, run)
    finally:
        if run.checkpoints == 0:
            run_dir.abandon()
    if run.checkpoints == 0:
        raise LetrasError(f"trainer '{section.component.name}' finished without saving a checkpoint")
    run.finish()

    trained = TrainedModel(config=config, tokenizer=tokenizer, model=model.eval(), run_dir=run_dir.path)
    samples = trained.sample(seed=config.seed)
    run_dir.write_text("samples.txt", "".join(f"{w}\n" for w in samples))
    return TrainResult(run_dir.path, run.history, samples)


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
        if "name" in values:
            section = cfg.Section("sampler", get_host().registry("sampler").get(values.pop("name")), None)
        sampler_options = cfg.build_options(section.component, values, "sampler",
                                            where=_option_where)
        sampler = section.component.build(options=sampler_options)
        torch_device = resolve_device(device)
        self.model.to(torch_device)
        return sampler.sample(self.model, self.tokenizer, seed=seed, device=torch_device)


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


def load_run(path: str | Path) -> TrainedModel:
    """Read a run folder back: checkpoint, config, vocabulary and weights."""
    run_dir = RunDir(path)
    data = run_dir.load_checkpoint()
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
