"""`pip install .` gives a working letras: namespace layout, shipped data and configs."""

import subprocess
import sys
import sysconfig
import zipfile

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (path,) = out.glob("letras-*.whl")
    return path


def test_wheel_maps_core_and_plugins_under_letras(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "letras/core/cli.py" in names and "letras/plugins/recurrent/generator.py" in names
    assert "letras/plugins/data/es_municipios.txt" in names
    assert "letras/plugins/data/SOURCES.md" in names  # the INE attribution travels with the data
    assert "letras/configs/municipios-lstm.yaml" in names
    assert not any(n.startswith(("core/", "plugins/", "configs/", "tests/")) for n in names)
    assert not any(n.startswith("letras/__init__") for n in names)  # letras is a namespace
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "letras = letras.core.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_copy_runs_without_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    # -S skips site-packages' .pth files, so the editable checkout cannot answer the imports.
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import letras.core, letras.plugins.corpora as c\n"
        "from letras.core.config import load_config, shipped_configs\n"
        "assert letras.core.__file__.startswith(sys.argv[1]), letras.core.__file__\n"
        "assert len(c.municipios().words()) == 8238\n"
        "assert 'ciudades-rnn' in shipped_configs(); load_config('ciudades-rnn')\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code, str(target), sysconfig.get_paths()["purelib"]],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.strip() == "ok", result.stderr


def test_the_torch_floor_is_stated_once_and_the_same_everywhere():
    import re

    from letras.core.devices import MIN_TORCH

    floor = ".".join(map(str, MIN_TORCH))
    assert re.findall(r'"torch[^"]*"', (ROOT / "pyproject.toml").read_text()) == [f'"torch>={floor},<3"']
    assert f"letras supports torch {floor} and\nlater 2.x releases" in (ROOT / "README.md").read_text()
    import torch

    assert tuple(int(p) for p in re.findall(r"\d+", torch.__version__)[:2]) >= MIN_TORCH  # what CI installs


def test_an_older_torch_is_one_clear_error(monkeypatch):
    from letras.core import LetrasError, devices

    monkeypatch.setattr(devices.metadata, "version", lambda name: "2.2.1+cpu")
    devices.check_torch.cache_clear()
    try:
        with pytest.raises(LetrasError, match=r"letras needs torch 2\.13 or newer; this is torch 2\.2\.1\+cpu") as error:
            devices.resolve_device("cpu")
        assert "pip install 'torch>=2.13,<3'" in str(error.value)
    finally:
        devices.check_torch.cache_clear()
    assert devices._release("2.13.0+cpu") == (2, 13, 0) and devices._release("2.14.0a0+gitabc") == (2, 14, 0)
