"""What a resumed training did not get back, with the evidence and the fix (pure logic).

Part of the resume check (:mod:`reprokit.checking.resume`). The state a
step depends on and the evidence each kind leaves:

* the optimizer's iterations and slots change only in a step, so the
  resumed run's values at the restart are compared with the uninterrupted
  run's after the step it resumed from;
* the learning rate, the input batch, the layers' generators and the global
  ones are compared after the first step whose state differs (a callback or
  a data pipeline may move them between two steps);
* a loss that differs on the same batch from the same weights is a random
  draw inside the step; an update that differs on the same batch with the
  same loss is the optimizer's state;
* the number of steps left, and the callbacks' counters as the first epoch
  after the restart begins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reprokit.checking.comparison import Comparison
from reprokit.core.vocabulary import Word
from reprokit.run.trace import Point, RunTrace

OPTIMIZER = "optimizer:"
LAYER_RANDOM = "random:"
GLOBAL_RANDOM = ("random:python", "random:numpy")


class State(Word):
    """A part of the training state a resumed run can lack."""

    CHECKPOINT = "checkpoint"
    ITERATIONS = "optimizer_iterations"
    OPTIMIZER_SLOTS = "optimizer_slots"
    LEARNING_RATE = "learning_rate"
    INPUT_BATCH = "input_batch"
    LAYER_GENERATORS = "layer_generators"
    GLOBAL_GENERATORS = "global_generators"
    RANDOM_DRAW = "random_draw"
    EPOCH = "epoch"
    CALLBACKS = "callbacks"

    @property
    def label(self) -> str:
        """How reports name it (``optimizer slots``)."""
        return _LABELS[self]

    @property
    def fix(self) -> str:
        """What restores it, as code or in words."""
        return FIXES[self]


_LABELS = {
    State.CHECKPOINT: "any checkpoint",
    State.ITERATIONS: "optimizer iterations",
    State.OPTIMIZER_SLOTS: "optimizer slots",
    State.LEARNING_RATE: "learning rate",
    State.INPUT_BATCH: "input position",
    State.LAYER_GENERATORS: "dropout/augmentation generators",
    State.GLOBAL_GENERATORS: "global generators",
    State.RANDOM_DRAW: "a random draw",
    State.EPOCH: "epoch",
    State.CALLBACKS: "callback state",
}

_OPTIMIZER_FIX = (
    "# save and load the optimizer with the model (iterations, slots, rate):\n"
    'model.save("ckpt.keras")\n'
    'model = keras.models.load_model("ckpt.keras")  # not load_weights\n'
    "# or: tf.train.Checkpoint(model=model, optimizer=optimizer)"
)

FIXES = {
    State.CHECKPOINT: (
        "# fit: back up at each epoch end, resume from the backup after a restart\n"
        'model.fit(..., callbacks=[keras.callbacks.BackupAndRestore("backup")])\n'
        "# a custom loop: checkpoint the model, the optimizer and the iterator\n"
        "ckpt = tf.train.Checkpoint(model=model, optimizer=opt, data=iterator)\n"
        'manager = tf.train.CheckpointManager(ckpt, "ckpt", max_to_keep=2)\n'
        "ckpt.restore(manager.latest_checkpoint)  # then manager.save() often"
    ),
    State.ITERATIONS: _OPTIMIZER_FIX,
    State.OPTIMIZER_SLOTS: _OPTIMIZER_FIX,
    State.LEARNING_RATE: (
        "# a rate set by a callback (ReduceLROnPlateau) or by hand lives in the\n"
        "# optimizer: restore the optimizer, or set the rate for the resumed epoch\n"
        'model = keras.models.load_model("ckpt.keras")'
    ),
    State.INPUT_BATCH: (
        "# resume the data where it stopped, in the same order\n"
        "# tf.data: checkpoint the iterator with the model\n"
        "ckpt = tf.train.Checkpoint(model=model, optimizer=opt, data=iterator)\n"
        "# fit: back up at epoch ends (save_freq='epoch'): a restart replays\n"
        "# the whole epoch; BackupAndRestore(save_freq=N) restarts the epoch\n"
        "# at its first batch from weights taken in its middle\n"
        "# a shuffle of your own: draw each epoch's order from (seed, epoch)\n"
        "order = np.random.default_rng([seed, epoch]).permutation(len(x))"
    ),
    State.LAYER_GENERATORS: (
        "# Dropout, noise and augmentation layers draw from a SeedGenerator whose\n"
        "# state is in model.variables, not model.weights: save_weights and\n"
        "# model.save leave it out, so checkpoint it too\n"
        'seeds = [v for v in model.variables if "seed_generator" in v.path]\n'
        "ckpt = tf.train.Checkpoint(model=model, optimizer=opt, seeds=seeds)"
    ),
    State.GLOBAL_GENERATORS: (
        "# save the global generators with the checkpoint, set them back on resume\n"
        'state = {"python": random.getstate(), "numpy": np.random.get_state()}\n'
        "# or draw each epoch's randomness from (seed, epoch) instead"
    ),
    State.RANDOM_DRAW: (
        "# a draw in the step comes from a generator no checkpoint holds (an op\n"
        "# seed's counter, tf.random.Generator): draw from a SeedGenerator that\n"
        "# you checkpoint, or from stateless ops seeded with (seed, step)\n"
        "noise = keras.random.normal(shape, seed=generator)"
    ),
    State.EPOCH: (
        "# start fit at the saved epoch (BackupAndRestore does it for you)\n"
        "model.fit(..., epochs=EPOCHS, initial_epoch=saved_epoch)"
    ),
    State.CALLBACKS: (
        "# Keras checkpoints no callback state (EarlyStopping's patience,\n"
        "# ReduceLROnPlateau's counters): save what you need with the checkpoint\n"
        "# and set it back before fit\n"
        'early_stopping.wait, early_stopping.best = saved["wait"], saved["best"]'
    ),
}


@dataclass(frozen=True)
class Lost:
    """One part of the training state a resumed run did not get back.

    Attributes:
        state: which part.
        evidence: one or two sentences a user can check.
        fix: code to paste (or words), see :attr:`State.fix`.
    """

    state: State
    evidence: str
    fix: str


def lost_state(
    uninterrupted: RunTrace,
    resumed: RunTrace,
    model: str,
    start: int | None,
    first: int | None,
    written: Sequence[str],
    comparison: Comparison,
) -> tuple[Lost, ...]:
    """The state the resumed run lacked, in the order a step depends on it.

    Args:
        uninterrupted: the run that trained to the end.
        resumed: the run started again in the stopped run's folder.
        model: the model the verdict is about.
        start: the uninterrupted run's step the resumed run started from (None: none).
        first: the first step (uninterrupted numbering) after which their state differs.
        written: the files the stopped run wrote.
        comparison: the runs after the restart compared (for how the inputs differ).
    """
    if start is None:
        return ()
    if start == 0:
        return (Lost(State.CHECKPOINT, _no_checkpoint(written), State.CHECKPOINT.fix),)
    mine = {p.step: p for p in resumed.points if p.model == model}
    theirs = {p.step: p for p in uninterrupted.points if p.model == model}
    found: dict[State, str] = {}
    _at_restart(mine[0], theirs[start], start, found)
    if State.ITERATIONS not in found and 0 in theirs:
        _counted(mine[0], theirs[0], start, found)
    if first is not None and first - start in mine and first in theirs:
        _at_step(mine[first - start], theirs[first], first, theirs, found, comparison)
    if State.INPUT_BATCH in found:
        found[State.INPUT_BATCH] += _backup_mid_epoch(resumed, model)
    epochs = _epochs(uninterrupted, resumed, model, start)
    if epochs:
        found[State.EPOCH] = epochs
    callbacks = _callbacks(uninterrupted, resumed, model)
    if callbacks:
        found[State.CALLBACKS] = callbacks
    return tuple(Lost(state, found[state], state.fix) for state in State if found.get(state))


def _no_checkpoint(written: Sequence[str]) -> str:
    if not written:
        return "The stopped run wrote no file: the training keeps no checkpoint to resume from."
    files = ", ".join(written[:3]) + (f" and {len(written) - 3} more" if len(written) > 3 else "")
    return f"The stopped run wrote {files}, but the run started again began from the initial weights."


def _at_restart(mine: Point, theirs: Point, start: int, found: dict[State, str]) -> None:
    """The optimizer's state as the resumed run began, against the uninterrupted run's after step ``start``."""
    optimizer = [n for n in theirs.weights if n.startswith(OPTIMIZER) and not _is_rate(n)]
    differ = [n for n in optimizer if n in mine.weights and mine.weights[n] != theirs.weights[n]]
    counters = [n for n in differ if is_counter(n)]
    if counters:
        name = counters[0]
        found[State.ITERATIONS] = (
            f"The optimizer's iterations were {_value(mine, name)} as the resumed run began, "
            f"{_value(theirs, name)} in the uninterrupted run after step {start}."
        )
    slots = [n for n in differ if not is_counter(n)]
    absent = [n for n in optimizer if n not in mine.weights and not is_counter(n)]
    if slots:
        found[State.OPTIMIZER_SLOTS] = (
            f"{len(slots)} of the optimizer's {len(optimizer) - len(counters)} slot variables "
            f"(e.g. {_short(slots[0])}) differ as the resumed run began from the uninterrupted run's after "
            f"step {start}."
        )
    elif absent and len(absent) == len([n for n in optimizer if not is_counter(n)]):
        found.setdefault(State.OPTIMIZER_SLOTS, "")  # not built at the restart: judged after the first step


def _counted(mine: Point, first: Point, start: int, found: dict[State, str]) -> None:
    """The resumed run's iterations against the count the uninterrupted run reached (where its steps do not
    carry the optimizer's state: JAX hands over the weights only)."""
    counters = [n for n in mine.scalars if is_counter(n) and n in first.scalars]
    if counters:
        began, expected = mine.scalars[counters[0]], first.scalars[counters[0]] + start
        if began != expected:
            found[State.ITERATIONS] = (
                f"The optimizer's iterations were {int(began)} as the resumed run began; the uninterrupted run "
                f"had made {start} steps (iterations {int(expected)})."
            )


