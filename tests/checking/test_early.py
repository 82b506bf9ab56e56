"""Early exit: which runs stop, and when (pure logic on made-up points)."""

from reprokit.checking.comparison import ORDER_HORIZON
from reprokit.checking.early import STOP_MARGIN, EarlyExit
from reprokit.checking.runs import PAIRS, plan
from reprokit.run.trace import Point


def step(k, weights, inputs="i", rows=None):
    return Point("m", k, {"w": weights}, (f"{inputs}{k}",), None, (rows or f"{k:016x}",))


class Stops(dict):
    def __call__(self, run, at):
        self[run] = at


def feed(monitor, run, points):
    for p in points:
        monitor.add(run, p)


def same(n, start=0):
    return [step(k, f"w{k}") for k in range(start, n)]


def test_identical_runs_never_stop():
    stops = Stops()
    monitor = EarlyExit(PAIRS, stops)
    for run in ("controlled-1", "controlled-2", "ops-1", "ops-2"):
        feed(monitor, run, same(50))
    assert stops == {}


def test_a_computation_divergence_stops_both_runs_at_one_step_past_the_furthest():
    for lead in (0, 5, 30):  # how far ops-1 got before ops-2 showed the divergence
        stops = Stops()
        monitor = EarlyExit(PAIRS, stops)
        feed(monitor, "ops-1", same(4 + lead))
        feed(monitor, "ops-2", [*same(3), step(3, "other3")])
        assert stops == dict.fromkeys(("ops-1", "ops-2"), 3 + lead + STOP_MARGIN), lead


def test_the_seed_pair_trains_to_the_end_for_its_effect_size():
    stops = Stops()
    monitor = EarlyExit(PAIRS, stops)
    feed(monitor, "controlled-1", same(10))
    feed(monitor, "seed-1", [step(k, f"seed{k}") for k in range(10)])
    assert stops == {}


def test_when_the_controlled_runs_differ_the_runs_linked_by_pairs_stop_together():
    stops = Stops()
    monitor = EarlyExit(PAIRS, stops)
    feed(monitor, "controlled-1", same(10))
    feed(monitor, "controlled-2", same(2) + [step(k, f"x{k}") for k in range(2, 10)])
    assert stops == {}  # controlled-1 also belongs to the seed pair, which has not settled
    feed(monitor, "seed-1", [step(k, f"seed{k}") for k in range(10)])
    # one step for all three, past the furthest of them (step 9)
    assert stops == dict.fromkeys(("controlled-1", "controlled-2", "seed-1"), 9 + STOP_MARGIN)


def test_a_reordered_input_stops_once_every_example_was_seen_in_the_other_run():
    stops = Stops()
    monitor = EarlyExit(PAIRS, stops)
    swapped = {1: 2, 2: 1}
    a = [step(k, f"w{k}") for k in range(0, 40)]
    b = [step(0, "w0")] + [step(k, f"v{k}", inputs="j", rows=f"{swapped.get(k, k):016x}") for k in range(1, 40)]
    feed(monitor, "ops-1", a[:2])
    feed(monitor, "ops-2", b[:2])
    assert stops == {}  # step 1's examples are not all in ops-2 yet
    feed(monitor, "ops-1", a[2:3])
    feed(monitor, "ops-2", b[2:3])
    assert stops == dict.fromkeys(("ops-1", "ops-2"), 2 + STOP_MARGIN)


def test_changed_input_values_stop_after_the_order_horizon():
    stops = Stops()
    monitor = EarlyExit(PAIRS, stops)
    a = same(80)
    b = [step(0, "w0")] + [step(k, f"v{k}", inputs="j", rows=f"{k + 1000:016x}") for k in range(1, 80)]
    for k in range(80):
        monitor.add("ops-1", a[k])
        monitor.add("ops-2", b[k])
        if k < 1 + ORDER_HORIZON:
            assert stops == {}, k
    assert stops == dict.fromkeys(("ops-1", "ops-2"), 1 + ORDER_HORIZON + STOP_MARGIN)


def test_a_pair_whose_run_already_ended_trains_to_the_end_together():
    stops = Stops()
    monitor = EarlyExit(PAIRS, stops)
    feed(monitor, "ops-1", same(100))
    monitor.finish("ops-1")
    feed(monitor, "ops-2", [*same(3), step(3, "x")])
    assert stops == {}  # stopping ops-2 alone would compare the two runs at different steps


def test_only_the_seed_pairs_runs_save_what_aligning_their_models_needs():
    assert [s.name for s in plan(1234, quick=False) if s.alignment] == ["controlled-1", "seed-1"]
    assert not any(s.alignment for s in plan(1234, quick=True))  # --quick has no seed pair


def test_the_second_controlled_run_of_a_script_reading_the_clock_starts_late_enough_for_a_clock_seed_to_differ():
    gaps = {s.name: s.start_after for s in plan(1234, quick=False, clock=True)}
    assert gaps["controlled-2"] >= 1.5 and gaps["controlled-1"] == gaps["seed-1"] == gaps["ops-1"] == 0.0
    assert {s.start_after for s in plan(1234, quick=True)} == {0.0}  # no clock read: the pair starts together


def test_a_script_reads_the_clock_if_it_or_a_module_of_its_folder_it_imports_imports_time_or_datetime(tmp_path):
    from reprokit.run.script import reads_clock

    script = tmp_path / "train.py"
    script.write_text("import keras\nimport timeit  # not the clock module\nimport helpers\n")
    (tmp_path / "other.py").write_text("import time\n")  # beside it, never imported
    assert not reads_clock(script)
    (tmp_path / "helpers.py").write_text("from datetime import datetime\n")
    assert reads_clock(script)
    (tmp_path / "helpers.py").write_text("x = 1\n")
    script.write_text("import os, keras\n    import time\n")
    assert reads_clock(script)
    script.write_text("import os as o, time\n")
    assert reads_clock(script)
