"""
What the first layer learned
============================

Each unit of a network's first hidden layer multiplies the 784 pixels by its own 784
weights: drawn as a 28x28 image, the weights show the strokes the unit responds to.
This trains fastnn's default network (784-256-10, SGD at 0.5) on MNIST and draws the
first 64 units, as ``fastnn train`` does in every report's ``first_layer.png`` (and as
scikit-learn's ``plot_mnist_filters`` example draws its own MLP's weights).
"""

import os

import matplotlib.pyplot as plt

import fastnn
from fastnn.plots import first_layer_images

QUICK = os.environ.get("FASTNN_DOCS_QUICK", "") not in ("", "0")  # reduced data when the docs build in CI

data = fastnn.load_dataset("mnist")
n_train, n_dev = (10000, 1000) if QUICK else (len(data.y_train), len(data.y_dev))
X, y = data.X_train[:n_train], data.y_train[:n_train]
config = fastnn.TrainConfig(hidden=256, epochs=3 if QUICK else 15, lr=0.5, backend="numpy" if QUICK else "numba")
net, history = fastnn.train(X, y, config, X_dev=data.X_dev[:n_dev], y_dev=data.y_dev[:n_dev])
print(f"{len(X)} training images, {config.epochs} epochs: dev accuracy {history.epochs[-1]['dev_accuracy']:.4f}")

# %%
# The weights of the first 64 units, on one grey scale symmetric about zero: white
# pixels raise a unit's input, black ones lower it.

images, limit = first_layer_images(net.coefs[0], max_units=64)
fig, axes = plt.subplots(8, 8, figsize=(6.4, 6.4))
for ax, image in zip(axes.flat, images):
    ax.imshow(image, cmap="gray", vmin=-limit, vmax=limit)
    ax.set_axis_off()
fig.suptitle("first layer: 64 of 256 units")
plt.show()
