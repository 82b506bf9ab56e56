"""A run's final arrays, memory-mapped from its ``.npz`` file: the same values as ``np.load``, pages given back."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from reprokit.run.arrays import open_arrays, release


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "arrays.npz"
    arrays = {
        "weights/sequential/dense/kernel": np.arange(12, dtype="float32").reshape(3, 4),
        "weights/sequential/dense/bias": np.zeros(4, dtype="float64"),
        "predictions/sequential/0": np.eye(3, dtype="float32"),
        "empty": np.zeros((0, 5), dtype="float32"),
        "fortran": np.asfortranarray(np.arange(6, dtype="int64").reshape(2, 3)),
        "scalar": np.array(3.5),
    }
    np.savez(path, **arrays)
    return path, arrays


def test_every_array_reads_back_as_np_load_reads_it_and_is_mapped_not_loaded(saved):
    path, arrays = saved
    with open_arrays(path) as mapped, np.load(path) as loaded:
        assert set(mapped) == set(arrays) == set(loaded.files) == set(mapped.files) and len(mapped) == len(arrays)
        for name, array in arrays.items():
            got = mapped[name]
            assert got.dtype == array.dtype and got.shape == array.shape and np.array_equal(got, loaded[name])
        assert isinstance(mapped["weights/sequential/dense/kernel"], np.memmap)
        assert "missing" not in mapped
        with pytest.raises(KeyError):
            mapped["missing"]


def test_a_compressed_file_is_read_whole_with_the_same_values(tmp_path):
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, kernel=np.arange(10.0))
    with open_arrays(path) as mapped:
        assert np.array_equal(mapped["kernel"], np.arange(10.0)) and not isinstance(mapped["kernel"], np.memmap)


def resident_mib() -> float:
    """This process's resident size now (file-backed mapped pages included), from /proc."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


@pytest.mark.parametrize("given_back", [True, False])
def test_reading_a_large_variable_in_chunks_and_releasing_them_keeps_the_resident_size_flat(tmp_path, given_back):
    path = tmp_path / "big.npz"
    big = 64 * 2**20 // 4  # 64 MiB of float32
    np.savez(path, kernel=np.ones(big, dtype="float32"))
    before, highest, total = resident_mib(), 0.0, 0.0
    with open_arrays(path) as mapped:
        flat = mapped["kernel"].reshape(-1)
        for start in range(0, flat.size, 2**20):
            total += float(flat[start : start + 2**20].sum())
            if given_back:
                release(flat)
            highest = max(highest, resident_mib() - before)
    assert total == big
    assert highest < 16 if given_back else highest > 48  # the whole variable is 64 MiB
    release(np.zeros(3))  # an array that is not mapped: nothing to give back
