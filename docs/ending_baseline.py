"""The rule a classifier by labels must beat (docs/labels.md): a word's label guessed from its
ending alone. For each ending of 1 to N letters, the commonest label of the training words with
that ending; a word takes the rule of its longest ending seen in training (the commonest label
of all where none is), and the figure for each N is given.

    python docs/ending_baseline.py RUN [N]            # on the run's validation split
    python docs/ending_baseline.py RUN N TEST.tsv     # on a test table

Without a test table the rule learns from the run's training split and is scored on its
validation split. With one, it learns from the whole of the run's corpus (the rule needs no
validation words) and is scored on the table's rows, its columns named as the run's corpus
names them (docs/split_table.py makes such a table).
"""
import sys
from collections import Counter, defaultdict

from letras.core import load_run
from letras.core.assemble import load_corpus
from letras.core.split import split_words
from letras.core.tablefile import read_table

run = load_run(sys.argv[1])
longest = int(sys.argv[2]) if len(sys.argv) > 2 else 4
data = load_corpus(run.config)
if len(sys.argv) > 3:
    corpus = run.config["corpus"].options
    test = read_table(sys.argv[3], corpus.word, corpus.label)
    train, held_out = list(zip(data.words, data.labels)), list(zip(test.words(), test.labels()))
else:
    split = run.checkpoint["split"]
    train_ids, held_out_ids = split_words(range(len(data.words)), split["val_fraction"], split["seed"])
    train, held_out = ([(data.words[i], data.labels[i]) for i in ids] for ids in (train_ids, held_out_ids))
counts = defaultdict(Counter)
for word, label in train:
    for n in range(0, longest + 1):
        counts[word[len(word) - n:] if n else ""][label] += 1
for n in range(1, longest + 1):
    right = 0
    for word, label in held_out:
        ending = next(word[len(word) - k:] if k else "" for k in range(min(n, len(word)), -1, -1)
                      if (word[len(word) - k:] if k else "") in counts)
        right += counts[ending].most_common(1)[0][0] == label
    print(f"endings of up to {n} letters: {right / len(held_out):.1%} of {len(held_out)} held-out words right")
