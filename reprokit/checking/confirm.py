"""Further runs a conclusion needs before it is drawn.

* Two identical default-ops runs prove little about a known race: when the
  script holds one, :func:`confirm_ops` makes more default-ops runs.
* When the runs write files, :func:`second_training` trains once more among
  what the first run wrote: does a second ``python train.py`` in the same
  folder give the same model?
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from reprokit.checking.comparison import Comparison
from reprokit.checking.runs import CheckOptions, compare_pair, run_batch
from reprokit.core.vocabulary import Pair, Source
from reprokit.lint.engine import GPU_ONLY, LintFinding, hazards_for
from reprokit.run.runner import OnEvent
from reprokit.run.trace import PipelineCall, RunSpec, RunTrace

EXTRA_OPS_RUNS = 2
"""Default-ops runs added when the ops pair agreed but the script holds a known race (4 in all)."""


def likely_causes(
    source: Source, lint: Sequence[LintFinding], pipeline: Sequence[PipelineCall], gpu: bool = False
) -> tuple[str, ...]:
    """The script lines that can cause ``source``, once per line (``file:line: what``).

    The hazards ``reprokit lint`` links to the source, then, for
    nondeterministic ops, the tf.data calls the runs reported (giving up
    order, or drawing random numbers in parallel). GPU-only hazards count
    only where the runs had a GPU.
    """
    found: dict[str, str] = {}
    for f in hazards_for(source, lint):
        if f.code in GPU_ONLY and not gpu:
            continue
        where = f"{Path(f.path).name}:{f.line}"
        found.setdefault(where, f"{where}: {f.message} ({f.code})")
    if source is Source.NONDETERMINISTIC_OPS:
        for call in pipeline:
            found.setdefault(call.where or call.call, call.described)
    return tuple(found.values())


def confirm_ops(
    options: CheckOptions,
    comparisons: list[Comparison],
    traces: dict[str, RunTrace],
    suspects: Sequence[str],
    on_event: OnEvent | None,
) -> tuple[list[Comparison], list[RunTrace]]:
    """Two identical default-ops runs prove little about a known race: run more before concluding.

    Returns the comparisons (the ops pair replaced by the first extra run
    that differs from ops-1) and the extra runs. Adaptive and bounded: only
    when the ops pair agreed and the script holds a suspect, at most
    :data:`EXTRA_OPS_RUNS` more.
    """
    ops = next((c for c in comparisons if c.name == Pair.OPS), None)
    if ops is None or not ops.identical or not suspects or "ops-1" not in traces:
        return comparisons, []
    first = traces["ops-1"]
    specs = [RunSpec(f"ops-{i}", Pair.OPS, first.spec.controls) for i in range(3, 3 + EXTRA_OPS_RUNS)]
    with run_batch(options, specs, on_event) as more:
        extra = [more.traces[s.name] for s in specs if s.name in more.traces]
        differing = next((c for c in (compare_pair(Pair.OPS, first, t) for t in extra) if not c.identical), None)
    if differing is not None:
        comparisons = [differing if c.name == Pair.OPS else c for c in comparisons]
    return comparisons, extra


def written_files(traces: dict[str, RunTrace]) -> tuple[str, ...]:
    """The files any run wrote in its working folder, once each."""
    return tuple(sorted({f for t in traces.values() for f in t.files_written}))


def second_training(
    options: CheckOptions, comparisons: list[Comparison], traces: dict[str, RunTrace], on_event: OnEvent | None
) -> tuple[list[Comparison], list[RunTrace]]:
    """Trains once more, under controlled-1's settings, in a folder holding what controlled-1 wrote.

    It answers "does a second ``python train.py`` in the same folder give the
    same model?" (a script that resumes from its own checkpoint does not).
    It stops where controlled-1 stopped, so that the two compare step by step.
    """
    first = traces.get("controlled-1")
    if first is None or not first.files_written:
        return comparisons, []
    spec = RunSpec("files-1", Pair.FILES, first.spec.controls)
    target = replace(options.target, max_steps=first.steps) if first.stopped_early else options.target
    with run_batch(replace(options, target=target), [spec], on_event, carried={spec.name: first}) as more:
        second = more.traces.get(spec.name)
        if second is None:
            return comparisons, []
        return [*comparisons, compare_pair(Pair.FILES, first, second)], [second]
