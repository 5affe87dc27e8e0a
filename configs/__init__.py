"""The pipeline configs that ship with letras: `letras run NAME` finds them here."""
