"""BackupAndRestore at epoch ends, and a Dropout layer: its generator's state is not in the backup."""

import keras
from common import BATCH, EPOCHS, data, model

x, y = data()
backup = keras.callbacks.BackupAndRestore("backup")
model(dropout=0.3).fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=[backup])
