"""1 vs 2 devices for the batch keys other than x: loss="iwae" (noise (B, k, L)) and Dropout
masks ("dropout", (B, units)). Both are row keys: padded and split like x.

Run as a subprocess by test_row_keys.py (under torchrun for torch). In one process, for
each variant: a 20-step trajectory on one device, then the same on two devices. Writes
per-step losses and final weights of the four runs to --out (.npz; the chief only).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from trajectory import FEATURES, data


def model(xvae, backend: str, variant: str):
    from xvae import layers as L

    if variant == "iwae":
        spec = xvae.VAESpec(input_dim=FEATURES, hidden=(8,), latents=2)
    else:  # Dropout in both towers
        spec = xvae.VAESpec(
            encoder=xvae.EncoderSpec(input_shape=(FEATURES,), latents=2,
                                     layers=[L.Dense(8, activation="tanh"), L.Dropout(0.25)]),
            decoder=xvae.DecoderSpec(latents=2, output_shape=(FEATURES,),
                                     layers=[L.Dense(8, activation="tanh"), L.Dropout(0.25), L.Dense(FEATURES)]))
    return xvae.VAE(spec, backend=backend, seed=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tf-logical-cpus", type=int, default=0)
    a = p.parse_args(argv)
    if a.tf_logical_cpus:  # before TensorFlow makes its devices
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(a.tf_logical_cpus)])
    import xvae

    out, chief = {}, True
    for variant, extra in (("iwae", dict(loss="iwae", k=3)), ("dropout", {})):
        for devices in (1, 2):
            vae = model(xvae, a.backend, variant)
            history = vae.fit(data(), epochs=20, batch_size=len(data()), binarize="dynamic", progress=False,
                              devices=devices, **extra)
            chief = chief and xvae.distribute.is_chief(vae)
            out[f"{variant}-{devices}-loss"] = np.array(history.history["loss"])
            out.update({f"{variant}-{devices}-w-{k}": v for k, v in vae.get_weights().items()})
    if chief:
        np.savez(a.out, **out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
