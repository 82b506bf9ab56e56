"""keras.callbacks.BackupAndRestore at epoch ends: a restart replays the epoch it stopped in."""

import keras
from common import BATCH, EPOCHS, data, model

x, y = data()
backup = keras.callbacks.BackupAndRestore("backup")
model().fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=[backup])
