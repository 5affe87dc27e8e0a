"""`letras bench-constraints`: what sampling under constraints costs, and how its words differ
from the model's conditioned on the same constraints.

Speed: 10,000 words under ``--suffix ez --contains rr --min-length 6`` at one particle and at
``--particles``, and with ``--exclude`` of a list of 100,000 words: the model's own (the words
it draws most often are the ones it draws on the exclusion list, the hardest case: its words
grow longer), and the same words reversed, which it all but never draws (the mechanism's cost
alone); each timed right after 10,000 words without constraints; the median of the pairs'
ratios is kept. On a CPU the time is the process's own CPU time on one thread, which other
jobs on the machine move far less than the wall clock. The exclusion's time includes compiling it.

Distribution: for ``--suffix illa`` and for the speed constraint, the words at each number of
particles in ``--compare`` against ``--exact`` (rejection: the model's distribution
conditioned on the constraint), as the total-variation distance between their word and
length frequencies, beside the distance between two exact runs of other seeds: the sampling
error alone.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from typing import Any, Callable

import click

SPEED_CONSTRAINT = {"suffix": "ez", "contains": ["rr"], "min_length": 6}
DISTRIBUTION_CASES = {"--suffix illa": {"suffix": "illa"},
                      "--suffix ez --contains rr --min-length 6": SPEED_CONSTRAINT}


@click.command("bench-constraints")
@click.argument("run_dir", type=click.Path())
@click.option("--count", type=click.IntRange(min=1), default=10_000, show_default=True, help="Words per timing.")
@click.option("--exclude-words", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="How many of the model's words the exclusion list holds.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timings of each case, each beside one without constraints.")
@click.option("--particles", type=click.IntRange(min=1), default=None,
              help="Particles for the timings beside steering (default: the sampler's default).")
@click.option("--proposal", "proposals", multiple=True, type=click.Choice(["closing", "lookahead"]),
              help="How the particles draw their letters (repeatable: each is timed and compared; "
                   "default: the sampler's default).")
@click.option("--case", "cases", multiple=True,
              help="Constraints to compare with --exact instead of the two built in, as `letras sample` "
                   "spells them (--suffix, --contains, --pattern, --min-length, --ban), --draws words each; "
                   "repeatable, e.g. --case '--suffix o --contains ll'.")
@click.option("--compare", default="1,4,8,16,32", show_default=True,
              help="The numbers of particles whose words are compared with --exact, comma-separated.")
@click.option("--draws", type=click.IntRange(min=0), default=5_000, show_default=True,
              help="Words per method for --suffix illa's distribution; 0 skips the distributions.")
@click.option("--rare-draws", type=click.IntRange(min=1), default=1_000, show_default=True,
              help="Words per method for the speed constraint's (about 1 draw in 1,200 meets it).")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def bench_constraints(run_dir: str, count: int, exclude_words: int, repeats: int, particles: int | None,
                      proposals: tuple[str, ...], cases: tuple[str, ...], compare: str, draws: int,
                      rare_draws: int, device: str, as_json: bool) -> None:
    """Time sampling under constraints against sampling without, and measure how far the
    steered words and the particles' are from the conditioned distribution (--exact)."""
    from letras.core import load_run

    try:
        ks = sorted({int(k) for k in compare.split(",")})
    except ValueError:
        raise click.BadParameter(f"not comma-separated numbers: {compare!r}", param_hint="--compare") from None
    if min(ks) < 1:
        raise click.BadParameter("a number of particles is at least 1", param_hint="--compare")
    compared = {case: (parse_case(case), draws) for case in cases} or {
        name: (constraint, draws if "illa" in name else rare_draws) for name, constraint in DISTRIBUTION_CASES.items()}
    trained = load_run(run_dir)
    if device == "cpu":
        import torch

        torch.set_num_threads(1)  # see speed(): timed on one thread
    particles = particles or _default(trained, "particles", 1)
    proposals = proposals or (_default(trained, "proposal", "lookahead"),)
    say = lambda text: click.echo(text, err=True)
    say(f"drawing {exclude_words:,} distinct words to exclude")
    excluded = distinct_words(trained, exclude_words, device)
    report = {"run": run_dir, "count": count, "device": device, "excluded": len(excluded), "particles": particles,
              "speed": speed(trained, count, excluded, repeats, particles, proposals, device, say)}
    if draws:
        report["distribution"] = [distribution(trained, name, constraint, n, ks, proposals, device, say)
                                  for name, (constraint, n) in compared.items()]
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def parse_case(case: str) -> dict[str, Any]:
    """``--case``'s constraints, spelled as `letras sample`'s flags, as ``TrainedModel.sample``'s
    keywords."""
    import shlex

    from letras.core import UsageError

    try:
        words, constraint = shlex.split(case), {}
    except ValueError as exc:  # an unclosed quote
        raise UsageError(f"cannot read it ({exc})", where=f"--case {case!r}") from None
    flags = {"--suffix": "suffix", "--pattern": "pattern", "--min-length": "min_length"}
    for flag, value in zip(words[::2], words[1::2] + [None] * (len(words) % 2)):
        if value is None or flag not in {*flags, "--contains", "--ban"}:
            raise UsageError(f"expected --suffix, --contains, --pattern, --min-length or --ban, each with a "
                             f"value; got {flag!r}", where=f"--case {case!r}")
        if flag in ("--contains", "--ban"):
            constraint.setdefault(flag[2:], []).append(value)
        elif flag == "--min-length":
            if not value.isdigit():
                raise UsageError(f"--min-length takes a number, got {value!r}", where=f"--case {case!r}")
            constraint["min_length"] = int(value)
        else:
            constraint[flags[flag]] = value
    if not constraint:
        raise UsageError("no constraint to compare with --exact", where=f"--case {case!r}",
                         hint="e.g. --case '--suffix o --contains ll'")
    return constraint


