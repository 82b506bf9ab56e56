"""A tf.data pipeline that gives up order for speed: nondeterministic ops.

The digits are read from 8 shards through ``interleave(...,
num_parallel_calls=8, deterministic=False)``; the shards cost different
amounts of work per element, so which shard delivers next depends on thread
timing, and every training sees the examples in another order, even with
every seed fixed. TensorFlow op determinism restores the order.

What reprokit reports (``reprokit check examples/nondeterministic_pipeline.py``):
    verdict reproducible; nondeterministic ops: detected (two same-seed runs
    with default ops differ from the first step, where the input batches
    already differ; with op determinism they are identical); seed-driven:
    detected; uncontrolled: not detected. Exit code 0 (1 with
    ``--fail-on nondeterministic-ops``).
"""

import keras
import tensorflow as tf
from sklearn.datasets import load_digits

SHARDS = 8


def load_shard(index: tf.Tensor) -> tf.data.Dataset:
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    shard = tf.data.Dataset.from_tensor_slices((x, digits.target)).shard(SHARDS, index)

    def expensive(features: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # Shard i does 8*i steps of busy work per element: uneven cost.
        steps = tf.cast(index, tf.int32) * 8 + 1
        busy = tf.foldl(lambda acc, _: tf.sin(acc), tf.range(steps), initializer=features[0])
        return features + 0.0 * busy, label

    return shard.map(expensive)


def main() -> None:
    dataset = (
        tf.data.Dataset.range(SHARDS)
        .interleave(load_shard, cycle_length=SHARDS, num_parallel_calls=8, deterministic=False)
        .batch(32)
    )
    model = keras.Sequential(
        [keras.Input(shape=(64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(dataset, epochs=1, verbose=0)


if __name__ == "__main__":
    main()