def _at_step(
    mine: Point, theirs: Point, step: int, steps: dict[int, Point], found: dict[State, str], comparison: Comparison
) -> None:
    """What differs after the first step whose state differs."""
    names = sorted(
        n for n in mine.weights.keys() | theirs.weights.keys() if mine.weights.get(n) != theirs.weights.get(n)
    )
    inputs = bool(mine.inputs and theirs.inputs) and mine.inputs != theirs.inputs
    if inputs:
        found[State.INPUT_BATCH] = _batch(mine, theirs, step, steps, comparison)
    counters = [n for n in names if is_counter(n)]
    if counters and State.ITERATIONS not in found:
        found[State.ITERATIONS] = (
            f"After step {step} the optimizer's iterations are {_value(mine, counters[0])} in the resumed run, "
            f"{_value(theirs, counters[0])} in the uninterrupted one."
        )
    rates = [n for n in names if _is_rate(n)]
    if rates:
        found[State.LEARNING_RATE] = (
            f"Step {step} ran with learning rate {_value(mine, rates[0])} in the resumed run, "
            f"{_value(theirs, rates[0])} in the uninterrupted one."
        )
    layers = [n for n in names if n.startswith(LAYER_RANDOM) and n not in GLOBAL_RANDOM]
    if layers:
        found[State.LAYER_GENERATORS] = (
            f"After step {step} the state of {', '.join(_short(n) for n in layers[:3])} differs: the layers' "
            "random draws (dropout masks, augmentation) after the restart are not the uninterrupted run's."
        )
    globals_ = [n for n in names if n in GLOBAL_RANDOM]
    if globals_:
        which = " and ".join({"random:python": "Python's", "random:numpy": "NumPy's"}[n] for n in globals_)
        found[State.GLOBAL_GENERATORS] = (
            f"After step {step} the state of {which} global generator differs: it was not set back on resume."
        )
    drawn = not inputs and mine.loss is not None and theirs.loss is not None and mine.loss != theirs.loss
    if drawn and not layers and not globals_:
        found[State.RANDOM_DRAW] = (
            f"Step {step} computed another loss ({mine.loss:.6g} vs {theirs.loss:.6g}) on the same batch from the "
            "same weights: a random draw inside the step differs after the restart."
        )
    same_gradient = not inputs and not layers and mine.loss is not None and mine.loss == theirs.loss
    slots = [n for n in names if n.startswith(OPTIMIZER) and not is_counter(n) and not _is_rate(n)]
    if same_gradient and slots and found.get(State.OPTIMIZER_SLOTS) == "":  # not built as the resumed run began
        found[State.OPTIMIZER_SLOTS] = (
            f"After step {step}, {len(slots)} of the optimizer's slot variables (e.g. {_short(slots[0])}) differ "
            "although the step computed the same loss on the same batch from the same weights: they were not "
            "restored."
        )


