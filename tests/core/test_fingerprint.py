import numpy as np

from reprokit.core.fingerprint import combine, fingerprint


def test_identical_arrays_have_identical_fingerprints():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert fingerprint(a) == fingerprint(a.copy())


def test_a_single_flipped_last_bit_changes_the_fingerprint():
    a = np.linspace(0, 1, 100, dtype=np.float32)
    b = a.copy()
    b[57] = np.nextafter(b[57], np.float32(2))
    assert fingerprint(a) != fingerprint(b)


def test_nan_at_the_same_position_compares_equal():
    a = np.array([1.0, np.nan, 3.0], dtype=np.float32)
    assert fingerprint(a) == fingerprint(np.array([1.0, np.nan, 3.0], dtype=np.float32))


def test_negative_zero_is_not_positive_zero_because_bits_differ():
    assert fingerprint(np.array([0.0])) != fingerprint(np.array([-0.0]))


def test_dtype_and_shape_are_part_of_the_fingerprint():
    a = np.zeros(6, dtype=np.float32)
    assert fingerprint(a) != fingerprint(a.reshape(2, 3))
    assert fingerprint(a) != fingerprint(np.zeros(6, dtype=np.int32))


def test_non_contiguous_views_hash_like_their_contents():
    a = np.arange(20, dtype=np.float64).reshape(4, 5)
    assert fingerprint(a[:, ::2]) == fingerprint(np.ascontiguousarray(a[:, ::2]))


def test_combined_fingerprints_depend_on_order():
    assert combine(["a", "b"]) != combine(["b", "a"])
