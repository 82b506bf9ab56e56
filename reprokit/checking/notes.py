"""The notes of a check's report: how its runs ran, where that matters for reading the figures.

The model-file options used (or given to a script that ignores them),
``--max-steps``, early exit, thread settings, the Keras backend, op
determinism the script turns on itself, Ray nodes and lost runs, the files
the runs wrote, and the models tracked.
"""

from __future__ import annotations

from collections.abc import Sequence

from reprokit.checking.runs import PAIRS
from reprokit.run.runner import Target
from reprokit.run.settings import ModelFileOptions
from reprokit.run.trace import RunTrace


def report_notes(traces: Sequence[RunTrace], target: Target, model_file: ModelFileOptions) -> list[str]:
    """What a reader of the check's report should know about how its runs ran, one sentence or two each."""
    notes = []
    modes = {t.mode for t in traces}
    if "model-file" in modes:
        notes.append(
            f"Model file: reprokit trained build_model() on load_data() for {model_file.epochs} epochs "
            f"with batch size {model_file.batch_size} (--epochs, --batch-size)."
        )
    elif model_file.explicit:
        notes.append(
            "--epochs and --batch-size only apply to model files; this script trains by itself "
            "(pass its own options after --)."
        )
    if any(t.stopped_at_max_steps for t in traces):
        notes.append(f"Every run stopped after {target.max_steps} optimizer steps (--max-steps).")
    early = [f"{t.spec.name} after step {t.steps}" for t in traces if t.stopped_early]
    steps = {t.spec.name: t.steps for t in traces}
    apart = [f"{a} and {b}" for _, a, b in PAIRS if a in steps and b in steps and steps[a] != steps[b]]
    if early and not apart:
        notes.append(
            f"Stopped early once their pair's divergence was proven: {', '.join(early)}; every figure "
            "of a pair compares its two runs at that step (--full trains every run to the end)."
        )
    elif early:  # a stop request reached a run after the step it named (a loaded machine, Ray's batches)
        notes.append(
            f"Stopped early once their pair's divergence was proven: {', '.join(early)}; {', '.join(apart)} "
            "ended at different steps, so their final figures (max |Δw|, agreement, final loss) compare "
            "different steps; the divergence itself is exact (--full trains every run to the end)."
        )
    threads = {(t.environment.get("intra_op_threads"), t.environment.get("inter_op_threads")) for t in traces}
    if len(threads) > 1:
        notes.append(
            "The runs did not all use the same thread settings (the script sets them itself?): "
            "thread counts change the bits of some models."
        )
    forced = [t.spec.name for t in traces if not t.spec.controls.op_determinism and t.environment.get("op_determinism")]
    if forced:
        notes.append(
            f"The script turns op determinism on itself, so the default-ops runs ({', '.join(forced)}) ran with it too."
        )
    nodes = sorted({str(t.environment["ray_node"]) for t in traces if t.environment.get("ray_node")})
    if nodes:
        notes.append(
            f"Every run ran as a Ray task on node {', '.join(nodes)}: a check sends all its runs to one node, "
            "so no pair is compared across machines. On Ray every run trains to the end (no early exit: a "
            "request to stop after a step cannot be sure to reach a run before it passes that step)."
        )
    for t in traces:
        if t.retries:
            times = "once" if len(t.retries) == 1 else f"{len(t.retries)} times"
            notes.append(
                f"Ray lost run {t.spec.name} {times} ({t.retries[-1]}); it ran again from the start "
                "(exact: every seed is fixed)."
            )
    written = sorted({f for t in traces for f in t.files_written})
    if written:
        shown = ", ".join(written[:8]) + (f" and {len(written) - 8} more" if len(written) > 8 else "")
        notes.append(
            f"The runs wrote {shown}, each in a private working folder deleted afterwards: runs never saw "
            "each other's files, and your folder is as it was."
        )
    for t in traces:
        if t.processes_left:
            n = t.processes_left
            notes.append(
                f"Run {t.spec.name}: the script left {n} process{'es' if n != 1 else ''} running; "
                f"{'they were' if n != 1 else 'it was'} stopped."
            )
        if t.user_files_changed:
            notes.append(
                f"Run {t.spec.name} changed your own {', '.join(t.user_files_changed)} (too large to copy into its "
                "folder, so linked): the script writes over files it also reads."
            )
    models = sorted({m.name for t in traces for m in t.models})
    if len(models) > 1:
        notes.append(
            f"{len(models)} models were trained and tracked: {', '.join(models)}. A step is one optimizer "
            "update of any of them (a batch that updates two models, as in a GAN, counts twice); the final "
            "loss is that of the last model trained."
        )
    return notes
