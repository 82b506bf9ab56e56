"""Weight matching, functional similarity and their sentences, on weights built by hand (NumPy only, no Keras)."""

import math

import numpy as np
import pytest
from scipy.stats import ortho_group

from helpers import recorded_arrays
from reprokit.weights.matching import Alignment, LayerAlignment, UnitMatch, compare, match, permute, take
from reprokit.weights.similarity import linear_cka, loss_barrier, unit_correlations
from reprokit.weights.structure import Axis, Group, LayerInfo, Structure
from reprokit.weights.words import features, function, order_and_solution, why

OUTPUT = "output layer: its units keep their order"

# An MLP 8 -> 12 (a batch normalization over those 12 units) -> 10 -> 3 (output).
MLP_SHAPES = {
    "mlp/dense/kernel": (8, 12),
    "mlp/dense/bias": (12,),
    "mlp/batch_normalization/gamma": (12,),
    "mlp/batch_normalization/beta": (12,),
    "mlp/batch_normalization/moving_mean": (12,),
    "mlp/batch_normalization/moving_variance": (12,),
    "mlp/dense_1/kernel": (12, 10),
    "mlp/dense_1/bias": (10,),
    "mlp/dense_2/kernel": (10, 3),
    "mlp/dense_2/bias": (3,),
}
NORMALIZATION = tuple(f"mlp/batch_normalization/{v}" for v in ("gamma", "beta", "moving_mean", "moving_variance"))
MLP = Structure(
    layers=(
        LayerInfo("dense", "Dense", ("mlp/dense/kernel", "mlp/dense/bias"), hidden=True),
        LayerInfo("batch_normalization", "BatchNormalization", NORMALIZATION),
        LayerInfo("dense_1", "Dense", ("mlp/dense_1/kernel", "mlp/dense_1/bias"), hidden=True),
        LayerInfo("dense_2", "Dense", ("mlp/dense_2/kernel", "mlp/dense_2/bias"), note=OUTPUT),
    ),
    groups=(
        Group(
            "dense",
            12,
            (
                Axis("mlp/dense/kernel", -1),
                Axis("mlp/dense/bias", 0),
                *(Axis(name, 0) for name in NORMALIZATION),
                Axis("mlp/dense_1/kernel", -2),
            ),
        ),
        Group(
            "dense_1", 10, (Axis("mlp/dense_1/kernel", -1), Axis("mlp/dense_1/bias", 0), Axis("mlp/dense_2/kernel", -2))
        ),
    ),
)

# A convolution of 4 channels on a 3x3 map, flattened into a Dense of 5 units, then an output of 3.
CONV_SHAPES = {
    "cnn/conv/kernel": (3, 3, 2, 4),
    "cnn/conv/bias": (4,),
    "cnn/dense/kernel": (9 * 4, 5),
    "cnn/dense/bias": (5,),
    "cnn/out/kernel": (5, 3),
    "cnn/out/bias": (3,),
}
CONV = Structure(
    layers=(
        LayerInfo("conv", "Conv2D", ("cnn/conv/kernel", "cnn/conv/bias"), hidden=True),
        LayerInfo("dense", "Dense", ("cnn/dense/kernel", "cnn/dense/bias"), hidden=True),
        LayerInfo("out", "Dense", ("cnn/out/kernel", "cnn/out/bias"), note=OUTPUT),
    ),
    groups=(
        Group("conv", 4, (Axis("cnn/conv/kernel", -1), Axis("cnn/conv/bias", 0), Axis("cnn/dense/kernel", -2, tile=9))),
        Group("dense", 5, (Axis("cnn/dense/kernel", -1), Axis("cnn/dense/bias", 0), Axis("cnn/out/kernel", -2))),
    ),
)


def random_weights(shapes, seed):
    rng = np.random.default_rng(seed)
    weights = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    for name in weights:
        if name.endswith("moving_variance"):
            weights[name] = rng.uniform(0.5, 2.0, size=shapes[name])
    return weights


def random_perms(structure, seed):
    rng = np.random.default_rng(seed)
    return {g.layer: rng.permutation(g.size) for g in structure.groups}


