"""Loss weighting against drawing by weight (trainer.weighting, docs/labels.md), measured on
runs of a weighted table: how well each run predicts the held-out words counted by their
weight, and whether it draws the frequent words as often as the weights say.

    python docs/weights_figures.py names_by_sex.tsv RUN...
"""
import sys

from letras.core import load_run
from letras.plugins.table import read_table

table = read_table(sys.argv[1], word="name", weight="weight")
weight_of: dict[str, float] = {}
for word, weight in zip(table.words(), table.weights()):
    weight_of[word] = weight_of.get(word, 0.0) + weight  # a name of both sexes: its two counts
top = set(sorted(weight_of, key=weight_of.get, reverse=True)[:100])
share_top = sum(weight_of[w] for w in top) / sum(weight_of.values())
print(f"the 100 heaviest names hold {share_top:.1%} of the weight")

for path in sys.argv[2:]:
    run = load_run(path)
    held_out = run.validation_words()
    scores = run.score(held_out)
    w = [weight_of[s.word] for s in scores]
    weighted = -sum(wi * s.logprob for wi, s in zip(w, scores)) / sum(wi * s.chars for wi, s in zip(w, scores))
    plain = -sum(s.logprob for s in scores) / sum(s.chars for s in scores)
    drawn = run.sample(count=5000, seed=0, temperature=1.0)
    print(f"{path}: held-out nats/char weighted {weighted:.4f}, unweighted {plain:.4f}; "
          f"drawn among the 100 heaviest {sum(d in top for d in drawn) / len(drawn):.1%}")
