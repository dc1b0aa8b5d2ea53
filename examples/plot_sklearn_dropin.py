"""
scikit-learn's MLP with only the import changed
===============================================

``fastnn.MLPClassifier`` is scikit-learn's ``MLPClassifier`` -- the same parameters,
defaults, fitted attributes and results -- trained on fastnn's kernels. This is a
scikit-learn script whose only change is its import line, then the same fit timed
with both, in turns.
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from fastnn import MLPClassifier  # was: from sklearn.neural_network import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0)
clf = MLPClassifier(hidden_layer_sizes=(100, 50), early_stopping=True, random_state=1)
clf.fit(X_train, y_train)
print(clf.score(X_test, y_test), clf.n_iter_, clf.best_validation_score_, clf.loss_curve_[-1])

# %%
# Against scikit-learn
# --------------------
# The same fit with each implementation, alternating, three times; each ``fit`` is timed
# alone. On data this small (1,347 images of 8x8 pixels) ``backend="auto"`` trains on
# NumPy, and both take about the same time per epoch: fastnn's speed shows on MNIST-sized
# fits (see the user guide's *scikit-learn's MLP, faster*). Timings on a shared machine
# vary; the ratio within a round means more than the seconds.

import os
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn import neural_network

QUICK = os.environ.get("FASTNN_DOCS_QUICK", "") not in ("", "0")  # fewer rounds when the docs build in CI
implementations = {"fastnn": MLPClassifier, "scikit-learn": neural_network.MLPClassifier}
seconds = {name: [] for name in implementations}
scores = {}
for _ in range(1 if QUICK else 3):
    for name, cls in implementations.items():
        model = cls(hidden_layer_sizes=(100, 50), early_stopping=True, random_state=1)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds[name].append(time.perf_counter() - start)
        scores[name] = (model.score(X_test, y_test), model.n_iter_)

fig, ax = plt.subplots(figsize=(6, 2.4), layout="constrained")
names = list(implementations)
medians = [float(np.median(seconds[n])) for n in names]
ax.barh(names[::-1], medians[::-1], color=["tab:grey", "tab:orange"])
for i, name in enumerate(names[::-1]):
    accuracy, epochs = scores[name]
    ax.text(
        medians[::-1][i],
        i,
        f" {medians[::-1][i]:.2f} s, {epochs} epochs, accuracy {accuracy:.3f}",
        va="center",
        fontsize=8,
    )
ax.set_xlim(0, max(medians) * 2)
ax.set_xlabel("fit time (median), seconds")
ax.set_title("MLPClassifier((100, 50), early_stopping=True) on digits")
plt.show()
print({name: [round(s, 3) for s in seconds[name]] for name in names})
