"""`letras export`: a trained run written in a registered format."""

from __future__ import annotations

import click

from letras.core.config import parse_value


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("-f", "--format", "fmt", required=True,
              help="onnx, html, json, or a plugin's format (see `letras list exporter`).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The file to write.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="An option of the exporter, e.g. --set dtype=float32 (see `letras list exporter`).")
@click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last", show_default=True,
              help="The last checkpoint, or best.pt: the one with the lowest validation loss.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def export(run_dir: str, fmt: str, output: str, settings: tuple[str, ...], checkpoint: str, overwrite: bool) -> None:
    """Write a trained run as an ONNX model, a self-contained web page or a JSON document.

    \b
      letras export runs/municipios-lstm -f html -o municipios.html
      letras export runs/municipios-lstm -f onnx -o municipios.onnx
      letras export runs/municipios-lstm -f json -o municipios.json --set dtype=float16
    """
    from letras.core import UsageError, components, load_run

    options = {}
    for text in settings:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes KEY=VALUE (e.g. --set dtype=float16), got '{text}'")
        options[key.strip()] = parse_value(value)
    components("exporter").get(fmt)  # an unknown format is named before the run is read
    path = load_run(run_dir, checkpoint).export(fmt, output, overwrite=overwrite, **options)
    click.echo(f"Wrote {path} ({_size(path.stat().st_size)}, {fmt})", err=True)


def _size(n: int) -> str:
    return f"{n / 1024:,.0f} KB" if n < 1024 ** 2 else f"{n / 1024 ** 2:,.1f} MB"
