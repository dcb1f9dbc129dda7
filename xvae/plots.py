"""Plots: loss curves, sample and reconstruction grids, latent space scatter and manifold.

Every function takes NumPy arrays or a model, writes a PNG when given `path`, and returns
the matplotlib `Figure`. Figures are built with `matplotlib.figure.Figure` and rendered by
Agg, never through pyplot: no GUI backend is started or switched (scripts, servers and
notebooks keep theirs), and figures are not kept alive by pyplot's global registry.
matplotlib is imported inside the functions, so `import xvae` stays light.

Examples:
    >>> from xvae import History, plots
    >>> h = History({"loss": [3.0, 2.0], "val_loss": [3.5, 2.6]}, [1, 2])
    >>> len(plots.loss_curves(h).axes)
    1
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from xvae._errors import ConfigError, DataError
from xvae._numbers import integer
from xvae.history import History

__all__ = ["class_samples", "image_grid", "latent_scatter", "loss_curves", "manifold", "reconstructions", "save_all"]

PathLike = str | os.PathLike[str]


def _figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=layout)


def _finish(fig: Any, path: PathLike | None) -> Any:
    if path is not None:
        # Figure.savefig renders with Agg. No bbox_inches="tight": it renders twice (3x slower);
        # the layouts above leave no margins to trim.
        try:
            fig.savefig(os.fspath(path), dpi=100)
        except TypeError:
            raise ConfigError(f"path must be a file path (str or os.PathLike). Received: {path!r:.100}") from None
        except (OSError, ValueError) as err:  # ValueError: matplotlib knows no such format (".xvae")
            raise DataError(f"Cannot write the figure to {path}: {getattr(err, 'strerror', None) or err}. "
                            "Use a .png, .pdf or .svg path in a writable folder.", path=str(path)) from err
    return fig


def _image_shape(dim: int, image_shape: Sequence[int] | None) -> tuple[int, int]:
    """(rows, cols) of one image: `image_shape`, else a square, else one row of pixels."""
    if image_shape is not None:
        h, w = (int(s) for s in image_shape)
        if h * w != dim:
            raise ConfigError(f"image_shape={tuple(image_shape)} has {h * w} pixels but the images have {dim}. "
                              "Pass the (rows, cols) of one image.")
        return h, w
    side = math.isqrt(dim)
    return (side, side) if side * side == dim else (1, dim)


def _model_kind(model: Any, needs: str, what: str) -> None:
    if getattr(model, "kind", None) != needs:
        raise ConfigError(f"{what} needs a {needs.upper() if needs == 'vae' else needs} model. "
                          f"Received: {type(model).__name__}")


def loss_curves(history: History | dict[str, list[float]], path: PathLike | None = None) -> Any:
    """One panel per metric ("loss", "reconstruction", "kl", "accuracy"): train and validation.

    Args:
        history: a `History` (its epoch numbers label the x axis) or a dict of lists.
        path: write a PNG here.
    """
    if isinstance(history, History):
        hist, epochs_of = history.history, list(history.epoch)
    else:
        hist, epochs_of = dict(history), []
    # "lr" is a rate, not a metric: it gets no panel.
    base = sorted((k for k in hist if not k.startswith("val_") and k != "lr" and len(hist[k])),
                  key=lambda k: k != "loss")
    if not base:
        raise DataError("loss_curves needs a history with at least one epoch of metrics. Received an empty one.")
    from matplotlib.ticker import MaxNLocator

    fig = _figure(4 * len(base), 3)
    axes = fig.subplots(1, len(base), squeeze=False)[0]
    for ax, name in zip(axes, base):
        values = hist[name]
        epochs = epochs_of if len(epochs_of) == len(values) else list(range(1, len(values) + 1))
        ax.plot(epochs, values, marker="o", label="train")
        # Training "loss" is the objective (reconstruction + beta * kl); a VAE's "val_loss" is
        # the negative ELBO (beta = 1), so the panel pairs like with like: val_objective.
        val = hist.get("val_objective") if name == "loss" and hist.get("val_objective") else hist.get(f"val_{name}")
        if val:
            ax.plot(epochs[: len(val)], val, marker="s", label="validation")
        ax.set(title=name, xlabel="epoch")
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return _finish(fig, path)


def image_grid(images: Any, path: PathLike | None = None, *, cols: int | None = None,
               image_shape: Sequence[int] | None = None, title: str | None = None) -> Any:
    """Tile rows of `images` (n, d), values in [0, 1], as a grid of grey images.

    Args:
        images: float array (n, d); each row one image of `image_shape` (default: square).
        cols: images per row (default: about sqrt(n)).
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 2 or len(images) == 0:
        raise DataError(f"image_grid needs images of shape (n, d) with n >= 1. Received shape {images.shape}.")
    h, w = _image_shape(images.shape[1], image_shape)
    n = len(images)
    if cols is not None and (integer(cols) is None or cols < 1):
        raise ConfigError(f"cols must be a positive integer. Received: cols={cols!r}")
    cols = None if cols is None else integer(cols)
    cols = min(cols or math.ceil(math.sqrt(n)), n)
    rows = math.ceil(n / cols)
    canvas = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1), np.float32)  # 1-pixel white gutters
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = img.reshape(h, w)
    # about one inch (100 px) per image whatever its resolution, at most 16 inches a side
    cell = min(1.0, 16.0 / max(cols, rows * h / w))
    width, height = max(2.0, cols * cell), max(2.0, rows * cell * h / w)
    top = 0.4 if title else 0.0  # inches for the title
    fig = _figure(width, height + top, layout=None)
    ax = fig.add_axes((0.0, 0.0, 1.0, height / (height + top)))  # the grid fills the figure
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    ax.axis("off")
    if title:
        fig.suptitle(title, y=1.0 - 0.05 * top / (height + top), va="top")
    return _finish(fig, path)