def inverse(perm):
    return np.argsort(perm)


def mlp_outputs(w, x):
    """The MLP of MLP_SHAPES on ``x``: relu, batch normalization (inference), tanh, linear output."""
    h = np.maximum(x @ w["mlp/dense/kernel"] + w["mlp/dense/bias"], 0)
    mean, variance = w["mlp/batch_normalization/moving_mean"], w["mlp/batch_normalization/moving_variance"]
    h = (h - mean) / np.sqrt(variance + 1e-3) * w["mlp/batch_normalization/gamma"] + w["mlp/batch_normalization/beta"]
    h = np.tanh(h @ w["mlp/dense_1/kernel"] + w["mlp/dense_1/bias"])
    return h @ w["mlp/dense_2/kernel"] + w["mlp/dense_2/bias"]


def test_permuting_the_hidden_units_of_a_network_leaves_its_outputs_unchanged():
    a = random_weights(MLP_SHAPES, 0)
    b = permute(MLP, a, random_perms(MLP, 1))
    x = np.random.default_rng(2).normal(size=(32, 8))
    assert not np.array_equal(b["mlp/dense/kernel"], a["mlp/dense/kernel"])
    np.testing.assert_allclose(mlp_outputs(b, x), mlp_outputs(a, x), rtol=1e-12, atol=1e-12)
    # the output layer's units keep their order: its bias is untouched
    assert np.array_equal(b["mlp/dense_2/bias"], a["mlp/dense_2/bias"])


def test_a_permutation_applied_to_some_of_a_groups_axes_only_changes_the_outputs():
    a = random_weights(MLP_SHAPES, 0)
    perms = random_perms(MLP, 1)
    b = permute(MLP, a, perms)
    b["mlp/batch_normalization/gamma"] = a["mlp/batch_normalization/gamma"]  # the normalization left behind
    x = np.random.default_rng(2).normal(size=(32, 8))
    assert np.max(np.abs(mlp_outputs(b, x) - mlp_outputs(a, x))) > 1e-3


def test_matching_recovers_the_permutation_of_every_hidden_layer_and_normalization():
    a = random_weights(MLP_SHAPES, 0)
    perms = random_perms(MLP, 1)
    b = permute(MLP, a, perms)
    found, rounds = match(MLP, a, b)
    assert set(found) == {"dense", "dense_1"}
    # B's unit i is A's unit perms[i]: B's unit found[i] is A's unit i
    for layer, perm in perms.items():
        assert np.array_equal(found[layer], inverse(perm))
    assert 1 <= rounds <= 100
    matched = permute(MLP, b, found)
    assert all(np.array_equal(matched[name], a[name]) for name in a)


def test_the_order_of_the_units_explains_all_of_the_difference_between_a_network_and_its_permutation():
    a = random_weights(MLP_SHAPES, 0)
    b = permute(MLP, a, random_perms(MLP, 1))
    c = compare(MLP, a, b)
    assert c.before > 0
    assert c.after == 0.0
    assert c.explained == 1.0
    assert c.aligned_layers == 2
    assert c.cka is None and c.agreement is None
    by_layer = {layer.layer: layer for layer in c.layers}
    assert [layer.layer for layer in c.layers] == ["dense", "batch_normalization", "dense_1", "dense_2"]
    assert by_layer["dense"].units == 12 and by_layer["dense"].aligned
    assert by_layer["batch_normalization"].units is None and not by_layer["batch_normalization"].aligned
    assert by_layer["batch_normalization"].before > 0 and by_layer["batch_normalization"].after == 0.0
    assert by_layer["dense_2"].note == OUTPUT and not by_layer["dense_2"].aligned
    assert all(layer.after == 0.0 for layer in c.layers)
    assert c.unsupported == ()  # the output layer is not "unsupported"


def test_compare_with_given_permutations_skips_the_matching():
    a = random_weights(MLP_SHAPES, 0)
    perms = random_perms(MLP, 1)
    b = permute(MLP, a, perms)
    c = compare(MLP, a, b, perms={k: inverse(p) for k, p in perms.items()})
    assert (c.after, c.rounds) == (0.0, 0)
    identity = compare(MLP, a, b, perms={g.layer: np.arange(g.size) for g in MLP.groups})
    assert identity.after == identity.before > 0


