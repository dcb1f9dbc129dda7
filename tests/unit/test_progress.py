"""fit's verbose levels: silent, a live bar with the current epoch's metrics, or one line per epoch (issue 16, item 5)."""

from __future__ import annotations

import io
import re
import sys

import numpy as np
import pytest

import xvae
from xvae._progress import resolve_verbose

X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
SPEC = xvae.VAESpec(input_dim=6, hidden=(8,), latents=2)


def _fit(**kw):
    return xvae.VAE(SPEC, backend="numpy", seed=0).fit(X, epochs=3, batch_size=8, **kw)


def test_verbose_0_prints_nothing(capsys):
    _fit(verbose=0)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


@pytest.mark.parametrize("verbose", [2, "auto"])  # "auto": stdout is not a terminal under capsys
def test_verbose_2_writes_one_plain_line_per_epoch(capsys, verbose):
    hist = _fit(verbose=verbose, validation_data=X[:8])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "\r" not in out and len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {epoch}/3 - ")
        for name in ("loss", "kl", "val_loss"):
            assert f" {name}: {hist.history[name][epoch - 1]:.4g}" in line, (name, line)


def test_verbose_1_bar_shows_the_epoch_own_metrics(capsys):
    hist = _fit(verbose=1)
    out = capsys.readouterr().out
    for epoch in (1, 2, 3):
        # the last drawing of each epoch's bar (tqdm redraws with \r) carries that epoch's final numbers
        frames = [f for f in re.split(r"[\r\n]", out) if f.startswith(f"epoch {epoch}/3")]
        assert frames, out
        assert f"loss: {hist.history['loss'][epoch - 1]:.4g}" in frames[-1], (epoch, frames[-1])
        assert "5/5" in frames[-1]  # 40 rows / batch 8: the bar is full


def test_auto_is_a_bar_in_a_terminal_and_lines_otherwise(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert resolve_verbose("auto") == 1
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert resolve_verbose("auto") == 2


def test_progress_is_the_older_spelling_of_verbose(capsys):
    _fit(progress=False)
    assert capsys.readouterr().out == ""
    assert resolve_verbose("auto", progress=False) == 0 and resolve_verbose(2, progress=True) == 2
    with pytest.raises(xvae.ConfigError, match="progress=False contradicts verbose=2"):
        _fit(progress=False, verbose=2)
    for bad in (3, -1, "yes", 1.0, True):
        with pytest.raises(xvae.ConfigError, match=r"verbose must be 'auto', 0 \(silent\), 1"):
            _fit(verbose=bad)


def test_validation_split_holds_out_the_last_fraction_before_shuffling():
    vae = xvae.VAE(SPEC, backend="numpy", seed=0)
    hist = vae.fit(X, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
    twin = xvae.VAE(SPEC, backend="numpy", seed=0)
    want = twin.fit(X[:30], epochs=2, batch_size=8, validation_data=X[30:], verbose=0)
    assert hist.history == want.history and hist.params["steps"] == 4  # 30 training rows / 8
    clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=6, outputs=3), backend="numpy")
    y = np.arange(40) % 3
    h = clf.fit(X, y, epochs=1, batch_size=8, validation_split=np.float32(0.5), verbose=0)
    ref = xvae.Classifier(xvae.ClassifierSpec(input_dim=6, outputs=3), backend="numpy")
    assert h.history == ref.fit(X[:20], y[:20], epochs=1, batch_size=8, validation_data=(X[20:], y[20:]),
                                 verbose=0).history
    with pytest.raises(xvae.ConfigError, match="validation_data= or validation_split=, not both"):
        vae.fit(X, validation_split=0.1, validation_data=X, verbose=0)
    for bad in (1.0, -0.1, "0.1", True):
        with pytest.raises(xvae.ConfigError, match=r"validation_split must be a number in \[0, 1\)"):
            vae.fit(X, validation_split=bad, verbose=0)
    with pytest.raises(xvae.ConfigError, match="both need at least one"):
        vae.fit(X[:1], validation_split=0.5, verbose=0)


def test_arguments_after_the_data_are_keyword_only():
    vae = xvae.VAE(SPEC, backend="numpy", seed=0)
    with pytest.raises(xvae.ConfigError, match="drop the y argument"):
        vae.fit(X, X[:, 0])
    with pytest.raises(xvae.ConfigError, match="drop the y argument"):
        vae.evaluate(X, X[:, 0])
    with pytest.raises(TypeError, match="positional"):
        vae.fit(X, None, 3)
    clf = xvae.Classifier(xvae.ClassifierSpec(input_dim=6), backend="numpy")
    with pytest.raises(TypeError, match="positional"):
        clf.fit(X, np.arange(40) % 2, 3)
    with pytest.raises(TypeError, match="positional"):
        clf.evaluate(X, np.arange(40) % 2, 16)


def test_compare_takes_verbose_as_fit_does_and_progress_as_its_older_spelling(capsys):
    from xvae.compare import compare

    compare(SPEC, X, epochs=2, batch_size=8, backends=["numpy"])  # silent by default
    assert capsys.readouterr() == ("", "")
    compare(SPEC, X, epochs=2, batch_size=8, backends=["numpy"], verbose=2)
    assert [line.split(" - ")[0] for line in capsys.readouterr().out.splitlines()] == ["epoch 1/2", "epoch 2/2"]
    compare(SPEC, X, epochs=2, batch_size=8, backends=["numpy"], progress=False)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(xvae.ConfigError, match="contradicts"):
        compare(SPEC, X, epochs=2, batch_size=8, backends=["numpy"], verbose=0, progress=True)
