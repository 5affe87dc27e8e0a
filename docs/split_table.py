"""A table's rows split once, seeded, into a training table and a test table that no classifier
trains or tunes on (docs/labels.md, "First names by sex"): every classifier is then trained on
the first and scored on the same rows of the second.

    python docs/split_table.py names_by_sex.tsv train.tsv test.tsv [FRACTION] [SEED]

FRACTION (default 0.1) of the rows go to the test table, chosen as letras chooses its
validation words (letras.core.split.split_words); the tables keep the header. Rows are split
as they are: a name on both lists has two rows, and they may land on different sides. So a
third table is written beside the test table, `test-unseen.tsv` for `test.tsv`: its rows whose
word (the first column) is nowhere in the training table, names truly held out from training.
"""
import sys
from pathlib import Path

from letras.core.split import split_words


def write(path, header, rows):
    with open(path, "w", encoding="utf-8") as out:
        out.write(header)
        out.writelines(rows)
    print(f"{path}: {len(rows):,} rows", file=sys.stderr)


source, train_path, test_path = sys.argv[1:4]
fraction = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
header, *rows = open(source, encoding="utf-8").read().splitlines(keepends=True)
delimiter = "\t" if "\t" in header else ","
train, test = split_words(rows, fraction, seed)
seen = {row.split(delimiter)[0] for row in train}
test_path = Path(test_path)
write(train_path, header, train)
write(test_path, header, test)
write(test_path.with_stem(test_path.stem + "-unseen"), header, [row for row in test if row.split(delimiter)[0] not in seen])
