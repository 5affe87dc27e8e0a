"""Each export format of one run, side by side: file sizes and words drawn per second.

    python -m letras.plugins.export.bench runs/municipios-lstm [--words 300]

Every sampler draws words one at a time, letter by letter, as a game or a web page asks
for a name: torch and onnxruntime running the one-step model, the plain-Python reference
sampler (sampler.py) and the page's JavaScript in headless chromium (if installed). letras's
own batched sampler (`letras sample`, many words per recurrent call) is the last line.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from . import sampler as reference


def words_per_second(draw: Callable[[int], Any], words: int) -> float:
    draw(2)  # warm up (a first call builds kernels, sessions, caches)
    start = time.perf_counter()
    draw(words)
    return words / (time.perf_counter() - start)


def one_at_a_time(step: Callable[[int, Any], tuple], boundary: int, seed: int) -> Callable[[int], list]:
    """A sampler drawing words one after another from ``step(token, state) -> (logits, state)``
    (``state`` None at a word's start), with the reference sampler's draw (temperature 1)."""
    def draw(count: int) -> list:
        rng, lengths = reference.Mulberry32(seed), []
        for _ in range(count):
            logits, state = step(boundary, None)
            n = 0
            while n < 50:
                forbidden = boundary if n == 0 else None  # a word has a letter
                token = reference.draw(reference.distribution(logits, 1.0, None, forbidden), rng)
                if token == boundary:
                    break
                logits, state = step(token, state)
                n += 1
            lengths.append(n)
        return lengths
    return draw


def run(run_dir: str, words: int = 300, threads: int = 1) -> dict[str, Any]:
    import torch

    from letras.core import load_run

    torch.set_num_threads(threads)  # one word a call: threads only wait for each other

    trained = load_run(run_dir)
    folder = Path(tempfile.mkdtemp())
    paths = {fmt: trained.export(fmt, folder / f"model.{fmt}") for fmt in ("onnx", "html", "json")}
    paths["json (float16)"] = trained.export("json", folder / "model16.json", dtype="float16")
    report: dict[str, Any] = {"run": run_dir, "words": words, "torch_threads": torch.get_num_threads(),
                              "sizes": {fmt: p.stat().st_size for fmt, p in paths.items()}, "words_per_s": {}}
    speed = report["words_per_s"]
    model = trained.model.eval()

    @torch.inference_mode()
    def torch_step(token: int, state: Any) -> tuple:
        logits, state = model(torch.tensor([[token]]), state)
        return logits[0, -1].tolist(), state

    speed["torch, one word at a time"] = words_per_second(one_at_a_time(torch_step, 0, 1), words)
    speed["onnxruntime, one word at a time"] = _onnx_speed(paths["onnx"], words, threads)
    ref = reference.load(str(paths["json"]))
    speed["sampler.py (plain Python)"] = words_per_second(lambda n: ref.sample(n, seed=1, temperature=1.0),
                                                          max(words // 10, 5))
    speed["page (JavaScript, chromium)"] = _browser_speed(paths["html"], words)
    speed["letras sample (batched torch)"] = words_per_second(lambda n: trained.sample(count=n, seed=1), 20 * words)
    shutil.rmtree(folder)
    return report


def _onnx_speed(path: Path, words: int, threads: int) -> float | None:
    try:
        import numpy as np
        import onnxruntime
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()][1:]
    shapes = [[d if isinstance(d, int) else 1 for d in i.shape] for i in session.get_inputs()[1:]]
    zero = [np.zeros(shape, np.float32) for shape in shapes]

    def step(token: int, state: Any) -> tuple:
        logits, *state = session.run(None, {"ids": np.array([[token]], np.int64), **dict(zip(names, state or zero))})
        return logits[0].tolist(), state

    return words_per_second(one_at_a_time(step, 0, 1), words)


def _browser_speed(page: Path, words: int) -> float | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", f"--user-data-dir={profile}", "--dump-dom",
                              f"{page.as_uri()}#count=1&temperature=1&bench={words}"],
                             capture_output=True, text=True, timeout=600).stdout
    found = re.search(r'<pre id="letras-bench"[^>]*>(.*?)</pre>', dom)
    return None if not found else words / (json.loads(html.unescape(found.group(1)))["ms"] / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--words", type=int, default=300, help="words each sampler draws (sampler.py: a tenth)")
    parser.add_argument("--threads", type=int, default=1, help="of torch and onnxruntime")
    args = parser.parse_args()
    report = run(args.run_dir, args.words, args.threads)
    print(f"{report['run']}: {report['torch_threads']} thread(s) for torch and onnxruntime")
    for fmt, size in report["sizes"].items():
        print(f"  {fmt:<16}{size / 1024:>8,.0f} KB")
    base = report["words_per_s"]["torch, one word at a time"]
    for name, value in report["words_per_s"].items():
        shown = "  (not installed)" if value is None else f"{value:>10,.0f} words/s  {value / base:>7.2f}x torch"
        print(f"  {name:<34}{shown}")


if __name__ == "__main__":
    main()
