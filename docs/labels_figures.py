"""The figures of docs/labels.md from a run of configs/municipios-regiones.yaml: held-out
accuracy, how many sampled words that exist carry the label they were drawn from, and the
two blends compared by classifying their words.

    python docs/labels_figures.py runs/municipios-regiones [WORDS_PER_LABEL] [--per-label] [temperature=T] [guidance=G]

The label-carrying share is given two ways: pooled over the same number of words drawn from
every label (the issue's measure: Ceuta's and Melilla's single town weigh as much as
Castilla y León's 2,248), and with each label weighted by its share of the corpus (words
drawn as the corpus draws its labels).
"""
import sys
from collections import Counter, defaultdict

from letras.core import load_run
from letras.plugins.corpora import municipios

run = load_run(sys.argv[1])
per_label = int(next((a for a in sys.argv[2:] if a.isdigit()), 2000))
options = {k: float(v) for k, _, v in (a.partition("=") for a in sys.argv[2:] if "=" in a)}  # else the defaults
corpus = municipios(label="community")
known = defaultdict(set)
for w, l in zip(corpus.words(), corpus.labels()):
    known[w].add(l)

report = run.evaluate(device="cpu")
c = report["classification"]
print(f"held-out accuracy {c['accuracy']:.3f} on {c['words']} words; loss {report['loss']:.4f}")
prior = Counter(l for w, l in zip(*run.validation_set()))
print(f"majority-label baseline {max(prior.values()) / sum(prior.values()):.3f}")

towns = Counter(corpus.labels())
hits = total = many_hits = many_total = distinct = 0
weighted = weight = 0.0
for label, share in zip(run.labels.names, run.labels.priors()):
    words = run.sample(label=label, count=per_label, seed=0, **options)
    existing = [w for w in words if w in known]
    carry = sum(label in known[w] for w in existing)
    hits, total = hits + carry, total + len(existing)
    if towns[label] > 1:  # Ceuta and Melilla are one town each, which their labels draw over and over
        many_hits, many_total, distinct = many_hits + carry, many_total + len(existing), distinct + len(set(words))
    if existing:
        weighted, weight = weighted + share * carry / len(existing), weight + share
    if "--per-label" in sys.argv:
        print(f"  {label:22} {len(existing):5} exist, {carry / max(len(existing), 1):.3f} carry it")
print(f"sampled with a label ({per_label} each) and in the list: {total} words, {hits / total:.3f} carry that "
      f"label; weighted by the labels' shares {weighted / weight:.3f}; without the labels of one town "
      f"{many_hits / many_total:.3f} of {many_total}")
print(f"distinct words among those drawn from the labels of more than one town: "
      f"{distinct / (per_label * sum(n > 1 for n in towns.values())):.3f}")

for blend in ("mixture", "embedding"):
    words = run.sample(label="Galicia=0.7,Andalucía=0.3", blend=blend, count=500, seed=0, **options)
    result = run.classify(words)
    both = [dict(r.labels) for r in result if r.labels]
    share = [p["Galicia"] / (p["Galicia"] + p["Andalucía"]) for p in both]
    top2 = sum(r.label in ("Galicia", "Andalucía") for r in result) / len(result)
    galician = sum(s > 0.5 for s in share) / len(share)
    mean_pair = sum(p["Galicia"] + p["Andalucía"] for p in both) / len(both)
    print(f"{blend:9}: classified Galicia or Andalucía {top2:.3f}; P(G|w)+P(A|w) mean {mean_pair:.3f}; "
          f"words more Galician than Andalusian {galician:.3f} (asked 0.7)")
