"""The JSON contract of a report (schema_version 1), on recorded data."""

import json
import math

from helpers import recorded_report

TOP_LEVEL = {
    "schema_version",
    "reprokit_version",
    "script",
    "script_args",
    "seed",
    "verdict",
    "sources",
    "comparisons",
    "runs",
    "environment",
    "script_pins",
    "notes",
    "wall_seconds",
    "max_steps",
    "baseline",
    "lint",
    "determinism_refusal",
    "explanation",
    "pipeline",
    "resume",
    "search",
}
COMPARISON = {
    "name",
    "runs",
    "identical",
    "first_divergent_step",
    "first_divergent_model",
    "first_divergent_variables",
    "inputs_differ_at_divergence",
    "first_divergence_stage",
    "input_change",
    "first_divergence_after",
    "first_divergence_located",
    "max_abs_diff",
    "relative_l2",
    "prediction_agreement",
    "max_abs_diff_unmeasured",
    "prediction_agreement_unmeasured",
    "final_losses",
    "steps",
    "variables",
    "alignment",
    "tracks",
}


def test_the_json_report_has_exactly_the_documented_keys():
    doc = json.loads(recorded_report("seed").to_json())
    assert set(doc) == TOP_LEVEL
    assert doc["schema_version"] == 1
    assert set(doc["sources"]) == {"seed", "nondeterministic_ops", "uncontrolled", "written_files", "resume"}
    for source in doc["sources"].values():
        assert set(source) == {"detected", "status", "evidence", "fix", "runs"}
    assert all(set(c) == COMPARISON for c in doc["comparisons"])
    assert {"name", "role", "seed", "op_determinism", "steps", "wall_seconds"} <= set(doc["runs"][0])
    assert {"python", "tensorflow", "keras", "backend", "platform", "cpu"} <= set(doc["environment"])


def test_the_json_report_states_the_findings_of_a_seed_driven_training():
    doc = recorded_report("seed").to_dict()
    assert doc["verdict"] == "reproducible"
    assert doc["seed"] == 1234
    assert doc["sources"]["seed"]["detected"] is True
    assert doc["sources"]["uncontrolled"] == {
        "detected": False,
        "status": "none",
        "evidence": doc["sources"]["uncontrolled"]["evidence"],
        "fix": None,
        "runs": 2,
    }
    seed = next(c for c in doc["comparisons"] if c["name"] == "seed")
    assert seed["identical"] is False and seed["first_divergent_step"] == 0
    assert seed["first_divergent_variables"] == ["sequential/dense/kernel", "sequential/dense_1/kernel"]


def test_quick_reports_say_null_for_the_sources_they_did_not_check():
    doc = recorded_report("none", quick=True).to_dict()
    assert doc["sources"]["seed"]["detected"] is None
    assert doc["sources"]["nondeterministic_ops"]["detected"] is None
    assert doc["sources"]["seed"]["status"] == "not_checked" and doc["sources"]["seed"]["runs"] == 0
    assert [c["name"] for c in doc["comparisons"]] == ["controlled"]


def test_non_finite_numbers_become_null_so_the_json_is_strict():
    import dataclasses

    report = recorded_report("uncontrolled")
    broken = dataclasses.replace(report.comparisons[0], max_abs_diff=math.inf, final_losses=(math.nan, 1.0))
    report = dataclasses.replace(report, comparisons=(broken, *report.comparisons[1:]))
    doc = json.loads(report.to_json())  # allow_nan=False inside: would raise on NaN
    assert doc["comparisons"][0]["max_abs_diff"] is None
    assert doc["comparisons"][0]["final_losses"] == [None, 1.0]
