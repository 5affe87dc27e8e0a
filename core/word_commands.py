"""The commands that read a trained run: sample, score, explain, eval, plot.

Each is a thin layer over ``letras.core.trained.TrainedModel``, so notebooks get the same
results from Python.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Iterator

import click
from click.core import ParameterSource

from . import config as cfg
from .errors import LetrasError
from .plugins import get_host
from .sampler_flags import check_declared, flag, sampler_values
from .label_commands import read_eval_file, show_labelled_report
from .labels import DEFAULT_GUIDANCE

checkpoint_option = click.option(
    "--checkpoint", type=click.Choice(["last", "best"]), default="last", show_default=True,
    help="The last checkpoint, or best.pt: the one with the lowest validation loss.")


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("--min-length", type=click.IntRange(min=1), default=None, help="Shortest word, prefix included.")
@click.option("--suffix", default=None, help="Every word ends with these letters.")
@click.option("--contains", multiple=True, metavar="STR", help="Every word contains STR (repeatable).")
@click.option("--pattern", default=None, metavar="REGEX",
              help="Every whole word matches REGEX, e.g. 'Villa.{2,6}(ejo|illa)'.")
@click.option("--exclude", multiple=True, metavar="FILE",
              help="Never a word of FILE, one a line (repeatable; --novel adds the corpus).")
@click.option("--ban", multiple=True, metavar="FILE_OR_STRING",
              help="Never these substrings, without regard to case or accents: a string, or a file of "
                   "one a line (repeatable).")
@click.option("--ban-exact", is_flag=True, help="Compare --ban with case and accents.")
@click.option("--novel", is_flag=True, help="Only words that are not in the training corpus.")
@click.option("--unique", is_flag=True, help="No word twice.")
@click.option("--exact", is_flag=True,
              help="Draw freely and keep the words that meet the constraints: the model's distribution "
                   "conditioned on them, at the cost of the rejected draws.")
@click.option("--max-draws", type=click.IntRange(min=1), default=None,
              help="Most words drawn by --exact or --unique (default: 200 per word asked for, at least 10,000).")
@click.option("--seed", type=int, default=None, help="Same seed, same words.")
@click.option("--sampler", default=None, help="Another registered sampler (greedy, beam).")
@click.option("--label", default=None, metavar="LABEL[=W,...]",
              help="A run trained with labels: draw from LABEL, or a blend, e.g. 'Galicia=0.7,Andalucía=0.3'.")
@click.option("--blend", type=click.Choice(["mixture", "embedding"]), default="mixture", show_default=True,
              help="How --label blends labels: a mixture of their words, or a mix of their embeddings.")
@click.option("--guidance", type=click.FloatRange(min=0), default=DEFAULT_GUIDANCE, show_default=True,
              help="With --label: how far words lean towards the label and away from the others, "
                   "about P(word | label) P(label | word)^G; 0 draws from the label as it is.")
@click.option("-o", "--option", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any option of the sampler, e.g. --sampler beam -o width=50.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="jsonl adds each word's log-probability and whether it is novel.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "auto"]), default="fp32", show_default=True,
              help="bf16 draws many words faster on a GPU or a CPU with bfloat16 instructions (auto: where "
                   "the device has them); fp32 keeps the probabilities exact.")
@checkpoint_option
def sample(run_dir: str, min_length: int | None, suffix: str | None, contains: tuple[str, ...], pattern: str | None, exclude: tuple[str, ...],
           ban: tuple[str, ...], ban_exact: bool, novel: bool, unique: bool, exact: bool,
           max_draws: int | None, seed: int | None, sampler: str | None, label: str | None, blend: str,
           guidance: float, extra: tuple[str, ...], fmt: str, device: str, precision: str, checkpoint: str,
           **sampler_flags: Any) -> None:
    """Generate words from a trained run; stdout holds exactly the words, one per line.

    Every option of a registered sampler is a flag (--temperature, --top-k, --width, a
    plugin's); any of them also as -o NAME=VALUE.

    The constraints (--prefix, --suffix, --contains, --pattern, --exclude, --ban, --novel,
    --unique, --min-length, --max-length) hold for every word: each letter is drawn only
    among those that can still lead to a word meeting them all. --exact draws freely and
    keeps the words that meet them instead.
    """
    from .constraints import read_ban, read_words
    from .trained import load_run

    constraints = {"suffix": suffix, "contains": contains, "pattern": pattern, "ban_exact": ban_exact,
                   "ban": [b for value in ban for b in read_ban(value)],
                   "exclude": [w for path in exclude for w in read_words(path)],
                   "min_length": min_length, "novel": novel, "unique": unique, "exact": exact,
                   "max_draws": max_draws}
    labelled = {"label": label, "blend": blend, "guidance": guidance}
    if label is None and click.get_current_context().get_parameter_source("guidance") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--guidance leans words towards a label: give one with --label")

    trained = load_run(run_dir, checkpoint)
    options = sampler_values(click.get_current_context().command, sampler_flags)
    chosen = trained.config["sampler"].component if sampler is None else get_host().registry("sampler").get(sampler)
    check_declared(options, chosen)
    by_o = set()  # the options given as -o NAME=VALUE, so that an error names them as given
    for text in extra:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"-o takes KEY=VALUE (e.g. -o width=50), got '{text}'")
        options[key.strip()] = cfg.parse_value(value)
        by_o.add(key.strip())
    with _spelled_as_given(by_o):
        trained.conditioned(label, blend, guidance=guidance)  # an unknown label fails here, before any draw
        if sampler is not None:
            # another sampler takes only the options it declares, from the command line
            trained = trained.with_sampler(sampler, **options)
            options = {}
        if fmt == "text":
            for word in trained.sample(seed=seed, device=device, precision=precision, **constraints, **labelled,
                                       **options):
                click.echo(word)
            return
        n = options.pop("count", trained.config["sampler"].options.count)
        for item in trained.generate(n, seed=seed, device=device, precision=precision, **constraints, **labelled,
                                     **options):
            click.echo(json.dumps(item.to_dict(), ensure_ascii=False))


@contextlib.contextmanager
def _spelled_as_given(by_o: set[str]) -> Iterator[None]:
    """A sampler option's error (``sampler option top_k``) names it as the command line gave it:
    ``--top-k``, or ``-o top_k``."""
    try:
        yield
    except LetrasError as error:
        prefix = "sampler option "
        if error.where and error.where.startswith(prefix):
            name = error.where[len(prefix):]
            error.where = f"option -o {name}" if name in by_o else f"option {flag(name)}"
        raise


@click.command()
@click.argument("run_dir", type=click.Path())
@click.argument("words", nargs=-1)
@click.option("--sort", is_flag=True, help="Most corpus-like first (by log-probability per character).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--label", default=None, help="A run trained with labels: score under this label (default: all).")
@checkpoint_option
def score(run_dir: str, words: tuple[str, ...], sort: bool, as_json: bool, label: str | None, checkpoint: str) -> None:
    """Log-probability of each WORD under the model (from stdin, one per line, if none given):
    total and per character, the end of the word included. Higher sounds more like the corpus."""
    from .trained import load_run

    trained = load_run(run_dir, checkpoint)
    if not words:
        words = tuple(line.strip() for line in sys.stdin if line.strip())
        if not words:
            raise click.UsageError("no words given, on the command line or on stdin")
    scores = trained.score(words, label=label)
    unscored = [s for s in scores if s.unknown]
    if unscored:
        shown = ", ".join(f"{s.word!r} ({', '.join(s.unknown)})" for s in unscored[:5])
        more = f" and {len(unscored) - 5} more" if len(unscored) > 5 else ""
        one = len(unscored) == 1
        click.echo(f"Warning: {len(unscored)} of {len(scores)} words hold{'s' if one else ''} letters the model never "
                   f"saw, so {'its' if one else 'their'} log-probability is -inf: {shown}{more}", err=True)
    if sort:  # -inf per character: unscorable words come last
        scores.sort(key=lambda s: s.per_char, reverse=True)
    for s in scores:
        if as_json:
            click.echo(json.dumps(s.to_dict(), ensure_ascii=False))
        else:
            click.echo(f"{s.logprob:10.4f}  {s.per_char:8.4f}  {s.word}")


@click.command()
@click.argument("run_dir", type=click.Path())
@click.argument("word")
@click.option("-k", "--top-k", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many of the likeliest next letters to show.")
@click.option("--label", default=None, help="A run trained with labels: explain under this label (default: all).")
@checkpoint_option
def explain(run_dir: str, word: str, top_k: int, label: str | None, checkpoint: str) -> None:
    """WORD letter by letter: what the model reads, the letters it expects next, and the
    probability it gave to the letter that really follows (. is the word boundary)."""
    import math

    from .trained import load_run

    steps = load_run(run_dir, checkpoint).explain(word, top_k=top_k, label=label)
    click.echo(f"{'read':>5}  {'next':<5} {'p(next)':>8}   likeliest next")
    total = 0.0
    for step in steps:
        total += math.log(step.prob) if step.prob > 0 else float("-inf")
        color = "green" if step.prob >= 0.3 else "yellow" if step.prob >= 0.05 else "red"
        top = "  ".join(click.style(f"{t} {p:.2f}", bold=(t == step.next)) for t, p in step.top)
        click.echo(f"{step.read:>5}  {step.next:<5} " + click.style(f"{step.prob:8.4f}", fg=color) + f"   {top}")
    if steps[-1].unknown:
        letter = steps[-1].next
        click.echo(f"log-probability -inf: letter {len(steps)} of {word!r}, '{letter}' (U+{ord(letter):04X}), "
                   "is not in the model's alphabet, so it reads no further")
        return
    click.echo(f"log-probability {total:.4f} nats, {total / len(steps):.4f} per character")


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("-o", "--output", type=click.Path(), default=None, help="Where to write the PNG (default: RUN_DIR/loss.png).")
def plot(run_dir: str, output: str | None) -> None:
    """A PNG of the training and validation loss per epoch, from metrics.jsonl (needs letras[plot])."""
    from .plotting import plot_losses

    click.echo(plot_losses(run_dir, output), err=True)


@click.command("eval")
@click.argument("run_dir", type=click.Path())
@click.option("--file", "path", type=click.Path(), default=None,
              help="A word file (one per line), or a .csv/.tsv table, instead of the run's validation split.")
@click.option("--word-column", default=None, help="The table's column of words (default: word).")
@click.option("--label-column", default=None,
              help="The table's column of labels: the loss per label, and the classification's accuracy.")
@click.option("--samples", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Words to draw for the novelty, uniqueness and length figures (0: none).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@checkpoint_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(run_dir: str, path: str | None, word_column: str | None, label_column: str | None, samples: int,
             seed: int, device: str, checkpoint: str, as_json: bool) -> None:
    """Loss in nats and bits per character and perplexity (weighted by characters), and the
    share of novel and unique words among samples, with their length's distance to the corpus."""
    from .trained import load_run

    trained = load_run(run_dir, checkpoint)
    words = labels = None
    if path is not None:
        words, labels = read_eval_file(path, word_column, label_column)
    report = trained.evaluate(words, source=path or "validation split", device=device, labels=labels)
    if samples:
        report["samples"] = trained.sample_statistics(samples, seed=seed, device=device)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    click.echo(f"{report['source']}: {report['loss']:.4f} nats/char, {report['bpc']:.4f} bits/char, "
               f"perplexity {report['perplexity']:.3f} ({report['words']:,} words, {report['chars']:,} characters)")
    unscored = report.get("unscored")
    if unscored:
        plural = "s" if unscored["words"] > 1 else ""
        click.echo(f"not scored: {unscored['words']:,} word{plural} ({unscored['chars']:,} characters) with letters "
                   f"the model never saw: {', '.join(unscored['letters'])}")
    show_labelled_report(report)
    stats = report.get("samples")
    if stats:
        click.echo(f"{stats['count']:,} samples: {stats['novel']:.1%} novel, {stats['unique']:.1%} unique, "
                   f"mean length {stats['mean_length']:.2f} (corpus {stats['corpus_mean_length']:.2f}), "
                   f"length distance {stats['length_distance']:.3f} letters")
