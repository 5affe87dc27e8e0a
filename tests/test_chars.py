import unicodedata

import pytest

from letras.core import UsageError
from letras.plugins.chars import CharsOptions, CharVocabulary


def test_boundary_token_is_id_zero_and_vocab_counts_it():
    vocab = CharVocabulary()
    vocab.fit(["HOLA", "MADRID"])
    assert vocab.boundary_id == 0
    assert vocab.chars == sorted(set("HOLAMDRI"))
    assert vocab.vocab_size == len(vocab.chars) + 1
    assert vocab.decode(vocab.encode("HOLA")) == "HOLA"
    assert vocab.token(0) == "." and vocab.decode([0, *vocab.encode("MADRID"), 0]) == "MADRID"


def test_nfc_makes_composed_and_decomposed_letters_one():
    vocab = CharVocabulary()
    decomposed = unicodedata.normalize("NFD", "Peñíscola")
    vocab.fit([decomposed])
    assert "ñ" in vocab.chars and "\u0303" not in vocab.chars
    assert vocab.encode("Peñíscola") == vocab.encode(decomposed)


@pytest.mark.parametrize("case, expected", [("keep", "Ávila"), ("upper", "ÁVILA"), ("lower", "ávila")])
def test_case_policy(case, expected):
    vocab = CharVocabulary(CharsOptions(case))
    vocab.fit(["Ávila"])
    assert vocab.decode(vocab.encode("Ávila")) == expected


def test_unknown_characters_are_named_with_their_source():
    vocab = CharVocabulary()
    vocab.fit(["MADRID"])
    with pytest.raises(UsageError) as info:
        vocab.encode("MÁLAGA", source="prefix 'MÁLAGA'")
    message = str(info.value)
    assert message.startswith("prefix 'MÁLAGA': characters 'G' (U+0047), 'L' (U+004C), 'Á' (U+00C1)")
    assert "the model knows: ADIMR" in message


def test_state_round_trip():
    vocab = CharVocabulary(CharsOptions("upper"))
    vocab.fit(["sevilla", "vigo"])
    again = CharVocabulary()
    again.load_state(vocab.state())
    assert again.chars == vocab.chars and again.case == "upper"
    assert again.encode("SEVILLA") == vocab.encode("sevilla")
