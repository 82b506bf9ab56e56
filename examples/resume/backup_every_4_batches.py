"""BackupAndRestore(save_freq=4): a backup every 4 batches, but a restart begins its epoch at the first batch."""

import keras
from common import BATCH, EPOCHS, data, model

x, y = data()
backup = keras.callbacks.BackupAndRestore("backup", save_freq=4)
model().fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=[backup])
