"""Plots (matplotlib, Agg): loss curves, sample and reconstruction grids, latent space.

Every function takes NumPy arrays or a model, writes a PNG when given `path`, and returns
the matplotlib Figure. matplotlib is imported inside, so `import xvae` stays light.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

__all__ = ["loss_curves", "image_grid", "reconstructions", "latent_scatter", "manifold", "save_all"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
        _plt().close(fig)
    return fig


def _side(dim: int, image_shape: Sequence[int] | None) -> tuple[int, int]:
    if image_shape is not None:
        return int(image_shape[0]), int(image_shape[1])
    side = int(math.isqrt(dim))
    return (side, side) if side * side == dim else (1, dim)


def loss_curves(history: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """One panel per metric (loss, reconstruction, kl, accuracy), train and validation."""
    plt = _plt()
    hist = history.history if hasattr(history, "history") else dict(history)
    base = [k for k in hist if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(base), figsize=(4 * len(base), 3), squeeze=False)
    for ax, name in zip(axes[0], base):
        epochs = np.arange(1, len(hist[name]) + 1)
        ax.plot(epochs, hist[name], marker="o", label="train")
        if f"val_{name}" in hist:
            ax.plot(epochs[: len(hist[f"val_{name}"])], hist[f"val_{name}"], marker="s", label="validation")
        ax.set(title=name, xlabel="epoch")
        ax.legend()
    fig.tight_layout()
    return _finish(fig, path)


def image_grid(images: np.ndarray, path: str | os.PathLike[str] | None = None, *, cols: int | None = None,
               image_shape: Sequence[int] | None = None, title: str | None = None) -> Any:
    """Tile rows of `images` (n, d) as a grid of grey images."""
    plt = _plt()
    images = np.asarray(images, np.float32)
    h, w = _side(images.shape[1], image_shape)
    n = len(images)
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    canvas = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1), np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = img.reshape(h, w)
    fig, ax = plt.subplots(figsize=(max(2.0, cols * w / 14), max(2.0, rows * h / 14)))
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def reconstructions(model: Any, x: np.ndarray, path: str | os.PathLike[str] | None = None, *,
                    n: int = 10, image_shape: Sequence[int] | None = None) -> Any:
    """Originals (top row) above their reconstructions decode(encode(x).mean)."""
    x = np.asarray(x[:n], np.float32)
    pair = np.concatenate([x, model.reconstruct(x)])
    return image_grid(pair, path, cols=len(x), image_shape=image_shape, title="originals / reconstructions")


def latent_scatter(model: Any, x: np.ndarray, labels: np.ndarray | None = None,
                   path: str | os.PathLike[str] | None = None) -> Any:
    """Encoder means of x in a 2-D latent space, coloured by label."""
    plt = _plt()
    mean, _ = model.encode(x)
    if mean.shape[1] != 2:
        raise ValueError(f"latent_scatter needs 2 latents; this model has {mean.shape[1]}.")
    fig, ax = plt.subplots(figsize=(5, 4.5))
    points = ax.scatter(mean[:, 0], mean[:, 1], c=labels, cmap="tab10", s=6)
    if labels is not None:
        fig.colorbar(points, ax=ax, label="label")
    ax.set(xlabel="z[0]", ylabel="z[1]", title="latent means")
    return _finish(fig, path)


def manifold(model: Any, path: str | os.PathLike[str] | None = None, *, n: int = 12, span: float = 2.5,
             image_shape: Sequence[int] | None = None) -> Any:
    """Decoded means over an n x n grid of the 2-D latent plane in [-span, span]^2."""
    if model.spec.latents != 2:
        raise ValueError(f"manifold needs 2 latents; this model has {model.spec.latents}.")
    axis = np.linspace(-span, span, n, dtype=np.float32)
    z = np.array([[a, b] for b in axis[::-1] for a in axis], np.float32)
    return image_grid(model.decode(z), path, cols=n, image_shape=image_shape, title="decoded latent grid")


def save_all(model: Any, history: Any, x: np.ndarray, out_dir: str | os.PathLike[str], *,
             labels: np.ndarray | None = None, image_shape: Sequence[int] | None = None,
             seed: int = 0) -> list[str]:
    """Every plot that fits the model into `out_dir`; returns the PNG paths written."""
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    written = [os.path.join(out, "loss.png")]
    loss_curves(history, written[-1])
    if model.kind == "vae":
        written.append(os.path.join(out, "samples.png"))
        image_grid(model.sample(64, seed=seed), written[-1], image_shape=image_shape, title="samples")
        written.append(os.path.join(out, "reconstructions.png"))
        reconstructions(model, x, written[-1], image_shape=image_shape)
        if model.spec.latents == 2:
            written.append(os.path.join(out, "latent.png"))
            latent_scatter(model, x[:2000], None if labels is None else labels[:2000], written[-1])
            written.append(os.path.join(out, "manifold.png"))
            manifold(model, written[-1], image_shape=image_shape)
    return written
