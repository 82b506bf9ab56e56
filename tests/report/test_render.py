"""The terminal report, rendered from recorded data."""

import dataclasses
import io

from rich.console import Console

from helpers import recorded_report, words
from reprokit.checking.comparison import VariableDiff
from reprokit.weights.matching import Alignment, LayerAlignment, ModelAlignment, UnitMatch


def render(report, width=80, **console_options) -> str:
    out = io.StringIO()
    Console(file=out, width=width, **console_options).print(report)
    return out.getvalue()


def test_the_report_for_a_seed_driven_training_answers_the_question_and_gives_the_fix():
    text = render(recorded_report("seed"))
    assert "REPRODUCIBLE" in text and "NOT REPRODUCIBLE" not in text
    assert "come from the seed" in text
    assert "keras.utils.set_random_seed(1234)" in text
    assert "seed 1234" in text
    assert "initial weights" in text


def test_the_report_fits_in_80_columns():
    for kind in ("seed", "ops", "uncontrolled", "none"):
        lines = render(recorded_report(kind)).splitlines()
        assert max(len(line) for line in lines) <= 80, kind


def test_without_a_terminal_the_report_has_no_escape_codes():
    text = render(recorded_report("ops"), force_terminal=False)
    assert "\x1b[" not in text
    assert "nondeterministic ops" in text and "enable_op_determinism()" in text


def test_no_color_keeps_the_words_and_drops_the_colors():
    text = render(recorded_report("uncontrolled"), force_terminal=True, no_color=True)
    assert "\x1b[31m" not in text and "\x1b[32m" not in text
    assert "NOT REPRODUCIBLE" in text
    assert "np.random.default_rng(1234)" in text


def test_a_failed_controlled_pair_says_no_outside_setting_makes_it_reproducible():
    text = render(recorded_report("uncontrolled"))
    assert "NOT REPRODUCIBLE" in text
    assert "no global seed reaches" in text
    assert "unclear" in text  # seed and ops cannot be told apart


def test_quick_mode_says_what_was_not_checked():
    text = render(recorded_report("none", quick=True))
    assert "not checked" in text
    assert "without --quick" in text


def test_with_several_models_the_sizes_and_the_loss_say_which_model_they_belong_to():
    report = recorded_report("seed")
    seed = report.comparisons[2]
    variables = (
        VariableDiff("discriminator", "discriminator/dense/kernel", 2.5, 0.9),
        *seed.variables,
    )
    seed = dataclasses.replace(seed, variables=variables, max_abs_diff=2.5)
    runs = tuple(dataclasses.replace(r, models=("generator", "discriminator")) for r in report.runs)
    report = dataclasses.replace(report, comparisons=(*report.comparisons[:2], seed), runs=runs)
    text = " ".join(render(report).split())
    assert "final max |Δw| 2.5 (in discriminator)" in text
    assert "final loss: of discriminator" in text
    assert "final loss: of" not in " ".join(render(recorded_report("seed")).split())  # one model: nothing to add


def with_alignment(report):
    """``report`` with the seed pair's models aligned (figures as the seed question's)."""
    layer = LayerAlignment("dense", "Dense", 30, True, None, 1.37, 1.0, 0.98, UnitMatch(30, 0, 0.7, -0.1), 0.75)
    aligned = Alignment((layer,), 1.33, 0.91, 1, 0.98, 0.91, 0.75)
    comparisons = tuple(
        dataclasses.replace(c, alignments=(ModelAlignment("sequential", aligned),)) if c.name == "seed" else c
        for c in report.comparisons
    )
    return dataclasses.replace(report, comparisons=comparisons)


def test_a_seed_driven_report_says_why_the_weights_differ_in_three_parts():
    text = words(render(with_alignment(recorded_report("seed"))))
    assert "Why are the weights different? (sequential, seed pair)" in text
    assert "the seed (1234 vs 1235) 1.33" in text and "order of hidden units 53%" in text
    assert "other solutions 0.91" in text and "untrained pair 0.75" in text
    assert "the order of the hidden units explains 53% of the weight distance" in text  # the headline


def test_the_three_parts_are_not_shown_when_the_seed_is_not_what_makes_runs_differ():
    text = render(with_alignment(recorded_report("uncontrolled")))
    assert "Why are the weights different?" not in text


def test_a_fix_too_wide_for_an_80_column_panel_is_folded_so_that_the_pasted_code_still_runs():
    from reprokit.checking.evidence import FIXES
    from reprokit.core.vocabulary import Source
    from reprokit.report.ci import plain_summary

    report = recorded_report("seed")
    fix = FIXES[Source.WRITTEN_FILES]
    assert max(len(line) for line in fix.splitlines()) > 76  # wider than the panel's inside
    seed = next(f for f in report.findings if f.source is Source.SEED)
    findings = tuple(dataclasses.replace(f, fix=fix) if f is seed else f for f in report.findings)
    text = plain_summary(dataclasses.replace(report, findings=findings), width=80)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip("│ ") == "Fix:") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("╰"))
    pasted = "\n".join(line[2:].rstrip().removesuffix("│").rstrip() for line in lines[start:end])
    assert max(len(line) for line in lines) <= 80
    compile(pasted, "pasted fix", "exec")  # whole: nothing cut at the panel's edge
    assert "save_weights_only=True)" in pasted
