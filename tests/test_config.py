from pathlib import Path

import pytest

from letras.core import ConfigError, load_config
from letras.core.config import shipped_configs


def error_of(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    return str(info.value)


def test_every_shipped_config_validates():
    names = shipped_configs()
    assert {"municipios-lstm", "ciudades-rnn", "ciudades-lstm", "names-lstm", "words"} <= set(names)
    for name in names:
        overrides = ["corpus.path=x.txt"] if name in ("names-lstm", "words") else []
        config = load_config(name, overrides)
        assert config.name == name


def test_default_config_is_municipios_lstm():
    config = load_config(None)
    assert config["corpus"].component.name == "municipios"
    assert config["model"].component.name == "lstm"
    assert config.output == "runs/municipios-lstm"


def test_the_notes_experiment_as_written():
    config = load_config("ciudades-rnn")
    model, trainer = config["model"].options, config["trainer"].options
    assert config["model"].component.name == "rnn"
    assert (model.hidden_size, model.embedding_dim) == (128, 0)  # one-hot input
    assert (trainer.lr, trainer.optimizer, trainer.epochs, trainer.batch_size) == (0.001, "adam", 1000, 1)
    assert (trainer.unroll, trainer.reduction) == ("manual", "sum")


def test_defaults_are_resolved_and_written_out(write_config):
    config = load_config(str(write_config("model: {name: lstm}\n")))
    data = config.to_dict()
    assert data["model"] == {"name": "lstm", "hidden_size": 128, "embedding_dim": 32,
                             "num_layers": 1, "dropout": 0.0, "dropout_mask": "letter",
                             "label_dim": 16, "label_state": False}
    assert data["trainer"]["name"] == "word-reset" and data["sampler"]["name"] == "temperature"
    assert data["name"] == "config"  # a config without a name is named after its file


def test_section_shorthand(write_config):
    config = load_config(str(write_config("model: rnn\ncorpus: ciudades\n")))
    assert config["model"].component.name == "rnn"


def test_overrides_parse_values_as_yaml(write_config):
    config = load_config(str(write_config()), ["model.hidden_size=64", "trainer.grad_clip=0.5",
                                               "sampler.prefix=Vi", "name=other"])
    assert config["model"].options.hidden_size == 64
    assert config["trainer"].options.grad_clip == 0.5
    assert config["sampler"].options.prefix == "Vi"
    assert config.name == "other" and config.output == "runs/other"


def test_override_can_switch_component(write_config):
    config = load_config(str(write_config()), ["model=rnn", "model.hidden_size=16"])
    assert config["model"].component.name == "rnn"
    assert config["model"].options.hidden_size == 16


@pytest.mark.parametrize("text, expected", [
    ("corpus: {name: municipio}\n", "config.yaml:1 (corpus.name): unknown corpus 'municipio' (did you mean 'municipios'?"),
    ("model:\n  name: lstm\n  hiden_size: 3\n", "config.yaml:3 (model.hiden_size): unknown key 'hiden_size' (did you mean 'hidden_size'?"),
    ("model:\n  hidden_size: -4\n", "config.yaml:2 (model.hidden_size): must be at least 1, got -4"),
    ("model:\n  hidden_size: big\n", "config.yaml:2 (model.hidden_size): expected integer | 'auto', got 'big'"),
    ("trainer: {val_fraction: 1}\n", "config.yaml:1 (trainer.val_fraction): must be less than 1.0"),
    ("sampler: {temperature: 0}\n", "config.yaml:1 (sampler.temperature): must be greater than 0.0"),
    ("sampler: {count: 0}\n", "config.yaml:1 (sampler.count): must be at least 1, got 0"),
    ("trainer: {device: tpu}\n", "config.yaml:1 (trainer.device): device must be auto, cpu, cuda or cuda:N"),
    ("trainer: {optimizer: sgd}\n", "config.yaml:1 (trainer.optimizer): expected one of 'adam', 'adamw'"),
    ("tokenizer: {case: title}\n", "config.yaml:1 (tokenizer.case): expected one of 'keep', 'upper', 'lower'"),
    ("corpus: {name: file}\n", "config.yaml:1 (corpus.path): required option is missing"),
    ("modle: {name: lstm}\n", "config.yaml:1 (modle): unknown key 'modle' (did you mean 'model'?"),
    ("model: [1, 2]\n", "config.yaml:1 (model): section 'model' must be a mapping"),
    ("seed: -1\n", "config.yaml:1 (seed): expected a whole number ≥ 0, got -1"),
    ("name: a/b\n", "config.yaml:1 (name): expected a run name without '/'"),
    ("model: {name: generator, cell: gru}\n", "config.yaml:1 (model.cell): unknown cell 'gru' (available: lstm, rnn)"),
    ("model: {name: generator, cell: rnn, cell_options: {nonlinearity: sigmoid}}\n",
     "config.yaml:1 (model.cell_options.nonlinearity): expected one of 'tanh', 'relu'"),
    ("model: {name: generator, cell: lstm, cell_options: {size: 3}}\n",
     "config.yaml:1 (model.cell_options.size): unknown key 'size'"),
    ("model: {name: lstm}\nmodel: {name: rnn}\n", "config.yaml:2: key 'model' appears twice (first on line 1)"),
    ("model: [1, 2\n", "config.yaml:2: not valid YAML"),
    ("- just\n- a list\n", "config.yaml: a config must be a mapping of sections, got list"),
])
def test_validation_errors_name_file_line_and_key(write_config, text, expected):
    path = write_config(text)
    message = error_of(str(path))
    assert message.replace(str(path), "config.yaml").startswith(expected), message


def test_override_errors_name_the_override(write_config):
    message = error_of(str(write_config()), ["model.hidden_size=abc"])
    assert message.startswith("command line 'model.hidden_size=abc': expected integer | 'auto'")
    assert "KEY=VALUE" in error_of(str(write_config()), ["model.hidden_size"])


def test_unknown_config_name_lists_shipped_ones():
    message = error_of("municipios-lstn")
    assert "did you mean 'municipios-lstm'?" in message and "ciudades-rnn" in message


def test_config_not_utf8(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    assert "not UTF-8" in error_of(str(path))


def test_empty_file_takes_all_defaults(write_config):
    config = load_config(str(write_config("")))
    assert config["corpus"].component.name == "municipios"


def test_relative_paths_follow_the_config_file(tmp_path, write_config, monkeypatch):
    (tmp_path / "words.txt").write_text("ana\nbea\n", encoding="utf-8")
    path = write_config("corpus: {name: file, path: words.txt}\n")
    monkeypatch.chdir("/")
    config = load_config(str(path))
    assert config["corpus"].options.path == str(tmp_path / "words.txt")
    # from the command line, a relative path is taken from the current folder
    monkeypatch.chdir(tmp_path)
    config = load_config("names-lstm", ["corpus.path=words.txt"])
    assert Path(config["corpus"].options.path) == tmp_path / "words.txt"


def test_nested_options_reach_the_field_as_the_named_components_options_object(write_config):
    from letras.core import options as opts
    from letras.plugins.recurrent import RNNCellOptions

    path = write_config("model: {name: generator, cell: rnn, cell_options: {nonlinearity: relu}}\n")
    model = load_config(str(path))["model"].options
    assert model.cell_options == RNNCellOptions(nonlinearity="relu")
    assert opts.to_dict(model)["cell_options"] == {"nonlinearity": "relu"}  # config.yaml stays plain YAML
    defaults = load_config(str(write_config("model: {name: generator, cell: rnn}\n")))["model"].options
    assert defaults.cell_options == RNNCellOptions()  # the cell's defaults, filled in


def test_a_plugins_component_names_another_with_its_options():
    """The mechanism is the public API's: a third-party model names a cell and gets the
    cell's options object, built and checked, without checking anything itself."""
    from dataclasses import dataclass
    from typing import Any

    from letras.core import components, hookimpl, option
    from letras.core.config import build_options
    from letras.core.testing import registered_plugin
    from letras.plugins.recurrent import RNNCellOptions

    @dataclass
    class PairOptions:
        cell: str = option("lstm", component="cell")
        cell_options: Any = option(default_factory=dict, options_of="cell")

    received = []

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register("pair", lambda vocab_size, options: received.append(options), options=PairOptions)

    with registered_plugin(Plugin(), "pair"):
        component = components("model").get("pair")
        built = build_options(component, {"cell": "rnn", "cell_options": {"nonlinearity": "relu"}}, "model")
        component.build(5, options=built)
        assert received[0].cell_options == RNNCellOptions(nonlinearity="relu")
        with pytest.raises(ConfigError, match=r"model.cell_options.nonlinearity.*expected one of"):
            build_options(component, {"cell": "rnn", "cell_options": {"nonlinearity": "cube"}}, "model")
