"""Third-party plugins found through real entry points, in subprocesses.

The example package is installed for real (pip, into a temporary folder put on PYTHONPATH);
the broken plugins are hand-made dist-info folders, which is all an entry point is.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, imports_torch, run_letras

@pytest.fixture(scope="module")
def example_site(tmp_path_factory):
    import shutil

    site, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "letras-gru"
    # build from a copy: a build leaves an egg-info beside the sources, which is a plugin too
    shutil.copytree(ROOT / "examples" / "letras-gru", source, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
                    "--target", str(site), str(source)], check=True, capture_output=True)
    return site


def letras(*args, site, cwd, env=None):
    return run_letras(*args, cwd=cwd, env={"PYTHONPATH": str(site), **(env or {})})


def plugins_json(site, cwd, env=None):
    result = letras("plugins", "--json", site=site, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}, result


def test_installed_example_is_discovered(example_site, tmp_path):
    plugins, _ = plugins_json(example_site, tmp_path)
    gru = plugins["gru"]
    assert (gru["distribution"], gru["version"], gru["source"]) == ("letras-gru", "0.1.0", "entry point")
    assert gru["registered"] == {"cell": ["gru", "mgu"], "corpus": ["dinosaurios"]}
    assert gru["error"] is None
    text = letras("plugins", site=example_site, cwd=tmp_path).stdout
    assert "gru (letras-gru 0.1.0) [entry point] loaded" in text


@pytest.mark.parametrize("cell", ["gru", "mgu"])
def test_example_cell_and_corpus_train_and_sample_from_yaml(example_site, tmp_path, cell):
    (tmp_path / "dinos.yaml").write_text(textwrap.dedent(f"""\
        corpus:  {{name: dinosaurios, period: jurassic}}
        model:   {{name: generator, cell: {cell}, hidden_size: 16}}
        trainer: {{epochs: 3, batch_size: 8, val_fraction: 0.1, device: cpu}}
        sampler: {{count: 4}}
        """))
    result = letras("run", "dinos.yaml", site=example_site, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 4
    sampled = letras("sample", "runs/dinos", "-n", "3", "--seed", "0", site=example_site, cwd=tmp_path)
    assert sampled.returncode == 0 and len(sampled.stdout.splitlines()) == 3
    config = (tmp_path / "runs" / "dinos" / "config.yaml").read_text()
    assert f"cell: {cell}" in config and "period: jurassic" in config


def test_plugins_command_does_not_import_torch_with_a_plugin_installed(example_site, tmp_path):
    assert not imports_torch("plugins", cwd=tmp_path, env={"PYTHONPATH": str(example_site)})


def make_dist(site, dist: str, module: str, source: str, entry_name: str | None = None):
    """A minimal installed distribution: a module plus a dist-info with one entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[letras]\n{entry_name or module} = {module}\n")


GOOD = """
from letras.core import hookimpl

@hookimpl
def register_corpora(register):
    register("nombres", "letras.plugins.corpora:ciudades", help="a corpus from a plugin")
"""


@pytest.fixture
def broken_site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "import-fails", "import_fails", "raise ImportError('needs libfoo')\n")
    make_dist(site, "hook-fails", "hook_fails", """
        from letras.core import hookimpl

        @hookimpl
        def register_cells(register):
            register("fine", "x.y:z")
            raise RuntimeError("cell table missing")
        """)
    make_dist(site, "typo-plugin", "typo_plugin", """
        from letras.core import hookimpl

        @hookimpl
        def register_cell(register):
            register("lost", "x.y:z")
        """)
    make_dist(site, "good-one", "good_one", GOOD)
    make_dist(site, "good-two", "good_two", GOOD)
    return site


def test_broken_plugins_are_reported_and_everything_else_works(broken_site, tmp_path):
    plugins, result = plugins_json(broken_site, tmp_path)
    assert "ImportError: needs libfoo" in plugins["import_fails"]["error"]
    assert plugins["import_fails"]["distribution"] == "import-fails" and plugins["import_fails"]["version"] == "1.0"
    assert "register_cells hook raised RuntimeError: cell table missing" in plugins["hook_fails"]["error"]
    assert plugins["typo_plugin"]["error"] is None
    assert "did you mean register_cells?" in plugins["typo_plugin"]["warnings"][0]
    assert "Warning: plugin 'typo_plugin' implements 'register_cell'" in result.stderr
    text = letras("plugins", site=broken_site, cwd=tmp_path).stdout
    assert "import_fails (import-fails 1.0) [entry point] FAILED: failed to import: ImportError: needs libfoo" in text
    assert not imports_torch("plugins", cwd=tmp_path, env={"PYTHONPATH": str(broken_site)})
    # every other command keeps working
    assert letras("list", "cell", site=broken_site, cwd=tmp_path).returncode == 0
    assert letras("validate", "ciudades-rnn", site=broken_site, cwd=tmp_path).returncode == 0


