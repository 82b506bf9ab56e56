"""The ready-made CI integrations run their own commands for real."""

import re
import shlex
import shutil

import pytest

from helpers import EXAMPLES, ROOT, reprokit

pytestmark = pytest.mark.e2e


def hook_entries() -> dict[str, list[str]]:
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    ids = re.findall(r"^- id: (\S+)", text, re.M)
    entries = re.findall(r"^  entry: (.+)$", text, re.M)
    return {hook: shlex.split(entry) for hook, entry in zip(ids, entries, strict=True)}


def workflow_command() -> list[str]:
    text = (EXAMPLES / "ci" / "github-workflow.yml").read_text()
    block = text.split("name: Check against the committed baseline")[1].split("- name:")[0]
    folded = " ".join(line.strip() for line in block.splitlines()[2:] if line.strip())
    return shlex.split(folded)


def test_the_pre_commit_hooks_are_reprokit_commands():
    assert hook_entries() == {
        "reprokit-check": ["reprokit", "check", "--quick"],
        "reprokit-baseline": ["reprokit", "check"],
    }


def test_the_quick_pre_commit_hook_passes_on_a_reproducible_script(tmp_path):
    _, *args = hook_entries()["reprokit-check"]
    result = reprokit(*args, EXAMPLES / "model_file.py", "--max-steps", "10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_github_workflow_command_gates_on_the_committed_baseline(tmp_path):
    shutil.copy(EXAMPLES / "model_file.py", tmp_path / "train.py")
    command = workflow_command()
    assert command[:4] == ["reprokit", "check", "train.py", "--baseline"]
    budget = command[command.index("--max-steps") + 1]
    created = reprokit("baseline", "train.py", "--max-steps", budget, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    result = reprokit(*command[1:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MATCHES THE BASELINE" in result.stdout
    assert 'failures="0"' in (tmp_path / "reprokit-junit.xml").read_text()
