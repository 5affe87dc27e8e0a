"""The three training loops and the sampler, timed on one model size and one corpus.

Each loop trains a fresh copy of the same model (embedding 32 -> cell -> linear head) for a
fixed time and counts the characters it predicted (letters plus the end of word, never
padding). Ratios measured in one process on one machine cancel most of its noise.
"""

from __future__ import annotations

import os
import random
import resource
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

from letras.core import TrainingRun, autocast, components, resolve_device, resolve_precision
from letras.core.batching import IGNORE, WordBatches
from letras.core.interfaces import framed
from letras.core.wordfile import read_words

EMBEDDING = 32
SAMPLED_PER_CALL = 20_000  # words per sampling call, 1000 at a time: the rate a long list is drawn at


def load_corpus(name: str) -> tuple[str, list[str]]:
    if os.path.isfile(name):
        return os.path.basename(name), read_words(name)
    return name, components("corpus").get(name).build().words()


def make_model(cell: str, vocab_size: int, hidden: int, device: torch.device, num_labels: int = 0,
               **label_options: Any) -> Any:
    """The generator benchmarked; ``label_options`` (label_dim, label_state) shape its labels."""
    torch.manual_seed(0)
    labelled = {"num_labels": num_labels} if num_labels else {}
    model = components("model").get(cell).build(vocab_size, hidden_size=hidden, embedding_dim=EMBEDDING,
                                                **label_options, **labelled)
    return model.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], int], seconds: float, device: torch.device, warmup: int = 3) -> float:
    """Characters per second of ``step()`` (which returns the characters it trained on)."""
    for _ in range(warmup):
        step()
    sync(device)
    chars, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        chars += step()
    sync(device)
    return chars / (time.perf_counter() - start)


def notes_loop(model: Any, encoded: list[list[int]], device: torch.device,
               precision: str = "fp32") -> Callable[[], int]:
    """The notes' loop: one word per optimizer step, one recurrent call per letter, the
    hidden state reset to zeros for every word, the loss summed over the letters."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    words = [torch.tensor(w, device=device) for w in encoded]
    order = iter(())

    def step() -> int:
        nonlocal order
        word = next(order, None)
        if word is None:
            order = iter(random.sample(words, len(words)))
            word = next(order)
        state, loss = None, 0.0  # "hay que inicializar la memoria en cada palabra nueva"
        with autocast(device, precision):
            for t in range(len(word) - 1):
                logits, state = model(word[None, t:t + 1], state)  # one letter in
                loss = loss + F.cross_entropy(logits[0], word[t + 1:t + 2])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return len(word) - 1

    return step


def plain_loop(model: Any, encoded: list[list[int]], batch_size: int, device: torch.device,
               waste: list[int], precision: str = "fp32") -> Callable[[], int]:
    """What one writes with no toolkit: random batches padded to their longest word, one
    fused call per batch, masked cross-entropy, Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    data = WordBatches(encoded, device)  # padded once, like a typical Dataset would
    n = len(encoded)

    def step() -> int:
        index = torch.randint(0, n, (batch_size,))
        lengths = data.lengths[index]
        width = int(lengths.max())
        index = index.to(device)
        inputs, targets = data.inputs[index, :width], data.targets[index, :width]
        with autocast(device, precision):
            logits, _ = model(inputs)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        chars = int(lengths.sum())
        waste[0] += batch_size * width - chars
        waste[1] += batch_size * width
        return chars

    return step


def letras_trainer(cell: str, hidden: int, vocab_size: int, encoded: list[list[int]], batch_size: int,
                   seconds: float, device: torch.device, precision: str = "fp32") -> tuple[float, Any]:
    """The word-reset trainer as a user runs it, for ``seconds``, no validation, no checkpoints.

    The learning rate is annealed (cosine) over the time, as ``names-lstm`` does, so the model
    the sampling is timed on has settled: at a constant rate the words it drew were 11.5 to
    16.9 characters long from one run to the next, wherever training happened to stop, and
    words/s moved with them; annealed, they are as long as the corpus's."""
    model = make_model(cell, vocab_size, hidden, device)
    trainer = components("trainer").get("word-reset").build(
        epochs=1_000_000, batch_size=batch_size, lr=0.003, schedule="cosine", val_fraction=0.0,
        max_seconds=seconds, device=str(device), precision=precision, log_every=1_000_000)
    run = TrainingRun(seed=0)
    trainer.fit(model, encoded, run)
    chars = sum(m["chars"] for m in run.history)
    train_seconds = sum(m["chars"] / m["chars_per_s"] for m in run.history)
    return chars / train_seconds, model


