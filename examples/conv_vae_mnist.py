"""A convolutional VAE on 28x28 MNIST, the same in every backend (issue 11, item 5).

Encoder Conv(32, 3, s2, relu) -> Conv(64, 3, s2, relu) -> Flatten -> (mean, logvar) of 20
latents; decoder Dense(7*7*32, relu) -> Reshape -> ConvT(64, 3, s2, relu) ->
ConvT(32, 3, s2, relu) -> ConvT(1, 3) logits. Adam(1e-3), batch 128, on the first 9,000
MNIST test images binarized at 0.5; reports the test negative ELBO (nats) of the last
1,000 after each epoch (one z sample per image, noise from Generator(0)).

    python examples/conv_vae_mnist.py --backend jax --epochs 10 --data-dir /path/to/mnist
"""

from __future__ import annotations

import argparse
import json
import time

import xvae
from xvae.layers import Conv2D, Conv2DTranspose, Dense, Flatten, Reshape

SPEC = xvae.VAESpec(
    encoder=xvae.EncoderSpec(input_shape=(28, 28, 1), latents=20, layers=[
        Conv2D(32, 3, stride=2, activation="relu"),
        Conv2D(64, 3, stride=2, activation="relu"),
        Flatten(),
    ]),
    decoder=xvae.DecoderSpec(latents=20, output_shape=(28, 28, 1), layers=[
        Dense(7 * 7 * 32, "relu"),
        Reshape((7, 7, 32)),
        Conv2DTranspose(64, 3, stride=2, activation="relu"),
        Conv2DTranspose(32, 3, stride=2, activation="relu"),
        Conv2DTranspose(1, 3),
    ]),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    data = xvae.datasets.load("mnist", split="test", data_dir=args.data_dir)
    x = xvae.datasets.binarize(data.x, "static")
    train, test = x[:9000], x[9000:]
    vae = xvae.VAE(SPEC, backend=args.backend, seed=args.seed)
    per_epoch = []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        hist = vae.fit(train, epochs=1, batch_size=128, optimizer=xvae.optim.Adam(1e-3), progress=False)
        test_loss = vae.evaluate(test, seed=0)["loss"]
        per_epoch.append({"epoch": epoch, "train_loss": hist.history["loss"][-1], "test_neg_elbo": test_loss})
        print(json.dumps(per_epoch[-1]), flush=True)
    print(json.dumps({"backend": args.backend, "seconds": round(time.perf_counter() - start, 1),
                      "test_neg_elbo": {e["epoch"]: round(e["test_neg_elbo"], 2) for e in per_epoch}}))


if __name__ == "__main__":
    main()
