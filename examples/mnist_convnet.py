"""Keras' "simple MNIST convnet", the same in every backend (issue 11, item 5).

Conv2D(32, 3, relu) -> MaxPool(2) -> Conv2D(64, 3, relu) -> MaxPool(2) -> Flatten ->
Dropout(0.5) -> Dense(10) ("valid" convolutions, as Keras' example), Adam(1e-3), batch 128,
pixels in [0, 1], trained on the first 9,000 MNIST test images; prints how many of the
last 1,000 it classifies correctly after each epoch. The dropout masks are drawn by the
core from the model's generator, so every backend drops the same units.

    python examples/mnist_convnet.py --backend torch --epochs 5 --data-dir /path/to/mnist
"""

from __future__ import annotations

import argparse
import json
import time

import xvae
from xvae.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D

SPEC = xvae.ClassifierSpec(input_shape=(28, 28, 1), outputs=10, layers=[
    Conv2D(32, 3, padding="valid", activation="relu"),
    MaxPool2D(2),
    Conv2D(64, 3, padding="valid", activation="relu"),
    MaxPool2D(2),
    Flatten(),
    Dropout(0.5),
    Dense(10),
])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    data = xvae.datasets.load("mnist", split="test", data_dir=args.data_dir)
    (x, y), (x_test, y_test) = (data.x[:9000], data.y[:9000]), (data.x[9000:], data.y[9000:])
    clf = xvae.Classifier(SPEC, backend=args.backend, seed=args.seed)
    correct = {}
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        clf.fit(x, y, epochs=1, batch_size=128, optimizer=xvae.optim.Adam(1e-3), progress=False)
        correct[epoch] = int(round(clf.evaluate(x_test, y_test)["accuracy"] * len(y_test)))
        print(json.dumps({"epoch": epoch, "correct_of_1000": correct[epoch]}), flush=True)
    print(json.dumps({"backend": args.backend, "seconds": round(time.perf_counter() - start, 1),
                      "correct_of_1000": correct}))


if __name__ == "__main__":
    main()
