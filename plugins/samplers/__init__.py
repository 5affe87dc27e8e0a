"""Built-in samplers: temperature (with top-k and top-p), greedy and beam search.

All the words of a batch advance together, one letter per recurrent call, carrying the
hidden state; a prefix, and the beginnings many words share, are read once (prefix_tree). A
word ends when the model predicts the boundary token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from letras.core import OptionError, hookimpl, option


@dataclass
class WordOptions:
    count: int = option(20, min=1, help="how many words to draw")
    max_length: int = option(50, min=1, help="longest word, prefix included")
    prefix: str = option("", help="every word starts with these letters")

    def __post_init__(self):
        if len(self.prefix) > self.max_length:
            raise OptionError("prefix", f"{self.prefix!r} has {len(self.prefix)} letters, more than max_length "
                                        f"({self.max_length})")


@dataclass
class GreedyOptions(WordOptions):
    batch_size: int = option(1000, min=1, help="words drawn together, one recurrent call per letter for all; "
                                               "when one ends, the next word takes its place")


@dataclass
class TemperatureOptions(GreedyOptions):
    temperature: float = option(1.0, min=0.0, min_exclusive=True,
                                help="below 1: safer, more typical words; above 1: wilder ones")
    top_k: Optional[int] = option(None, min=1, help="draw only from the k likeliest letters; null = all")
    top_p: Optional[float] = option(None, min=0.0, max=1.0, min_exclusive=True,
                                    help="draw only from the likeliest letters that together have "
                                         "probability p (nucleus sampling); null = all")
    particles: int = option(1, min=1, max=1024,
                            help="under constraints that can keep a word from ending (suffix, contains, "
                                 "pattern, min_length): words drawn per word returned, one chosen by how "
                                 "much probability the constraints took from each, towards the model's "
                                 "words conditioned on them; each costs up to as much as a word (drafts "
                                 "share their beginnings)")
    proposal: Literal["closing", "lookahead"] = option(
        "lookahead", help="how particles draw their letters: closing (steered, and where the model would end a "
                        "word that may not end, the letters that finish it soonest) or lookahead (each letter "
                        "weighted by how often the sampler's own words go on from there to an accepted word)")


@dataclass
class BeamOptions(WordOptions):
    width: int = option(20, min=1, help="words kept at each step; at least count")

    def __post_init__(self):
        super().__post_init__()
        if self.width < self.count:
            raise OptionError("width", f"must be at least count ({self.count}), got {self.width}")


@hookimpl
def register_samplers(register):
    register("temperature", "letras.plugins.samplers.sampling:TemperatureSampler",
             options=TemperatureOptions, help="Draw each letter from the softmax of logits / temperature")
    register("greedy", "letras.plugins.samplers.sampling:GreedySampler", options=GreedyOptions,
             help="Always take the likeliest letter")
    register("beam", "letras.plugins.samplers.beam:BeamSampler", options=BeamOptions,
             help="The count most probable words, by beam search")
