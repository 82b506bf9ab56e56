"""No checkpointing at all: a restarted training starts over."""

from common import BATCH, EPOCHS, data, model

x, y = data()
model().fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
