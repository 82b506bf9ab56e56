"""The resume check's verdicts and what it names as lost, on runs recorded as fingerprints (no training)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import recorded_report
from reprokit.checking.comparison import compare_runs
from reprokit.checking.lockfile import _first_problem
from reprokit.checking.restart import comparable, renumbered, same_names, starting_points
from reprokit.checking.resume import Resumed, analyse
from reprokit.checking.resuming import (
    _compare,
    recorded_resume,
    resume_change,
    resume_check,
    resume_finding,
    resume_section,
)
from reprokit.checking.runs import CheckOptions, ResumeAt, Runs
from reprokit.cli.app import app
from reprokit.core.controls import Controls
from reprokit.core.errors import ScriptFailedError, UsageError
from reprokit.core.vocabulary import Source
from reprokit.protocol import CallbackStateEvent
from reprokit.report.ci import Format, render
from reprokit.run.runner import Target
from reprokit.run.trace import ModelResult, Point, RunSpec, RunTrace

N = 32
M = "sequential"
W = "sequential/dense/kernel"
ITERATION = "optimizer:adam/iteration"
SLOT = "optimizer:adam/sequential_dense_kernel_momentum"
SEEDS = "random:seed_generator/seed_generator_state"


def state(step: int, **changed: str) -> dict[str, str]:
    """The uninterrupted run's state after ``step``: each entry moves with the step."""
    found = {W: f"w{step}", ITERATION: f"i{step}", SLOT: f"m{step}", SEEDS: f"s{step}", "random:numpy": "np"}
    return found | changed


def point(step: int, batch: int | None = None, loss: float | None = None, **changed: str) -> Point:
    inputs = () if step == 0 else (f"b{(step - 1) % 8 if batch is None else batch}",)
    scalars = {ITERATION: float(step)}
    return Point(M, step, state(step, **changed), inputs, None if step == 0 else loss or step / 10, (), scalars)


def trace(name: str, points: list[Point], final: str, steps: int, **fields: object) -> RunTrace:
    spec = RunSpec(name, "resume", Controls(1234, True))
    model = ModelResult(M, steps, {W: final}, None)
    return RunTrace(spec, tuple(points), (model,), (), {}, "script", 1.0, **fields)  # type: ignore[arg-type]


UNINTERRUPTED = trace("controlled-1", [point(k) for k in range(N + 1)], "final", N)
STOPPED = trace("stopped", [point(k) for k in range(13)], "", 12, preempted=True)


def resumed_from(start: int, final: str = "final", **at_first: object) -> RunTrace:
    """A run that started from the uninterrupted run's step ``start`` (``at_first``: how its first step differs)."""
    points = [replace(point(start), step=0)]
    for i in range(1, N - start + 1):
        p = replace(point(start + i), step=i)
        if i == 1 and at_first:
            p = replace(p, **at_first)  # type: ignore[arg-type]
        points.append(p)
    return trace("resumed", points, final, N - start)


def judged(resumed: RunTrace, stopped: RunTrace = STOPPED, controlled=None):
    named = same_names(UNINTERRUPTED, resumed)
    starts = starting_points(UNINTERRUPTED, named, 12)
    comparison = compare_runs("resume", *comparable(UNINTERRUPTED, named, starts), {}, {})
    return analyse(UNINTERRUPTED, stopped, named, 12, comparison, controlled)


def kinds(result) -> list[str]:
    return [x.state.value for x in result.lost]


def test_a_run_that_goes_on_from_the_stop_bit_for_bit_resumes_exactly():
    result = judged(resumed_from(12))
    assert (result.verdict, result.resumed_from, result.replayed, result.final_identical) == (
        Resumed.EXACTLY,
        12,
        None,
        True,
    )
    assert resume_finding(result).status == "none" and kinds(result) == []


def test_a_run_that_goes_on_from_an_earlier_checkpoint_replays_those_steps():
    result = judged(resumed_from(8))
    assert (result.verdict, result.replayed) == (Resumed.REPLAYS, (9, 12))
    assert "replayed steps 9–12" in result.evidence and result.verdict.good


