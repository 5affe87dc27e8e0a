"""The README's two commands are the ones CI runs and a new user types."""

from conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    assert text.index("```sh") < text.index("\n\n", text.index("# letras") + 9) + 3
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("&& letras run")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_docs_pages_linked_from_the_readme_exist():
    import re

    text = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\(((?:docs|plugins)/[^)]+)\)", text):
        assert (ROOT / link).exists(), link
