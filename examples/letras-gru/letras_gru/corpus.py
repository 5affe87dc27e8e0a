"""Dinosaur genus names, one per line with its period, shipped beside this module."""

from importlib import resources


class Dinosaurios:
    def __init__(self, period="all"):
        self.period = period

    def words(self):
        text = resources.files("letras_gru").joinpath("dinosaurios.txt").read_text("utf-8")
        rows = [line.split("\t") for line in text.splitlines() if line.strip()]
        return [name for name, period in rows if self.period in ("all", period)]


def dinosaurios(period="all"):
    return Dinosaurios(period)
