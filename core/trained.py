"""A trained run read back: sample, generate new words, score, explain, evaluate.

What notebooks use, and what `letras sample`, `score`, `explain` and `eval` call.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import config as cfg
from .assemble import build_model, load_corpus, load_words
from .errors import LetrasError, UsageError
from .labels import DEFAULT_GUIDANCE, LabelSet
from .plugins import get_host
from .rundir import CHECKPOINTS, RunDir
from .devices import autocast, resolve_device, resolve_precision
from .split import split_words


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
    labels: LabelSet | None = None  # a run trained on a labelled corpus: its labels

    def sample(self, *, seed: int | None = None, device: str = "cpu", precision: str = "fp32",
               suffix: str | None = None, contains: Sequence[str] = (), pattern: str | None = None,
               ban: Sequence[str] = (), ban_exact: bool = False, exclude: Iterable[str] = (),
               min_length: int | None = None, novel: bool = False, unique: bool = False,
               exact: bool = False, max_draws: int | None = None, label: str | dict[str, float] | None = None,
               blend: str = "mixture", guidance: float = DEFAULT_GUIDANCE, **options: Any) -> list[str]:
        """Words from the run's sampler; ``options`` override its config (count, prefix, ...).
        ``precision`` bf16 (or auto: bf16 where the device has it) drew about 20% more words/s
        on a CPU with AVX512-BF16, 1,000 at a time; fp32 keeps the probabilities exact.

        Constraints, all met by every word (``letras.core.constrained``): ``suffix``,
        ``contains`` (each string), ``pattern`` (a regular expression the whole word
        matches), ``ban`` (substrings never in a word, compared without case and accents
        unless ``ban_exact``), ``exclude`` (words never given), ``novel`` (nor any word of
        the corpus), ``unique`` (no word twice), ``min_length``, with the sampler's
        ``prefix`` and ``max_length``. Each letter is steered to meet them; ``exact`` draws
        freely instead and keeps the words that meet them (the model's distribution
        conditioned on them), at most ``max_draws`` draws.

        ``label`` (a labelled run): ``"Galicia"``, or a blend ``"Galicia=0.7,Andalucía=0.3"``
        (or a dict) made by ``blend`` (see ``conditioned``), leaning towards it by ``guidance``;
        without, the whole corpus."""
        from .constrained import default_max_draws, draw_exact, draw_steered, takes_constraint
        from .constraints import Constraints

        model = self.conditioned(label, blend, guidance=guidance)
        sampler, sampler_options = self._sampler(options)
        constrained = (suffix or contains or pattern is not None or ban or exclude or min_length
                       or novel or unique or exact)
        if not constrained:
            return self._draw(sampler, seed, device, precision, model=model)
        excluded = frozenset(exclude)  # (a union copies it: 100,000 words take 2 ms more)
        if novel:
            excluded |= frozenset(self.corpus_words(required=True))
        constraints = Constraints(
            prefix=getattr(sampler_options, "prefix", ""), suffix=suffix or "", contains=tuple(contains),
            pattern=pattern, ban=tuple(ban), ban_exact=ban_exact, min_length=max(min_length or 1, 1),
            max_length=getattr(sampler_options, "max_length", None), exclude=excluded)
        if not exact and not takes_constraint(sampler):
            raise UsageError(f"the sampler '{self.config['sampler'].component.name}' takes no constraints",
                             hint="add --exact: it draws freely and keeps the words that meet them")
        count = getattr(sampler_options, "count", 1)

        def draw(n: int, round_seed: int, automaton: Any, max_length: int | None) -> list[str]:
            changed = {"count": n, **({"max_length": max_length} if max_length else {})}
            changed = {k: v for k, v in changed.items() if hasattr(sampler_options, k)}
            built, _ = self._sampler({**options, **changed})
            return self._draw(built, round_seed, device, precision, automaton, model=model)

        how = draw_exact if exact else draw_steered
        return how(draw, constraints, self.tokenizer, count, unique=unique,
                   max_draws=max_draws or default_max_draws(count), seed=seed)

    def _sampler(self, options: dict[str, Any]) -> tuple[Any, Any]:
        """The run's sampler, built with ``options`` over its config, and its options."""
        section = self.config["sampler"]
        values = {**dataclasses.asdict(section.options),
                  **{k: v for k, v in options.items() if v is not None}}
        sampler_options = cfg.build_options(section.component, values, "sampler", where=_option_where)
        return section.component.build(options=sampler_options), sampler_options

    def _draw(self, sampler: Any, seed: int | None, device: str, precision: str, constraint: Any = None, *,
              model: Any = None) -> list[str]:
        """Words from ``sampler``, reading ``model`` (a label's view of the model; the model itself by default)."""
        torch_device = resolve_device(device)
        compute = resolve_precision(precision, torch_device, setting="--precision {}")
        model = (self.model if model is None else model).to(torch_device)
        extra = {} if constraint is None else {"constraint": constraint}
        with autocast(torch_device, compute):
            return sampler.sample(model, self.tokenizer, seed=seed, device=torch_device, **extra)

    def conditioned(self, label: str | dict[str, float] | None = None, blend: str = "mixture",
                    where: str = "--label", guidance: float = 0.0) -> Any:
        """The model as samplers and scoring call it, ``model(ids, state)``, reading ``label``.

        A blend of labels is a ``mixture`` of their word distributions (letter by letter, each
        label weighted by how well it explains the letters so far), or an ``embedding`` made
        of their label embeddings, weighted. docs/labels.md compares the two. A labelled run
        without a label is the mixture of all labels by their share of the corpus's words.

        ``guidance`` g > 0 leans a label's words towards it and away from the other labels:
        each letter's log-probability is (1 + g) times the label's minus g times the whole
        corpus's (raising only letters the label finds plausible), so words are drawn about in
        proportion to P(word | label) P(label | word)^g. A run without labels, or no ``label``,
        ignores it.
        Scoring and explaining read the label as it is (g = 0)."""
        from .conditioning import conditioned_model

        return conditioned_model(self.model, self.labels, label, blend, where, guidance)

    def with_sampler(self, name: str, **options: Any) -> TrainedModel:
        """The same model with another registered sampler (``greedy``, ``beam``, a plugin's),
        given only ``options``: the run's sampler options belong to the run's sampler."""
        component = get_host().registry("sampler").get(name)
        built = cfg.build_options(component, options, "sampler", where=_option_where)
        sections = {**self.config.sections, "sampler": cfg.Section("sampler", component, built)}
        return dataclasses.replace(self, config=dataclasses.replace(self.config, sections=sections))

    def generate(self, count: int, *, novel: bool = False, unique: bool = False,
                 min_length: int | None = None, seed: int | None = None, device: str = "cpu",
                 precision: str = "fp32", max_draws: int | None = None, **options: Any) -> list[Sample]:
        """Exactly ``count`` words with their log-probabilities, under the constraints
        ``sample`` takes (``novel``: not in the corpus, after the tokenizer's normalisation;
        ``unique``; ``min_length``; ``suffix``, ``pattern``, ...)."""
        if count < 1:
            raise UsageError(f"count must be at least 1, got {count}")
        known = self.corpus_words(required=novel)  # novelty needs the corpus; the flag does not
        words = self.sample(seed=seed, device=device, precision=precision, novel=novel, unique=unique,
                            min_length=min_length, max_draws=max_draws, count=count, **options)
        scores = self.score(words, device=device, label=options.get("label"), blend=options.get("blend", "mixture"))
        known = None if known is None else set(known)
        return [Sample(s.word, s.logprob, None if known is None else s.word not in known) for s in scores]

    def export(self, format: str, path: str | Path, *, overwrite: bool = False, **options: Any) -> Path:
        """Write the model to ``path`` in a registered export ``format`` (`letras list
        exporter`: onnx, html, json, a plugin's) with that exporter's ``options``. The file
        appears whole or not at all; an existing one is kept unless ``overwrite``."""
        import os

        component = get_host().registry("exporter").get(format)
        built = cfg.build_options(component, options, "exporter", where=lambda key: f"option {key.split('.')[-1]}")
        path = Path(path)
        if path.is_dir() or (path.exists() and not overwrite):
            raise UsageError("already exists" if path.is_file() else "is a folder", where=str(path),
                             hint="choose another file" + ("" if path.is_dir() else ", or pass --overwrite"))
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.part")
        try:
            component.build(options=built).export(self, part)
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)
        return path

    def corpus_words(self, *, required: bool = False) -> list[str] | None:
        """The training corpus as the tokenizer sees it; None if it can no longer be read
        (an error if ``required``)."""
        try:
            return [self.tokenizer.normalize(w) for w in load_words(self.config)]
        except LetrasError:
            if required:
                raise
            return None

    def score(self, words: Sequence[str], *, device: str = "cpu", label: str | dict[str, float] | None = None,
              blend: str = "mixture") -> list[Any]:
        """Each word's log-probability (letters and end of word), total and per character;
        under ``label`` in a labelled run (else under the whole corpus's mixture)."""
        from .scoring import score_words

        torch_device = resolve_device(device)
        model = self.conditioned(label, blend).to(torch_device)
        return score_words(model, self.tokenizer, list(words), device=torch_device)

    def explain(self, word: str, *, top_k: int = 5, device: str = "cpu", label: str | dict[str, float] | None = None,
                blend: str = "mixture") -> list[Any]:
        """Letter by letter: what the model reads, its likeliest next letters, and the
        probability it gave to the letter that really follows (under ``label``, as ``score``)."""
        from .scoring import explain_word

        torch_device = resolve_device(device)
        model = self.conditioned(label, blend).to(torch_device)
        return explain_word(model, self.tokenizer, word, top_k=top_k, device=torch_device)

    def classify(self, words: Sequence[str], *, device: str = "cpu") -> list[Any]:
        """P(label | word) for each word, likeliest label first (``Classification``): by
        Bayes' rule, P(word | label) times the label's share of the corpus's words."""
        from .conditioning import classify_words

        if self.labels is None:
            raise UsageError("this run was trained without labels, so it cannot classify",
                             hint="train on a labelled corpus (docs/labels.md)")
        torch_device = resolve_device(device)
        return classify_words(self.model.to(torch_device), self.tokenizer, list(words), self.labels,
                              device=torch_device)

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
        return self.validation_set()[0]

    def validation_set(self) -> tuple[list[str], list[str] | None]:
        """The words the run held out for validation, and their labels (None without)."""
        split = (self.checkpoint or {}).get("split") or {}
        if not split.get("val_fraction"):
            raise UsageError("this run held out no validation words", hint="evaluate a word file with --file")
        data = load_corpus(self.config)
        held_out = split_words(range(len(data.words)), split["val_fraction"], split["seed"])[1]
        return [data.words[i] for i in held_out], None if data.labels is None else [data.labels[i] for i in held_out]

    def evaluate(self, words: Sequence[str] | None = None, *, source: str = "validation split",
                 device: str = "cpu", labels: Sequence[str] | None = None) -> dict[str, Any]:
        """Loss in nats and bits per character, and perplexity, over ``words`` (default: the
        validation split), weighted by characters. Words with letters the model never saw are
        left out and counted under ``unscored`` (words, characters, the letters); a list of
        which none can be scored is an error. A labelled run given the words' ``labels`` (the
        validation split has them) reads each word under its label, and adds the loss per
        label and the classification's accuracy and confusion table."""
        import math

        from .batching import WordBatches, mean_loss
        from .scoring import encode_known

        if words is None:
            words, labels = self.validation_set()
        words = list(words)
        if not words:
            raise UsageError("no words to evaluate", where=source)
        encoded = encode_known(self.tokenizer, words, source)
        if not encoded.ids:
            raise UsageError(f"none of its {len(words):,} words can be scored: they hold letters the model never "
                             f"saw ({', '.join(encoded.letters())})", where=source,
                             hint=next(iter(encoded.unknown.values())).hint)
        torch_device = resolve_device(device)
        ids = None if labels is None or self.labels is None else self.labels.ids(labels, where=source)
        known = list(encoded.ids)
        data = WordBatches([encoded.ids[i] for i in known], torch_device,
                           labels=None if ids is None else [ids[i] for i in known])
        model = self.model if ids is not None else self.conditioned()  # unlabelled words: the corpus mixture
        loss = mean_loss(model.to(torch_device), data)
        report = {"loss": loss, "bpc": loss / math.log(2), "perplexity": math.exp(loss),
                  "words": len(encoded.ids), "chars": data.chars, "source": source}
        if ids is not None:
            from .conditioning import classification_report, loss_per_label

            report["loss_per_label"] = loss_per_label(self.model, data, self.labels.names)
            predicted = self.classify([words[i] for i in known], device=device)
            report["classification"] = classification_report([labels[i] for i in known], predicted)
        if encoded.unknown:
            report["unscored"] = {"words": len(encoded.unknown),
                                  "chars": sum(len(e.word) + 1 for e in encoded.unknown.values()),
                                  "reason": "letters the model never saw", "letters": encoded.letters()}
        return report


