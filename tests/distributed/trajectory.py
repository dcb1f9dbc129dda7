"""A 20-step VAE trajectory, run as a subprocess by the data-parallel tests (and torchrun).

One step per epoch (21 rows, batch 21: a global batch that does not split evenly over two
devices, so padding and masking are exercised), shuffled, dynamically binarized, Adam.
Writes per-step losses and the final weights (the chief process only) to --out (.npz).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROWS, FEATURES = 21, 12


def data() -> np.ndarray:
    return np.random.default_rng(7).random((ROWS, FEATURES)).astype(np.float32)


def labels(conditions: int) -> tuple[np.ndarray, ...]:
    """A conditional VAE's class ids (fit's y), or nothing for a plain VAE."""
    return (np.random.default_rng(8).integers(0, conditions, ROWS),) if conditions else ()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", required=True)
    p.add_argument("--devices", default="1")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint-dir")
    p.add_argument("--resume", help="a checkpoint to load and resume from")
    p.add_argument("--batch-size", type=int, default=ROWS)
    p.add_argument("--steps-per-call", type=int, default=1)
    p.add_argument("--tf-logical-cpus", type=int, default=0)
    p.add_argument("--conditions", type=int, default=0, help="a conditional VAE of this many classes")
    p.add_argument("--sleep-per-step", type=float, default=0.0, help="slow steps (fault tests)")
    p.add_argument("--reference-out", help="with --resume: also run the fresh one-device trajectory "
                                           "in this process and write it here (saves a launch)")
    a = p.parse_args(argv)
    if a.tf_logical_cpus:  # before TensorFlow makes its devices
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(a.tf_logical_cpus)])
    import xvae

    devices = a.devices if a.devices == "all" else int(a.devices)
    if a.resume:
        model = xvae.load(a.resume, backend=a.backend)
    else:
        model = xvae.VAE(xvae.VAESpec(input_dim=FEATURES, hidden=(8,), latents=2, conditions=a.conditions),
                         backend=a.backend, seed=0)
    callbacks = []
    if a.sleep_per_step:  # slow every training step down, so a test can kill a worker mid-epoch
        import time

        def slow_steps(model: xvae.VAE) -> None:
            program, step = model._program, model._program.train_step
            program.train_step = lambda batch: (time.sleep(a.sleep_per_step), step(batch))[1]

        callbacks.append(xvae.callbacks.LambdaCallback(on_train_begin=slow_steps))
    history = model.fit(data(), *labels(model.spec.conditions), epochs=a.epochs, batch_size=a.batch_size,
                        steps_per_call=a.steps_per_call, binarize="dynamic", progress=False,
                        devices=devices, resume=bool(a.resume), checkpoint_dir=a.checkpoint_dir or None,
                        keep=100, callbacks=callbacks)
    if xvae.distribute.is_chief(model):
        np.savez(a.out, loss=np.array(history.history["loss"]), **model.get_weights())
    if a.reference_out:
        return main([*(argv if argv is not None else sys.argv[1:]), "--out", a.reference_out,
                     "--resume", "", "--reference-out", "", "--checkpoint-dir", "", "--tf-logical-cpus", "0"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
