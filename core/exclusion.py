"""The words that must never come out, as a trie joined to the constraints' automaton.

A node is a beginning of an excluded word; the automaton state that beginning reaches is
fixed, so the node carries it. A word being drawn is on the trie while its letters are the
beginning of an excluded word, and off it for good after the first letter that is not.

The end of an excluded word is blocked: the boundary is not allowed at its node. Blocking it
may leave a beginning with fewer ways on than the automaton alone promises (the corpus word
"Madrid" under --max-length 6 leaves "Madri" no letter), so each node also carries its own
``dist``, the fewest tokens to an accepted word that is not excluded, and the letters whose
``need`` differs from the automaton's (``exceptions``). A sampler looks those up only for
the words still on the trie; every other word reads the automaton's tables alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:
    from .constraints import Automaton

INF = 1 << 30


@dataclass
class Trie:
    children: list[dict[int, int]] = field(default_factory=lambda: [{}])
    state: list[int] = field(default_factory=list)  # the automaton state of each node
    end: list[bool] = field(default_factory=lambda: [False])  # an excluded word ends here
    depth: list[int] = field(default_factory=lambda: [0])
    dist: list[int] = field(default_factory=list)
    exceptions: list[list[tuple[int, int]]] = field(default_factory=list)  # (token, need) per node

    @classmethod
    def build(cls, automaton: Automaton, words: Iterable[str]) -> Trie:
        """The trie of the ``words`` the automaton accepts (the others can never come out)."""
        trie = cls(state=[automaton.start])
        nxt, accepting = automaton.next, automaton.accepting
        for word in words:
            ids = automaton.encode(word)
            if not ids:
                continue
            state, path = automaton.start, []
            for i in ids:
                state = nxt[state][i]
                if state < 0:
                    break
                path.append((i, state))
            if state < 0 or not accepting[state]:
                continue
            node = 0
            for i, s in path:
                child = trie.children[node].get(i)
                if child is None:
                    child = trie.children[node][i] = len(trie.state)
                    trie.children.append({})
                    trie.state.append(s)
                    trie.end.append(False)
                    trie.depth.append(trie.depth[node] + 1)
                node = child
            trie.end[node] = True
        trie._measure(automaton)
        return trie

    def _measure(self, automaton: Automaton) -> None:
        """dist and exceptions of every node, children before parents (a child's index is
        always larger than its parent's)."""
        nxt, accepting, base = automaton.next, automaton.accepting, automaton.dist
        ranked: dict[int, list[tuple[int, int]]] = {}  # per state: (1 + dist after token, token), fewest first
        self.dist = [INF] * len(self.state)
        self.exceptions = [[] for _ in self.state]
        for node in range(len(self.state) - 1, -1, -1):
            s, kids = self.state[node], self.children[node]
            if s not in ranked:
                ranked[s] = sorted((1 + base[t], v) for v, t in enumerate(nxt[s]) if t >= 0)
            best = 0 if accepting[s] and not self.end[node] else INF
            for need, v in ranked[s]:  # the fewest off the trie: the first token with no child
                if v not in kids:
                    best = min(best, need)
                    break
            for v, child in kids.items():
                need = 1 + self.dist[child]
                best = min(best, need)
                if need != 1 + base[nxt[s][v]]:
                    self.exceptions[node].append((v, min(need, INF)))
            if self.end[node]:
                self.exceptions[node].append((automaton.boundary, INF))
            self.dist[node] = best

    def child(self, node: int, token: int) -> int:
        return self.children[node].get(token, -1)

    def ends(self, max_length: int) -> Iterator[int]:
        """The nodes where an excluded word of at most ``max_length`` tokens ends."""
        return (n for n, e in enumerate(self.end) if e and self.depth[n] <= max_length)

    def __len__(self) -> int:
        return len(self.state)
