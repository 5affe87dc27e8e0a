import pytest

from letras.core import UsageError, components
from letras.plugins.corpora import CIUDADES, ciudades, municipios


def read_word_file(path, **options):
    """The file corpus, built as a pipeline builds it."""
    return components("corpus").get("file").build(path=path, **options)


def test_ciudades_are_the_notes_fifteen():
    words = ciudades().words()
    assert words[:3] == ["MADRID", "BARCELONA", "VALENCIA"] and len(words) == 15
    assert words == list(CIUDADES)


def test_municipios_ships_with_the_package():
    words = municipios().words()
    assert len(words) == 8238
    assert "A Coruña" in words and "València" in words and "l'Alfàs del Pi" in words


def test_municipios_attribution_ships_beside_the_data():
    from importlib import resources

    note = resources.files("letras.plugins").joinpath("data/SOURCES.md").read_text("utf-8")
    assert "Fuente: Instituto Nacional de Estadística (INE)" in note


def write(tmp_path, data: bytes):
    path = tmp_path / "words.txt"
    path.write_bytes(data)
    return str(path)


def test_file_strips_blank_lines_whitespace_and_crlf(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf ana \r\n\r\n  \nbea\r\ncarla")  # BOM, CRLF, no final newline
    assert read_word_file(path).words() == ["ana", "bea", "carla"]


def test_file_dedupe(tmp_path):
    path = write(tmp_path, "ana\nbea\nana\n".encode())
    assert read_word_file(path).words() == ["ana", "bea", "ana"]
    assert read_word_file(path, dedupe=True).words() == ["ana", "bea"]


@pytest.mark.parametrize("data, message", [
    (b"", "holds no words"),
    (b"\n \n\t\n", "holds no words"),
    (b"ana\nbe\xe1ta\n", "line 2 is not UTF-8 (byte 0xe1 at column 3)"),
    (b"ana\nbea\x00\x01\x02\n", "line 2 holds a NUL byte"),
    (b"ana\n" + b"x" * 1000 + b"\n", "line 2 is 1,000 characters long"),
])
def test_bad_files_say_what_and_where(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(UsageError) as info:
        read_word_file(path)
    assert message in str(info.value) and path in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_word_file(str(tmp_path / "nope.txt"))
    with pytest.raises(UsageError, match="is a folder"):
        read_word_file(str(tmp_path))
