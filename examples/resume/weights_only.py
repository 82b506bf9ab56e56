"""ModelCheckpoint(save_weights_only=True) each epoch, and load_weights of the latest on a restart."""

import glob

import keras
from common import BATCH, EPOCHS, data, model

x, y = data()
net, initial_epoch = model(), 0
saved = sorted(glob.glob("ckpt-*.weights.h5"))
if saved:  # resume: a new model, the saved weights
    net.load_weights(saved[-1])
    initial_epoch = int(saved[-1][5:7])
save = keras.callbacks.ModelCheckpoint("ckpt-{epoch:02d}.weights.h5", save_weights_only=True)
net.fit(x, y, batch_size=BATCH, epochs=EPOCHS, initial_epoch=initial_epoch, verbose=0, callbacks=[save])