def test_a_component_of_a_failed_plugin_names_the_failure(broken_site, tmp_path):
    result = letras("validate", "ciudades-rnn", "model=generator", "model.cell=hook_fails:fine",
                    site=broken_site, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "plugin 'hook_fails' failed to load (its register_cells hook raised RuntimeError" in result.stderr


def test_clashing_names_are_an_error_only_when_used(broken_site, tmp_path):
    result = letras("validate", "ciudades-rnn", "corpus=nombres", site=broken_site, cwd=tmp_path)
    assert result.returncode == 2
    assert "'good_one:nombres' or 'good_two:nombres'" in result.stderr
    assert letras("validate", "ciudades-rnn", "corpus=good_two:nombres", site=broken_site,
                  cwd=tmp_path).returncode == 0


def test_allow_and_block_lists(broken_site, tmp_path):
    plugins, _ = plugins_json(broken_site, tmp_path, env={"LETRAS_LOAD_PLUGINS": "good_one"})
    third_party = {n for n, p in plugins.items() if p["source"] == "entry point"}
    assert third_party == {"good_one"}
    plugins, _ = plugins_json(broken_site, tmp_path, env={"LETRAS_LOAD_PLUGINS": ""})
    assert all(p["source"] == "builtin" for p in plugins.values())
    plugins, _ = plugins_json(broken_site, tmp_path,
                              env={"LETRAS_BLOCK_PLUGINS": "import_fails,hook-fails,letras.plugins.bench"})
    assert {"import_fails", "hook_fails", "letras.plugins.bench"}.isdisjoint(plugins)
    assert "bench" not in letras("--help", site=broken_site, cwd=tmp_path,
                                 env={"LETRAS_BLOCK_PLUGINS": "letras.plugins.bench"}).stdout


def test_strict_mode_fails_on_a_broken_plugin(broken_site, tmp_path):
    result = letras("list", site=broken_site, cwd=tmp_path, env={"LETRAS_PLUGIN_ERRORS": "raise"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "plugin 'hook_fails'" in result.stderr or "import_fails" in result.stderr


LISTENER = """
from letras.core import hookimpl

@hookimpl
def on_train_event(event):
    if event.kind == "epoch_end":
        raise ZeroDivisionError("a bug in a logging plugin")
"""


@pytest.fixture
def listener_site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "letras-noisy", "noisy_listener", LISTENER)
    return site


def test_a_listener_that_raises_is_reported_once_and_training_goes_on(listener_site, tmp_path):
    result = letras("run", "ciudades-lstm", "trainer.epochs=4", "trainer.device=cpu", site=listener_site, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    reports = [line for line in result.stderr.splitlines() if "noisy_listener" in line]
    assert reports == ["Warning: plugin 'noisy_listener' failed on a training event (epoch_end): "
                       "ZeroDivisionError: a bug in a logging plugin; training goes on without it"]
    assert len(result.stdout.splitlines()) == 15  # the samples
    run = tmp_path / "runs" / "ciudades-lstm"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4  # the other listeners heard every epoch


def test_strict_mode_makes_a_failing_listener_fatal_and_keeps_the_checkpoint(listener_site, tmp_path):
    result = letras("run", "ciudades-lstm", "trainer.epochs=4", "trainer.device=cpu", site=listener_site, cwd=tmp_path,
                    env={"LETRAS_PLUGIN_ERRORS": "raise"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "plugin 'noisy_listener' failed on a training event (epoch_end): ZeroDivisionError" in result.stderr
    assert (tmp_path / "runs" / "ciudades-lstm" / "checkpoint.pt").is_file()


SAMPLER = """
from dataclasses import dataclass
from letras.core import hookimpl, option

@dataclass
class EchoOptions:
    count: int = option(3, min=1, help="how many words")
    word: str = option("hola", help="the word to say again")

class Echo:
    def __init__(self, options):
        self.options = options

    def sample(self, model, tokenizer, *, seed=None, device="cpu"):
        return [self.options.word] * self.options.count

@hookimpl
def register_samplers(register):
    register("echo", Echo, options=EchoOptions, help="says one word again")
"""


def test_a_third_party_samplers_option_is_a_flag_of_sample(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "letras-echo", "echo_sampler", SAMPLER)
    trained = letras("run", "ciudades-lstm", "trainer.epochs=1", "-q", site=site, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    help_text = letras("sample", "--help", site=site, cwd=tmp_path).stdout
    assert "--word TEXT" in help_text and "The word to say again (sampler: echo" in " ".join(help_text.split())
    echoed = letras("sample", "runs/ciudades-lstm", "--sampler", "echo", "--word", "ADIOS", "-n", "2",
                    site=site, cwd=tmp_path)
    assert echoed.returncode == 0, echoed.stderr
    assert echoed.stdout.splitlines() == ["ADIOS", "ADIOS"]
    wrong = letras("sample", "runs/ciudades-lstm", "--word", "ADIOS", site=site, cwd=tmp_path)  # the run's sampler
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "--word is not an option of sampler 'temperature'" in wrong.stderr