def test_take_with_a_tile_permutes_the_units_inside_every_block_of_a_flattened_map():
    kernel = np.arange(9 * 4 * 5, dtype=np.float64).reshape(9 * 4, 5)
    perm = np.array([2, 0, 3, 1])
    expected = kernel.reshape(9, 4, 5)[:, perm, :].reshape(9 * 4, 5)
    assert np.array_equal(take(kernel, Axis("k", -2, tile=9), perm), expected)
    assert np.array_equal(take(kernel, Axis("k", 0, tile=9), perm), expected)
    # without a tile the units are the whole axis
    assert np.array_equal(take(kernel[:4], Axis("k", 0), perm), kernel[:4][perm])
    # along the last axis, with a tile
    wide = kernel.T  # (5, 36)
    assert np.array_equal(take(wide, Axis("k", -1, tile=9), perm), expected.T)


def test_a_flattened_channels_last_map_times_its_kernel_is_unchanged_when_both_are_permuted_with_a_tile():
    rng = np.random.default_rng(3)
    feature_map = rng.normal(size=(7, 3, 3, 4))  # examples, rows, columns, channels
    kernel = rng.normal(size=(9 * 4, 5))
    perm = rng.permutation(4)
    moved = take(kernel, Axis("k", -2, tile=9), perm)
    before = feature_map.reshape(7, -1) @ kernel
    after = feature_map[..., perm].reshape(7, -1) @ moved
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-12)


def test_matching_recovers_the_permutation_of_a_convolution_flattened_into_a_dense_layer():
    a = random_weights(CONV_SHAPES, 4)
    perms = random_perms(CONV, 5)
    b = permute(CONV, a, perms)
    assert np.array_equal(
        b["cnn/dense/kernel"],
        a["cnn/dense/kernel"].reshape(9, 4, 5)[:, perms["conv"], :][..., perms["dense"]].reshape(36, 5),
    )
    found, _ = match(CONV, a, b)
    for layer, perm in perms.items():
        assert np.array_equal(found[layer], inverse(perm))
    c = compare(CONV, a, b)
    assert c.before > 0 and c.after == 0.0 and c.explained == 1.0


def test_matching_two_independent_networks_never_makes_them_further_apart_and_is_deterministic():
    a = random_weights(MLP_SHAPES, 10)
    b = random_weights(MLP_SHAPES, 11)
    first, rounds = match(MLP, a, b)
    second, rounds_again = match(MLP, a, b)
    assert rounds == rounds_again
    assert all(np.array_equal(first[k], second[k]) for k in first)
    c = compare(MLP, a, b)
    assert c.after <= c.before
    assert 0.0 <= c.explained < 1.0
    assert all(layer.after <= layer.before + 1e-12 for layer in c.layers if layer.aligned)


def test_matching_two_recorded_trainings_with_different_seeds_brings_them_closer():
    structure = Structure(
        (
            LayerInfo("dense", "Dense", ("sequential/dense/kernel", "sequential/dense/bias"), hidden=True),
            LayerInfo("dense_1", "Dense", ("sequential/dense_1/kernel", "sequential/dense_1/bias"), note=OUTPUT),
        ),
        (
            Group(
                "dense",
                30,
                (
                    Axis("sequential/dense/kernel", -1),
                    Axis("sequential/dense/bias", 0),
                    Axis("sequential/dense_1/kernel", -2),
                ),
            ),
        ),
    )

    def weights(name):
        prefix = "weights/sequential/"
        return {k[len(prefix) :]: v for k, v in recorded_arrays(name).items() if k.startswith(prefix)}

    a, b = weights("controlled-1"), weights("seed-1")
    c = compare(structure, a, b)
    assert 0 < c.after < c.before
    assert 0 < c.explained < 1
    assert c.rounds == 1  # one group: one assignment settles it
    same = compare(structure, a, weights("controlled-2"))  # a rerun with the same seed
    assert (same.before, same.after, same.explained) == (0.0, 0.0, None)


