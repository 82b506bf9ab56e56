"""The rule registry: every rule complete and unique, families, and ruff-like selection by codes and prefixes."""

import ast
import dataclasses
from pathlib import Path

import pytest

from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Source
from reprokit.lint import engine
from reprokit.lint.registry import Family, Registry, Rule
from reprokit.lint.rules import REGISTRY

LINT = Path(engine.__file__).parent


def test_every_code_and_name_is_unique_and_the_rules_are_in_code_order():
    codes = [rule.code for rule in REGISTRY]
    names = [rule.name for rule in REGISTRY]
    assert codes == sorted(set(codes)) and len(set(names)) == len(names)
    assert REGISTRY.rules == engine.RULES


def test_every_rule_says_what_it_finds_why_it_matters_and_how_to_fix_it():
    for rule in REGISTRY:
        assert rule.name and rule.message and rule.fix, rule.code
        assert len(rule.rationale) > len(rule.message) // 2 and rule.rationale.endswith("."), rule.code
        assert callable(rule.detect), rule.code


def test_every_family_is_one_module_of_rules():
    families = {rule.family for rule in REGISTRY}
    assert families == set(Family)
    for rule in REGISTRY:
        assert rule.detect.__module__ == f"reprokit.lint.rules.{rule.family.value}", rule.code


def test_the_gpu_family_is_exactly_the_gpu_only_rules_and_the_rk2_codes():
    gpu = {rule.code for rule in REGISTRY if rule.gpu_only}
    assert gpu == {rule.code for rule in REGISTRY if rule.family is Family.GPU}
    assert gpu == {code for code in REGISTRY.codes if code.startswith("RK2")} == engine.GPU_ONLY
    assert all(rule.source is Source.NONDETERMINISTIC_OPS for rule in REGISTRY if rule.gpu_only)


def test_a_rule_is_looked_up_by_its_exact_code():
    assert REGISTRY.rule("RK105").name == "unsorted-file-listing"
    with pytest.raises(UsageError, match=r"^expected a rule code among RK101, .*, received RK1$"):
        REGISTRY.rule("RK1")


def test_a_registry_refuses_a_code_twice():
    rule = REGISTRY.rule("RK101")
    with pytest.raises(ValueError, match="RK101 more than once"):
        Registry((rule, dataclasses.replace(rule, name="another-name")))


def test_a_rule_needs_a_kebab_case_name_and_one_line_texts():
    rule = REGISTRY.rule("RK101")
    with pytest.raises(ValueError, match="kebab-case"):
        dataclasses.replace(rule, name="Unseeded_Generator")
    with pytest.raises(ValueError, match="one non-empty line"):
        dataclasses.replace(rule, rationale="")
    assert isinstance(rule, Rule) and rule.title == rule.message
    assert REGISTRY.rule("RK205").title == f"GPU: {REGISTRY.rule('RK205').message}"


RK1 = [code for code in REGISTRY.codes if code.startswith("RK1")]
RK2 = [code for code in REGISTRY.codes if code.startswith("RK2")]


@pytest.mark.parametrize(
    ("select", "ignore", "expected"),
    [
        ([], [], RK1 + RK2),
        (["RK"], [], RK1 + RK2),
        (["RK1"], [], RK1),
        (["RK10"], [], [c for c in RK1 if c.startswith("RK10")]),
        (["RK2"], [], RK2),
        (["RK201"], [], ["RK201"]),
        (["RK101", "RK2"], [], ["RK101", *RK2]),
        ([], ["RK2"], RK1),
        ([], ["RK1", "RK205"], [c for c in RK2 if c != "RK205"]),
        (["RK1"], ["RK105"], [c for c in RK1 if c != "RK105"]),
        (["RK105"], ["RK1"], ["RK105"]),  # the more specific selector wins
        (["RK105"], ["RK105"], []),  # a tie goes to ignore
    ],
)
def test_select_and_ignore_take_codes_and_prefixes_like_ruff(select, ignore, expected):
    assert [rule.code for rule in REGISTRY.select(select, ignore)] == expected


@pytest.mark.parametrize("entry", ["RK999", "RK9", "RK1011", "rk101", "E501", "", "RK10 "])
def test_an_unknown_code_or_prefix_is_a_one_line_usage_error(entry):
    with pytest.raises(UsageError) as raised:
        REGISTRY.select(select=["RK101"], ignore=[entry])
    message = str(raised.value)
    assert message.startswith("expected rule codes among RK101, ") and message.endswith(f"received {entry}")
    assert "\n" not in message


def test_lint_source_selects_by_prefix():
    source = "import random\nimport tensorflow as tf\nr = random.Random()\nc = tf.math.bincount(x)\n"
    assert [f.code for f in engine.lint_source(source)] == ["RK101", "RK205"]
    assert [f.code for f in engine.lint_source(source, select=["RK2"])] == ["RK205"]
    assert [f.code for f in engine.lint_source(source, ignore=["RK2"])] == ["RK101"]


def test_the_lint_package_imports_only_reprokit_core_and_never_tensorflow():
    for module in LINT.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = [node.module or ""]
            else:
                continue
            for name in imported:
                root = name.split(".")[0]
                assert root not in ("tensorflow", "keras", "tf_keras"), module
                if root == "reprokit":
                    assert name.startswith(("reprokit.core", "reprokit.lint")), (module, name)