def _option_where(dotted: str) -> str:
    """Where a bad sampler option is, in the Python API's words (the CLI names its flag)."""
    return f"sampler option {dotted.split('.')[-1]}"


def load_run(path: str | Path, checkpoint: str = "last") -> TrainedModel:
    """Read a run folder back: the checkpoint (``last`` or ``best``), config, vocabulary, weights."""
    run_dir = RunDir(path)
    data = run_dir.load_checkpoint(checkpoint)
    file = str(run_dir.path / CHECKPOINTS[checkpoint])  # named in errors: checkpoint.pt or best.pt
    try:
        config = cfg.validate(data["config"], source=f"{file} config")
    except UsageError as exc:
        raise LetrasError(f"the run's config no longer validates: {exc}",
                          hint="is a plugin it used still installed? see `letras plugins`") from None
    except KeyError:
        raise LetrasError("checkpoint has no config", where=file) from None
    tokenizer = config["tokenizer"].component.build(options=config["tokenizer"].options)
    tokenizer.load_state(data["tokenizer"])
    labels = LabelSet.from_state(data.get("labels"))
    model = build_model(config, tokenizer.vocab_size, labels)
    try:
        model.load_state_dict(data["model"])
    except (RuntimeError, KeyError) as exc:
        raise LetrasError(f"the weights do not fit the model the config describes ({str(exc).splitlines()[0]})",
                          where=file) from None
    model.eval()
    return TrainedModel(config=config, tokenizer=tokenizer, model=model, run_dir=run_dir.path,
                        checkpoint=data, labels=labels)
