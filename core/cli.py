"""The letras command line.

stdout carries data (generated words, JSON); everything said to the person goes to stderr.
A user error ends in one line, ``Error: ...``, and exit code 2 (usage) or 1 (failure);
``--debug`` or ``LETRAS_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

import click

from . import config as cfg
from . import options as opts
from .errors import LetrasError
from .plugins import get_host
from .registry import HOOKS, PLURALS


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    flag = bool(ctx and ctx.find_root().params.get("debug"))
    return flag or os.environ.get("LETRAS_DEBUG", "") not in ("", "0")


class LetrasGroup(click.Group):
    """Turns letras errors (and surprises) into one line and an exit code, and adds the
    commands plugins register the first time the command list is needed."""

    _plugin_commands_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugin_commands_added:
            return
        self._plugin_commands_added = True
        try:
            get_host().add_commands(self)
        except LetrasError as exc:  # LETRAS_PLUGIN_ERRORS=raise and a plugin failed
            if _debug():
                raise
            raise _Failure(str(exc), exc.exit_code) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._add_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LetrasError as exc:
            if _debug():
                raise
            raise _Failure(str(exc), exc.exit_code) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:
            if _debug():
                raise
            raise _Failure(f"internal error: {type(exc).__name__}: {exc} "
                           "(run with --debug for the traceback, and please report it)", 1) from None


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
    click.echo(f"Warning: {message}", err=True)


@click.group(cls=LetrasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="letras")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Train small recurrent networks on a list of words, one letter at a time, and
    generate new words that sound like them."""


