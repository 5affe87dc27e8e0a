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


# As datasette's test_plugin_hooks_are_documented: the reference pages cannot drift from the code.

def hook_names() -> list[str]:
    from letras.core.plugins import _spec_names

    return _spec_names()


def test_every_hook_is_in_the_hook_reference():
    reference = (ROOT / "docs" / "plugins.md").read_text().split("## Hook reference", 1)[1]
    rows = [line for line in reference.splitlines() if line.startswith("| `")]
    documented = {row.split("`")[1].split("(")[0] for row in rows}
    assert documented == set(hook_names())


def test_every_command_is_in_the_command_table():
    from click.testing import CliRunner

    from letras.core.cli import cli

    CliRunner().invoke(cli, ["--help"])  # adds the commands plugins register
    table = (ROOT / "docs" / "cli.md").read_text()
    missing = [name for name in cli.list_commands(None) if f"| `letras {name}" not in table]
    assert not missing


def test_every_built_in_component_and_option_is_in_the_configuration_reference():
    from letras.core import components
    from letras.core.options import describe
    from letras.core.registry import HOOKS

    pages = {"exporter": "export.md"}  # options given on export's command line, not in a pipeline
    missing = []
    for kind in HOOKS:
        text = (ROOT / "docs" / pages.get(kind, "configuration.md")).read_text()
        for component in components(kind):
            if not component.plugin.startswith("letras.plugins"):
                continue
            if f"`{component.name}`" not in text:
                missing.append(f"{kind} {component.name}")
            missing += [f"{kind} {component.name}: option {o.name}" for o in describe(component.options)
                        if f"`{o.name}" not in text]
    assert not missing


def test_the_architecture_page_names_every_module_and_built_in_plugin():
    from letras.core.plugins import BUILTIN_PLUGINS

    text = (ROOT / "docs" / "architecture.md").read_text()
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "core").glob("*.py"))
    assert [m for m in modules if f"| `{m}` |" not in text] == []
    assert [p for p in BUILTIN_PLUGINS if f"`{p.rsplit('.', 1)[1]}`" not in text] == []
