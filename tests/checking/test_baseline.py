"""Baselines end to end: create, pass, fail on a one-character change, other environment, bad files."""

import hashlib
import json
import os
import shutil

import pytest

from helpers import EXAMPLES, reprokit, words

pytestmark = pytest.mark.e2e

BUDGET = ("--max-steps", "30")


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    shutil.copy(EXAMPLES / "seed_question.py", path)
    return path


def test_a_baseline_round_trip_passes_then_names_the_first_differing_step(script, tmp_path):
    lock = tmp_path / "reprokit.lock.json"
    fresh = {**os.environ, "REPROKIT_FORK_SERVER": "0"}  # recorded by fresh processes, checked by a forked one
    created = reprokit("baseline", script, "--output", lock, *BUDGET, cwd=tmp_path, env=fresh)
    assert created.returncode == 0, created.stderr
    assert "wrote baseline" in created.stderr
    document = json.loads(lock.read_text())
    assert document["kind"] == "reprokit-baseline" and document["schema_version"] == 3
    assert document["script_sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
    assert document["config"] == {"max_steps": 30}
    assert document["models"]["sequential"]["steps"] == 30
    assert len(document["models"]["sequential"]["step_fingerprints"]) == 30

    unchanged = reprokit("check", script, "--baseline", lock, *BUDGET, "-f", "json", cwd=tmp_path)
    assert unchanged.returncode == 0, unchanged.stderr
    result = unchanged.report["baseline"]
    assert result["passed"] is True and result["bitwise"] is True
    assert unchanged.report["verdict"] == "matches_baseline"
    assert result["script_changed"] is False
    assert [r["name"] for r in unchanged.report["runs"]] == ["controlled-1"]
    assert unchanged.report["environment"]["process"] == "forked"  # bit-identical to fresh processes (test_forkserver)
    installed = unchanged.report["environment"]["tensorflow"]

    script.write_text(script.read_text().replace('"--lr", type=float, default=3.0', '"--lr", type=float, default=3.1'))
    changed = reprokit("check", script, "--baseline", lock, *BUDGET, "-f", "rich", "-f", f"json={tmp_path / 'r.json'}")
    assert changed.returncode == 1
    assert "DIFFERS FROM THE BASELINE" in changed.stdout
    assert "from step 1 of sequential" in changed.stdout
    assert "the script changed since the baseline was recorded" in words(changed.stdout)
    update = f"reprokit check {script} --baseline {lock} --update-baseline --max-steps 30"
    assert "record the baseline anew: reprokit check" in words(changed.stdout)
    assert "--update-baseline --max-steps 30" in words(changed.stdout)
    changed_doc = json.loads((tmp_path / "r.json").read_text())
    assert changed_doc["verdict"] == "differs_from_baseline"  # an intended change is not irreproducibility
    assert changed_doc["baseline"]["script_changed"] is True
    assert changed_doc["baseline"]["update_command"] == update

    document["environment"]["tensorflow"] = "2.0.0"
    assert installed != "2.0.0"
    other_env = tmp_path / "other-env.lock.json"
    other_env.write_text(json.dumps(document))
    fallback = reprokit("check", script, "--baseline", other_env, *BUDGET, "-f", "json", cwd=tmp_path)
    assert fallback.returncode == 1  # the learning rate still differs, now seen in the loss
    result = fallback.report["baseline"]
    assert result["bitwise"] is False
    assert result["environment_differences"] == [{"field": "tensorflow", "baseline": "2.0.0", "current": installed}]
    assert "bitwise comparison impossible (the environment differs in tensorflow)" in result["message"]
    assert result["metric_differences"][0]["metric"] == "loss"

    script.write_text(script.read_text().replace("default=3.1", "default=3.0"))
    restored = reprokit("check", script, "--baseline", other_env, *BUDGET, "-f", "json", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert restored.report["baseline"]["passed"] is True
    assert "agree within rtol" in restored.report["baseline"]["message"]
    document["environment"]["backend"] = "jax"  # recorded on another Keras backend: said before any run
    other_backend = tmp_path / "jax.lock.json"
    other_backend.write_text(json.dumps(document))
    refused = reprokit("check", script, "--baseline", other_backend, "--backend", "tensorflow", *BUDGET, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith(
        f"reprokit: error: environment change: the baseline {other_backend} was recorded on the Keras backend jax, "
        "this check runs on tensorflow"
    )


def test_update_baseline_rewrites_the_file_deliberately(script, tmp_path):
    lock = tmp_path / "reprokit.lock.json"
    lock.write_text("{}")
    result = reprokit("check", script, "--baseline", lock, "--update-baseline", *BUDGET, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(lock.read_text())["models"]["sequential"]["steps"] == 30


def test_no_baseline_is_written_for_a_script_that_is_not_reproducible(tmp_path):
    lock = tmp_path / "reprokit.lock.json"
    result = reprokit("baseline", EXAMPLES / "unseeded_augmentation.py", "-o", lock, "--max-steps", "3")
    assert result.returncode == 1
    assert "no baseline was written" in result.stderr
    assert not lock.exists()


VALID = {
    "kind": "reprokit-baseline",
    "schema_version": 3,
    "script": "train.py",
    "script_args": [],
    "seed": 1,
    "config": {"max_steps": 30},
    "environment": {},
    "models": {
        "sequential": {
            "steps": 1,
            "initial_weights": {"sequential/dense/kernel": "00"},
            "final_weights": {"sequential/dense/kernel": "01"},
            "history": {"loss": [0.5]},
            "step_fingerprints": {"1": "aa"},
        }
    },
}


def edited(path: str, value) -> str:
    """VALID with the field at the dotted ``path`` set to ``value``."""
    document = json.loads(json.dumps(VALID))
    *parents, last = path.split(".")
    holder = document
    for key in parents:
        holder = holder[key]
    holder[last] = value
    return json.dumps(document)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "baseline not found"),
        (None, "(create it with: reprokit baseline"),
        (edited("models.sequential.step_fingerprints", "abc"), "models.sequential.step_fingerprints: expected an"),
        (edited("models.sequential.steps", "30"), "models.sequential.steps: expected an integer from 0, received a s"),
        (edited("config.max_steps", "30"), 'config.max_steps: expected an integer or null, received a string "30"'),
        (edited("seed", None), "seed: expected an integer from 0, received null"),
        (edited("models.sequential.history", {"loss": ["x"]}), "models.sequential.history: expected an object of"),
        ("{not json", "is not valid JSON"),
        ('{"kind": "something-else"}', "expected a reprokit baseline"),
        ('{"kind": "reprokit-baseline", "schema_version": 99}', "has schema version 99"),
        (
            '{"kind": "reprokit-baseline", "schema_version": 3, "script": "other.py", "script_args": [],'
            ' "seed": 1, "config": {}, "environment": {}, "models": {}}',
            "is for other.py, not for",
        ),
        (
            '{"kind": "reprokit-baseline", "schema_version": 3, "script": "train.py", "script_args": [],'
            ' "seed": 1, "config": {"max_steps": 50}, "environment": {}, "models": {}}',
            "was made with --max-steps 50; this check uses --max-steps 30",
        ),
        ('{"kind": "reprokit-baseline", "schema_version": 3, "script": "train.py"}', "script_args is missing"),
    ],
)
def test_a_bad_baseline_is_a_one_line_exit_2_before_any_training(script, tmp_path, content, message):
    lock = tmp_path / "reprokit.lock.json"
    if content is not None:
        lock.write_text(content)
    result = reprokit("check", script, "--baseline", lock, *BUDGET, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr  # one line: refused before any run


def test_the_missing_baseline_hint_is_the_whole_command_to_run(script, tmp_path):
    lock = tmp_path / "ci.lock.json"
    result = reprokit("check", script, "--baseline", lock, *BUDGET, "--", "--epochs", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert f"(create it with: reprokit baseline {script} --output {lock} --max-steps 30 -- --epochs 1)" in (
        result.stderr
    )
