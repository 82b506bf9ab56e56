"""GPU-only rules (RK201–RK206): code that runs on CPU, so CI passes, but that on a GPU is nondeterministic.

Under op determinism (``tf.config.experimental.enable_op_determinism()``, TF
2.8+; env ``TF_DETERMINISTIC_OPS=1`` before) these ops make TensorFlow raise
``tf.errors.UnimplementedError``: "A deterministic GPU implementation of <Op>
... is not currently available." Each rule's rationale names the GPU kernel and
the TensorFlow version and change since which it raises. Sources: NVIDIA
framework-reproducibility doc/d9m/tensorflow_status.md, TensorFlow's
enable_op_determinism docs and kernel sources; not measured or re-checked on a
GPU with the newest TensorFlow (the CPU wheel has no GPU kernels to inspect).

Deterministic on GPU under op determinism (not flagged): bilinear resize
backprop (2.4+), softmax and sparse softmax cross-entropy (2.6/2.7), segment and
unsorted-segment reductions (2.7), bias_add, conv and max-pool backprop, CTC
(2.6), depthwise-conv backprop to the filter (2.10), XLA reductions and scatter
(2.8); scatter ops are made deterministic by running on the CPU (2.7).

Which Keras code reaches those kernels was checked with Keras 3.15.1 on TF 2.21
by listing the ops of the forward and backward graphs on CPU: Keras 3's
UpSampling2D, RandomContrast and BatchNormalization do not, so those three are
hazards only in Keras 2 (tf_keras, or tf.keras with TF_USE_LEGACY_KERAS=1).
Where no GPU kernel or no gradient is involved nothing is flagged: see
:mod:`reprokit.lint.tfmodule`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from reprokit.core.vocabulary import Source
from reprokit.lint.astutil import argument, calls, dotted_name, is_false
from reprokit.lint.registry import Detection, Detector, Family, Rule
from reprokit.lint.tfmodule import TfModule

ON_GPU = (
    "on a GPU it is nondeterministic, and under op determinism TensorFlow raises UnimplementedError "
    "(no deterministic GPU kernel)"
)
ON_CPU = 'or run it on the CPU: with tf.device("/CPU:0"): ...'


def _nearest(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value.lower() == "nearest"
    return isinstance(value, ast.Attribute) and value.attr == "NEAREST_NEIGHBOR"


def nearest_resize_gradients(tree: ast.Module) -> Iterator[Detection]:
    """RK201: nearest-neighbour resizing whose gradient a GPU computes (ResizeNearestNeighborGrad)."""
    module = TfModule(tree)
    for call in calls(tree):
        if module.tf_op(call, "image.resize", "image.resize_images"):
            hazard = _nearest(argument(call, "method", 2)) and not module.no_gradient(call)
        elif module.tf_op(call, "image.resize_nearest_neighbor"):
            hazard = not module.no_gradient(call)
        elif module.origin(call.func) in ("keras.ops.image.resize", "keras.src.ops.image.resize"):
            hazard = _nearest(argument(call, "interpolation", 2)) and not module.no_gradient(call)
        elif module.keras_name(call.func, "Resizing"):
            hazard = _nearest(argument(call, "interpolation", 2)) and module.layer_in_model(call, True)
        elif module.keras_name(call.func, "UpSampling2D") and module.keras2(call.func):
            interpolation = argument(call, "interpolation", 2)
            hazard = (interpolation is None or _nearest(interpolation)) and module.layer_in_model(call, True)
        else:
            continue
        if hazard:
            yield (
                call,
                f"{dotted_name(call.func)}() resizes by nearest neighbour: its gradient runs on CPU, but {ON_GPU}.",
                'bilinear interpolation (method="bilinear" / interpolation="bilinear", deterministic gradient), '
                "Keras 3 UpSampling2D (repeats pixels, no resize op) or Conv2DTranspose; resize in the tf.data "
                f"pipeline or at the model input, where no gradient flows; {ON_CPU}",
            )


def crop_and_resize_gradients(tree: ast.Module) -> Iterator[Detection]:
    """RK202: tf.image.crop_and_resize in a model (its gradient to image and boxes)."""
    module = TfModule(tree)
    for call in calls(tree):
        if module.tf_op(call, "image.crop_and_resize") and not module.on_cpu(call):
            yield (
                call,
                f"tf.image.crop_and_resize(): its gradient (to image and boxes) runs on CPU, but {ON_GPU}.",
                "crop in the tf.data pipeline, where no gradient flows; tf.stop_gradient() on the inputs that "
                f"need none; {ON_CPU} (with the gradient; its CPU gradient is deterministic under op determinism)",
            )


def adjust_contrast_ops(tree: ast.Module) -> Iterator[Detection]:
    """RK203: tf.image.adjust_contrast (and the ops and Keras 2 layer built on it) on the GPU."""
    module = TfModule(tree)
    for call in calls(tree):
        if module.tf_op(call, "image.adjust_contrast", "image.random_contrast", "image.stateless_random_contrast"):
            hazard = not module.on_cpu(call)
        elif module.keras_name(call.func, "RandomContrast") and module.keras2(call.func):
            hazard = module.layer_in_model(call, False)
        else:
            continue
        if hazard:
            yield (
                call,
                f"{dotted_name(call.func)}() (adjust_contrast) runs on CPU, but {ON_GPU}.",
                "Keras 3 keras.layers.RandomContrast (computes the mean itself), or write it out: "
                "(x - mean) * factor + mean with tf.reduce_mean(x, axis=(-3, -2), keepdims=True); "
                f"augment in the tf.data pipeline (runs on the CPU); {ON_CPU}",
            )


def fused_batch_norm_inference(tree: ast.Module) -> Iterator[Detection]:
    """RK204: fused batch norm in inference mode with a gradient: a trainable Keras 2 BatchNormalization
    called with ``training=False`` (fine-tuning), or ``tf.compat.v1.nn.fused_batch_norm(is_training=False)``.

    Fires for a layer built in the module with tf_keras (or tf.keras under
    TF_USE_LEGACY_KERAS) and called there with a literal ``training=False``,
    built without ``fused=False`` or ``trainable=False`` and never frozen
    (``layer.trainable = False``) in the module; Keras 3's BatchNormalization
    is not fused.
    """
    module = TfModule(tree)
    message = f"its fused batch-norm gradient in inference mode runs on CPU, but {ON_GPU}."
    fix = (
        "leave training= to fit() (or training=True); build it with fused=False; freeze it and everything "
        "before it (layer.trainable = False) so that no gradient flows through it; use Keras 3's "
        f"BatchNormalization (not fused); {ON_CPU}"
    )
    for call in calls(tree):
        if module.tf_op(call, "nn.fused_batch_norm") and is_false(argument(call, "is_training", 7) or ast.Constant(1)):
            if not module.on_cpu(call):
                yield call, f"fused_batch_norm(is_training=False): {message}", fix
            continue
        if not (module.keras_name(call.func, "BatchNormalization") and module.keras2(call.func)):
            continue
        keywords = {k.arg: k.value for k in call.keywords}
        if is_false(keywords.get("fused", ast.Constant(None))) or is_false(keywords.get("trainable", ast.Constant(1))):
            continue
        parent = module.parents.get(call)
        if isinstance(parent, ast.Call) and parent.func is call:
            uses = [parent]
        elif isinstance(parent, ast.Assign) and len(parent.targets) == 1 and dotted_name(parent.targets[0]):
            variable = dotted_name(parent.targets[0])
            if any(_frozen(node, variable) for node in ast.walk(tree)):
                continue
            uses = [c for c in calls(tree) if dotted_name(c.func) == variable]
        else:
            continue
        for use in uses:
            if is_false(argument(use, "training", 1) or ast.Constant(None)) and not module.on_cpu(use):
                yield use, f"a trainable BatchNormalization called with training=False: {message}", fix


def _frozen(node: ast.AST, variable: str) -> bool:
    """``variable.trainable = False``."""
    return (
        isinstance(node, ast.Assign)
        and is_false(node.value)
        and any(
            isinstance(t, ast.Attribute) and t.attr == "trainable" and dotted_name(t.value) == variable
            for t in node.targets
        )
    )


def bincount_ops(tree: ast.Module) -> Iterator[Detection]:
    """RK205: tf.math.bincount (and keras.ops.bincount on the TensorFlow backend) outside tf.data."""
    module = TfModule(tree)
    for call in calls(tree):
        origin = module.origin(call.func)
        keras_op = origin in ("keras.ops.bincount", "keras.ops.numpy.bincount")
        if not (keras_op or (module.tf_op(call, "bincount") and ".sparse." not in origin)) or module.on_cpu(call):
            continue
        weights = argument(call, "weights", 1)
        weighted = weights is not None and not (isinstance(weights, ast.Constant) and weights.value is None)
        if weighted:
            yield (
                call,
                f"{dotted_name(call.func)}(weights=...) varies between runs even on CPU (with or without op "
                f"determinism), and {ON_GPU}.",
                "tf.math.unsorted_segment_sum(weights, ids, num_segments): deterministic on CPU, and on a GPU "
                "under op determinism (TF 2.7+)",
            )
        else:
            yield (
                call,
                f"{dotted_name(call.func)}() runs on CPU, but {ON_GPU}.",
                "count with tf.math.unsorted_segment_sum(tf.ones_like(ids), ids, num_segments) or "
                "tf.reduce_sum(tf.one_hot(ids, n), axis=0); count in the tf.data pipeline or with NumPy "
                f"(np.bincount); {ON_CPU}",
            )


def sparse_dense_matmuls(tree: ast.Module) -> Iterator[Detection]:
    """RK206: tf.sparse.sparse_dense_matmul (tf.compat.v1 sparse_tensor_dense_matmul, sparse.matmul)."""
    module = TfModule(tree)
    for call in calls(tree):
        matmul = module.tf_op(call, "sparse.sparse_dense_matmul", "sparse_tensor_dense_matmul", "v1.sparse.matmul")
        if matmul and not module.on_cpu(call):
            yield (
                call,
                f"{dotted_name(call.func)}() runs on CPU, but {ON_GPU}.",
                "tf.sparse.to_dense(a) @ b (dense matmul is deterministic); "
                f"tf.nn.embedding_lookup_sparse for embedding lookups; {ON_CPU}",
            )


def _rationale(kernel: str, since: str, keras: str) -> str:
    return (
        f"It runs on CPU, so CI on CPU passes, but on a GPU {kernel} has no deterministic kernel: its results vary "
        f"between runs, and under op determinism TensorFlow raises UnimplementedError ({since}). {keras} From "
        "NVIDIA's framework-reproducibility status page and TensorFlow's kernel sources; not measured on a GPU here."
    )


def _gpu_rule(code: str, name: str, message: str, fix: str, rationale: str, detect: Detector) -> Rule:
    return Rule(code, name, Family.GPU, message, fix, rationale, Source.NONDETERMINISTIC_OPS, True, detect)


RULES = (
    _gpu_rule(
        "RK201",
        "gpu-nearest-resize-gradient",
        'nearest-neighbour resizing whose gradient a GPU computes: `tf.image.resize(method="nearest")` (or '
        "`ResizeMethod.NEAREST_NEIGHBOR`), `tf.compat.v1.image.resize_nearest_neighbor`, "
        '`keras.ops.image.resize(interpolation="nearest")`, `Resizing(interpolation="nearest")`, and Keras 2\'s '
        "`UpSampling2D()` (nearest by default; Keras 3's repeats pixels and is fine)",
        "bilinear interpolation, Keras 3 `UpSampling2D` or `Conv2DTranspose`; resize where no gradient flows (the "
        "tf.data pipeline, the model input); or run it on the CPU",
        _rationale(
            "the gradient of nearest-neighbour resizing (ResizeNearestNeighborGrad)",
            "since TF 2.7, tensorflow#51023",
            "Keras 3's `Resizing` and `keras.ops.image.resize` with nearest interpolation reach it; Keras 3's "
            "`UpSampling2D` repeats pixels instead, while Keras 2's calls `tf.image.resize(NEAREST_NEIGHBOR)`. "
            "Bilinear resizing has a deterministic GPU gradient (TF 2.4+).",
        ),
        nearest_resize_gradients,
    ),
    _gpu_rule(
        "RK202",
        "gpu-crop-and-resize-gradient",
        "`tf.image.crop_and_resize` (its gradient to image and boxes)",
        "crop in the tf.data pipeline, where no gradient flows; `tf.stop_gradient()` on the inputs that need none; "
        "or run it on the CPU",
        _rationale(
            "the gradient of `crop_and_resize` to the image and the boxes (CropAndResizeGradImage/Boxes)",
            "since TF 2.6, tensorflow#48905",
            "Its CPU gradient to the image is deterministic under op determinism.",
        ),
        crop_and_resize_gradients,
    ),
    _gpu_rule(
        "RK203",
        "gpu-adjust-contrast",
        "`tf.image.adjust_contrast`, `random_contrast`, `stateless_random_contrast`, and Keras 2's "
        "`RandomContrast` (Keras 3's does not use it)",
        "Keras 3's `RandomContrast`, or `(x - mean) * factor + mean` written out; augment in the tf.data pipeline; "
        "or run it on the CPU",
        _rationale(
            "`adjust_contrast` (AdjustContrastv2, forward)",
            "since TF 2.7, tensorflow#51140",
            "Keras 2's `RandomContrast` calls it; Keras 3's computes the mean itself.",
        ),
        adjust_contrast_ops,
    ),
    _gpu_rule(
        "RK204",
        "gpu-fused-batch-norm-inference",
        "fused batch norm in inference mode with a gradient: a trainable Keras 2 `BatchNormalization` (not "
        "`fused=False`, never frozen with `.trainable = False`) called with `training=False`; "
        "`tf.compat.v1.nn.fused_batch_norm(is_training=False)`",
        "leave `training=` to `fit()`; build it with `fused=False`; freeze it and everything before it; use Keras "
        "3's `BatchNormalization`; or run it on the CPU",
        _rationale(
            "the fused batch-norm gradient in inference mode (FusedBatchNormGradV3 with is_training=False, to the "
            "input too)",
            "since TF 2.7, tensorflow#50505",
            "Keras 2's `BatchNormalization` is fused on 4-D and 5-D inputs, so fine-tuning it with `training=False` "
            "reaches it; Keras 3's uses the unfused `tf.nn.batch_normalization`.",
        ),
        fused_batch_norm_inference,
    ),
    _gpu_rule(
        "RK205",
        "gpu-bincount",
        "`tf.math.bincount` (with or without `weights`; with them it also varies between runs on CPU), "
        "`keras.ops.bincount`",
        "`tf.math.unsorted_segment_sum` (deterministic on CPU, and on a GPU under op determinism); count in the "
        "tf.data pipeline or with NumPy; or run it on the CPU",
        _rationale(
            "bincount (Bincount, DenseBincount), with or without weights,",
            'since TF 2.7, tensorflow f0e6c2f: "Determinism is not yet supported in GPU implementation of Bincount."',
            "`keras.ops.bincount` reaches DenseBincount. Measured on CPU (TensorFlow 2.21): with weights, "
            "`tf.math.bincount` gave another result a few times in 100, with op determinism on and off alike, "
            "and raised nothing.",
        ),
        bincount_ops,
    ),
    _gpu_rule(
        "RK206",
        "gpu-sparse-dense-matmul",
        "`tf.sparse.sparse_dense_matmul` (`tf.compat.v1.sparse_tensor_dense_matmul`, `tf.compat.v1.sparse.matmul`)",
        "`tf.sparse.to_dense(a) @ b` (a dense matmul is deterministic); `tf.nn.embedding_lookup_sparse` for "
        "embedding lookups; or run it on the CPU",
        _rationale(
            "the sparse-dense matmul (SparseTensorDenseMatMul, forward)",
            "since TF 2.6, tensorflow#50355",
            "A dense matmul is deterministic.",
        ),
        sparse_dense_matmuls,
    ),
)
