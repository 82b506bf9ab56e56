"""A custom loop that checkpoints the model, the optimizer and the tf.data iterator every 4 steps.

With ``--iterator no`` the iterator stays out of the checkpoint: a restart reads the shuffled data from its start.
"""

import argparse

import tensorflow as tf
from common import BATCH, EPOCHS, data, model

parser = argparse.ArgumentParser()
parser.add_argument("--iterator", choices=["yes", "no"], default="yes")
checkpoint_iterator = parser.parse_args().iterator == "yes"

x, y = data()
net = model()
optimizer = net.optimizer
batches = iter(tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=1).batch(BATCH).repeat())
state = {"model": net, "optimizer": optimizer} | ({"data": batches} if checkpoint_iterator else {})
checkpoint = tf.train.Checkpoint(**state)
manager = tf.train.CheckpointManager(checkpoint, "ckpt", max_to_keep=2)
checkpoint.restore(manager.latest_checkpoint)  # nothing at the first start


@tf.function
def train_step(xb, yb):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(net(xb, training=True) - yb))
    optimizer.apply(tape.gradient(loss, net.trainable_variables), net.trainable_variables)
    return loss


while int(optimizer.iterations) < EPOCHS * len(x) // BATCH:
    train_step(*next(batches))
    if int(optimizer.iterations) % 4 == 0:
        manager.save()