def test_activations_permuted_like_the_units_have_cka_one_and_every_matched_unit_a_twin():
    a = random_weights(MLP_SHAPES, 0)
    perms = random_perms(MLP, 1)
    b = permute(MLP, a, perms)
    rng = np.random.default_rng(6)
    acts_a = {"dense": rng.normal(size=(64, 12)), "dense_1": rng.normal(size=(64, 10))}
    acts_b = {layer: values[:, perms[layer]] for layer, values in acts_a.items()}  # B's unit i is A's perms[i]
    c = compare(MLP, a, b, acts_a, acts_b, agreement=1.0)
    by_layer = {layer.layer: layer for layer in c.layers}
    for layer, units in (("dense", 12), ("dense_1", 10)):
        assert by_layer[layer].cka == pytest.approx(1.0, abs=1e-12)
        matched = by_layer[layer].matched
        assert (matched.units, matched.twins) == (units, units)
        assert matched.median == pytest.approx(1.0) and matched.lowest == pytest.approx(1.0)
    assert by_layer["batch_normalization"].cka is None and by_layer["batch_normalization"].matched is None
    assert c.cka == pytest.approx(1.0, abs=1e-12)
    assert c.agreement == 1.0
    assert c.untrained_cka is None


def test_the_untrained_reference_is_the_mean_cka_of_two_untrained_networks_layers():
    a = random_weights(MLP_SHAPES, 0)
    rng = np.random.default_rng(7)
    acts = {"dense": rng.normal(size=(64, 12)), "dense_1": rng.normal(size=(64, 10))}
    fresh_a = {"dense": rng.normal(size=(64, 12)), "dense_1": rng.normal(size=(64, 10))}
    fresh_b = {"dense": fresh_a["dense"] * 2.0, "dense_1": rng.normal(size=(64, 10))}
    c = compare(MLP, a, a, acts, acts, untrained=(fresh_a, fresh_b))
    by_layer = {layer.layer: layer for layer in c.layers}
    assert by_layer["dense"].untrained_cka == pytest.approx(1.0)
    assert by_layer["dense_1"].untrained_cka == pytest.approx(linear_cka(fresh_a["dense_1"], fresh_b["dense_1"]))
    assert c.untrained_cka == pytest.approx(np.mean([by_layer[k].untrained_cka for k in ("dense", "dense_1")]))


def test_nothing_is_explained_when_no_layer_could_be_aligned():
    structure = Structure(tuple(info for info in MLP.layers))  # no groups
    a, b = random_weights(MLP_SHAPES, 0), random_weights(MLP_SHAPES, 1)
    c = compare(structure, a, b)
    assert c.aligned_layers == 0
    assert c.before == c.after > 0
    assert c.explained is None
    assert c.to_dict()["explained_by_order"] is None


def test_a_structure_survives_its_json_round_trip():
    for structure in (MLP, CONV, Structure((LayerInfo("add", "Add", (), False, "not aligned: a merge"),))):
        text = structure.to_json()
        assert Structure.from_json(text) == structure
        assert Structure.from_json(text).to_json() == text


def test_a_structure_without_a_layer_drops_its_group_and_notes_why():
    changed = MLP.without("dense", "not aligned: a reason")
    assert [g.layer for g in changed.groups] == ["dense_1"]
    assert changed.group("dense") is None and changed.group("dense_1") == MLP.group("dense_1")
    assert next(info for info in changed.layers if info.name == "dense").note == "not aligned: a reason"
    assert changed.hidden == MLP.hidden == ("dense", "dense_1")


# similarity


def representation(rows=200, features=12, seed=8):
    return np.random.default_rng(seed).normal(size=(rows, features))


