"""The figures of docs/labels.md from a run of configs/municipios-regiones.yaml: held-out
accuracy, how many sampled words that exist carry the label they were drawn from, and the
two blends compared by classifying their words.

    python docs/labels_figures.py runs/municipios-regiones
"""
import sys
from collections import Counter, defaultdict

from letras.core import load_run
from letras.plugins.corpora import municipios

run = load_run(sys.argv[1])
corpus = municipios("community")
known = defaultdict(set)
for w, l in zip(corpus.words(), corpus.labels()):
    known[w].add(l)

report = run.evaluate(device="cpu")
c = report["classification"]
print(f"held-out accuracy {c['accuracy']:.3f} on {c['words']} words; loss {report['loss']:.4f}")
prior = Counter(l for w, l in zip(*run.validation_set()))
print(f"majority-label baseline {max(prior.values()) / sum(prior.values()):.3f}")

hits = total = 0
for label in run.labels.names:
    words = run.sample(label=label, count=400, seed=0)
    existing = [w for w in words if w in known]
    hits += sum(label in known[w] for w in existing)
    total += len(existing)
print(f"sampled with a label and in the list: {total} words, {hits / total:.3f} carry that label")

for blend in ("mixture", "embedding"):
    words = run.sample(label="Galicia=0.7,Andalucía=0.3", blend=blend, count=500, seed=0)
    result = run.classify(words)
    both = [dict(r.labels) for r in result if r.labels]
    share = [p["Galicia"] / (p["Galicia"] + p["Andalucía"]) for p in both]
    top2 = sum(r.label in ("Galicia", "Andalucía") for r in result) / len(result)
    galician = sum(s > 0.5 for s in share) / len(share)
    mean_pair = sum(p["Galicia"] + p["Andalucía"] for p in both) / len(both)
    print(f"{blend:9}: classified Galicia or Andalucía {top2:.3f}; P(G|w)+P(A|w) mean {mean_pair:.3f}; "
          f"words more Galician than Andalusian {galician:.3f} (asked 0.7)")