def class_samples(model: Any, path: PathLike | None = None, *, per_class: int = 8, seed: int = 0,
                  binary: bool = False, image_shape: Sequence[int] | None = None) -> Any:
    """Samples of a conditional VAE, one row per class: row c decodes `per_class` draws of
    z ~ N(0, I) with y = c. Every row uses the same z's (`sample(per_class, seed, y=c)`),
    so a column shows one latent code rendered as each class (the "style" the latents carry).

    Examples:
        >>> import numpy as np, xvae
        >>> cvae = xvae.VAE(xvae.VAESpec(input_dim=16, hidden=(8,), latents=2, conditions=3), backend="numpy")
        >>> len(class_samples(cvae, per_class=4).axes)
        1
    """
    _model_kind(model, "vae", "class_samples")
    classes = model.spec.conditions
    if not classes:
        raise ConfigError("class_samples needs a conditional VAE (VAESpec(..., conditions=number of classes)); "
                          "this one has conditions=0: plot model.sample(n) with image_grid instead.")
    if integer(per_class) is None or per_class < 1:
        raise ConfigError(f"per_class must be a positive integer. Received: per_class={per_class!r:.100}")
    per_class = integer(per_class)
    rows = [model.sample(per_class, seed=seed, binary=binary, y=c) for c in range(classes)]
    return image_grid(np.concatenate(rows), path, cols=per_class, image_shape=image_shape,
                      title=f"samples per class (rows: y = 0..{classes - 1})")


def reconstructions(model: Any, x: Any, path: PathLike | None = None, *, n: int = 10,
                    image_shape: Sequence[int] | None = None, labels: Any = None) -> Any:
    """The first `n` rows of x (top row) above their reconstructions decode(encode(x).mean)
    (a conditional VAE: with `labels`, the class ids of x)."""
    _model_kind(model, "vae", "reconstructions")
    x = np.asarray(x, np.float32)[:n]
    extra = {} if labels is None else {"y": np.asarray(labels)[:n]}
    pair = np.concatenate([x, model.reconstruct(x, **extra)])
    return image_grid(pair, path, cols=len(x), image_shape=image_shape, title="originals / reconstructions")


