"""Plots (issue 4.5): every PNG is written, has a sensible size, and is not blank."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

import xvae
from xvae import plots

RNG = np.random.default_rng(0)
X = RNG.random((60, 64), dtype=np.float32)  # 8x8 "images"
LABELS = RNG.integers(0, 10, 60)


@pytest.fixture(scope="module")
def vae2() -> xvae.VAE:
    model = xvae.VAE(xvae.VAESpec(input_dim=64, hidden=(16,), latents=2), backend="numpy", seed=0)
    model.fit(X, epochs=2, batch_size=20, progress=False, validation_data=X[:10])
    return model


def check_png(path: Path, min_size: tuple[int, int] = (150, 150)) -> np.ndarray:
    """Open the PNG; it must be at least `min_size` (height, width) pixels and not blank."""
    assert path.is_file(), path
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4), image.shape
    assert image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1], image.shape
    rgb = image[..., :3]
    assert rgb.std() > 0.02, f"{path.name} is blank"
    assert (rgb < 0.9).any(axis=2).mean() > 0.02, f"{path.name} is nearly all white"
    return rgb


def test_loss_curves(tmp_path, vae2):
    h = vae2.fit(X, epochs=4, batch_size=20, progress=False, validation_data=X[:10])
    fig = plots.loss_curves(h, tmp_path / "loss.png")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "reconstruction", "kl"]  # one panel per term, loss first
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train", "validation"]
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [3, 4, 5, 6]  # the History's own epoch numbers
    rgb = check_png(tmp_path / "loss.png", (200, 600))
    assert rgb.shape[1] > 2 * rgb.shape[0]  # three panels side by side


def test_loss_curves_from_a_dict_and_an_empty_history(tmp_path):
    plots.loss_curves({"loss": [3.0, 2.0, 1.5], "accuracy": [0.5, 0.7, 0.8]}, tmp_path / "d.png")
    check_png(tmp_path / "d.png")
    with pytest.raises(xvae.DataError, match="at least one epoch"):
        plots.loss_curves(xvae.History())


def test_sample_grid(tmp_path, vae2):
    plots.image_grid(vae2.sample(16, seed=0), tmp_path / "samples.png", title="samples")
    rgb = check_png(tmp_path / "samples.png", (300, 300))
    assert len(np.unique(rgb.round(3))) > 16  # grey levels, not a flat image


def test_image_grid_geometry():
    fig = plots.image_grid(np.linspace(0, 1, 6 * 12).reshape(6, 12), cols=3, image_shape=(3, 4))
    canvas = fig.axes[0].get_images()[0].get_array()
    assert canvas.shape == (2 * 4 + 1, 3 * 5 + 1)  # 2 rows x 3 columns of 3x4 images, 1-pixel gutters
    np.testing.assert_allclose(canvas[1:4, 1:5], np.linspace(0, 1, 72)[:12].reshape(3, 4), rtol=1e-6)
    with pytest.raises(xvae.ConfigError, match=r"image_shape=\(5, 5\) has 25 pixels but the images have 12"):
        plots.image_grid(np.zeros((2, 12)), image_shape=(5, 5))
    with pytest.raises(xvae.DataError, match=r"shape \(n, d\) with n >= 1"):
        plots.image_grid(np.zeros((0, 4)))


def test_reconstructions(vae2):
    fig = plots.reconstructions(vae2, X, n=8)  # the PNG itself: test_save_all
    canvas = fig.axes[0].get_images()[0].get_array()
    assert canvas.shape == (2 * 9 + 1, 8 * 9 + 1)  # originals above reconstructions
    np.testing.assert_allclose(canvas[1:9, 1:9], X[0].reshape(8, 8), rtol=1e-6)
    np.testing.assert_allclose(canvas[10:18, 1:9], vae2.reconstruct(X[:1])[0].reshape(8, 8), rtol=1e-6)


def test_latent_scatter_and_manifold(vae2):
    """Content checks; the PNGs themselves are checked in test_save_all."""
    fig = plots.latent_scatter(vae2, X, LABELS)
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets, vae2.encode(X)[0], rtol=1e-6)
    np.testing.assert_array_equal(fig.axes[0].collections[0].get_array(), LABELS)  # coloured by label
    fig = plots.manifold(vae2, n=5, span=2.0)
    canvas = fig.axes[0].get_images()[0].get_array()
    top_left = vae2.decode(np.array([[-2.0, 2.0]], np.float32))[0].reshape(8, 8)
    np.testing.assert_allclose(canvas[1:9, 1:9], top_left, rtol=1e-5)


def test_latent_plots_need_a_2d_vae():
    vae5 = xvae.VAE(xvae.VAESpec(input_dim=64, latents=5), backend="numpy")
    with pytest.raises(xvae.ConfigError, match="latent_scatter needs a VAE with latents=2; this one has 5"):
        plots.latent_scatter(vae5, X)
    with pytest.raises(xvae.ConfigError, match="manifold needs a VAE with latents=2"):
        plots.manifold(vae5)
    clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=64), backend="numpy")
    with pytest.raises(xvae.ConfigError, match="reconstructions needs a VAE model"):
        plots.reconstructions(clf, X)


def test_save_all(tmp_path, vae2):
    h = xvae.History({"loss": [3.0, 2.0], "val_loss": [3.1, 2.2]}, [1, 2])
    written = plots.save_all(vae2, h, X, tmp_path / "out", labels=LABELS, image_shape=(8, 8))
    assert [Path(p).name for p in written] == ["loss.png", "samples.png", "reconstructions.png", "latent.png",
                                               "manifold.png"]
    sizes = {Path(p).name: check_png(Path(p)).shape[:2] for p in written}
    assert sizes["samples.png"][0] >= 600 and sizes["manifold.png"][0] >= 900  # about 100 px per image
    clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=64), backend="numpy")
    assert [Path(p).name for p in plots.save_all(clf, h, X, tmp_path / "clf")] == ["loss.png"]


def test_plots_never_touch_pyplot(tmp_path):
    """No GUI backend is started or switched: the figures are Agg-rendered without pyplot."""
    code = ("import sys, xvae, matplotlib; from xvae import plots; "
            "plots.loss_curves({'loss': [1.0, 0.5]}, sys.argv[1]); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "l.png")], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    check_png(tmp_path / "l.png")


def test_class_samples_one_row_per_class(tmp_path):
    """A conditional VAE's grid: row c holds sample(per_class, seed, y=c) (the same z's in every
    row); `xvae sample` draws it for a CVAE checkpoint; save_all writes it as samples.png."""
    from xvae.cli import main

    cvae = xvae.VAE(xvae.VAESpec(input_dim=64, hidden=(16,), latents=2, conditions=3), backend="numpy", seed=0)
    h = cvae.fit(X, LABELS % 3, epochs=2, batch_size=20, progress=False)
    fig = plots.class_samples(cvae, tmp_path / "classes.png", per_class=5, seed=1)
    canvas = fig.axes[0].get_images()[0].get_array()
    assert canvas.shape == (3 * 9 + 1, 5 * 9 + 1)  # 3 rows (classes) x 5 columns of 8x8 images
    for c in range(3):
        want = cvae.sample(5, seed=1, y=c)
        for j in range(5):
            np.testing.assert_allclose(canvas[1 + c * 9:1 + c * 9 + 8, 1 + j * 9:1 + j * 9 + 8], want[j].reshape(8, 8))
    check_png(tmp_path / "classes.png", (150, 150))
    with pytest.raises(xvae.ConfigError, match="class_samples needs a conditional VAE"):
        plots.class_samples(xvae.VAE(xvae.VAESpec(input_dim=64, latents=2), backend="numpy"))
    with pytest.raises(xvae.ConfigError, match="per_class must be a positive integer"):
        plots.class_samples(cvae, per_class=0)
    written = plots.save_all(cvae, h, X, tmp_path / "out", labels=LABELS % 3, image_shape=(8, 8))
    assert [Path(p).name for p in written] == ["loss.png", "samples.png", "reconstructions.png"]
    cvae.save(tmp_path / "c.xvae")
    assert main(["sample", str(tmp_path / "c.xvae"), "-n", "4", "--out", str(tmp_path / "cli.png")]) == 0
    check_png(tmp_path / "cli.png", (150, 150))
