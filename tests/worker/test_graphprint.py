"""The on-device digests of weights, batches and rows, and the step log that carries them (in-process TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from reprokit.core.fingerprint import combine  # noqa: E402
from reprokit.worker.graphprint import (  # noqa: E402
    as_uint64,
    digests,
    hex_digest,
    lane_digests,
    reference,
    row_digests,
    table,
    words,
)
from reprokit.worker.steplog import EVERY, StepLog, decode  # noqa: E402

RNG = np.random.default_rng(7)


def digest(array) -> tuple[int, int]:
    """The lane digest (what a GPU computes), eagerly on this CPU: the same ops."""
    return tuple(int(v) for v in lane_digests([tf.constant(array)]).numpy()[0])


def farm(array) -> tuple[int, int]:
    """The digest a CPU computes (FarmHash64)."""
    return tuple(int(v) for v in digests([tf.constant(array)]).numpy()[0])


def test_the_lane_digest_is_the_numpy_reference_eagerly_and_in_a_traced_function():
    arrays = [RNG.normal(size=(64, 30)).astype(np.float32), np.arange(10, dtype=np.int64), np.float16([1, -0.5])]
    eager = lane_digests([tf.constant(a) for a in arrays]).numpy()
    traced = tf.function(lambda *ts: lane_digests(list(ts)), autograph=False)(*[tf.constant(a) for a in arrays])
    assert np.array_equal(eager, traced.numpy())
    offset = 0
    for array, lanes in zip(arrays, eager):  # small tensors are digested together: positions run on
        assert tuple(int(v) for v in lanes) == reference(array, offset)
        offset += int(tf.size(words(tf.constant(array))))


def test_every_single_flipped_bit_anywhere_changes_both_lanes_and_the_cpu_digest():
    base = RNG.normal(size=97).astype(np.float32)
    bits = base.view(np.uint32)
    flipped = np.repeat(bits[None, :], 97 * 32, axis=0)
    for case in range(97 * 32):  # every position, every bit
        flipped[case, case // 32] ^= np.uint32(1 << (case % 32))
    k, m = (tf.constant(t) for t in table(97))  # the lane sums, one row per case
    lanes = tf.reduce_sum((tf.constant(flipped)[:, :, None] ^ k) * m, axis=1).numpy()
    original = digest(base)
    assert np.all(lanes[:, 0] != original[0]) and np.all(lanes[:, 1] != original[1])
    farmed = as_uint64(row_digests(tf.constant(flipped.view(np.float32))).numpy())  # FarmHash64 of each case
    assert len(set(farmed.tolist()) | {int(as_uint64(np.array(farm(base), np.uint32))[0])}) == 97 * 32 + 1


def test_a_one_ulp_update_of_any_single_embedding_row_changes_the_digest():
    embedding = RNG.normal(size=(1000, 16)).astype(np.float32)
    before = digest(embedding), farm(embedding)
    for row in RNG.choice(1000, size=25, replace=False):
        updated = embedding.copy()
        updated[row] = np.nextafter(updated[row], np.float32(np.inf))  # a sparse update too small to see in the loss
        assert digest(updated) != before[0] and farm(updated) != before[1]


def test_two_exchanged_values_change_the_digest_and_equal_bits_give_equal_digests():
    x = RNG.normal(size=50).astype(np.float32)
    swapped = x.copy()
    swapped[[3, 40]] = swapped[[40, 3]]
    assert digest(swapped) != digest(x) and digest(x.copy()) == digest(x)
    assert farm(swapped) != farm(x) and farm(x.copy()) == farm(x)


def test_the_digest_is_bits_not_values_for_every_dtype():
    assert digest(np.float32([0.0])) != digest(np.float32([-0.0]))
    assert digest(np.float32([np.nan])) == digest(np.float32([np.nan]))
    quiet, other = np.array([0x7FC00000, 0x7FC00001], dtype=np.uint32).view(np.float32)
    assert digest(np.float32([quiet])) != digest(np.float32([other]))  # two NaN payloads
    assert farm(np.float32([0.0])) != farm(np.float32([-0.0])) and farm(np.float32([quiet])) != farm(
        np.float32([other])
    )
    for array in (np.float64([1.5, 2]), np.int32([3]), np.bool_([True, False]), np.array(["a", "b"]), np.int8([1])):
        assert len(digest(array)) == 2 and len(farm(array)) == 2


def test_sums_mod_2_to_the_32_do_not_depend_on_the_order_of_the_reduction():
    x = RNG.normal(size=10_000).astype(np.float32)
    whole = reference(x)
    chunks = [reference(x[i : i + 1234], offset=i) for i in range(0, x.size, 1234)]
    assert tuple(int(np.sum(np.array(lane, dtype=np.uint64)) % 2**32) for lane in zip(*chunks)) == whole


def test_a_large_tensor_is_digested_on_its_own_with_the_same_formula():
    big = RNG.normal(size=(1 << 20) + 3).astype(np.float32)
    assert digest(big) == reference(big)


def test_the_step_log_round_trips_records_with_losses_digests_and_row_digests():
    log = StepLog(every=EVERY)
    w1, w2 = tf.constant(RNG.normal(size=(4, 3)).astype(np.float32)), tf.constant(np.float32([1, 2]))
    batch = tf.constant(RNG.normal(size=(5, 4)).astype(np.float32))
    log.append(0, tf.constant(7, tf.int64), [w1, w2], tf.constant(0.25, tf.float32), [[batch]])
    log.append(1, tf.constant(2**40, tf.int64), [w2], None, [])
    first, second = log.read()
    assert (first.state, first.iterations, first.loss) == (0, 7, 0.25)
    assert first.weights == tuple(hex_digest(d) for d in digests([w1, w2]).numpy())
    fingerprint, rows = first.inputs[0]
    assert fingerprint == combine([hex_digest(digests([batch]).numpy()[0])])
    assert rows == "".join(f"{int(d):016x}" for d in as_uint64(row_digests(batch).numpy()))
    assert (second.state, second.iterations, second.loss, second.inputs) == (1, 2**40, None, ())
    assert log.read() == [] and decode(np.zeros(0, np.uint32)) == []


@pytest.mark.parametrize(
    ("max_steps", "due"),
    [(None, [1, 2, 4, 8, 16, 32, 64, 128, 192]), (100, [1, 2, 4, 8, 16, 32, *range(50, 200)])],
)
def test_the_log_is_read_at_powers_of_two_every_64_steps_and_every_step_near_the_budget(max_steps, due):
    log = StepLog(every=64, max_steps=max_steps)
    steps = [s for s in range(1, 200) if bool(log.due(tf.constant(s, tf.int64)))]
    assert steps == due