def test_a_run_that_begins_from_the_initial_weights_starts_over_and_names_the_files_it_ignored():
    result = judged(resumed_from(0), replace(STOPPED, files_written=("ckpt/latest.weights.h5",)))
    assert (result.verdict, kinds(result)) == (Resumed.STARTS_OVER, ["checkpoint"])
    assert "wrote ckpt/latest.weights.h5, but the run started again began from the initial weights" in (
        result.lost[0].evidence
    )
    assert resume_finding(result).status == "detected" and "BackupAndRestore" in resume_finding(result).fix


def test_a_start_the_uninterrupted_run_never_had_is_a_different_model():
    resumed = resumed_from(8, final="other")
    resumed = replace(resumed, points=(replace(resumed.points[0], weights=state(8, **{W: "elsewhere"})),))
    result = judged(resumed)
    assert (result.verdict, result.resumed_from) == (Resumed.DIFFERENT_MODEL, None)
    assert "never had at steps 0 to 12" in result.evidence


def test_iterations_that_restart_at_zero_are_named_with_both_values():
    resumed = resumed_from(8, final="other", weights=state(9, **{ITERATION: "i1", W: "x"}))
    start = replace(resumed.points[0], weights=state(8, **{ITERATION: "i0"}), scalars={ITERATION: 0.0})
    result = judged(replace(resumed, points=(start, *resumed.points[1:])))
    assert result.verdict is Resumed.DIFFERENT_MODEL and kinds(result)[0] == "optimizer_iterations"
    assert "were 0 as the resumed run began, 8 in the uninterrupted run after step 8" in result.lost[0].evidence


def test_slots_missing_at_the_restart_are_lost_when_the_same_batch_and_loss_update_them_differently():
    resumed = resumed_from(8, final="other", weights=state(9, **{SLOT: "m-other", W: "x"}))
    start = resumed.points[0]
    start = replace(start, weights={k: v for k, v in start.weights.items() if k != SLOT})  # not built yet
    result = judged(replace(resumed, points=(start, *resumed.points[1:])))
    assert kinds(result) == ["optimizer_slots"] and "same loss on the same batch" in result.lost[0].evidence


def test_slots_missing_at_the_restart_and_restored_with_their_first_step_are_not_lost():
    resumed = resumed_from(12)
    start = replace(resumed.points[0], weights={k: v for k, v in resumed.points[0].weights.items() if k != SLOT})
    assert judged(replace(resumed, points=(start, *resumed.points[1:]))).verdict is Resumed.EXACTLY


def test_a_first_batch_from_the_start_of_the_data_names_the_step_it_came_from():
    result = judged(resumed_from(12, final="other", inputs=("b0",), weights=state(13, **{W: "x"})))
    assert (result.verdict, result.first_difference, kinds(result)) == (Resumed.DIFFERENT_MODEL, 13, ["input_batch"])
    assert "the batch the uninterrupted run trained on at step 9" in result.lost[0].evidence  # the latest earlier one


def test_other_dropout_masks_and_global_generators_are_named_by_their_state():
    weights = state(9, **{SEEDS: "s-fresh", "random:numpy": "np-fresh", W: "x"})
    result = judged(resumed_from(8, final="other", weights=weights, loss=0.5))
    assert kinds(result) == ["layer_generators", "global_generators"]
    assert "seed_generator/seed_generator_state" in result.lost[0].evidence and "NumPy" in result.lost[1].evidence


def test_another_loss_on_the_same_batch_with_no_generator_seen_to_differ_is_a_random_draw():
    result = judged(resumed_from(8, final="other", weights=state(9, **{W: "x"}), loss=0.5))
    assert kinds(result) == ["random_draw"] and "0.5 vs 0.9" in result.lost[0].evidence


