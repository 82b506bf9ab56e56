"""What a report answers, on recorded and constructed results: the headline, the script's own seed pin,
why a cell is blank, and the next command (every format says the same)."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import numpy as np
from rich.console import Console

from helpers import recorded_arrays, recorded_report, recorded_trace, words
from reprokit.checking.classify import Finding, classify
from reprokit.checking.comparison import compare_runs
from reprokit.core.vocabulary import FailOn, Outcome, Source, Status
from reprokit.report.ci import markdown
from reprokit.report.studytext import compare_markdown
from reprokit.run.trace import Pin
from reprokit.study.result import CompareReport, Contrast, MetricStats, RunResult, VariantResult
from reprokit.study.rounds import Sequential
from reprokit.study.sequential import Design, Look, Reason, Verdict
from reprokit.study.stats import compare_samples, summarize

FAIL_ON: FailOn = frozenset({Source.UNCONTROLLED})


def render(renderable, width=100) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


def ending(text: str) -> str:
    """The report's last paragraph (from its last "Next:"), as one line of words; asserts that it is the last."""
    tail = text[text.rindex("Next:") :]
    assert "\n\n" not in tail.rstrip(), "something follows the next step"
    return words(tail)


def with_files_read_back(kind: str = "none"):
    """A recorded report whose files pair differs: a second training in one folder reads back what the first wrote."""
    report = recorded_report(kind)
    files = Finding(Source.WRITTEN_FILES, Status.DETECTED, "A second training … differs.", "# fix", "why")
    findings = tuple(files if f.source is Source.WRITTEN_FILES else f for f in report.findings)
    return dataclasses.replace(report, findings=findings)


def test_a_reproducible_check_whose_files_are_read_back_says_both_in_its_headline():
    report = with_files_read_back()

    line = "reproducible under control — your own runs differ: files read back"
    assert "✔ REPRODUCIBLE UNDER CONTROL — your own runs differ: files read back" in words(render(report))
    assert markdown(report, FAIL_ON).splitlines()[0].endswith(line)
    assert f'<p class="verdict neutral" id="verdict">{line}</p>' in report.to_html()
    assert report.to_dict()["verdict"] == "reproducible"  # the JSON and the exit code rules are unchanged
    assert report.failures(FAIL_ON) == ()


def test_a_check_whose_runs_all_agree_keeps_the_plain_headline():
    text = words(render(recorded_report("none")))

    assert "✔ REPRODUCIBLE with every seed fixed and op determinism on" in text
    assert "UNDER CONTROL" not in text and "Next:" not in text  # nothing differs: no question left


def test_a_script_that_pins_its_own_seed_is_named_in_the_seed_driven_row():
    report = recorded_report("none")
    pin = Pin("keras.utils.set_random_seed(0)", "seed", "/home/me/train.py", 6)
    findings = classify(report.comparisons, report.seed, (pin,))
    text = words(render(dataclasses.replace(report, findings=findings, pins=(pin,))))

    row = text[text.index("seed-driven ✔ none") : text.index("nondeterministic ops ✔")]
    assert (
        "Your script pins its seed itself (train.py:6 keras.utils.set_random_seed(0)); the seed pair therefore runs "
        "with your seed, not reprokit's 1234 and 1235" in row
    )
    assert "Your script pins its seed itself (train.py:6 keras.utils.set_random_seed(0)), so another seed" in text


def test_quick_mode_still_names_the_scripts_own_seed_pin():
    report = recorded_report("none", quick=True)
    pin = Pin("keras.utils.set_random_seed(0)", "seed", "train.py", 6)

    seed = next(f for f in classify(report.comparisons, report.seed, (pin,)) if f.source is Source.SEED)

    assert seed.status is Status.NOT_CHECKED
    assert "Your script pins its seed itself (train.py:6 keras.utils.set_random_seed(0))" in seed.evidence


def test_a_blank_agreement_and_a_blank_distance_each_have_a_footnote_with_the_reason():
    report = with_files_read_back("seed")
    seed = dataclasses.replace(
        report.comparison("seed"),
        prediction_agreement=None,
        prediction_agreement_unmeasured="the outputs of sequential are not classes (a single logit)",
    )
    files = dataclasses.replace(
        seed,
        name="files",
        max_abs_diff=None,
        max_abs_diff_unmeasured="the runs' final weights are not the same variables (dense_2/kernel is in one only)",
    )
    report = dataclasses.replace(report, comparisons=(*report.comparisons[:2], seed, files))

    text = render(report)
    assert "—¹" in text and "—²" in text
    flat = words(text)
    assert "¹ — under agree (seed, files pairs): the outputs of sequential are not classes (a single logit)." in flat
    assert "² — under max |Δw| (files pair): the runs' final weights are not the same variables" in flat
    md = markdown(report, FAIL_ON)
    assert "| files | differs | initial weights (`sequential/dense/kernel`) | —² | —¹ |" in md
    assert "¹ — under agree (seed, files pairs): the outputs of sequential are not classes" in md


