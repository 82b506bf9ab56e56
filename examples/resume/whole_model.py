"""model.save (ModelCheckpoint to .keras) each epoch, and keras.models.load_model of the latest with initial_epoch."""

import glob

import keras
from common import BATCH, EPOCHS, data, model

x, y = data()
saved = sorted(glob.glob("ckpt-*.keras"))
net = keras.models.load_model(saved[-1]) if saved else model()
initial_epoch = int(saved[-1][5:7]) if saved else 0
save = keras.callbacks.ModelCheckpoint("ckpt-{epoch:02d}.keras")
net.fit(x, y, batch_size=BATCH, epochs=EPOCHS, initial_epoch=initial_epoch, verbose=0, callbacks=[save])