@pytest.mark.parametrize(
    ("epoch", "lost_", "said"),
    [
        (0, "epoch", "began at epoch 0, but step 9 belongs to epoch 1"),
        (1, "callbacks", "As epoch 1 began, the callbacks' state differed from the uninterrupted run's "),
    ],
)
def test_a_fit_begun_at_another_epoch_and_callback_counters_set_back_are_named(epoch, lost_, said):
    watched = tuple(CallbackStateEvent(M, e, 8 * e, {"EarlyStopping.wait": str(e)}) for e in range(4))
    uninterrupted = replace(UNINTERRUPTED, callbacks=watched)
    resumed = resumed_from(8, final="other", weights=state(9, **{W: "x"}))
    resumed = replace(resumed, callbacks=(CallbackStateEvent(M, epoch, 0, {"EarlyStopping.wait": "0"}),))
    named = same_names(uninterrupted, resumed)
    comparison = compare_runs("resume", *comparable(uninterrupted, named, {M: 8}), {}, {})
    result = analyse(uninterrupted, STOPPED, named, 12, comparison)
    assert kinds(result)[-1] == lost_ and said in result.lost[-1].evidence
    if lost_ == "callbacks":
        assert "EarlyStopping.wait 1 vs 0" in result.lost[-1].evidence


def test_runs_that_differ_before_the_stop_or_a_controlled_pair_that_differs_first_are_not_judged():
    stopped = replace(STOPPED, points=(*STOPPED.points[:5], replace(STOPPED.points[5], weights=state(5, **{W: "?"}))))
    assert judged(resumed_from(12), stopped).verdict is Resumed.NOT_JUDGED
    result = judged(resumed_from(12, final="other", weights=state(13, **{W: "x"})))
    controlled = compare_runs(
        "controlled", UNINTERRUPTED, replace(UNINTERRUPTED, points=UNINTERRUPTED.points[:10]), {}, {}
    )
    assert result.verdict is Resumed.DIFFERENT_MODEL
    assert judged(resumed_from(12, final="other"), controlled=controlled).verdict is Resumed.NOT_JUDGED
    assert resume_finding(judged(resumed_from(12), stopped)).status == "not_separable"


def test_variables_named_without_the_model_prefix_after_load_model_are_matched_in_order():
    resumed = resumed_from(8)
    bare = {"dense/kernel": W, "optimizer:adam/dense_kernel_momentum": SLOT}

    def strip(values):
        back = {v: k for k, v in bare.items()}
        return {back.get(k, k): v for k, v in values.items()}

    loaded = replace(
        resumed,
        points=tuple(replace(p, weights=strip(p.weights)) for p in resumed.points),
        models=tuple(replace(m, weights=strip(m.weights)) for m in resumed.models),
    )
    assert judged(loaded).verdict is Resumed.REPLAYS
    assert [p.step for p in renumbered(loaded, {M: 8}).points][:2] == [8, 9]


