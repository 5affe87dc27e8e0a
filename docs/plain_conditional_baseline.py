"""A plain conditional LSTM classifying words by label, the yardstick for `letras classify`
(docs/labels.md, "First names by sex").

What a student writes without a toolkit, as the issue describes it: a label embedding
concatenated to every letter's embedding, one LSTM layer with dropout, batches of 64 random
words, Adam with a cosine schedule annealed over the time budget, 10% of the training rows held
out and the model of the best validation epoch kept. A word is classified by Bayes' rule: the
label maximising log P(word | label) + log P(label), with P(label) the label's share of the
training rows. Plain torch, nothing from letras (its batches and training loop are
plain_lstm_baseline.py's).

    python docs/plain_conditional_baseline.py train.tsv test.tsv [test-unseen.tsv ...] --seconds 240

The tables have a header; --word and --label name their columns (default: name, sex). Each
test table is scored by the same model, one line each.
"""

import argparse
import csv
import math
import random
import sys
import time
from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

from plain_lstm_baseline import add_training_arguments, batch, train_for


def read(path, word, label):
    with open(path, encoding="utf-8", newline="") as f:
        return [(row[word], row[label]) for row in csv.DictReader(f, delimiter="\t")]


class Model(nn.Module):
    def __init__(self, vocab, labels, hidden, embedding, label_dim, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.label_embedding = nn.Embedding(labels, label_dim)
        self.lstm = nn.LSTM(embedding + label_dim, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, labels):  # (B, T), (B,) -> (B, T, V)
        label = self.label_embedding(labels)[:, None, :].expand(-1, x.shape[1], -1)
        out, _ = self.lstm(self.drop(torch.cat([self.embedding(x), label], dim=-1)))
        return self.head(self.drop(out))


@torch.no_grad()
def log_likelihoods(model, rows, stoi, label_ids):
    """log P(word | label) for every row and every label: (rows, labels), in nats."""
    model.eval()
    columns = []
    for label in range(len(label_ids)):
        column = []
        for i in range(0, len(rows), 512):
            x, y = batch([w for w, _ in rows[i:i + 512]], stoi)
            logits = model(x, torch.full((len(x),), label, dtype=torch.long))
            nll = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=-100, reduction="none")
            column.append(-nll.sum(dim=1))
        columns.append(torch.cat(column))
    model.train()
    return torch.stack(columns, dim=1)


def evaluate(model, rows, stoi, label_ids, log_prior):
    """Nats per character under each row's own label, and the share classified right."""
    logp = log_likelihoods(model, rows, stoi, label_ids)
    truth = torch.tensor([label_ids[label] for _, label in rows])
    chars = sum(len(w) + 1 for w, _ in rows)
    loss = -logp.gather(1, truth[:, None]).sum().item() / chars
    accuracy = ((logp + log_prior).argmax(dim=1) == truth).float().mean().item()
    return loss, accuracy


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train"), p.add_argument("test", nargs="+")
    p.add_argument("--word", default="name"), p.add_argument("--label", default="sex")
    add_training_arguments(p, seconds=240.0)
    p.add_argument("--label-dim", type=int, default=16)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    rows, tests = read(a.train, a.word, a.label), {path: read(path, a.word, a.label) for path in a.test}
    chars = sorted({c for w, _ in rows + sum(tests.values(), []) for c in w})
    stoi = {c: i + 1 for i, c in enumerate(chars)}  # 0 is the boundary '.'
    counts = Counter(label for _, label in rows)
    label_ids = {label: i for i, label in enumerate(sorted(counts))}
    log_prior = torch.tensor([math.log(counts[label] / len(rows)) for label in label_ids])
    random.shuffle(rows)
    n_val = max(1, len(rows) // 10)
    val, train = rows[:n_val], rows[n_val:]
    model = Model(len(chars) + 1, len(label_ids), a.hidden, a.embedding, a.label_dim, a.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    def step(part):
        x, y = batch([w for w, _ in part], stoi)
        labels = torch.tensor([label_ids[label] for _, label in part])
        return F.cross_entropy(model(x, labels).transpose(1, 2), y, ignore_index=-100)

    def validate():
        loss, accuracy = evaluate(model, val, stoi, label_ids, log_prior)
        print(f"validation: {loss:.4f} nats/char, {accuracy:.1%} right", file=sys.stderr)
        return loss, accuracy

    start = time.monotonic()
    epoch, best, best_accuracy = train_for(model, opt, train, a, step, validate)
    print(f"plain conditional LSTM: {epoch} epochs in {time.monotonic() - start:.0f} s; best validation "
          f"epoch {best:.4f} nats/char, {best_accuracy:.1%} right of {len(val):,}")
    for path, test in tests.items():
        test_loss, test_accuracy = evaluate(model, test, stoi, label_ids, log_prior)
        print(f"{path}: {test_loss:.4f} nats/char, {test_accuracy:.1%} right of {len(test):,}")


if __name__ == "__main__":
    main()
