"""Small API seams of issue 16, item 7: xvae.load of a checkpoint folder, datasets' data_dir."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import xvae
from xvae import checkpoint, datasets

X = np.random.default_rng(0).random((24, 6), dtype=np.float32)


def test_load_of_a_folder_of_checkpoints_takes_the_latest(tmp_path):
    vae = xvae.VAE(xvae.VAESpec(input_dim=6, latents=2), backend="numpy")
    vae.fit(X, epochs=3, batch_size=8, checkpoint_dir=tmp_path / "ck", keep=2, verbose=0)
    back = xvae.load(tmp_path / "ck")
    assert back.epoch == 3 and checkpoint.resolve(tmp_path / "ck") == tmp_path / "ck" / "epoch-0003.xvae"
    for name, w in vae.get_weights().items():
        np.testing.assert_array_equal(back.get_weights()[name], w, err_msg=name)
    assert checkpoint.resolve(tmp_path / "ck" / "epoch-0002.xvae") == tmp_path / "ck" / "epoch-0002.xvae"
    with pytest.raises(xvae.CheckpointError):
        xvae.load(tmp_path)  # neither a checkpoint nor a folder of them


def test_data_dir_may_hold_the_files_and_errors_name_the_files_and_the_split_found(tmp_path, mnist_dir):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copyfile(mnist_dir / name, tmp_path / name)
    assert datasets.load("mnist", split="test", data_dir=tmp_path, download=False).x.shape == (10000, 784)
    with pytest.raises(xvae.DataError, match=r"train-images-idx3-ubyte.gz not found \(looked for "
                       r"train-images-idx3-ubyte.gz in .*mnist and in .*holds the 'test' split.*pass split='test'"):
        datasets.load("mnist", data_dir=tmp_path, download=False)
    with pytest.raises(xvae.DataError, match=r"not found \(looked for .*pass split='test'.*\), and could not download"):
        datasets.load("mnist", data_dir=tmp_path, base_url="http://127.0.0.1:9/", progress=False)


def test_metadata_is_saved_loaded_and_copied(tmp_path):
    vae = xvae.VAE(xvae.VAESpec(input_dim=6, latents=2), backend="numpy")
    vae.metadata["dataset"] = {"name": "mnist", "image_shape": [28, 28]}
    vae.save(tmp_path / "m.xvae")
    assert xvae.load(tmp_path / "m.xvae").metadata == vae.metadata == vae.to("numpy").metadata
    vae.metadata["bad"] = np.zeros(2)
    with pytest.raises(xvae.CheckpointError, match="model.metadata must hold JSON data"):
        vae.save(tmp_path / "n.xvae")
    assert not (tmp_path / "n.xvae").exists()