def _default(trained: Any, option: str, otherwise: Any) -> Any:
    """The run's sampler's default for ``option`` (``otherwise`` for a sampler without it)."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(trained.config["sampler"].options)}
    return fields[option].default if option in fields else otherwise


def _particles(k: int, proposal: str, proposals: tuple[str, ...]) -> str:
    """How a case names its particles, and its proposal when several are compared."""
    return f"{k} particle{'s' * (k > 1)}" + (f", {proposal}" if len(proposals) > 1 else "")


def distinct_words(trained: Any, n: int, device: str) -> list[str]:
    words: dict[str, None] = {}
    seed = 0
    while len(words) < n:
        for word in trained.sample(seed=seed, count=max(n - len(words), 1000), device=device):
            words.setdefault(word)
        seed += 1
    return list(words)[:n]


def speed(trained: Any, count: int, excluded: list[str], repeats: int, particles: int, proposals: tuple[str, ...],
          device: str, say: Callable[[str], None]) -> dict[str, Any]:
    """Each case timed right after a run without constraints, in turns: the ratio of each pair
    is taken while the machine's load is alike, and the median of the pairs kept."""
    from letras.core.constrained import forget_compiled

    cases: dict[str, dict[str, Any]] = {}
    for proposal in proposals:
        for k in sorted({1, particles}):
            cases[f"suffix ez, contains rr, min-length 6, {_particles(k, proposal, proposals)}"] = {
                **SPEED_CONSTRAINT, "particles": k, "proposal": proposal}
    # exclusion alone is steered, one draw a word: no particles, no proposal
    cases[f"exclude {len(excluded):,} of its likeliest words"] = {"exclude": excluded}
    # the cost of the mechanism alone: a list as long, of words it all but never draws
    cases[f"exclude {len(excluded):,} words it rarely draws"] = {"exclude": [w[::-1] for w in excluded]}
    trained.sample(seed=0, count=1000, device=device)  # warm-up: kernels, the first batch sizes

    # on a CPU, the process's own CPU time on one thread: a machine shared with other jobs
    # moves wall-clock timings by up to 15x, and threads waiting on each other spin
    clock = time.process_time if device == "cpu" else time.perf_counter

    def timed(repeat: int, constraint: dict[str, Any]) -> tuple[float, float]:
        forget_compiled()  # each timing compiles its constraints, as one `letras sample` does
        start = clock()
        words = trained.sample(seed=repeat, count=count, device=device, **constraint)
        return clock() - start, sum(map(len, words)) / len(words)

    times: dict[str, list[float]] = {name: [] for name in ["none", *cases]}
    ratios: dict[str, list[float]] = {name: [] for name in cases}
    letters: dict[str, float] = {}
    for repeat in range(repeats):
        for name, constraint in cases.items():
            (plain, letters["none"]), (took, letters[name]) = timed(repeat, {}), timed(repeat, constraint)
            times["none"].append(plain)
            times[name].append(took)
            ratios[name].append(took / plain)
        say(f"repeat {repeat + 1}/{repeats}: " + ", ".join(f"{r[-1]:.2f}x" for r in ratios.values()))
    ratio = {"none": 1.0, **{name: statistics.median(r) for name, r in ratios.items()}}
    return {name: {"seconds": statistics.median(t), "ratio": ratio[name], "letters_per_word": letters[name],
                   "ratio_per_letter": ratio[name] * letters["none"] / letters[name]}
            for name, t in times.items()}


