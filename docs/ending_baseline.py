"""The rule a classifier by labels must beat (docs/labels.md): a word's label guessed from its
ending alone, on the validation split of a labelled run. For each ending of 1 to N letters,
the commonest label of the training words with that ending; a word takes the rule of its
longest ending seen in training (the commonest label of all where none is), and the figure
for each N is given.

    python docs/ending_baseline.py RUN [N]
"""
import sys
from collections import Counter, defaultdict

from letras.core import load_run
from letras.core.assemble import load_corpus
from letras.core.split import split_words

run = load_run(sys.argv[1])
longest = int(sys.argv[2]) if len(sys.argv) > 2 else 4
data = load_corpus(run.config)
split = run.checkpoint["split"]
train, held_out = split_words(range(len(data.words)), split["val_fraction"], split["seed"])
counts = defaultdict(Counter)
for i in train:
    for n in range(0, longest + 1):
        counts[data.words[i][len(data.words[i]) - n:] if n else ""][data.labels[i]] += 1
for n in range(1, longest + 1):
    right = 0
    for i in held_out:
        word = data.words[i]
        ending = next(word[len(word) - k:] if k else "" for k in range(min(n, len(word)), -1, -1)
                      if (word[len(word) - k:] if k else "") in counts)
        right += counts[ending].most_common(1)[0][0] == data.labels[i]
    print(f"endings of up to {n} letters: {right / len(held_out):.1%} of {len(held_out)} held-out words right")