def _split_args(args: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """`[CONFIG] [KEY=VALUE...]`: the first argument without '=' is the config."""
    config, overrides = None, []
    for arg in args:
        if "=" in arg:
            overrides.append(arg)
        elif config is None:
            config = arg
        else:
            raise click.UsageError(f"two configs given ('{config}' and '{arg}'); overrides look like KEY=VALUE")
    return config, overrides


@cli.command()
@click.argument("args", nargs=-1, metavar="[CONFIG] [KEY=VALUE]...")
@click.option("--overwrite", is_flag=True, help="Replace a run already in the output folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def run(args: tuple[str, ...], overwrite: bool, quiet: bool) -> None:
    """Train a pipeline and print the words it generates.

    CONFIG is a YAML file or the name of a shipped config (default: municipios-lstm).
    KEY=VALUE overrides the file, e.g. trainer.epochs=5 model.hidden_size=256.
    """
    from .pipeline import train
    from .training import Progress

    spec, overrides = _split_args(args)
    config = cfg.load_config(spec, overrides)
    click.echo(f"Training {config.name}: corpus {config['corpus'].component.name}, "
               f"model {config['model'].component.name}, output {config.output}", err=True)
    result = train(config, overwrite=overwrite, progress=Progress(quiet=quiet))
    last = result.history[-1]
    click.echo(f"Saved {result.run_dir}/ (train loss {last['train_loss']:.4f} nats/char"
               + (f", val {last['val_loss']:.4f}" if last.get("val_loss") is not None else "") + ")",
               err=True)
    for word in result.samples:
        click.echo(word)


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("-n", "--count", type=int, default=None, help="How many words (default: the run's sampler).")
@click.option("--temperature", type=float, default=None, help="Sampling temperature.")
@click.option("--top-k", type=int, default=None, help="Draw only from the k likeliest letters.")
@click.option("--prefix", default=None, help="Every word starts with these letters.")
@click.option("--max-length", type=int, default=None, help="Longest word, prefix included.")
@click.option("--seed", type=int, default=None, help="Same seed, same words.")
@click.option("--sampler", default=None, help="Another registered sampler (e.g. greedy).")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
def sample(run_dir: str, count: int | None, temperature: float | None, top_k: int | None,
           prefix: str | None, max_length: int | None, seed: int | None, sampler: str | None,
           device: str) -> None:
    """Generate words from a trained run; stdout holds exactly the words, one per line."""
    from .pipeline import load_run

    trained = load_run(run_dir)
    given = {"count": count, "temperature": temperature, "top_k": top_k, "prefix": prefix,
             "max_length": max_length, "name": sampler}
    options = {k: v for k, v in given.items() if v is not None}
    if sampler is not None:
        # another sampler takes only the options it declares, from the command line
        trained = _with_sampler(trained, sampler, options)
        options = {}
    for word in trained.sample(seed=seed, device=device, **options):
        click.echo(word)


@cli.command("eval")
@click.argument("run_dir", type=click.Path())
@click.option("--file", "path", type=click.Path(), default=None,
              help="A word file (one per line) instead of the run's validation split.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(run_dir: str, path: str | None, device: str, as_json: bool) -> None:
    """Loss in nats and bits per character, and perplexity, of a trained run."""
    from .pipeline import load_run

    trained = load_run(run_dir)
    words = None
    if path is not None:
        words = get_host().registry("corpus").get("file").build(path=path).words()
    report = trained.evaluate(words, source=path or "validation split", device=device)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"{report['source']}: {report['loss']:.4f} nats/char, {report['bpc']:.4f} bits/char, "
               f"perplexity {report['perplexity']:.3f} ({report['words']:,} words, {report['chars']:,} characters)")


def _with_sampler(trained: Any, name: str, options: dict[str, Any]) -> Any:
    import dataclasses

    component = get_host().registry("sampler").get(name)
    options.pop("name", None)
    built = cfg.build_options(component, options, "sampler",
                              where=lambda key: f"option --{key.split('.')[-1].replace('_', '-')}")
    sections = dict(trained.config.sections)
    sections["sampler"] = cfg.Section("sampler", component, built)
    return dataclasses.replace(trained, config=dataclasses.replace(trained.config, sections=sections))


@cli.command()
@click.argument("args", nargs=-1, metavar="CONFIG [KEY=VALUE]...")
@click.option("--show", is_flag=True, help="Print the resolved config, defaults included.")
def validate(args: tuple[str, ...], show: bool) -> None:
    """Check a config and load its corpus, without training (torch is not imported)."""
    from .pipeline import prepare

    spec, overrides = _split_args(args)
    config = cfg.load_config(spec, overrides)
    words, tokenizer, _ = prepare(config)
    if show:
        click.echo(config.to_yaml(), nl=False)
    click.echo(f"{config.source}: valid ({len(words):,} words, {tokenizer.vocab_size} tokens)", err=True)


def _kind(value: str) -> str:
    for kind, plural in PLURALS.items():
        if value in (kind, plural):
            return kind
    raise click.BadParameter(f"'{value}' is not a kind of component (choose from {', '.join(HOOKS)})")


@cli.command("list")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_components(kind: str | None, as_json: bool) -> None:
    """List registered components with their options and defaults (all kinds, or KIND)."""
    kinds = [_kind(kind)] if kind else list(HOOKS)
    host = get_host()
    data = {}
    for k in kinds:
        data[k] = [{"name": c.name, "plugin": c.plugin, "help": c.help,
                    "options": [{"name": o.name, "type": o.type, "default": o.default,
                                 "required": o.required, "help": o.help}
                                for o in opts.describe(c.options)]}
                   for c in host.registry(k)]
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for k, items in data.items():
        click.secho(f"{PLURALS[k]}:", bold=True)
        for item in items:
            click.echo(f"  {item['name']:<14} {item['help']}  [{item['plugin']}]")
            for o in item["options"]:
                default = "required" if o["required"] else f"default {json.dumps(o['default'], ensure_ascii=False)}"
                click.echo(f"      {o['name']:<16} {o['type']}, {default}" + (f": {o['help']}" if o["help"] else ""))
        if not items:
            click.echo("  (none)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """Show the plugins that loaded, what each registered, and those that failed."""
    host = get_host()
    host.collect_all()
    infos = [{"name": i.name, "source": i.source, "module": i.module, "distribution": i.distribution,
              "version": i.version, "hooks": i.hooks, "registered": i.registered,
              "error": i.error, "warnings": i.warnings} for i in host.plugins.values()]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    for info in infos:
        version = f" {info['version']}" if info["version"] else ""
        dist = f" ({info['distribution']}{version})" if info["distribution"] else ""
        status = "FAILED: " + info["error"] if info["error"] else "loaded"
        click.echo(f"{info['name']}{dist} [{info['source']}] {status}")
        for kind, names in info["registered"].items():
            click.echo(f"    {PLURALS[kind]}: {', '.join(names)}")
        other = [h for h in info["hooks"] if not h.startswith("register_") or h == "register_commands"]
        if other:
            click.echo(f"    hooks: {', '.join(other)}")
        for warning in info["warnings"]:
            click.echo(f"    warning: {warning}")


def main() -> None:
    """Console-script entry point."""
    warnings.showwarning = _show_warning  # plugin warnings as one line on stderr
    cli(prog_name="letras")
