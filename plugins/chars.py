"""The character vocabulary: one token per character, plus the boundary token.

The boundary token (shown as the notes' ``.``) starts and ends every word: reading it, the
model chooses the first letter; predicting it, the model ends the word.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from letras.core import LetrasError, UnknownCharacters, hookimpl, option
from letras.core.options import given

BOUNDARY = "."  # how the boundary token is shown, as in the notes


@dataclass
class CharsOptions:
    case: Literal["keep", "upper", "lower"] = option(
        "keep", help="keep the words' case, or fold them to upper or lower case")


class CharVocabulary:
    """Characters of the training words (Unicode NFC) mapped to ids 1..n; 0 is the boundary."""

    boundary_id = 0

    def __init__(self, options: CharsOptions | None = None, **values: Any):
        self.case = given(CharsOptions, options, values).case
        self._set_chars([])

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def normalize(self, word: str) -> str:
        word = unicodedata.normalize("NFC", word)
        if self.case == "upper":
            return word.upper()
        if self.case == "lower":
            return word.lower()
        return word

    def normalize_lines(self, text: str) -> str:
        """``text``, a word a line, each word normalised: in one call, since neither NFC
        nor a case mapping reaches across a line break."""
        return self.normalize(text)

    def fit(self, words: Sequence[str]) -> None:
        self._set_chars(sorted({c for w in words for c in self.normalize(w)}))

    def _set_chars(self, chars: list[str]) -> None:
        self.chars = chars
        self._ids = {c: i + 1 for i, c in enumerate(chars)}
        self._text = ["", *chars]  # id -> text; the boundary decodes to nothing

    def encode(self, word: str, *, source: str = "") -> list[int]:
        word = self.normalize(word)
        try:
            return [self._ids[c] for c in word]
        except KeyError:
            unknown = sorted({c for c in word if c not in self._ids})
            shown = ", ".join(f"'{c}' (U+{ord(c):04X})" for c in unknown)
            plural = "s" if len(unknown) > 1 else ""
            raise UnknownCharacters(f"character{plural} {shown} of {word!r} not in the vocabulary",
                                    chars=unknown, word=word, where=source or None,
                                    hint=f"the model knows: {''.join(self.chars)}") from None

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(map(self._text.__getitem__, ids))

    def token(self, i: int) -> str:
        """The text of one id, the boundary shown as '.'."""
        return BOUNDARY if i == self.boundary_id else self.chars[i - 1]

    def state(self) -> dict[str, Any]:
        return {"chars": list(self.chars), "case": self.case}

    def load_state(self, state: dict[str, Any]) -> None:
        chars = state.get("chars")
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise LetrasError("the saved vocabulary is damaged")
        self.case = state.get("case", self.case)
        self._set_chars(chars)


@hookimpl
def register_tokenizers(register):
    register("chars", CharVocabulary, options=CharsOptions,
             help="One token per character (Unicode NFC) plus a word-boundary token")