def _batch(mine: Point, theirs: Point, step: int, steps: dict[int, Point], comparison: Comparison) -> str:
    matches = [s for s, p in sorted(steps.items()) if p.inputs == mine.inputs and s != step]
    earlier = [s for s in matches if s < step]
    same = earlier[-1] if earlier else (matches[0] if matches else None)
    d = comparison.divergence
    if same is not None:
        whose = f"the batch the uninterrupted run trained on at step {same}"
    elif d is not None and d.step == step and d.input_change == "order":
        whose = "the same examples in another order"
    else:
        whose = "other examples"
    return (
        f"Step {step} trained on {whose}: the data did not resume where it stopped (the iterator's "
        "position or the shuffle order was not restored)."
    )


def _epochs(uninterrupted: RunTrace, resumed: RunTrace, model: str, start: int) -> str:
    """Whether the resumed ``fit`` started at another epoch than the one the training stopped in ("" if not)."""
    again = next((e for e in resumed.callbacks if e.model == model), None)
    began = [e for e in uninterrupted.callbacks if e.model == model and e.step <= start]
    if again is None or not began or again.epoch == began[-1].epoch:
        return ""
    return (
        f"The resumed run's fit began at epoch {again.epoch}, but step {start + 1} belongs to epoch "
        f"{began[-1].epoch}: fit's initial_epoch was not set to where the training stopped."
    )


