"""A Keras model's permutation structure and hidden activations, on tiny models built in this process."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest

from reprokit.weights.matching import compare, match, permute
from reprokit.weights.structure import Group, Structure
from reprokit.worker import anatomy
from reprokit.worker.registry import variable_names


def weights_of(model):
    return {name: np.array(v.numpy()) for name, v in zip(variable_names(list(model.weights)), model.weights)}


def randomize_except_kernels(model, seed):
    """Biases and normalizations to non-trivial values (Keras starts them at zeros and ones)."""
    rng = np.random.default_rng(seed)
    for name, v in zip(variable_names(list(model.weights)), model.weights):
        if name.endswith("moving_variance"):
            v.assign(rng.uniform(0.5, 2.0, size=v.shape).astype("float32"))
        elif name.endswith("gamma"):
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype("float32"))
        elif not name.endswith("kernel"):
            v.assign(rng.normal(0.0, 0.2, size=v.shape).astype("float32"))


def by_kind(structure, kind):
    return [info for info in structure.layers if info.kind == kind]


@pytest.fixture(scope="module")
def cnn():
    """Conv2D(8) -> BatchNormalization -> MaxPooling2D -> Conv2D(6) -> Flatten -> Dense(16) -> LayerNorm -> Dense(4)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(6, 3)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(16, activation="tanh")(h)
    h = keras.layers.LayerNormalization()(h)
    h = keras.layers.Dropout(0.5)(h)
    outputs = keras.layers.Dense(4, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    randomize_except_kernels(model, 1)
    x = np.random.default_rng(2).normal(size=(16, 8, 8, 3)).astype("float32")
    return model, x


@pytest.fixture(scope="module")
def residual():
    """Input -> Dense h -> Dense h2; Add([h, h2]) -> Dense output."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, activation="relu")(inputs)
    h2 = keras.layers.Dense(5, activation="relu")(h)
    outputs = keras.layers.Dense(3)(keras.layers.Add()([h, h2]))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(4).normal(size=(32, 6)).astype("float32")
    return model, x


@pytest.fixture(scope="module")
def mlp():
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(7, activation="tanh"), keras.layers.Dense(4), keras.layers.Dense(2)]
    )
    randomize_except_kernels(model, 6)
    x = np.random.default_rng(7).normal(size=(32, 5)).astype("float32")
    return model, x


def test_a_convolutional_network_has_a_group_per_hidden_layer_through_normalizations_pooling_and_flatten(cnn):
    model, _ = cnn
    structure, hidden = anatomy.describe(model)
    conv, conv_1 = by_kind(structure, "Conv2D")
    dense, output = by_kind(structure, "Dense")
    [batch_norm] = by_kind(structure, "BatchNormalization")
    [layer_norm] = by_kind(structure, "LayerNormalization")
    assert [g.layer for g in structure.groups] == [conv.name, conv_1.name, dense.name]
    assert structure.hidden == (conv.name, conv_1.name, dense.name) == tuple(hidden)
    assert output.note is not None and output.note.startswith("output") and not output.hidden
    assert structure.group(output.name) is None
    assert all(info.note is None for info in (conv, conv_1, dense, batch_norm, layer_norm))
    assert not batch_norm.hidden and not layer_norm.hidden
    # the normalizations' parameters and statistics move with the units before them
    assert set(batch_norm.variables) <= {ax.variable for ax in structure.group(conv.name).axes}
    assert set(layer_norm.variables) <= {ax.variable for ax in structure.group(dense.name).axes}
    # Conv2D(6) on a 4x4 map without padding: 2x2 positions, flattened into the Dense kernel position-major
    flattened = [ax for ax in structure.group(conv_1.name).axes if ax.variable == dense.variables[0]]
    assert [(ax.axis, ax.tile) for ax in flattened] == [(-2, 4)]
    assert {g.layer: g.size for g in structure.groups} == {conv.name: 8, conv_1.name: 6, dense.name: 16}
    assert anatomy.verified(model, structure, cnn[1]) == structure


def test_shuffling_every_hidden_unit_of_a_convolutional_network_keeps_its_function_and_matching_undoes_it(cnn):
    model, x = cnn
    structure, _ = anatomy.describe(model)
    a = weights_of(model)
    rng = np.random.default_rng(8)
    perms = {g.layer: rng.permutation(g.size) for g in structure.groups}
    b = permute(structure, a, perms)
    changed = {name: value for name, value in b.items() if not np.array_equal(value, a[name])}
    output_bias = variable_names(model.weights)[-1]
    assert set(changed) == set(a) - {output_bias}  # the output layer's units keep their order
    assert anatomy.output_difference(model, x, changed) <= anatomy.SAME_FUNCTION
    found, _ = match(structure, a, b)
    for layer, perm in perms.items():
        assert np.array_equal(found[layer], np.argsort(perm))
    c = compare(structure, a, b)
    assert c.before > 0 and c.after == 0.0 and c.explained == 1.0


def test_a_permutation_that_misses_an_axis_changes_the_function(cnn):
    model, x = cnn
    structure, _ = anatomy.describe(model)
    [batch_norm] = by_kind(structure, "BatchNormalization")
    a = weights_of(model)
    perms = {g.layer: np.random.default_rng(9).permutation(g.size) for g in structure.groups}
    b = permute(structure, a, perms)
    b[batch_norm.variables[0]] = a[batch_norm.variables[0]]  # gamma left in the old order
    assert anatomy.output_difference(model, x, b) > 1e-3


def test_a_residual_add_leaves_the_layers_that_feed_it_unaligned_yet_their_activations_are_compared(residual):
    model, x = residual
    structure, hidden = anatomy.describe(model)
    h, h2, output = by_kind(structure, "Dense")
    [add] = by_kind(structure, "Add")
    for info in (h, h2):
        assert info.note.startswith("not aligned") and "Add" in info.note
        assert info.hidden
        assert structure.group(info.name) is None
    assert add.note.startswith("not aligned") and add.variables == ()
    assert output.note.startswith("output")
    assert structure.groups == ()
    assert tuple(hidden) == structure.hidden == (h.name, h2.name)

    acts = anatomy.activations(model, hidden, x)
    assert {k: v.shape for k, v in acts.items()} == {h.name: (32, 5), h2.name: (32, 5)}
    assert all(v.dtype == np.float32 for v in acts.values())

    keras.utils.set_random_seed(10)
    other = keras.models.clone_model(model)  # the same architecture, other weights
    _, other_hidden = anatomy.describe(other)
    c = compare(structure, weights_of(model), weights_of(other), acts, anatomy.activations(other, other_hidden, x))
    by_layer = {layer.layer: layer for layer in c.layers}
    for info in (h, h2):
        assert 0.0 <= by_layer[info.name].cka <= 1.0
        assert by_layer[info.name].matched is None
    assert c.explained is None
    assert c.before == c.after > 0
    assert [layer.layer for layer in c.unsupported] == [h.name, h2.name, add.name]


def test_activations_are_the_hidden_layers_outputs_on_the_data(mlp):
    model, x = mlp
    structure, hidden = anatomy.describe(model)
    acts = anatomy.activations(model, hidden, x)
    first = model.layers[0]
    expected = np.tanh(x @ first.kernel.numpy() + first.bias.numpy())
    np.testing.assert_allclose(acts[first.name], expected, rtol=1e-5, atol=1e-6)
    assert list(acts) == list(structure.hidden) == [model.layers[0].name, model.layers[1].name]
    assert anatomy.activations(model, {}, x) == {}


def test_large_activations_are_averaged_over_positions_keeping_the_channels(cnn):
    model, x = cnn
    structure, hidden = anatomy.describe(model)
    full = anatomy.activations(model, hidden, x)
    conv = structure.groups[0].layer
    assert full[conv].shape == (16, 8, 8, 8)
    small = anatomy.activations(model, hidden, x, budget=1000)
    assert small[conv].shape == (16, 8)
    np.testing.assert_allclose(small[conv], full[conv].reshape(16, -1, 8).mean(axis=1), rtol=1e-5, atol=1e-6)


def test_verified_drops_a_group_that_a_wrong_structure_claims_and_keeps_the_others(mlp):
    model, x = mlp
    structure, _ = anatomy.describe(model)
    assert anatomy.verified(model, structure, x) == structure
    first, second = structure.groups
    next_kernel = model.layers[1].kernel.path
    wrong_first = Group(first.layer, first.size, tuple(ax for ax in first.axes if ax.variable != next_kernel))
    assert len(wrong_first.axes) == len(first.axes) - 1
    wrong = Structure(structure.layers, (wrong_first, second))
    checked = anatomy.verified(model, wrong, x)
    assert [g.layer for g in checked.groups] == [second.layer]
    note = next(info.note for info in checked.layers if info.name == first.layer)
    assert note.startswith("not aligned")
    assert "changed the model's outputs" in note
    assert anatomy.verified(model, Structure(structure.layers), x) == Structure(structure.layers)


def test_a_sequential_models_variables_are_named_by_their_keras_paths(mlp):
    model, _ = mlp
    names = variable_names(model.weights)
    assert names == [v.path for v in model.weights]
    assert names[:2] == [f"{model.name}/{model.layers[0].name}/kernel", f"{model.name}/{model.layers[0].name}/bias"]
    structure, _ = anatomy.describe(model)
    assert {ax.variable for g in structure.groups for ax in g.axes} <= set(names)
    assert [v for info in structure.layers for v in info.variables] == names


def test_weights_set_restores_the_weights_bitwise_after_the_block_even_when_it_fails(mlp):
    model, x = mlp
    before = weights_of(model)
    outputs = np.asarray(model(x))
    kernel = variable_names(model.weights)[0]
    with anatomy.weights_set(model, {kernel: np.zeros_like(before[kernel])}):
        assert not np.any(model.weights[0].numpy())
        assert not np.array_equal(np.asarray(model(x)), outputs)
    after = weights_of(model)
    assert all(np.array_equal(after[k], before[k]) for k in before)
    assert np.array_equal(np.asarray(model(x)), outputs)
    with pytest.raises(RuntimeError), anatomy.weights_set(model, {kernel: before[kernel] + 1}):
        raise RuntimeError("boom")
    assert np.array_equal(model.weights[0].numpy(), before[kernel])


def test_output_difference_is_zero_for_the_same_weights_and_relative_to_the_outputs_scale(mlp):
    model, x = mlp
    a = weights_of(model)
    assert anatomy.output_difference(model, x, a) == 0.0
    output_bias = variable_names(model.weights)[-1]
    shifted = {output_bias: a[output_bias] + 0.5}
    scale = float(np.max(np.abs(np.asarray(model(x)))))
    assert anatomy.output_difference(model, x, shifted) == pytest.approx(0.5 / scale, rel=1e-4)


def test_a_record_holds_the_structure_and_the_trained_and_untrained_activations(mlp):
    model, x = mlp
    arrays = anatomy.record("mlp", model, x)
    structure, _ = anatomy.describe(model)
    assert Structure.from_json(str(arrays["structure/mlp"])) == structure
    for layer in structure.hidden:
        assert arrays[f"activations/mlp/{layer}"].shape == arrays[f"untrained/mlp/{layer}"].shape
        assert not np.array_equal(arrays[f"activations/mlp/{layer}"], arrays[f"untrained/mlp/{layer}"])
    assert sorted(arrays) == sorted(
        ["structure/mlp"]
        + [f"{kind}/mlp/{layer}" for kind in ("activations", "untrained") for layer in structure.hidden]
    )