def test_resume_at_is_a_step_from_one_or_the_middle():
    assert ResumeAt.of(None) is None and ResumeAt.of("middle") == ResumeAt(None) and ResumeAt.of(3) == ResumeAt(3)
    for bad in (0, -1, True, "12", 1.5):
        with pytest.raises(UsageError, match="resume"):
            ResumeAt.of(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume-at", "4", "--resume"], "expected --resume-at 4 or --resume, received both"),
        (["--resume-at", "0"], "expected --resume-at to be an optimizer step of 1 or more, received 0"),
        (["--resume-at", "5", "--max-steps", "5"], "--resume-at 5 with --max-steps 5: every run ends after step 5"),
    ],
)
def test_bad_resume_options_are_one_line_usage_errors_before_any_run(tmp_path, args, message):
    script = tmp_path / "train.py"
    script.write_text("raise SystemExit('never run')\n")
    result = CliRunner().invoke(app, ["check", *args, str(script)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_baseline_keeps_what_the_restart_did_and_a_change_fails_it_with_both_sides():
    exact = judged(resumed_from(12))
    section = resume_section(exact)
    assert section == {"stopped_after": 12, "verdict": "resumes_exactly", "resumed_from": 12}
    assert resume_change(section, exact) is None
    broken = judged(resumed_from(12, final="other", inputs=("b0",), weights=state(13, **{W: "x"})))
    change = resume_change(section, broken)
    assert change == (
        "stopped after step 12 and run again, it now resumes with a different model (from step 12; not restored: "
        "input position), where the baseline resumes exactly (from step 12)"
    )
    assert recorded_resume({"resume": section}, None, "b.json") == ResumeAt(12)
    with pytest.raises(UsageError, match="recorded with --resume-at 12; this check asks for --resume-at 4"):
        recorded_resume({"resume": section}, ResumeAt(4), "b.json")
    assert recorded_resume({}, None, "b.json") is None


def test_a_baseline_with_a_broken_resume_section_is_named_by_its_field():
    base = {"script": "t.py", "script_args": [], "seed": 1, "config": {}, "environment": {}, "models": {}}
    assert (
        _first_problem(base | {"resume": {"stopped_after": 12, "verdict": "resumes_exactly", "resumed_from": 12}})
        is None
    )
    assert _first_problem(base | {"resume": {"stopped_after": 0, "verdict": "replays", "resumed_from": 0}}) == (
        "resume.stopped_after: expected an integer from 1, received an integer 0"
    )
    assert _first_problem(base | {"resume": []}) == "resume: expected an object, received a list"
    assert json.dumps(resume_section(judged(resumed_from(8))))  # plain JSON


def test_every_format_shows_the_resume_answer_from_the_same_result():
    result = judged(resumed_from(12, final="other", inputs=("b0",), weights=state(13, **{W: "x"})))
    report = recorded_report("none")
    findings = tuple(resume_finding(result) if f.source == "resume" else f for f in report.findings)
    report = replace(report, resume=result, findings=findings)
    text = render(report, Format.RICH, frozenset({Source.RESUME}))
    assert "Resume: stopped after step 12 and run again" in text and "RESUMES WITH A DIFFERENT MODEL" in text
    assert "input position" in text and "Stopped after step 12 and run again, it resumes with a different model." in (
        " ".join(text.split())
    )
    markdown = render(report, Format.MARKDOWN, frozenset({Source.RESUME}))
    assert "**Resume** (stopped after step 12 of 32): ❌ resumes with a different model." in markdown
    assert "| input position |" in markdown and "| resume | ❌ detected |" in markdown
    junit = render(report, Format.JUNIT, frozenset({Source.RESUME}))
    assert junit.count("<testcase") == 5 and 'name="resume pair' in junit and junit.count("<failure") == 1
    assert "resume" not in render(recorded_report("none"), Format.MARKDOWN, frozenset())  # none asked: no row
    doc = json.loads(render(report, Format.JSON, frozenset()))
    assert doc["resume"]["verdict"] == "different_model" and doc["resume"]["not_restored"][0]["state"] == "input_batch"
    assert doc["sources"]["resume"]["detected"] is True
    assert report.failures(frozenset({Source.RESUME})) and not report.failures(frozenset({Source.UNCONTROLLED}))


def test_a_learning_rate_that_differs_after_the_restart_is_named_with_both_values():
    rate = "optimizer:adam/learning_rate"
    resumed = resumed_from(8, final="other", weights=state(9, **{rate: "r-new", W: "x"}))
    first = replace(resumed.points[1], scalars={ITERATION: 9.0, rate: 0.0005})
    uninterrupted = replace(
        UNINTERRUPTED,
        points=tuple(
            replace(p, weights=p.weights | {rate: "r"}, scalars=p.scalars | {rate: 0.001}) for p in UNINTERRUPTED.points
        ),
    )
    resumed = replace(resumed, points=tuple(replace(p, weights=p.weights | {rate: "r"}) for p in resumed.points))
    resumed = replace(resumed, points=(resumed.points[0], replace(first, weights=first.weights), *resumed.points[2:]))
    named = same_names(uninterrupted, resumed)
    comparison = compare_runs("resume", *comparable(uninterrupted, named, {M: 8}), {}, {})
    stopped = replace(STOPPED, points=uninterrupted.points[:13])
    result = analyse(uninterrupted, stopped, named, 12, comparison)
    assert "learning_rate" in kinds(result)
    assert "Step 9 ran with learning rate 0.0005 in the resumed run, 0.001 in the uninterrupted one." in [
        x.evidence for x in result.lost
    ]


def test_iterations_are_counted_from_the_first_step_where_steps_carry_the_weights_only():
    def weights_only(run: RunTrace) -> RunTrace:  # JAX: a step hands over the trained weights alone
        kept = tuple(p if p.step == 0 else replace(p, weights={W: p.weights[W]}, scalars={}) for p in run.points)
        return replace(run, points=kept)

    resumed = resumed_from(8, final="other", weights=state(9, **{W: "x"}))
    start = replace(resumed.points[0], weights=state(8, **{ITERATION: "i0"}), scalars={ITERATION: 0.0})
    resumed = weights_only(replace(resumed, points=(start, *resumed.points[1:])))
    uninterrupted = weights_only(UNINTERRUPTED)
    named = same_names(uninterrupted, resumed)
    comparison = compare_runs("resume", *comparable(uninterrupted, named, {M: 8}), {}, {})
    stopped = replace(STOPPED, points=uninterrupted.points[:13])
    result = analyse(uninterrupted, stopped, named, 12, comparison)
    assert result.lost[0].evidence == (
        "The optimizer's iterations were 0 as the resumed run began; the uninterrupted run had made 8 steps "
        "(iterations 8)."
    )


def test_the_decorator_hands_resume_at_to_its_verification(monkeypatch):
    import reprokit.api
    from reprokit.decorator import reproducible

    asked = {}

    def check(target, **options):  # the verification's call, before any run
        asked.update(options)
        return recorded_report("none")

    monkeypatch.setattr(reprokit.api, "check", check)
    train = reproducible(resume_at="middle", fail_on=("uncontrolled", "resume"))(len)
    train.verify([1])
    assert asked["resume_at"] == "middle" and train.fail_on == {Source.UNCONTROLLED, Source.RESUME}


def test_a_script_that_fails_when_run_again_fails_after_the_restart_with_its_error():
    error = ScriptFailedError(
        "the script failed in run resumed: RuntimeError: training.lock exists",
        "resumed",
        "Traceback (most recent call last):\n  ...\nRuntimeError: training.lock exists",
    )
    runs = Runs({"stopped": STOPPED}, failed={"resumed": error})
    result, comparison, added = _compare(UNINTERRUPTED, runs, 12, None)
    assert (result.verdict, comparison, [t.spec.name for t in added]) == (Resumed.FAILS, None, ["stopped"])
    assert result.evidence.startswith(
        "Stopped after step 12 and run again among what it left, the script failed: RuntimeError: training.lock exists."
    )
    assert resume_finding(result).status == "detected" and not result.verdict.good
    assert (
        _first_problem(
            {"script": "t.py", "script_args": [], "seed": 1, "config": {}, "environment": {}, "models": {}}
            | {"resume": resume_section(result)}
        )
        is None
    )


def test_an_uninterrupted_run_stopped_early_by_its_differing_pair_leaves_the_resume_not_judged():
    early = replace(UNINTERRUPTED, stopped_early=True, points=UNINTERRUPTED.points[:20])
    controlled = compare_runs("controlled", early, replace(early, points=early.points[:5]), {}, {})
    runs = Runs({"controlled-1": early, "stopped": STOPPED})
    result, comparison, added = resume_check(CheckOptions(Target(Path("t.py"))), ResumeAt(40), runs, controlled, None)
    assert (result.verdict, comparison, [t.spec.name for t in added]) == (Resumed.NOT_JUDGED, None, ["stopped"])
    assert "already differ from step 5" in result.evidence and resume_finding(result).status == "not_separable"