MIN_STEPS_PER_TURN = 4  # fewer, and a turn is at the mercy of one slow step: a slow machine takes longer


def label_cost(cell: str, hidden: int, vocab_size: int, encoded: list[list[int]], batch_size: int, seconds: float,
               device: torch.device, precision: str, labels: int, turns: int = 20, **label_options: Any,
               ) -> dict[str, Any]:
    """The price of ``labels`` labels on a training step: the trainer's length-grouped batches
    (word i has label i mod ``labels``) through the model with labels and without, the same
    batches in the same order, summed loss, backward and an Adam step, as the trainer takes.

    On a machine others share the load changes from one second to the next, so the two are
    timed side by side in ``turns`` short turns, each timing both, with labels first in one
    turn and second in the next (a load that rises through a turn favours neither), each
    long enough (about ``seconds / turns``) to hold several steps; the figure is the median
    of the turns' ratios. Before timing, every batch shape goes once through each model: oneDNN
    builds its kernels for each new shape, and that cost belongs to neither. A turn holds at
    least MIN_STEPS_PER_TURN steps, so on a slow machine this takes longer than ``seconds``."""
    import statistics

    data = WordBatches(encoded, device, labels=[i % labels for i in range(len(encoded))])
    batches = list(data.labelled_batches(batch_size, generator=torch.Generator().manual_seed(0)))
    steps = {n: _training_step(make_model(cell, vocab_size, hidden, device, n, **label_options), batches, device,
                               precision, n > 0)
             for n in (0, labels)}
    for n in (0, labels):  # the warm-up: every shape once
        steps[n](0, len(batches))
    per_step = sum(steps[n](0, MIN_STEPS_PER_TURN) for n in (0, labels)) / (2 * MIN_STEPS_PER_TURN)
    k = max(MIN_STEPS_PER_TURN, round(seconds / turns / 2 / max(per_step, 1e-9)))  # steps per turn
    times: dict[int, list[float]] = {0: [], labels: []}
    for turn in range(turns):
        for n in ((labels, 0) if turn % 2 == 0 else (0, labels)):
            times[n].append(steps[n](turn * k, k))
    ratios = [without / with_ for with_, without in zip(times[labels], times[0])]  # speed with / without
    chars = sum(int(b[2]) for turn in range(turns) for b in _turn(batches, turn * k, k))
    quartiles = statistics.quantiles(ratios, n=4)
    return {"labels": labels, **label_options, "turns": turns, "steps_per_turn": k,
            "chars_per_s": chars / sum(times[labels]), "without_chars_per_s": chars / sum(times[0]),
            "speed_ratio": statistics.median(ratios), "quartiles": [quartiles[0], quartiles[2]],
            "ratios_per_turn": ratios}


def _turn(batches: list[Any], start: int, k: int) -> list[Any]:
    return [batches[(start + i) % len(batches)] for i in range(k)]


def _training_step(model: Any, batches: list[Any], device: torch.device, precision: str,
                   labelled: bool) -> Callable[[int, int], float]:
    """``run(start, k)``: the seconds ``k`` training steps take on the batches from ``start`` on."""
    from letras.core.batching import loss_sum

    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)

    def run(start: int, k: int) -> float:
        sync(device)
        begin = time.perf_counter()
        for inputs, targets, _, labels, _ in _turn(batches, start, k):
            with autocast(device, precision):
                loss = loss_sum(model, inputs, targets, labels if labelled else None)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        sync(device)
        return time.perf_counter() - begin

    return run


