"""`letras bench-constraints`: what sampling under constraints costs, and how its words differ
from the model's conditioned on the same constraints.

Speed: 10,000 words without constraints, under ``--suffix ez --contains rr --min-length 6``,
and with ``--exclude`` of a list of 100,000 words (the model's own: the words it draws most
often are the ones it draws on the trie, the hardest case), timed side by side, the cases
taking turns, the median of the repeats kept. The exclusion's time includes compiling it.

Distribution: the steered words (each letter renormalised over the allowed ones) against
``--exact`` (rejection: the model's distribution conditioned on the constraint), as the
total-variation distance between their word and length frequencies, beside the distance
between two exact runs of other seeds: the sampling error alone.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from typing import Any, Callable

import click

SPEED_CONSTRAINT = {"suffix": "ez", "contains": ["rr"], "min_length": 6}


@click.command("bench-constraints")
@click.argument("run_dir", type=click.Path())
@click.option("--count", type=click.IntRange(min=1), default=10_000, show_default=True, help="Words per timing.")
@click.option("--exclude-words", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="How many of the model's words the exclusion list holds.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--suffix", default="illa", show_default=True, help="The constraint whose distribution is compared.")
@click.option("--draws", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Words per method for the distribution; 0 skips it.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def bench_constraints(run_dir: str, count: int, exclude_words: int, repeats: int, suffix: str, draws: int,
                      device: str, as_json: bool) -> None:
    """Time sampling under constraints against sampling without, and measure how far the
    steered words are from the conditioned distribution (--exact)."""
    from letras.core import load_run

    trained = load_run(run_dir)
    say = lambda text: click.echo(text, err=True)
    say(f"drawing {exclude_words:,} distinct words to exclude")
    excluded = distinct_words(trained, exclude_words, device)
    report = {"run": run_dir, "count": count, "device": device, "excluded": len(excluded),
              "speed": speed(trained, count, excluded, repeats, device, say)}
    if draws:
        say(f"drawing {draws:,} words ending in {suffix!r}, steered and exact")
        report["distribution"] = distribution(trained, suffix, draws, device)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def distinct_words(trained: Any, n: int, device: str) -> list[str]:
    words: dict[str, None] = {}
    seed = 0
    while len(words) < n:
        for word in trained.sample(seed=seed, count=max(n - len(words), 1000), device=device):
            words.setdefault(word)
        seed += 1
    return list(words)[:n]


def speed(trained: Any, count: int, excluded: list[str], repeats: int, device: str,
          say: Callable[[str], None]) -> dict[str, Any]:
    cases = {"none": {}, "suffix ez, contains rr, min-length 6": SPEED_CONSTRAINT,
             f"exclude {len(excluded):,} words": {"exclude": excluded}}
    trained.sample(seed=0, count=1000, device=device)  # warm-up: kernels, the first batch sizes
    times: dict[str, list[float]] = {name: [] for name in cases}
    letters: dict[str, float] = {}
    for repeat in range(repeats):
        for name, constraint in cases.items():
            start = time.perf_counter()
            words = trained.sample(seed=repeat, count=count, device=device, **constraint)
            times[name].append(time.perf_counter() - start)
            letters[name] = sum(map(len, words)) / len(words)
        say(f"repeat {repeat + 1}/{repeats}: " + ", ".join(f"{t[-1]:.2f} s" for t in times.values()))
    base = statistics.median(times["none"])
    return {name: {"seconds": statistics.median(t), "ratio": statistics.median(t) / base,
                   "letters_per_word": letters[name],
                   "ratio_per_letter": statistics.median(t) / base * letters["none"] / letters[name]}
            for name, t in times.items()}


def distribution(trained: Any, suffix: str, draws: int, device: str) -> dict[str, Any]:
    steered = trained.sample(seed=1, count=draws, device=device, suffix=suffix)
    exact = trained.sample(seed=2, count=draws, device=device, suffix=suffix, exact=True, max_draws=10**8)
    again = trained.sample(seed=3, count=draws, device=device, suffix=suffix, exact=True, max_draws=10**8)
    mean = lambda words: sum(map(len, words)) / len(words)
    return {"suffix": suffix, "draws": draws,
            "words": {"steered_vs_exact": tv(steered, exact), "exact_vs_exact": tv(again, exact)},
            "lengths": {"steered_vs_exact": tv(list(map(len, steered)), list(map(len, exact))),
                        "exact_vs_exact": tv(list(map(len, again)), list(map(len, exact)))},
            "mean_length": {"steered": mean(steered), "exact": mean(exact)},
            "examples": {"steered": steered[:6], "exact": exact[:6]}}


def tv(a: list[Any], b: list[Any]) -> float:
    """The total-variation distance between the frequencies of two samples."""
    p, q = Counter(a), Counter(b)
    return sum(abs(p[k] / len(a) - q[k] / len(b)) for k in p.keys() | q.keys()) / 2


def format_report(r: dict[str, Any]) -> str:
    lines = [f"letras bench-constraints: {r['run']}, {r['count']:,} words per timing, device {r['device']}", "",
             f"{'constraints':<40}{'seconds':>9}{'ratio':>8}{'letters/word':>14}{'ratio/letter':>14}"]
    for name, m in r["speed"].items():
        lines.append(f"{name:<40}{m['seconds']:>9.2f}{m['ratio']:>7.2f}x{m['letters_per_word']:>14.1f}"
                     f"{m['ratio_per_letter']:>13.2f}x")
    d = r.get("distribution")
    if d:
        lines += ["", f"--suffix {d['suffix']!r}, {d['draws']:,} words each: total-variation distance",
                  f"  words:   steered vs exact {d['words']['steered_vs_exact']:.3f}, "
                  f"exact vs exact (sampling error) {d['words']['exact_vs_exact']:.3f}",
                  f"  lengths: steered vs exact {d['lengths']['steered_vs_exact']:.3f}, "
                  f"exact vs exact (sampling error) {d['lengths']['exact_vs_exact']:.3f}",
                  f"  mean length: steered {d['mean_length']['steered']:.1f}, exact {d['mean_length']['exact']:.1f}",
                  f"  steered: {', '.join(d['examples']['steered'])}",
                  f"  exact:   {', '.join(d['examples']['exact'])}"]
    return "\n".join(lines)
