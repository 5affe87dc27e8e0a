"""`letras bench`: the notes' loop, a plain torch loop and letras, timed side by side.

A built-in command added through ``register_commands``, exactly as a plugin adds one.
"""

from __future__ import annotations

import json

import click

from letras.core import hookimpl


@click.command()
@click.option("--corpus", default="municipios", show_default=True,
              help="A registered corpus, or a word file (one word per line).")
@click.option("--cell", type=click.Choice(["rnn", "lstm"]), default="lstm", show_default=True)
@click.option("--hidden", type=click.IntRange(min=1), default=128, show_default=True, help="Hidden units.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Words per step for the plain loop and letras.")
@click.option("--seconds", type=click.FloatRange(min=0.1), default=8.0, show_default=True,
              help="Time given to each measurement.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "auto"]), default="fp32", show_default=True,
              help="Of all three loops and the sampling: bf16 on a GPU or a CPU with bfloat16 instructions; "
                   "auto: bf16 where the device has it.")
@click.option("--labels", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also time training steps with this many labels (word i has label i mod N) and without, "
                   "in alternating turns: the price of a label.")
@click.option("--label-dim", type=click.IntRange(min=1), default=16, show_default=True,
              help="With --labels: the size of the label embedding (model.label_dim).")
@click.option("--label-state", is_flag=True, help="With --labels: words start from a state made from their label "
                                                   "(model.label_state).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def bench(corpus: str, cell: str, hidden: int, batch_size: int, seconds: float, device: str,
          precision: str, labels: int, label_dim: int, label_state: bool, as_json: bool) -> None:
    """Training characters/s of the notes' loop, a plain padded torch loop and letras, on the
    same model and data in one process; then sampling words/s and peak memory."""
    from .measure import run_benchmark

    report = run_benchmark(corpus=corpus, cell=cell, hidden=hidden, batch_size=batch_size,
                           seconds=seconds, device=device, precision=precision, labels=labels,
                           label_dim=label_dim, label_state=label_state,
                           progress=lambda text: click.echo(text, err=True))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(report))


def format_report(r: dict) -> str:
    rows = [("notes' loop (1 word/step, 1 letter/call)", r["notes"]),
            (f"plain torch, padded batches of {r['batch_size']}", r["plain"]),
            (f"letras word-reset, batches of {r['batch_size']}", r["letras"])]
    lines = [f"letras bench: {r['corpus']} ({r['words']:,} words), {r['cell']} {r['hidden']}, "
             f"device {r['device']}, {r['precision']}, torch {r['torch']}, {r['threads']} threads",
             "", f"{'training':<44}{'chars/s':>12}{'padding':>10}"]
    if r.get("labelled"):  # training steps alone, measured in alternating turns apart from the rows above
        m = r["labelled"]
        rows += [("letras steps, in turns: without labels", {**r["letras"], "chars_per_s": m["without_chars_per_s"]}),
                 (f"letras steps, in turns: {m['labels']} labels", {**r["letras"], **m})]
    for name, m in rows:
        lines.append(f"{name:<44}{m['chars_per_s']:>12,.0f}{m['padding']:>10.1%}")
    lines += ["", f"letras / notes' loop   {r['ratios']['letras_vs_notes']:>8.1f}x",
              f"letras / plain torch   {r['ratios']['letras_vs_plain']:>8.2f}x"]
    if r.get("labelled"):
        m = r["labelled"]
        shape = f"label_dim {m['label_dim']}" + (", label_state" if m["label_state"] else "")
        lines.append(f"with labels / without {r['ratios']['labelled_vs_letras']:>8.3f}x  ({shape}; median of "
                     f"{m['turns']} turns of {m['steps_per_turn']} steps each; quartiles "
                     f"{m['quartiles'][0]:.3f}-{m['quartiles'][1]:.3f})")
    lines += ["",
              f"sampling, {r['sampling']['batch']:,} words at a time: {r['sampling']['words_per_s']:,.0f} words/s "
              f"({r['sampling']['chars_per_s']:,.0f} chars/s, "
              f"{r['sampling']['chars_per_s'] / max(r['sampling']['words_per_s'], 1e-9):.1f} a word with its end; "
              f"corpus {r['sampling']['corpus_chars_per_word']:.1f})",
              f"  (calls of {r['sampling']['batch']:,} words, each waiting for its longest: "
              f"{r['sampling']['one_batch_per_call_words_per_s']:,.0f} words/s)",
              f"peak memory: {r['peak_memory_mib']:,.0f} MiB (process RSS)"
              + (f", {r['cuda_peak_mib']:,.0f} MiB on the GPU" if r.get("cuda_peak_mib") is not None else "")]
    return "\n".join(lines)


@hookimpl
def register_commands(cli):
    from .constraints import bench_constraints

    cli.add_command(bench)
    cli.add_command(bench_constraints)