def hsic_cka(x, y):
    """Linear CKA the textbook way: HSIC of linear kernels, centered with H = I - 11ᵀ/n."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    kx, ky = x.reshape(n, -1) @ x.reshape(n, -1).T, y.reshape(n, -1) @ y.reshape(n, -1).T

    def hsic(p, q):
        return np.trace(p @ h @ q @ h)

    return hsic(kx, ky) / math.sqrt(hsic(kx, kx) * hsic(ky, ky))


def test_cka_of_a_representation_with_itself_is_one():
    x = representation()
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_of_recorded_predictions_with_themselves_is_one():
    predictions = recorded_arrays("controlled-1")["predictions/sequential/0"]
    assert linear_cka(predictions, predictions) == pytest.approx(1.0, abs=1e-12)


def test_cka_ignores_a_rotation_and_an_isotropic_scale():
    x = representation()
    y = np.tanh(x @ np.random.default_rng(9).normal(size=(12, 7)))
    rotation = ortho_group.rvs(12, random_state=10)
    assert linear_cka(x, x @ rotation * 3.5) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x @ rotation, y) == pytest.approx(linear_cka(x, y), abs=1e-12)
    assert linear_cka(x, 0.01 * y) == pytest.approx(linear_cka(x, y), abs=1e-12)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), abs=1e-12)
    assert linear_cka(x + 5.0, y) == pytest.approx(linear_cka(x, y), abs=1e-12)  # centered per feature


def test_cka_is_not_fooled_by_an_anisotropic_scale():
    x = representation()
    stretched = x * np.array([10.0] + [1.0] * 11)
    assert linear_cka(x, stretched) < 0.9


def test_cka_of_unrelated_representations_is_near_zero():
    assert linear_cka(representation(2000, 10, 1), representation(2000, 10, 2)) < 0.05


def test_cka_agrees_with_its_textbook_definition_on_narrow_and_wide_representations():
    narrow = representation(60, 5, 11), np.tanh(representation(60, 8, 12))
    wide_x = representation(20, 500, 13)
    wide = wide_x, np.maximum(wide_x @ np.random.default_rng(14).normal(size=(500, 300)), 0)
    for x, y in (narrow, wide):
        assert linear_cka(x, y) == pytest.approx(hsic_cka(x, y), abs=1e-10)


def test_cka_of_wide_feature_maps_goes_through_the_gram_matrices_and_agrees_with_the_features():
    x = representation(20, 500, 15)
    y = x[:, :10] @ np.random.default_rng(16).normal(size=(10, 3)) + 0.1 * representation(20, 3, 17)
    assert 500 * 3 > 20 * 20  # more features than examples: linear_cka takes the Gram path
    a, b = x - x.mean(axis=0), y - y.mean(axis=0)
    by_features = np.sum((b.T @ a) ** 2) / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b))
    assert linear_cka(x, y) == pytest.approx(by_features, abs=1e-10)
    assert 0.05 < by_features < 0.95
    # the same columns, few enough for the feature path, against the Gram matrices computed by hand
    narrow = x[:, :15]
    ka, kb = (narrow - narrow.mean(axis=0)) @ (narrow - narrow.mean(axis=0)).T, b @ b.T
    by_gram = np.sum(ka * kb) / (np.linalg.norm(ka) * np.linalg.norm(kb))
    assert linear_cka(narrow, y) == pytest.approx(by_gram, abs=1e-10)
    # feature maps (examples, rows, columns, channels) are flattened per example
    maps = representation(20, 4 * 4 * 8, 19).reshape(20, 4, 4, 8)
    assert linear_cka(maps, maps.reshape(20, -1)) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_undefined_for_a_constant_representation_different_rows_or_non_finite_values():
    x = representation()
    assert linear_cka(x, np.ones((200, 4))) is None
    assert linear_cka(np.zeros((200, 3)), x) is None
    assert linear_cka(x, x[:-1]) is None
    assert linear_cka(x[:1], x[:1]) is None
    broken = x.copy()
    broken[3, 2] = np.nan
    assert linear_cka(x, broken) is None


def test_the_loss_barrier_of_a_straight_line_is_zero():
    assert loss_barrier(np.linspace(1.3, 0.2, 11)) == pytest.approx(0.0, abs=1e-12)
    assert loss_barrier([0.5, 0.5, 0.5]) == 0.0


def test_the_loss_barrier_of_a_bump_is_its_height_above_the_line():
    line = np.linspace(1.0, 0.2, 5)
    bumped = line + np.array([0.0, 0.1, 0.3, 0.05, 0.0])
    assert loss_barrier(bumped) == pytest.approx(0.3, abs=1e-12)


def test_a_path_below_the_line_between_its_ends_has_no_barrier():
    assert loss_barrier([1.0, 0.4, 0.3, 0.5]) == pytest.approx(0.0, abs=1e-12)


def test_unit_correlations_are_one_for_identical_units_minus_one_for_negated_and_nan_for_constant_ones():
    x = representation(100, 4)
    y = x.copy()
    y[:, 1] = -3 * x[:, 1] + 2
    y[:, 3] = 7.0
    corr = unit_correlations(x, y)
    assert corr.shape == (4,)
    assert corr[0] == pytest.approx(1.0) and corr[2] == pytest.approx(1.0)
    assert corr[1] == pytest.approx(-1.0)
    assert math.isnan(corr[3])


def test_unit_correlations_take_every_position_of_a_feature_map_as_a_sample():
    maps = representation(10 * 3 * 3, 4).reshape(10, 3, 3, 4)
    noisy = maps + 0.01 * representation(10 * 3 * 3, 4, seed=20).reshape(10, 3, 3, 4)
    corr = unit_correlations(maps, noisy)
    expected = [np.corrcoef(maps[..., u].ravel(), noisy[..., u].ravel())[0, 1] for u in range(4)]
    np.testing.assert_allclose(corr, expected, rtol=1e-12)


# sentences


def alignment(before=1.2, after=0.6, cka=None, untrained=None, matched=None, aligned=True):
    layers = (
        LayerAlignment(
            "dense", "Dense", 12 if aligned else None, aligned, None, before, after, cka, matched, untrained
        ),
        LayerAlignment("add", "Add", None, False, "not aligned: a merge", None, None),
        LayerAlignment("dense_2", "Dense", None, False, OUTPUT, 0.5, 0.5),
    )
    return Alignment(layers, before, after, 3, cka, None, untrained)


def test_why_gives_the_distance_before_and_after_matching_and_what_the_order_explains():
    text = why(alignment())
    assert "0.60 instead of 1.20" in text
    assert "explains 75% of the squared distance" in text
    assert "dense_2" not in text  # an output layer is not worth a mention
    assert "the weights of mlp differ" in why(alignment(), model="mlp")


def test_the_order_explains_everything_when_the_matched_weights_are_equal():
    text = order_and_solution(alignment(1.2, 0.0))
    assert "0.00 instead of 1.20" in text
    assert "explains 100%" in text and "nothing else differs" in text
    assert "the rest is a different solution" in order_and_solution(alignment())


def test_why_says_no_layer_could_be_aligned_and_names_the_unsupported_ones():
    text = why(alignment(aligned=False))
    assert text.startswith("No hidden layer")
    assert "add (Add)" in text
    assert "explains" not in text
    assert "1.20" in order_and_solution(alignment(aligned=False))


def test_why_reads_the_cka_against_two_untrained_networks_and_counts_the_twins():
    a = alignment(cka=0.95, untrained=0.4, matched=UnitMatch(12, 9, 0.95, 0.5))
    text = why(a)
    assert "linear CKA 0.95" in text and "0.40" in text and "untrained" in text
    assert "the two networks learned nearly the same features, in another order" in text
    assert "9 of 12" in function(a)
    assert function(alignment()) == ""


def test_features_are_no_more_alike_than_untrained_ones_up_to_two_hundredths_above_them():
    assert features(0.5, 0.49, None) == "the two networks are no more alike than two untrained ones"
    assert features(0.95, 0.94, None) == "the two networks are no more alike than two untrained ones"
    assert features(0.95, 0.9, None) == "the two networks learned nearly the same features, in another order"
    assert features(0.95, None, (2, 12)).endswith("spread differently over their units")
    assert features(0.7, None, None) == "the two networks learned similar but not the same features"
    assert features(0.3, 0.1, None) == "the two networks learned different features"
