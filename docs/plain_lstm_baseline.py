"""A tuned plain torch loop on a word list, the yardstick for `letras run LIST`.

What a student writes without a toolkit: one LSTM layer with dropout, an embedding, batches
of 64 random words padded to the longest, Adam with a cosine schedule annealed over the time
budget, 10% of the training words held out, and the model of the best validation epoch
scored on the test words. Plain torch, nothing from letras.

    python docs/plain_lstm_baseline.py train.txt test.txt --seconds 60

prints the test loss in nats per character (every letter and the end of each word), the
unit `letras eval --file test.txt` prints.
"""

import argparse
import math
import random
import time

import torch
import torch.nn.functional as F
from torch import nn


def read(path):
    return [line.strip() for line in open(path, encoding="utf-8") if line.strip()]


class Model(nn.Module):
    def __init__(self, vocab, hidden, embedding, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x):  # (B, T) -> (B, T, V)
        out, _ = self.lstm(self.drop(self.embedding(x)))
        return self.head(self.drop(out))


def batch(words, stoi):
    """Inputs '.word' and targets 'word.', padded; padding targets are -100 (ignored)."""
    width = max(len(w) for w in words) + 1
    x = torch.zeros(len(words), width, dtype=torch.long)
    y = torch.full((len(words), width), -100, dtype=torch.long)
    for i, w in enumerate(words):
        ids = [stoi[c] for c in w]
        x[i, 1:len(ids) + 1] = torch.tensor(ids, dtype=torch.long)
        y[i, :len(ids) + 1] = torch.tensor(ids + [0], dtype=torch.long)
    return x, y


@torch.no_grad()
def loss_of(model, words, stoi):
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(words), 512):
        x, y = batch(words[i:i + 512], stoi)
        total += F.cross_entropy(model(x).transpose(1, 2), y, ignore_index=-100, reduction="sum").item()
        count += int((y != -100).sum())
    model.train()
    return total / count


def add_training_arguments(p, seconds):
    """The options of the model and its training (docs/plain_conditional_baseline.py takes them too)."""
    p.add_argument("--seconds", type=float, default=seconds)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embedding", type=int, default=32)
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)


def train_for(model, opt, rows, a, step, validate):
    """Epochs over the shuffled ``rows`` until ``a.seconds`` have passed: ``step`` gives each
    batch's loss, the learning rate annealed by a cosine over the time budget down to lr/100;
    after each epoch ``validate()`` gives (loss, note), and the model leaves with the weights
    of the lowest loss. Returns (epochs, that loss, its note)."""
    best, best_state, note, epoch, start = math.inf, None, None, 0, time.monotonic()
    while time.monotonic() - start < a.seconds:
        epoch += 1
        random.shuffle(rows)
        for i in range(0, len(rows), a.batch_size):
            elapsed = time.monotonic() - start
            if elapsed >= a.seconds:
                break
            for group in opt.param_groups:  # cosine over the time budget, down to lr/100
                group["lr"] = a.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * elapsed / a.seconds)))
            opt.zero_grad(set_to_none=True)
            step(rows[i:i + a.batch_size]).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        val_loss, val_note = validate()
        if val_loss < best:
            best, best_state, note = val_loss, {k: v.clone() for k, v in model.state_dict().items()}, val_note
    model.load_state_dict(best_state)
    return epoch, best, note


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train"), p.add_argument("test")
    add_training_arguments(p, seconds=60.0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    words, test = read(a.train), read(a.test)
    chars = sorted({c for w in words + test for c in w})
    stoi = {c: i + 1 for i, c in enumerate(chars)}  # 0 is the boundary '.'
    random.shuffle(words)
    n_val = max(1, len(words) // 10)
    val, train = words[:n_val], words[n_val:]
    model = Model(len(chars) + 1, a.hidden, a.embedding, a.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    def step(part):
        x, y = batch(part, stoi)
        return F.cross_entropy(model(x).transpose(1, 2), y, ignore_index=-100)

    start = time.monotonic()
    epoch, best, _ = train_for(model, opt, train, a, step, lambda: (loss_of(model, val, stoi), None))
    print(f"plain torch: {epoch} epochs in {time.monotonic() - start:.0f} s, best val {best:.4f}, "
          f"test {loss_of(model, test, stoi):.4f} nats/char")


if __name__ == "__main__":
    main()
