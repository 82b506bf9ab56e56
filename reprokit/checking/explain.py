"""Root cause of a divergence: which layer, op or dataset transformation (pure logic).

Works on what the runs recorded: the tf.data calls that gave up order, and,
for a computation divergence, the replay of the first divergent step with a
fingerprint of every layer call and gradient. The rule: the first layer call
(in execution order) whose inputs are identical in both runs but whose
outputs are not is where the nondeterminism happens; if every forward output
matches, the first differing gradient; if those match too, the optimizer's
update of the first differing variable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reprokit.checking.comparison import Comparison, Divergence, short_name
from reprokit.core.vocabulary import Pair
from reprokit.run.trace import PipelineCall

# The TF op a Keras layer's forward pass runs on, where one op does the work.
LAYER_OPS = {
    "Dense": "MatMul",
    "EinsumDense": "Einsum",
    "Embedding": "ResourceGather",
    "Conv1D": "Conv2D",
    "Conv2D": "Conv2D",
    "Conv3D": "Conv3D",
    "Conv2DTranspose": "Conv2DBackpropInput",
    "DepthwiseConv2D": "DepthwiseConv2dNative",
    "BatchNormalization": "FusedBatchNormV3",
    "LayerNormalization": "Mean/Variance",
    "MaxPooling2D": "MaxPool",
    "AveragePooling2D": "AvgPool",
    "GlobalAveragePooling2D": "Mean",
    "Softmax": "Softmax",
    "LSTM": "MatMul (LSTM cell)",
    "GRU": "MatMul (GRU cell)",
    "MultiHeadAttention": "Einsum",
}


@dataclass(frozen=True)
class Explanation:
    """Where a divergence comes from.

    Attributes:
        pair: the comparison explained (``controlled`` or ``ops``).
        step: its first divergent step.
        stage: initialization, input pipeline or computation.
        kind: ``forward`` (a layer's outputs), ``backward`` (a gradient),
            ``update`` (the optimizer's update), ``pipeline`` (a tf.data
            transformation), ``initialization``, ``not reproduced`` (the
            replay did not diverge again), or ``nothing to explain`` (runs
            with the same seed are identical).
        layer: the Keras layer, where one is named.
        layer_class: its class.
        op: the TF op, where it can be named.
        variable: the variable whose gradient or update differs first.
        detail: the finding in plain words.
        pipeline: the tf.data calls that give up order.
    """

    pair: str
    step: int
    stage: str | None
    kind: str
    detail: str
    layer: str | None = None
    layer_class: str | None = None
    op: str | None = None
    variable: str | None = None
    pipeline: tuple[PipelineCall, ...] = ()


def explain_without_replay(pair: str, d: Divergence, pipeline: Sequence[PipelineCall]) -> Explanation | None:
    """Explains an initialization or input-pipeline divergence; None if a replay is needed."""
    if d.stage == "initialization":
        return Explanation(
            pair,
            0,
            d.stage,
            "initialization",
            f"the initial weights of {d.model} already differ: the model was built from other random numbers",
        )
    if d.stage != "input pipeline":
        return None
    if pipeline:
        calls = "; ".join(c.described for c in pipeline)
        return Explanation(
            pair,
            d.step,
            d.stage,
            "pipeline",
            f"the input batch of step {d.step} differs, and the pipeline gives up element order: {calls}",
            pipeline=tuple(pipeline),
        )
    how = "the same examples in another order" if d.input_change == "order" else "other examples or values"
    return Explanation(
        pair,
        d.step,
        d.stage,
        "pipeline",
        f"the input batch of step {d.step} differs ({how}), before any layer runs: the data loading or "
        "augmentation draws from a source the seeds do not reach",
    )


def explain_replay(
    pair: str, d: Divergence, replay_a: Mapping[str, Any] | None, replay_b: Mapping[str, Any] | None
) -> Explanation:
    """Applies the first-op-whose-inputs-match-but-outputs-differ rule to two replays of step ``d.step``."""
    if not replay_a or not replay_b:
        return Explanation(
            pair,
            d.step,
            d.stage,
            "not reproduced",
            "the replay recorded no layer calls (XLA-compiled steps cannot be probed)",
        )
    calls_b = {(c["layer"], c["call"]): c for c in replay_b["layers"]}
    for call in replay_a["layers"]:
        other = calls_b.get((call["layer"], call["call"]))
        if other is None or call["outputs"] == other["outputs"]:
            continue
        name, kind = call["layer"], call["class"]
        if call["inputs"] != other["inputs"]:
            return Explanation(
                pair,
                d.step,
                d.stage,
                "forward",
                f"in step {d.step} the inputs of layer {name} ({kind}) already differ although every layer "
                "before it matched: the difference arises between layers (an op outside any Keras layer)",
                layer=name,
                layer_class=kind,
            )
        op = LAYER_OPS.get(kind)
        inside = f", op {op}" if op else ": its own call() (e.g. a tf.py_function or a generator inside it)"
        return Explanation(
            pair,
            d.step,
            d.stage,
            "forward",
            f"in step {d.step}, layer {name} ({kind}{inside}) received identical inputs in both runs but "
            "returned different outputs",
            layer=name,
            layer_class=kind,
            op=op,
        )
    gradients_b = replay_b["gradients"]
    for variable, gradient in replay_a["gradients"].items():
        other = gradients_b.get(variable)
        if other is not None and other["fingerprint"] != gradient["fingerprint"]:
            return Explanation(
                pair,
                d.step,
                d.stage,
                "backward",
                f"in step {d.step} every layer's forward outputs matched, but the gradient of "
                f"{short_name(d.model, variable)} differs: the backward pass of its layer is nondeterministic",
                variable=variable,
                op="UnsortedSegmentSum (sparse gradient)" if gradient["sparse"] else None,
            )
    variable = d.variables[0] if d.variables else None
    sparse = bool(variable and replay_a["gradients"].get(variable, {}).get("sparse"))
    op = "ResourceScatterAdd" if sparse else None
    target = short_name(d.model, variable) if variable else "the weights"
    return Explanation(
        pair,
        d.step,
        d.stage,
        "update",
        f"in step {d.step} the forward outputs and the gradients matched, but the optimizer's update of "
        f"{target} differs" + (": a sparse update (ResourceScatterAdd) races between threads" if sparse else ""),
        variable=variable,
        op=op,
    )


def not_reproduced(pair: str, d: Divergence) -> Explanation:
    return Explanation(
        pair,
        d.step,
        d.stage,
        "not reproduced",
        f"two replays up to step {d.step} and beyond did not diverge again: the nondeterminism is rare or "
        "depends on load; run reprokit explain again",
    )


def nothing_to_explain(comparisons: Sequence[Comparison]) -> Explanation | None:
    """Why there is nothing to explain when the same-seed pairs are identical (None if none was compared)."""
    by_name = {c.name: c for c in comparisons}
    if Pair.CONTROLLED not in by_name:
        return None
    same_seed = "with and without op determinism" if Pair.OPS in by_name else "with op determinism on"
    seed = by_name.get(Pair.SEED)
    if seed is not None and seed.divergence is not None:
        d = seed.divergence
        return Explanation(
            Pair.SEED.value,
            d.step,
            d.stage,
            "nothing to explain",
            f"runs with the same seed are bit-identical {same_seed}; only the seed changes the result "
            f"(runs with another seed differ {'in the initial weights' if d.step == 0 else f'from step {d.step}'}), "
            "and that is expected: fix the seed and every training is the same",
        )
    checked = "" if seed is not None else " (the seed was not varied: --quick)"
    return Explanation(
        Pair.CONTROLLED.value,
        0,
        None,
        "nothing to explain",
        f"runs with the same seed are bit-identical {same_seed}{checked}: no difference to explain",
    )
