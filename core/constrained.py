"""Drawing words under constraints: steered letter by letter, or exactly by rejection.

Steered (the default): the sampler masks, at every letter, what cannot lead to an accepted
word (``letras.core.letter_mask``), so every word it draws meets the constraints and none is
drawn again. Each letter is drawn from the model's distribution renormalised over the allowed
letters, which is not the model's distribution conditioned on the constraints: it favours
words whose early letters the model finds likely even where few of their endings fit.

Exact (``exact=True``): the sampler draws freely and the words that fail are dropped, which
is the conditioned distribution, at the price of every rejected draw; ``max_draws`` caps it.

``unique``: the words drawn so far join the excluded words between rounds, so a round never
repeats an earlier one; repeats inside one round are dropped and drawn again in the next.
"""

from __future__ import annotations

import inspect
import random
import weakref
from collections import OrderedDict
from typing import Any, Callable

from .constraints import Automaton, Constraints, compile_constraints, exclude_more
from .errors import LetrasError, UsageError

# draw(count, seed, constraint, max_length) -> words: the run's sampler, built for that call
Draw = Callable[[int, int, "Automaton | None", "int | None"], list[str]]


def takes_constraint(sampler: Any) -> bool:
    """Whether ``sampler.sample`` accepts ``constraint=`` (samplers written before
    constraints existed do not, and still work without them)."""
    parameters = inspect.signature(sampler.sample).parameters.values()
    return any(p.name == "constraint" or p.kind is p.VAR_KEYWORD for p in parameters)


# the automata compiled lately, per tokenizer: a process that samples again under the same
# constraints (--novel's corpus, an exclusion list) compiles them once
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
KEEP_COMPILED = 4


def compiled(constraints: Constraints, tokenizer: Any) -> Automaton:
    """``compile_constraints(constraints, tokenizer)``, from the cache when this tokenizer
    compiled the same constraints lately (a tokenizer is not fitted again once trained)."""
    try:
        cache = _COMPILED.setdefault(tokenizer, OrderedDict())
    except TypeError:  # a tokenizer that takes no weak reference: no cache
        return compile_constraints(constraints, tokenizer)
    if constraints in cache:
        cache.move_to_end(constraints)
        return cache[constraints]
    automaton = cache[constraints] = compile_constraints(constraints, tokenizer)
    while len(cache) > KEEP_COMPILED:
        cache.popitem(last=False)
    return automaton


def forget_compiled() -> None:
    """Empty the cache (a benchmark that times compiling)."""
    _COMPILED.clear()


def default_max_draws(count: int) -> int:
    return max(200 * count, 10_000)


def draw_steered(draw: Draw, constraints: Constraints, tokenizer: Any, count: int, *, unique: bool,
                 max_draws: int, seed: int | None) -> list[str]:
    """``count`` words that meet ``constraints``, each drawn once, letter by letter."""
    automaton = compiled(constraints, tokenizer)
    rng = random.Random(seed)
    if not unique:
        return draw(count, rng.randrange(2**62), automaton, None)
    length = constraints.max_length or 50
    available = automaton.count_words(length, count)
    if available < count:
        raise UsageError(f"only {available} words of at most {length} letters meet the constraints; "
                         f"{count} unique asked for", hint="ask for fewer or loosen the constraints")
    kept: dict[str, None] = {}
    drawn = 0
    while len(kept) < count and drawn < max_draws:
        wanted = min(count - len(kept), max_draws - drawn)
        for word in draw(wanted, rng.randrange(2**62), automaton, None):
            kept.setdefault(word)
        drawn += wanted
        if len(kept) < count:  # the next round never draws a word kept so far
            automaton = exclude_more(automaton, kept, tokenizer)
    return _enough(list(kept)[:count], count, drawn, "unique")


def draw_exact(draw: Draw, constraints: Constraints, tokenizer: Any, count: int, *, unique: bool,
               max_draws: int, seed: int | None) -> list[str]:
    """``count`` words drawn freely, keeping those that meet ``constraints``: the model's
    distribution conditioned on them. A word is drawn with room for one letter more than
    ``max_length``, so that a word cut there is rejected rather than kept."""
    automaton = compiled(constraints, tokenizer)
    rng = random.Random(seed)
    longer = None if constraints.max_length is None else constraints.max_length + 1
    kept: dict[str, None] = {}
    words: list[str] = []
    drawn = accepted = 0
    while len(words) < count and drawn < max_draws:
        rate = (accepted + 1) / (drawn + 2)  # so far; a round draws what should be enough
        batch = min(max(int(1.2 * (count - len(words)) / rate), 256), max_draws - drawn, 100_000)
        for word in draw(batch, rng.randrange(2**62), None, longer):
            drawn += 1
            if not automaton.accepts(word) or (unique and word in kept):
                continue
            accepted += 1
            kept[word] = None
            words.append(word)
            if len(words) == count:
                break
    if len(words) < count:
        rate = f" (about 1 in {drawn // accepted:,})" if accepted else ""
        raise LetrasError(f"--exact: only {len(words)} of the {count} words asked for met the constraints "
                          f"in {drawn:,} draws{rate}",
                          hint="raise --max-draws, or leave out --exact to steer each letter instead")
    return words


def _enough(words: list[str], count: int, drawn: int, wanted: str) -> list[str]:
    if len(words) < count:
        raise LetrasError(f"the model gave only {len(words)} {wanted} words of the {count} asked for "
                          f"in {drawn:,} draws",
                          hint="ask for fewer, raise the temperature, or train on more words")
    return words