def latent_scatter(model: Any, x: Any, labels: Any = None, path: PathLike | None = None) -> Any:
    """Encoder means of x in a 2-D latent space, coloured by label (a VAE with latents=2)."""
    _model_kind(model, "vae", "latent_scatter")
    if model.spec.latents != 2:
        raise ConfigError(f"latent_scatter needs a VAE with latents=2; this one has {model.spec.latents}.")
    mean, _ = model.encode(x)
    fig = _figure(5, 4.5)
    ax = fig.subplots()
    if labels is None:
        ax.scatter(mean[:, 0], mean[:, 1], s=6, alpha=0.7)
    else:
        labels = np.asarray(labels)
        if labels.shape != (len(mean),):
            raise DataError(f"labels must have shape ({len(mean)},) to match x. Received {labels.shape}.")
        points = ax.scatter(mean[:, 0], mean[:, 1], c=labels, cmap="tab10", s=6, alpha=0.8)
        fig.colorbar(points, ax=ax, label="label")
    ax.set(xlabel="z[0]", ylabel="z[1]", title="latent means")
    return _finish(fig, path)


def manifold(model: Any, path: PathLike | None = None, *, n: int = 12, span: float = 2.5,
             image_shape: Sequence[int] | None = None) -> Any:
    """Decoded means over an n x n grid of the 2-D latent plane in [-span, span]^2.

    Row 0 is z[1] = +span (top), column 0 is z[0] = -span (left), as in a scatter plot.
    """
    _model_kind(model, "vae", "manifold")
    if model.spec.latents != 2:
        raise ConfigError(f"manifold needs a VAE with latents=2; this one has {model.spec.latents}.")
    if integer(n) is None or n < 2:
        raise ConfigError(f"manifold needs n >= 2 grid points per axis. Received: n={n!r}")
    n = integer(n)
    axis = np.linspace(-span, span, n, dtype=np.float32)
    z = np.array([[a, b] for b in axis[::-1] for a in axis], np.float32)
    return image_grid(model.decode(z), path, cols=n, image_shape=image_shape, title="decoded latent grid")


def save_all(model: Any, history: Any, x: Any, out_dir: PathLike, *, labels: Any = None,
             image_shape: Sequence[int] | None = None, seed: int = 0) -> list[str]:
    """Every plot that fits the model into `out_dir`; returns the PNG paths written.

    All models: loss.png. VAEs: samples.png, reconstructions.png; with latents=2 also
    latent.png (the first 2000 rows of x, coloured by `labels`) and manifold.png. A
    conditional VAE: samples.png is `class_samples`; reconstructions.png (with `labels`,
    its conditions) only; no latent plots (its latents depend on the class).
    """
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)

    def file(name: str) -> str:
        written.append(os.path.join(out, name))
        return written[-1]

    written: list[str] = []
    loss_curves(history, file("loss.png"))
    if model.kind == "vae" and model.spec.conditions:
        class_samples(model, file("samples.png"), seed=seed, image_shape=image_shape)
        if labels is not None:
            reconstructions(model, x, file("reconstructions.png"), image_shape=image_shape, labels=labels)
    elif model.kind == "vae":
        image_grid(model.sample(64, seed=seed), file("samples.png"), image_shape=image_shape, title="samples")
        reconstructions(model, x, file("reconstructions.png"), image_shape=image_shape)
        if model.spec.latents == 2:
            latent_scatter(model, np.asarray(x)[:2000], None if labels is None else np.asarray(labels)[:2000],
                           file("latent.png"))
            manifold(model, file("manifold.png"), image_shape=image_shape)
    return written
