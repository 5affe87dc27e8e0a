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
from . import label_commands, word_commands
from .errors import Interrupted, LetrasError
from .plugins import get_host
from .registry import HOOKS, PLURALS
from .sampler_flags import add_sampler_flags


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
            add_sampler_flags(self.commands["sample"], get_host().registry("sampler"))
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
        except Interrupted as exc:  # saved and stopped on request: say so, no "Error"
            click.echo(f"Interrupted: {exc}", err=True)
            sys.exit(exc.exit_code)
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
@click.argument("args", nargs=-1, metavar="[CONFIG | LIST | -] [KEY=VALUE]...")
@click.option("--init-from", metavar="RUN", help="Start from the weights of a trained run (fine-tuning).")
@click.option("--overwrite", is_flag=True, help="Replace a run already in the output folder.")
@click.option("--resume", is_flag=True, help="Continue the run in the output folder from its last checkpoint.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def run(args: tuple[str, ...], init_from: str | None, overwrite: bool, resume: bool, quiet: bool) -> None:
    """Train a pipeline, or a word list, and print the words it generates.

    CONFIG is a .yaml/.yml file or the name of a shipped config (default: municipios-lstm).
    Any other file is a word list, one word per line, and `-` reads one from stdin: it is
    trained with the shipped `words` pipeline, sized to the list, into runs/<file name>.
    KEY=VALUE overrides the file, e.g. trainer.epochs=5 model.hidden_size=256.
    --init-from RUN (or init_from=RUN) starts from a trained run's weights.
    Ctrl-C (or SIGTERM) saves a checkpoint first; `letras resume` continues from it.
    """
    if overwrite and resume:
        raise click.UsageError("--overwrite and --resume exclude each other")
    spec, overrides = _split_args(args)
    if init_from:
        overrides.append(f"init_from={init_from}")
    config = cfg.load_config(spec, overrides)
    if spec == "-" and not resume:
        from .pipeline import keep_words

        keep_words(config, sys.stdin, overwrite=overwrite)
    _train(config, overwrite=overwrite, resume=resume, quiet=quiet)


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def resume(run_dir: str, overrides: tuple[str, ...], quiet: bool) -> None:
    """Continue an interrupted or finished run from its last checkpoint.

    KEY=VALUE may change what does not change the model or the data, e.g.
    trainer.epochs=40 (more epochs) or trainer.device=cuda.
    """
    from .rundir import RunDir

    folder = RunDir(run_dir)
    if not folder.config_path.is_file():
        folder.load_checkpoint()  # says precisely what is missing or damaged
        raise LetrasError("holds no config.yaml", where=run_dir)
    config = cfg.load_config(str(folder.config_path), [*overrides, f"output={run_dir}"])
    _train(config, resume=True, quiet=quiet)


def _train(config: cfg.PipelineConfig, *, overwrite: bool = False, resume: bool = False,
           quiet: bool = False) -> None:
    from .pipeline import train
    from .progress import Progress

    from .distributed import world_from_env

    world = world_from_env()
    quiet = quiet or not world.is_main  # under torchrun, rank 0 speaks for all
    verb = "Resuming" if resume else "Training"
    if not quiet:
        ranks = f" on {world.size} processes" if world.distributed else ""
        start = f", from {config.init_from}" if config.init_from and not resume else ""
        click.echo(f"{verb} {config.name}{ranks}: corpus {config['corpus'].component.name}, "
                   f"model {config['model'].component.name}{start}, output {config.output}", err=True)
    result = train(config, overwrite=overwrite, resume=resume, progress=Progress(quiet=quiet))
    if not world.is_main:
        return
    last = result.history[-1] if result.history else {}
    losses = f"train loss {last['train_loss']:.4f} nats/char" if "train_loss" in last else "no new epoch"
    if last.get("val_loss") is not None:
        losses += f", val {last['val_loss']:.4f}"
        best = min((row for row in result.history if row.get("val_loss") is not None), key=lambda r: r["val_loss"])
        if best is not last:
            losses += f"; best val {best['val_loss']:.4f} at epoch {best['epoch']}"
    click.echo(f"Saved {result.run_dir}/ ({losses})", err=True)
    for word in result.samples:
        click.echo(word)


@cli.command()
@click.argument("args", nargs=-1, metavar="CONFIG [KEY=VALUE]...")
@click.option("--show", is_flag=True, help="Print the resolved config, defaults included.")
def validate(args: tuple[str, ...], show: bool) -> None:
    """Check a config and load its corpus, without training (torch is not imported)."""
    from .assemble import prepare
    from .finetune import load_origin

    spec, overrides = _split_args(args)
    config = cfg.load_config(spec, overrides)
    words, tokenizer, _ = prepare(config, load_origin(config, weights=False))
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


for command in (word_commands.sample, word_commands.score, word_commands.explain, word_commands.evaluate,
                word_commands.plot, label_commands.classify):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    warnings.showwarning = _show_warning  # plugin warnings as one line on stderr
    # torch warns on import where NumPy is not installed (pip install torch does not bring
    # it); letras never hands torch a NumPy array, so a fresh install would only be alarmed
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    cli(prog_name="letras")
