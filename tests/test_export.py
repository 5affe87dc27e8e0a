"""letras export: onnx, json and the reference sampler, the Python API and the command's errors.

Each format is read back the way its users read it (onnxruntime, sampler.py) and compared
with the torch model, on tiny runs of every built-in cell layout and the example plugin's cells.
"""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from export_runs import (MODELS, WORDS, assert_probabilities, open_run, plugin, round_weights_to_float16,
                         train_runs)
from letras.core import LetrasError, UsageError, hookimpl, load_run
from letras.core.testing import registered_plugin, train_tiny
from letras.plugins.export import sampler as reference  # the file users copy: no letras, no torch

FUSED = [name for name in MODELS if name != "mgu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_runs(tmp_path_factory.mktemp("runs"))


def torch_logits(trained, word):
    """The torch model's logits after the boundary and after each letter of ``word``: (T, V)."""
    ids = [trained.tokenizer.boundary_id, *trained.tokenizer.encode(word)]
    with torch.no_grad():
        return trained.model(torch.tensor([ids]))[0][0]


def needs_onnxruntime():
    for module in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install 'letras[export]')")


# -- onnx ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_gives_torchs_logits_at_every_position_of_a_batch(runs, tmp_path, name):
    needs_onnxruntime()
    import numpy as np
    import onnxruntime

    with plugin():
        trained = open_run(runs[name])
        path = trained.export("onnx", tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    assert inputs[0] == "ids" and outputs == ["logits", *[f"{n}_out" for n in inputs[1:]]]
    layers = len(trained.model.cell.layers) if hasattr(trained.model.cell, "layers") else trained.model.cell.num_layers
    hidden = trained.config["model"].options.hidden_size
    state = {n: np.zeros((layers, len(WORDS), hidden), np.float32) for n in inputs[1:]}
    encoded = [[0, *trained.tokenizer.encode(w)] for w in WORDS]
    width = max(map(len, encoded))
    steps = []
    for t in range(width):  # the words side by side, shorter ones padded with the boundary
        ids = np.array([[seq[t] if t < len(seq) else 0] for seq in encoded], dtype=np.int64)
        logits, *new_state = session.run(None, {"ids": ids, **state})
        state = dict(zip(inputs[1:], new_state))
        steps.append(logits)
    for row, word in enumerate(WORDS):
        got = torch.from_numpy(np.stack([s[row] for s in steps[:len(encoded[row])]]))
        torch.testing.assert_close(got, torch_logits(trained, word), atol=1e-5, rtol=0)


def test_onnx_metadata_holds_the_alphabet_boundary_and_version(runs, tmp_path):
    needs_onnxruntime()
    import onnx

    trained = open_run(runs["lstm"])
    graph = onnx.load(str(trained.export("onnx", tmp_path / "m.onnx")))
    meta = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(meta["alphabet"]) == trained.tokenizer.chars
    assert meta["boundary_id"] == "0" and meta["state"] == '["h", "c"]' and meta["letras_version"]
    assert json.loads(meta["config"])["model"]["name"] == "lstm"


def test_onnx_without_the_package_says_what_to_install(runs, tmp_path, monkeypatch, invoke):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    result = invoke("export", runs["lstm"], "-f", "onnx", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: the onnx format needs the onnx package (pip install 'letras[export]', "
                                     "which brings onnx and onnxruntime)")
    assert not list(tmp_path.iterdir())  # no file, not even half of one


def test_a_model_the_onnx_exporter_refuses_is_named(runs, tmp_path, monkeypatch):
    needs_onnxruntime()

    def refuse(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::mystery' to ONNX opset version 17 is not supported.\nmore")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    with pytest.raises(LetrasError) as error:
        open_run(runs["lstm"]).export("onnx", tmp_path / "m.onnx")
    assert str(error.value) == ("cell 'lstm' cannot be exported to onnx: RuntimeError: Exporting the operator "
                                "'aten::mystery' to ONNX opset version 17 is not supported.")
    assert not list(tmp_path.iterdir())


# -- json and the reference sampler -------------------------------------------------------

@pytest.mark.parametrize("name", FUSED)
def test_reference_sampler_gives_torchs_probabilities(runs, tmp_path, name):
    with plugin():
        trained = open_run(runs[name])
        model = reference.load(str(trained.export("json", tmp_path / "m.json")))
    for word in WORDS:
        assert_probabilities(model.probabilities(word), trained, word, atol=1e-6)


def test_float16_weights_are_the_models_rounded(runs, tmp_path):
    """float16 stores each weight rounded to nearest even: the sampler then computes what
    torch computes with those weights."""
    trained = open_run(runs["lstm"])
    model = reference.load(str(trained.export("json", tmp_path / "m.json", dtype="float16")))
    round_weights_to_float16(trained)
    for word in WORDS:
        assert_probabilities(model.probabilities(word), trained, word, atol=1e-6)


def test_the_document_follows_its_schema(runs, tmp_path):
    trained = open_run(runs["lstm-2-layers-stacked"])
    doc = json.loads(trained.export("json", tmp_path / "m.json").read_text(encoding="utf-8"))
    assert (doc["format"], doc["format_version"], doc["dtype"]) == ("letras-model", 1, "float32")
    assert doc["alphabet"] == trained.tokenizer.chars and doc["boundary_id"] == 0 and doc["case"] == "keep"
    net = doc["network"]
    assert (net["input"], net["cell"], net["hidden_size"], len(net["layers"])) == ("embedding", "lstm", 10, 2)
    assert net["layers"][1]["weight_ih"]["shape"] == [40, 10]  # 4 gates of 10 units, from the first layer's 10
    assert net["head"]["bias"]["shape"] == [len(doc["alphabet"]) + 1]
    assert doc["sampler"] == {"temperature": 1.0, "top_k": None, "max_length": 50, "count": 5, "prefix": ""}
    assert doc["corpus"]["words"] == 15 and doc["corpus"]["known"]["count"] == 15
    assert doc["config"]["model"]["num_layers"] == 2


def test_reference_sampler_draws_words_of_the_alphabet_and_marks_known_ones(runs, tmp_path):
    trained = open_run(runs["lstm"])
    model = reference.load(str(trained.export("json", tmp_path / "m.json")))
    words = model.sample(30, seed=3, temperature=0.8)
    assert words == model.sample(30, seed=3, temperature=0.8) != model.sample(30, seed=4, temperature=0.8)
    assert all(words) and set("".join(words)) <= set(trained.tokenizer.chars)
    assert all(w.startswith("VAL") for w in model.sample(5, seed=0, prefix="val".upper(), max_length=8))
    assert all(len(w) <= 8 for w in model.sample(20, seed=1, max_length=8))
    assert model.is_known("MADRID") and not model.is_known("MADRIDZ")
    assert len(set(model.sample(5, seed=1, top_k=1))) == 1  # top-k 1: always the likeliest letter


def test_reference_sampler_runs_without_torch_or_site_packages(runs, tmp_path):
    trained = open_run(runs["lstm"])
    path = trained.export("json", tmp_path / "m.json")
    script = ROOT / "plugins" / "export" / "sampler.py"
    # -S: no site-packages at all, so neither torch nor letras can be imported
    result = subprocess.run([sys.executable, "-S", "-I", str(script), str(path), "-n", "4", "--seed", "2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 4
    bad = subprocess.run([sys.executable, "-S", "-I", str(script), str(path), "--prefix", "ñ"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("error: 'ñ': characters 'ñ' are not in")


def test_a_hand_written_cell_is_named_in_the_error(runs, tmp_path):
    with plugin():
        trained = open_run(runs["mgu"])
        for fmt in ("json", "html"):
            with pytest.raises(LetrasError, match=rf"cell 'mgu' \(StepCell\) cannot be exported to {fmt}: .*"
                                                  r"fused rnn, lstm and gru \(try --format onnx\)"):
                trained.export(fmt, tmp_path / f"m.{fmt}")
    assert not list(tmp_path.iterdir())


# -- the command and the Python API -------------------------------------------------------

def test_export_command_writes_each_format(runs, tmp_path, invoke):
    for fmt in ("json", "html"):
        result = invoke("export", runs["lstm"], "--format", fmt, "-o", tmp_path / "out" / f"m.{fmt}")
        assert result.exit_code == 0, result.output
        assert result.stderr.startswith(f"Wrote {tmp_path / 'out' / f'm.{fmt}'} (") and result.stdout == ""
    settings = invoke("export", runs["lstm"], "-f", "json", "-o", tmp_path / "16.json", "--set", "dtype=float16",
                      "--set", "known_words=false")
    assert settings.exit_code == 0, settings.output
    doc = json.loads((tmp_path / "16.json").read_text(encoding="utf-8"))
    assert doc["dtype"] == "float16" and doc["corpus"]["known"] is None


@pytest.mark.parametrize("args, message, code", [
    (["-f", "pdf"], "Error: unknown exporter 'pdf' (available: html, json, onnx)", 2),
    (["-f", "jsn"], "Error: unknown exporter 'jsn' (did you mean 'json'? available: html, json, onnx)", 2),
    (["-f", "json", "--set", "dtype=float8"], "Error: option dtype: expected one of 'float32', 'float16', got "
                                             "'float8' (string)", 2),
    (["-f", "json", "--set", "size"], "Error: --set takes KEY=VALUE (e.g. --set dtype=float16), got 'size'", 2),
])
def test_bad_options_are_one_line(runs, tmp_path, invoke, args, message, code):
    result = invoke("export", runs["lstm"], "-o", tmp_path / "m.out", *args)
    assert (result.exit_code, result.stderr.strip()) == (code, message)
    assert not (tmp_path / "m.out").exists()


def test_bad_run_path_is_one_line(tmp_path, invoke):
    result = invoke("export", tmp_path / "nowhere", "-f", "json", "-o", tmp_path / "m.json")
    assert (result.exit_code, result.stderr) == (2, f"Error: {tmp_path / 'nowhere'}: no such run folder\n")


def test_an_existing_file_is_kept_unless_overwrite(runs, tmp_path, invoke):
    target = tmp_path / "m.json"
    target.write_text("mine")
    result = invoke("export", runs["lstm"], "-f", "json", "-o", target)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {target}: already exists (choose another file, or pass --overwrite)"
    assert target.read_text() == "mine"
    assert invoke("export", runs["lstm"], "-f", "json", "-o", target, "--overwrite").exit_code == 0
    assert json.loads(target.read_text(encoding="utf-8"))["format"] == "letras-model"


def test_python_api_and_listing(runs, tmp_path, invoke):
    trained = open_run(runs["lstm"])
    assert trained.export("json", tmp_path / "a.json") == tmp_path / "a.json"
    with pytest.raises(UsageError, match="unknown exporter 'svg'"):
        trained.export("svg", tmp_path / "a.svg")
    listing = invoke("list", "exporters").stdout
    assert all(f"  {fmt} " in listing for fmt in ("onnx", "json", "html")) and "dtype" in listing


class WrappedModel(torch.nn.Module):
    """A plugin's model that is no generator, though it holds one."""

    def __init__(self, vocab_size):
        super().__init__()
        from letras.core import components

        self.inner = components("model").get("lstm").build(vocab_size, hidden_size=8, embedding_dim=4)

    def forward(self, ids, state=None):
        return self.inner(ids, state)


class WrappedPlugin:
    @hookimpl
    def register_models(register):
        register("wrapped", WrappedModel, help="a generator inside another module")


def test_a_plugins_model_exports_to_onnx_and_is_named_by_json(tmp_path):
    needs_onnxruntime()
    with registered_plugin(WrappedPlugin, "wrapped"):
        train_tiny(tmp_path / "run", model={"name": "wrapped"}, trainer={"epochs": 1})
        trained = load_run(tmp_path / "run")
        assert trained.export("onnx", tmp_path / "m.onnx").stat().st_size > 0
        with pytest.raises(LetrasError, match=r"^model 'wrapped' cannot be exported to json: the format knows the "
                                              r"generator \(embedding, cell, head\) \(try --format onnx\)$"):
            trained.export("json", tmp_path / "m.json")
