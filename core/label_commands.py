"""`letras classify`: which label a word sounds like, from a run trained on a labelled corpus;
and the labelled word files `letras eval --file` reads."""

from __future__ import annotations

import json
import sys

import click

from . import tablefile
from .wordfile import read_words


@click.command()
@click.argument("run_dir", type=click.Path())
@click.argument("words", nargs=-1)
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many of the likeliest labels to show per word.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with every label's probability.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last", show_default=True,
              help="The last checkpoint, or best.pt: the one with the lowest validation loss.")
def classify(run_dir: str, words: tuple[str, ...], top: int, as_json: bool, device: str, checkpoint: str) -> None:
    """The labels each WORD sounds like (from stdin, one per line, if none given), likeliest
    first, with P(label | word): P(word | label) from the model times the label's share of
    the corpus's words, normalised (Bayes' rule). Needs a run trained with labels."""
    from .trained import load_run

    trained = load_run(run_dir, checkpoint)
    if not words:
        words = tuple(line.strip() for line in sys.stdin if line.strip())
        if not words:
            raise click.UsageError("no words given, on the command line or on stdin")
    for result in trained.classify(words, device=device):
        if as_json:
            click.echo(json.dumps(result.to_dict(top), ensure_ascii=False))
        elif result.unknown:
            click.echo(f"{result.word}\t(not classified: letters the model never saw: {', '.join(result.unknown)})")
        else:
            shown = "  ".join(f"{name} {p:.3f}" for name, p in result.labels[:top])
            click.echo(f"{result.word}\t{shown}")


def read_eval_file(path: str, word_column: str | None, label_column: str | None) -> tuple[list[str], list[str] | None]:
    """A word file, or a CSV/TSV table (by its suffix, or when a column is named): words from
    ``word_column`` (default ``word``), labels from ``label_column`` (default: none)."""
    if not (path.endswith(tablefile.SUFFIXES) or word_column or label_column):
        return read_words(path), None
    table = tablefile.read_table(path, word=word_column or "word", label=label_column,
                                 settings={"word": "--word-column", "label": "--label-column"})
    return table.words(), table.labels()


def show_labelled_report(report: dict) -> None:
    """The loss per label, and the classification's accuracy and confusion table."""
    per_label = report.get("loss_per_label")
    if per_label:
        click.echo("loss per label (nats/char): " + ", ".join(f"{n} {v:.4f}" for n, v in per_label.items()))
    result = report.get("classification")
    if not result:
        return
    click.echo(f"classification: {result['accuracy']:.1%} right of {result['words']:,} words "
               "(rows: true label, columns: predicted)")
    names = sorted(set(result["confusion"]) | {p for row in result["confusion"].values() for p in row})
    width = max(len(n) for n in names) + 4
    click.echo(" " * width + "".join(f"{i:>5}" for i in range(1, len(names) + 1)))  # columns numbered as the rows
    for i, true in enumerate(names, start=1):
        row = result["confusion"].get(true, {})
        click.echo(f"{f'{i:>2} {true}':<{width}}" + "".join(f"{row.get(p, 0):>5}" for p in names))
