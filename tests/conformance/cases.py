"""Case tables of the conformance suite and its tolerances, each with its reason."""

from __future__ import annotations

from typing import Any

import numpy as np

import xvae
from xvae.backend import CompileOptions, Program
from xvae.init import initialize
from xvae.losses import loss_for

SPECS: dict[str, Any] = {
    "vae-h0-z2": xvae.VAESpec(input_dim=16, hidden=(), latents=2),
    "vae-h1-z20": xvae.VAESpec(input_dim=32, hidden=(64,), latents=20),
    "vae-h2-z20": xvae.VAESpec(input_dim=32, hidden=(64, 48), latents=20, activation="tanh"),
    "clf-h0-o1": xvae.ClassifierSpec(input_dim=16, hidden=(), outputs=1),
    "clf-h1-o10": xvae.ClassifierSpec(input_dim=32, hidden=(64,), outputs=10),
    "clf-h2-o1": xvae.ClassifierSpec(input_dim=32, hidden=(64, 32), outputs=1, activation="elu"),
}
#: The article's model: 784-500-20 (forward, loss and gradient checks only: it is slow).
ARTICLE = {"vae-784-500-20": xvae.VAESpec(input_dim=784, hidden=(500,), latents=20)}

OPTIMIZERS: dict[str, Any] = {
    "sgd": xvae.optim.SGD(0.05),
    "sgd-m0.9": xvae.optim.SGD(0.05, momentum=0.9),
    "sgd-nesterov": xvae.optim.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": xvae.optim.Adam(1e-3),
    # weight decay and global-norm clipping (0.3: below the norm of the test gradients, so it clips)
    "sgd-m0.9-wd-clip": xvae.optim.SGD(0.05, momentum=0.9, weight_decay=0.01, clip_norm=0.3),
    "adamw": xvae.optim.AdamW(1e-3, weight_decay=0.1),
    # a per-step learning rate: warm-up, then cosine decay (the lr input changes every step)
    "adamw-cosine-clip": xvae.optim.AdamW(xvae.schedules.CosineDecay(peak=1e-2, decay_steps=40, warmup_steps=5),
                                          weight_decay=0.1, clip_norm=0.3),
}

# Tolerances (DESIGN §6). float32 has a unit roundoff of 6e-8; a dot product of length n
# accumulates about sqrt(n) * 6e-8 relative error (784 -> ~2e-6), a few layers a few times that.
FORWARD_RTOL = 1e-5  # relative L2 of outputs (or element-wise within 1e-5 * max|out|)
LOSS_RTOL = 1e-5  # loss vs the float64 reference: sums of <= 784 float32 terms, ~2e-6
GRAD_RTOL = 1e-4  # relative L2 per weight: backprop through <= 3 float32 layers, measured ~1e-6
STEP_RTOL = 1e-6  # weights and optimizer state after optimizer steps from identical gradients
TRAJ_RTOL = 1e-4  # per-step losses over 50 steps; float32 drift grows with steps (DESIGN §6)
#: Fused (train_steps) vs single steps, one backend: the same float32 operations, but XLA may
#: fuse them differently and a fused multiply-add rounds differently from a multiply then an
#: add (instruction set, thread count): a few ulps per step (measured: 1 ulp, 8.6e-8, over 6
#: steps on AVX-512), compounding slowly over 20 steps; 1e-5 leaves ~100 ulps of room.
FUSED_RTOL = 1e-5

BATCH = 24
PAD = 5  # rows of padding (mask 0) in every test batch: masking is always exercised


def weights(spec: Any, seed: int = 0) -> dict[str, np.ndarray]:
    return initialize(spec, np.random.default_rng(seed))


#: The learning rate that test batches carry (the seam's "lr" step input) unless told otherwise.
LR = 1e-3


def batch(spec: Any, rng: np.random.Generator, size: int = BATCH, pad: int = PAD,
          lr: float = LR) -> dict[str, np.ndarray]:
    """A padded batch in the seam's format: the last `pad` rows are zeros with mask 0.

    It carries "lr" (float32 `lr`), which training steps need and evaluation ignores.
    """
    real = size - pad
    mask = np.zeros(size, np.float32)
    mask[:real] = 1.0
    x = np.zeros((size, spec.input_dim), np.float32)
    out: dict[str, np.ndarray] = {"mask": mask, "lr": np.float32(lr)}
    if isinstance(spec, xvae.VAESpec):
        x[:real] = (rng.random((real, spec.input_dim)) < 0.4).astype(np.float32)
        noise = np.zeros((size, spec.latents), np.float32)
        noise[:real] = rng.standard_normal((real, spec.latents), dtype=np.float32)
        out.update(noise=noise, beta=np.float32(1.0))
    else:
        x[:real] = rng.random((real, spec.input_dim), dtype=np.float32)
        if spec.outputs == 1:
            y = np.zeros(size, np.float32)
            y[:real] = rng.integers(0, 2, real)
        else:
            y = np.zeros(size, np.int32)
            y[:real] = rng.integers(0, spec.outputs, real)
        out["y"] = y
    out["x"] = x
    return out


def program(name: str, spec: Any, optimizer: Any = None, w: dict[str, np.ndarray] | None = None,
            **options: Any) -> Program:
    """A compiled program of backend `name` holding `w` (default: weights(spec))."""
    prog = xvae.backends.get(name).compile(spec, loss_for(spec), optimizer, CompileOptions(**options))
    prog.set_state(weights(spec) if w is None else w)
    return prog


def rel_l2(got: np.ndarray, want: np.ndarray) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    denom = np.linalg.norm(want)
    return float(np.linalg.norm(got - want) / denom) if denom > 0 else float(np.linalg.norm(got))


def assert_close_outputs(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """DESIGN §6: relative L2 within FORWARD_RTOL, or element-wise within FORWARD_RTOL * max|want|."""
    err = rel_l2(got, want)
    scale = float(np.max(np.abs(want))) or 1.0
    elem = float(np.max(np.abs(np.asarray(got, np.float64) - want))) / scale
    assert min(err, elem) <= FORWARD_RTOL, f"{what}: relative L2 {err:.2e}, element-wise {elem:.2e}"
