"""Models small enough to reason about, for the samplers' tests. Their vocabulary is the
boundary (0), 'a' (1) and 'b' (2): a chars tokenizer fit on "ab" (or on "a", without 'b')."""

import torch


class CoinModel(torch.nn.Module):
    """Letters 'a' or the end of word, each with probability 1/2, whatever came before; it
    records the batch of every call."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))  # a parameter, so it has a device
        self.batches: list[int] = []

    def forward(self, ids, state=None):
        self.batches.append(len(ids))
        logits = torch.full((len(ids), ids.shape[1], 3), float("-inf"))
        logits[..., :2] = 0.0  # the boundary (0) and 'a' (1)
        return logits, torch.zeros(1, len(ids), 4)


class CountingModel(torch.nn.Module):
    """Its state counts the letters read (the boundary aside); it says 'a' until a word has
    three letters, then ends it. A word that went on from another word's state, or from the
    wrong beginning, would end sooner or later."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids, state=None):
        read = (ids != 0).sum(dim=1).float()[None, :, None]  # (1, B, 1)
        state = read if state is None else state + read
        logits = torch.zeros(len(ids), ids.shape[1], 3)
        logits[..., 1] = torch.where(state[0, :, 0] >= 3, -10.0, 10.0)[:, None]
        return logits, state


class BatchFirstModel(CountingModel):
    """The counting model with its state laid out batch first, (B, 2), unlike nn.RNN's."""

    def forward(self, ids, state=None):
        logits, counted = super().forward(ids, None if state is None else state[None, :, :1])
        return logits, counted[0].expand(-1, 2)


class LabelledToyModel(torch.nn.Module):
    """A conditional model whose next-letter log-probabilities are ``table[label, n]`` after n
    letters (n capped at the table's last row); the state counts the letters read."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table.log()  # (labels, positions, vocabulary)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids, state=None, labels=None):
        before = torch.zeros(1, len(ids), 1) if state is None else state
        read = before + torch.arange(1, ids.shape[1] + 1)[None, None, :]  # (1, B, T)
        at = read[0].long().clamp(max=self.table.shape[1]) - 1  # letters read before each position's next
        if labels.is_floating_point():
            raise ValueError("the toy reads label ids only")
        return self.table[labels[:, None], at], read[:, :, -1:]
