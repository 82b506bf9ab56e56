"""The README's rule table is generated from the registry, and stays so."""

import pytest

from helpers import ROOT
from reprokit.lint.docs import END, START, markdown_table, readme_table, with_table
from reprokit.lint.rules import REGISTRY


def test_the_readme_rule_table_is_the_one_the_registry_generates():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_table(readme) == markdown_table(), (
        "README.md's lint rule table differs from the registry's: regenerate it with `python -m reprokit.lint.docs`"
    )


def test_the_table_has_a_row_per_rule_and_marks_the_gpu_only_rules():
    rows = markdown_table().splitlines()
    assert rows[:2] == ["| rule | name | hazard |", "|---|---|---|"]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows[2:]] == list(REGISTRY.codes)
    gpu = {row.split(" | ")[0].removeprefix("| ") for row in rows[2:] if " | GPU: " in row}
    assert gpu == {rule.code for rule in REGISTRY if rule.gpu_only}


def test_regenerating_replaces_only_the_text_between_the_markers():
    readme = f"# Title\n\nBefore.\n\n{START}\n| old | table |\n{END}\n\nAfter.\n"
    regenerated = with_table(readme)
    assert regenerated == f"# Title\n\nBefore.\n\n{START}\n{markdown_table()}{END}\n\nAfter.\n"
    assert with_table(regenerated) == regenerated


def test_a_readme_without_markers_is_an_error():
    with pytest.raises(ValueError, match="rules:start"):
        readme_table("# No table here\n")
