"""A labelled, weighted list from makemore's names.txt (docs/labels.md): each name with its sex
and an estimate of how often it is given.

names.txt holds the 32,033 commonest US first names of 2018 in the order of the Social Security
Administration's file: the girls' names, then the boys' (from the second `liam` on), each by
count, most frequent first. The counts themselves are not in it, so the weight is Zipf's
estimate from the rank within its sex, 1 / rank. A name given to both sexes (2,539 are) has a
row for each.

    python docs/names_by_sex.py names.txt names_by_sex.tsv
"""
import sys

names = open(sys.argv[1], encoding="utf-8").read().split()
boys = max(i for i, name in enumerate(names) if name == "liam")  # the boys' list starts with its commonest
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write("name\tsex\tweight\n")
    for sex, block in (("girl", names[:boys]), ("boy", names[boys:])):
        out.writelines(f"{name}\t{sex}\t{1 / rank:.6g}\n" for rank, name in enumerate(block, start=1))