def sampling_rate(model: Any, tokenizer: Any, seconds: float, device: torch.device,
                  precision: str = "fp32", batch: int = 1000, count: int | None = None) -> tuple[float, float]:
    """Words/s and characters/s (letters plus the end of each word) drawn ``batch`` words at a
    time, ``count`` words per call (``batch`` by default: each call waits for its longest word;
    more: finished words hand their rows to new ones). Words/s depends on how long the
    corpus's words are, characters/s hardly."""
    sampler = components("sampler").get("temperature").build(count=count or batch, batch_size=batch, max_length=50)
    words = chars = 0
    with autocast(device, precision):
        sampler.sample(model, tokenizer, seed=0, device=device)  # warm-up
        sync(device)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            drawn = sampler.sample(model, tokenizer, seed=words, device=device)
            words, chars = words + len(drawn), chars + sum(len(w) + 1 for w in drawn)
        sync(device)
    elapsed = time.perf_counter() - start
    return words / elapsed, chars / elapsed


def run_benchmark(*, corpus: str, cell: str, hidden: int, batch_size: int, seconds: float,
                  device: str = "cpu", precision: str = "fp32", labels: int = 0, label_dim: int = 16,
                  label_state: bool = False,
                  progress: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """Every loop and the sampling in the same ``precision`` (fp32, bf16, or auto: bf16 where the
    device has it). With ``labels``, training steps with that many labels and without, in
    alternating turns (``label_cost``): the price of a label."""
    torch_device = resolve_device(device)
    precision = resolve_precision(precision, torch_device, setting="--precision {}")
    name, words = load_corpus(corpus)
    tokenizer = components("tokenizer").get("chars").build()
    tokenizer.fit(words)
    encoded = [framed(tokenizer, w) for w in words]
    vocab = tokenizer.vocab_size
    if torch_device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(torch_device)

    progress(f"notes' loop: {seconds:g} s ...")
    notes = timed(notes_loop(make_model(cell, vocab, hidden, torch_device), encoded, torch_device, precision),
                  seconds, torch_device)
    progress(f"plain torch loop: {seconds:g} s ...")
    waste = [0, 0]
    plain = timed(plain_loop(make_model(cell, vocab, hidden, torch_device), encoded, batch_size,
                             torch_device, waste, precision), seconds, torch_device)
    progress(f"letras trainer: {seconds:g} s ...")
    fast, model = letras_trainer(cell, hidden, vocab, encoded, batch_size, seconds, torch_device, precision)
    letras_padding = _grouped_padding(encoded, batch_size)
    labelled = None
    if labels:
        progress(f"training steps with and without {labels} labels, in turns: {seconds:g} s ...")
        labelled = label_cost(cell, hidden, vocab, encoded, batch_size, seconds, torch_device, precision, labels,
                              label_dim=label_dim, label_state=label_state)
    progress(f"sampling: {2 * min(seconds, 2):g} s ...")
    words_per_s, chars_per_s = sampling_rate(model, tokenizer, min(seconds, 2.0), torch_device, precision,
                                             count=SAMPLED_PER_CALL)
    one_batch, _ = sampling_rate(model, tokenizer, min(seconds, 2.0), torch_device, precision)

    return {
        "corpus": name, "words": len(words), "cell": cell, "hidden": hidden, "batch_size": batch_size,
        "device": str(torch_device), "precision": precision, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "seconds": seconds,
        "notes": {"chars_per_s": notes, "padding": 0.0},
        "plain": {"chars_per_s": plain, "padding": waste[0] / max(waste[1], 1)},
        "letras": {"chars_per_s": fast, "padding": letras_padding},
        "ratios": {"letras_vs_notes": fast / notes, "letras_vs_plain": fast / plain,
                   **({"labelled_vs_letras": labelled["speed_ratio"]} if labelled else {})},
        **({"labelled": labelled} if labelled else {}),
        "sampling": {"batch": 1000, "words_per_call": SAMPLED_PER_CALL, "words_per_s": words_per_s,
                     "chars_per_s": chars_per_s, "one_batch_per_call_words_per_s": one_batch,
                     # words/s moves with the length of the words drawn: the corpus's, for comparison
                     "corpus_chars_per_word": sum(map(len, encoded)) / len(encoded) - 1},
        "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cuda_peak_mib": (torch.cuda.max_memory_allocated(torch_device) / 2**20
                          if torch_device.type == "cuda" else None),
    }


def _grouped_padding(encoded: list[list[int]], batch_size: int) -> float:
    """Share of padded positions in one epoch of the letras trainer's length-grouped batches."""
    data = WordBatches(encoded)
    total = sum(inputs.numel() for inputs, _, _ in data.batches(batch_size, generator=torch.Generator().manual_seed(0)))
    return 1 - data.chars / total