def test_a_comparison_says_why_it_measured_no_distance_and_no_agreement():
    a, b = recorded_trace("controlled-1"), recorded_trace("seed-1")
    arrays_a, arrays_b = recorded_arrays("controlled-1"), recorded_arrays("seed-1")
    dropped = sorted(k for k in arrays_b if k.startswith("weights/"))[0]
    logits = {k: np.linspace(-3.0, 3.0, len(v)).reshape(-1, 1) for k, v in arrays_b.items() if k.startswith("predict")}
    assert logits, "the recorded runs saved predictions"

    c = compare_runs("seed", a, b, arrays_a | logits, {k: v for k, v in (arrays_b | logits).items() if k != dropped})

    assert c.max_abs_diff is None and c.relative_l2 is None
    assert c.max_abs_diff_unmeasured.startswith("the runs' final weights are not the same variables (")
    assert dropped.removeprefix("weights/") in c.max_abs_diff_unmeasured
    assert c.prediction_agreement is None
    assert "are not classes (one unbounded value per example: a single logit" in c.prediction_agreement_unmeasured
    doc = dataclasses.replace(recorded_report("seed"), comparisons=(c,)).to_dict()["comparisons"][0]
    assert doc["max_abs_diff_unmeasured"] == c.max_abs_diff_unmeasured
    measured = compare_runs("seed", a, b, arrays_a, arrays_b)
    assert measured.max_abs_diff is not None and measured.max_abs_diff_unmeasured == ""


def test_after_a_seed_driven_verdict_the_report_ends_with_the_seed_study_command():
    report = recorded_report("seed")

    assert ending(render(report)).startswith("Next: reprokit seeds examples/seed_question.py -- --epochs 1 (how much")
    assert "**Next:** `reprokit seeds examples/seed_question.py -- --epochs 1`" in markdown(report, FAIL_ON)


def test_after_a_nondeterministic_ops_verdict_the_report_ends_with_explain():
    for kind in ("ops", "uncontrolled"):
        last = ending(render(recorded_report(kind)))
        assert last.startswith("Next: reprokit check examples/seed_question.py --explain -- --epochs 1"), kind


def variant(label: str, values: list[float]) -> VariantResult:
    runs = tuple(RunResult(seed=1234 + i, metrics={"accuracy": v}) for i, v in enumerate(values))
    stats = MetricStats("accuracy", "max", tuple((r.seed, v) for r, v in zip(runs, values)), summarize(values), ())
    return VariantResult(label, "train.py", (), None, tuple(r.seed for r in runs), runs, (stats,), None, None, False)


def compared(a: list[float], b: list[float], outcome: Outcome) -> CompareReport:
    effect = compare_samples(a, b, paired=False, higher_is_better=True)
    contrast = Contrast(1, effect, effect.p_value, outcome)
    return CompareReport(
        (variant("A", a), variant("B", b)),
        (contrast,),
        "accuracy",
        "max",
        False,
        None,
        1234,
        len(a),
        Path("studies"),
        1.0,
    )


def test_a_comparison_within_seed_noise_ends_with_seeds_auto():
    report = compared([0.80, 0.82, 0.81, 0.83, 0.79], [0.81, 0.83, 0.82, 0.80, 0.84], Outcome.WITHIN_NOISE)

    assert ending(render(report)).startswith("Next: the same reprokit compare with --seeds auto")
    assert "**Next:** the same reprokit compare with --seeds auto" in compare_markdown(report)


def test_after_seeds_auto_a_comparison_within_noise_names_the_seeds_it_would_need():
    report = compared([0.80, 0.82, 0.81, 0.83, 0.79], [0.81, 0.83, 0.82, 0.80, 0.84], Outcome.WITHIN_NOISE)
    effect = report.contrasts[0].effect
    assert effect is not None and effect.detectable is not None
    design = Design(5, 1, False, 0.05, (Look(5, 0.05, 0.05, 0.0),))
    verdict = Verdict(Outcome.WITHIN_NOISE, Reason.MAX_SEEDS, 5, effect.p_value, 0.05)
    auto = dataclasses.replace(report, sequential=Sequential(design, (5,), (verdict,), False))

    expected = math.ceil(5 * (effect.detectable / abs(effect.difference)) ** 2)
    assert expected > 5
    assert ending(render(auto)).startswith(f"Next: the same reprokit compare with --seeds {expected}")


def test_a_settled_comparison_has_no_next_step():
    report = compared([0.80, 0.82, 0.81, 0.83, 0.79], [0.90, 0.92, 0.91, 0.93, 0.89], Outcome.BETTER)

    assert "Next:" not in render(report) and "Next:" not in compare_markdown(report)


def test_a_futile_or_nil_difference_after_seeds_auto_asks_for_an_equivalence_margin_not_more_seeds():
    report = compared([0.80, 0.82, 0.81, 0.83, 0.79], [0.81, 0.83, 0.82, 0.80, 0.84], Outcome.WITHIN_NOISE)
    effect = report.contrasts[0].effect
    assert effect is not None
    design = Design(5, 1, False, 0.05, (Look(5, 0.05, 0.05, 0.0),))
    futile = Verdict(Outcome.WITHIN_NOISE, Reason.FUTILE, 5, effect.p_value, 0.05)
    auto = dataclasses.replace(report, sequential=Sequential(design, (5,), (futile,), False))
    contrast = dataclasses.replace(report.contrasts[0], verdict=futile)
    assert ending(render(dataclasses.replace(auto, contrasts=(contrast,)))).startswith(
        "Next: the same reprokit compare with --min-effect DELTA"
    )

    tiny = dataclasses.replace(effect, difference=effect.difference * 1e-6)  # would need millions of seeds
    open_verdict = Verdict(Outcome.WITHIN_NOISE, Reason.MAX_SEEDS, 5, effect.p_value, 0.05)
    nil = dataclasses.replace(report.contrasts[0], effect=tiny, verdict=open_verdict)
    text = ending(render(dataclasses.replace(auto, contrasts=(nil,))))
    assert text.startswith("Next: the same reprokit compare with --min-effect DELTA") and "--seeds" not in text