def _backup_mid_epoch(resumed: RunTrace, model: str) -> str:
    """Why, where the script backs up every N batches with Keras' ``BackupAndRestore`` ("" otherwise)."""
    state = next((e.state for e in resumed.callbacks if e.model == model), {})
    every = state.get("BackupAndRestore.save_freq")
    if every is None or every == repr("epoch"):
        return ""
    return (
        f" Keras' BackupAndRestore(save_freq={every}) backs up weights in the middle of an epoch, but after a "
        "restart starts that epoch again at its first batch."
    )


def _callbacks(uninterrupted: RunTrace, resumed: RunTrace, model: str) -> str:
    """The callbacks' counters that differ as the resumed run's first epoch began ("" if none)."""
    again = next((e for e in resumed.callbacks if e.model == model), None)
    if again is None:
        return ""
    before = next((e for e in uninterrupted.callbacks if e.model == model and e.epoch == again.epoch), None)
    if before is None:
        return ""
    differ = [k for k in sorted(before.state) if k in again.state and again.state[k] != before.state[k]]
    if not differ:
        return ""
    shown = "; ".join(f"{k} {before.state[k]} vs {again.state[k]}" for k in differ[:3])
    return (
        f"As epoch {again.epoch} began, the callbacks' state differed from the uninterrupted run's "
        f"(uninterrupted vs resumed): {shown}."
    )


def is_counter(name: str) -> bool:
    """Whether ``name`` is an optimizer's step counter (its iterations)."""
    return name.startswith(OPTIMIZER) and name.endswith(("/iteration", "/iterations"))


def _is_rate(name: str) -> bool:
    return name.startswith(OPTIMIZER) and name.endswith("/learning_rate")


def _value(point: Point, name: str) -> str:
    value = point.scalars.get(name)
    if value is None:
        return "other"
    return str(int(value)) if is_counter(name) else f"{value:.6g}"


def _short(name: str) -> str:
    return name.split(":", 1)[-1]
