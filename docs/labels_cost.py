"""The price of a label per training step (docs/labels.md): the same batches through the
lstm 128 generator with and without 19 labels, alternating every 5 steps, 40 times; the
median of the time ratios. On a machine others share, alternating keeps the load alike.

    python docs/labels_cost.py
"""
import statistics, time, torch
from letras.core import components
from letras.core.batching import WordBatches, loss_sum
from letras.plugins.corpora import municipios

torch.manual_seed(0)
words = municipios().words()
tok = components("tokenizer").get("chars").build(); tok.fit(words)
b = tok.boundary_id
enc = [[b, *tok.encode(w), b] for w in words]
data = WordBatches(enc, labels=[i % 19 for i in range(len(enc))])
batches = list(data.labelled_batches(256, generator=torch.Generator().manual_seed(0)))[:20]
models = {n: components("model").get("lstm").build(tok.vocab_size, **({"num_labels": n} if n else {})) for n in (0, 19)}
opts = {n: torch.optim.Adam(m.parameters(), lr=1e-3) for n, m in models.items()}

def steps(n, k, start):
    t = time.perf_counter()
    for i in range(k):
        x, y, _, lab, _ = batches[(start + i) % len(batches)]
        loss = loss_sum(models[n], x, y, lab if n else None)
        loss.backward(); opts[n].step(); opts[n].zero_grad()
    return time.perf_counter() - t

for n in (0, 19): steps(n, 5, 0)  # warm-up
ratios = []
for r in range(40):
    a = steps(0, 5, 5 * r); c = steps(19, 5, 5 * r)
    ratios.append(c / a)
print(f"time with 19 labels / without, per 5 steps: median {statistics.median(ratios):.3f}, "
      f"quartiles {statistics.quantiles(ratios, n=4)[0]:.3f}-{statistics.quantiles(ratios, n=4)[2]:.3f}")