def distribution(trained: Any, name: str, constraint: dict[str, Any], draws: int, ks: list[int],
                 proposals: tuple[str, ...], device: str, say: Callable[[str], None]) -> dict[str, Any]:
    say(f"{name}: {draws:,} words exact, twice")
    start = time.perf_counter()
    exact = trained.sample(seed=2, count=draws, device=device, exact=True, max_draws=10**9, **constraint)
    exact_seconds = time.perf_counter() - start
    again = trained.sample(seed=3, count=draws, device=device, exact=True, max_draws=10**9, **constraint)
    mean = lambda words: sum(map(len, words)) / len(words)
    lengths = lambda words: list(map(len, words))
    rows = {"exact": {"seconds": exact_seconds, "words": tv(again, exact),
                      "lengths": tv(lengths(again), lengths(exact)), "mean_length": mean(exact),
                      "examples": exact[:5]}}
    for proposal in proposals:
        for k in ks:
            row = _particles(k, proposal, proposals)
            say(f"{name}: {draws:,} words, {row}")
            start = time.perf_counter()
            words = trained.sample(seed=1, count=draws, device=device, particles=k, proposal=proposal, **constraint)
            rows[row] = {"seconds": time.perf_counter() - start, "words": tv(words, exact),
                         "lengths": tv(lengths(words), lengths(exact)), "mean_length": mean(words),
                         "examples": words[:5]}
    return {"constraint": name, "draws": draws, "rows": rows}


def tv(a: list[Any], b: list[Any]) -> float:
    """The total-variation distance between the frequencies of two samples."""
    p, q = Counter(a), Counter(b)
    return sum(abs(p[k] / len(a) - q[k] / len(b)) for k in p.keys() | q.keys()) / 2


def format_report(r: dict[str, Any]) -> str:
    lines = [f"letras bench-constraints: {r['run']}, {r['count']:,} words per timing, device {r['device']}", "",
             f"{'constraints':<64}{'seconds':>9}{'ratio':>8}{'letters/word':>14}{'ratio/letter':>14}"]
    for name, m in r["speed"].items():
        lines.append(f"{name:<64}{m['seconds']:>9.2f}{m['ratio']:>7.2f}x{m['letters_per_word']:>14.1f}"
                     f"{m['ratio_per_letter']:>13.2f}x")
    for d in r.get("distribution", []):
        lines += ["", f"{d['constraint']}, {d['draws']:,} words each: total-variation distance to --exact "
                      "(exact: a second exact run, the sampling error)",
                  f"  {'':<24}{'words':>8}{'lengths':>9}{'mean length':>13}{'seconds':>9}  examples"]
        for name, row in d["rows"].items():
            lines.append(f"  {name:<24}{row['words']:>8.3f}{row['lengths']:>9.3f}{row['mean_length']:>13.1f}"
                         f"{row['seconds']:>9.1f}  {', '.join(row['examples'])}")
    return "\n".join(lines)
