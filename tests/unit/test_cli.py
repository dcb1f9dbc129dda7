"""The `xvae` command line (issue 4.6), in-process through `xvae.cli.main` on the numpy backend,
plus the installed console script in a real subprocess. Exit codes: 0 ok, 2 a usage or xvae
error (one line, no traceback unless --debug), 1 an unexpected error (one line too)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xvae
from xvae import backends
from xvae.cli import main

TINY = ["--backend", "numpy", "--limit", "200", "--hidden", "16", "--no-progress"]
MNIST_DIR = Path(os.environ.get("XVAE_TEST_MNIST_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist")
NO_FRAMEWORKS = "jax,tf,torch"  # unit tests never import a framework


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small VAE training run (digits, 2 epochs, checkpoints every epoch), shared by the tests below."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out), "--checkpoint-every", "1"]) == 0
    return out


def one_line_error(err: str, command: str, pattern: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"xvae {command}: error: ") and "Traceback" not in err
    assert pattern in lines[0], lines[0]


# -- help, usage, exit codes --------------------------------------------------------------

def test_top_level_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("backends", "train", "compare", "sample", "convert", "evaluate"):
        assert command in out
    assert "Exit codes: 0 success, 2 the command cannot run as given" in out


@pytest.mark.parametrize(("command", "words"), [
    ("train", ["--resume", "--dataset", "--data-dir", "--checkpoint-every", "--keep", "--epochs"]),
    ("sample", ["checkpoint", "-n", "--out", "--binary"]),
    ("convert", ["checkpoint", "--to", "--out"]),
    ("evaluate", ["checkpoint", "--dataset", "--split", "--binarize"]),
    ("compare", ["--backends", "--json", "--markdown"]),
    ("backends", ["--debug"]),
])
def test_each_command_has_help(capsys, command, words):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: xvae {command}")
    for word in words:
        assert word in out, word


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"xvae {xvae.__version__}"


@pytest.mark.parametrize("argv", [[], ["fly"], ["train", "--epochs", "many"], ["train", "--limit", "0"],
                                  ["sample"], ["convert", "x.xvae"], ["train", "--model", "gan"],
                                  ["train", "--out", ""], ["sample", "a\0b"], ["compare", "--json", " "]])
def test_usage_errors_exit_2_with_one_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("xvae") and "Traceback" not in err, err
    assert " error: " in err and "--help)" in err


def test_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["train", *TINY, "--epochs", "0", "--out", str(tmp_path)]) == 2
    one_line_error(capsys.readouterr().err, "train", "ConfigError: epochs must be a positive integer")
    assert main(["train", "--backend", "caffe", "--out", str(tmp_path)]) == 2
    one_line_error(capsys.readouterr().err, "train", "BackendNotFoundError: Unknown backend 'caffe'")
    assert main(["train", "--dataset", "cifar", "--out", str(tmp_path)]) == 2
    one_line_error(capsys.readouterr().err, "train", "DataError: unknown dataset 'cifar'")
    assert main(["sample", str(tmp_path / "nowhere.xvae")]) == 2
    one_line_error(capsys.readouterr().err, "sample", "CheckpointError: No checkpoint at")


def test_debug_shows_the_traceback(tmp_path, capsys):
    for argv in (["--debug", "sample", str(tmp_path / "no.xvae")], ["sample", str(tmp_path / "no.xvae"), "--debug"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "CheckpointError" in err.splitlines()[-1]


def test_an_unexpected_error_is_one_line_too(monkeypatch, capsys, tmp_path):
    import xvae.cli

    def boom(args):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setitem(xvae.cli.COMMANDS, "sample", boom)
    assert main(["sample", str(tmp_path)]) == 1
    one_line_error(capsys.readouterr().err, "sample", "RuntimeError: something broke (an unexpected error: "
                                                      "run with --debug for the traceback)")


# -- train ---------------------------------------------------------------------------------

def test_train_writes_history_checkpoints_model_and_plots(run):
    hist = xvae.History.from_json(run / "history.json")
    assert hist.epoch == [1, 2] and {"loss", "kl", "reconstruction", "val_loss"} <= set(hist.history)
    model = xvae.load(run / "model.xvae")
    assert (model.kind, model.epoch, model.backend, model.spec.latents) == ("vae", 2, "numpy", 2)
    assert model.spec.encoder.hidden == (16,) and model.spec.input_dim == 64
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0001.xvae", "epoch-0002.xvae"]
    for png in ("loss.png", "samples.png", "reconstructions.png", "latent.png", "manifold.png"):
        assert (run / png).stat().st_size > 5_000, png  # the content is tested in test_plots


def test_train_resume_continues_to_the_total(run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    # a folder of checkpoints resumes from its latest; --epochs is the total
    assert main(["train", *TINY, "--epochs", "3", "--out", str(out), "--resume", str(out / "checkpoints"),
                 "--no-plots"]) == 0
    assert "final epoch 3" in capsys.readouterr().out
    hist = xvae.History.from_json(out / "history.json")
    earlier = xvae.History.from_json(run / "history.json")
    assert hist.epoch == [1, 2, 3] and hist.history["loss"][:2] == earlier.history["loss"]  # merged
    assert xvae.load(out / "model.xvae").epoch == 3
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out), "--resume", str(out / "model.xvae")]) == 2
    one_line_error(capsys.readouterr().err, "train", "ConfigError: With resume=True, epochs is the total")


def test_train_a_classifier(tmp_path, capsys):
    out = tmp_path / "clf"
    assert main(["train", *TINY, "--model", "classifier", "--epochs", "1", "--optimizer", "sgd", "--lr", "0.1",
                 "--out", str(out)]) == 0
    hist = xvae.History.from_json(out / "history.json")
    assert {"loss", "accuracy", "val_accuracy"} <= set(hist.history)
    assert sorted(p.name for p in out.glob("*.png")) == ["loss.png"]
    model = xvae.load(out / "model.xvae")
    assert model.spec.outputs == 10 and model.optimizer == xvae.optim.SGD(0.1)


def test_train_evaluate_compare_and_resume_a_conditional_vae(tmp_path, capsys):
    """--model cvae: a VAE conditioned on the dataset's labels (one condition per class),
    trained and validated on (x, y), its samples one row per class; evaluate and compare
    pass the labels too, and --resume keeps it conditional."""
    out = tmp_path / "cvae"
    assert main(["train", *TINY, "--model", "cvae", "--epochs", "2", "--out", str(out)]) == 0
    model = xvae.load(out / "model.xvae")
    assert model.spec.conditions == 10 and model.epoch == 2
    hist = xvae.History.from_json(out / "history.json")
    assert {"loss", "kl", "val_loss"} <= set(hist.history) and len(hist.vectors["kl_per_latent"]) == 2
    assert (out / "samples.png").is_file() and (out / "reconstructions.png").is_file()
    assert not (out / "latent.png").exists()  # a CVAE's latents depend on the class: no latent plots
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.xvae"), "--limit", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    test = xvae.datasets.load("digits", split="test").subset(slice(0, 100))
    assert result["loss"] == pytest.approx(model.evaluate(test.x, test.y, seed=0)["loss"], rel=1e-12)
    assert main(["compare", "--backends", "numpy", "--model", "cvae", "--limit", "64", "--hidden", "8",
                 "--epochs", "1"]) == 0
    assert "numpy" in capsys.readouterr().out
    assert main(["train", *TINY, "--epochs", "3", "--out", str(out), "--resume", str(out / "model.xvae"),
                 "--model", "vae", "--no-plots"]) == 2
    one_line_error(capsys.readouterr().err, "train", "--model vae (the checkpoint has cvae)")
    assert main(["train", *TINY, "--epochs", "3", "--out", str(out), "--resume", str(out / "model.xvae"),
                 "--no-plots"]) == 0
    assert xvae.load(out / "model.xvae").epoch == 3


def test_train_on_mnist(tmp_path, capsys):
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST test split not found in {MNIST_DIR} (set XVAE_TEST_MNIST_DIR)")
    out = tmp_path / "mnist"
    assert main(["train", *TINY, "--dataset", "mnist", "--data-dir", str(MNIST_DIR), "--split", "test",
                 "--epochs", "1", "--out", str(out), "--no-plots", "--binarize", "static"]) == 0
    assert "on mnist/test (200 examples)" in capsys.readouterr().out
    model = xvae.load(out / "model.xvae")
    assert model.spec.input_dim == 784 and model.epoch == 1
    assert main(["evaluate", str(out / "model.xvae"), "--dataset", "mnist", "--data-dir", str(MNIST_DIR),
                 "--limit", "100", "--binarize", "static"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "mnist" and result["split"] == "test" and 0 < result["loss"] < 784 * np.log(2) * 2


# -- sample, evaluate, convert ------------------------------------------------------------

def test_sample(run, tmp_path, capsys):
    png = tmp_path / "s.png"
    assert main(["sample", str(run / "model.xvae"), "-n", "9", "--seed", "3", "--out", str(png), "--binary"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {png}"
    from matplotlib.image import imread

    image = imread(png)
    assert image.shape[0] >= 150 and image[..., :3].std() > 0.05


def test_sample_needs_a_vae(tmp_path, capsys):
    xvae.Classifier(xvae.ClassifierSpec(input_dim=4), backend="numpy").save(tmp_path / "c.xvae")
    assert main(["sample", str(tmp_path / "c.xvae")]) == 2
    one_line_error(capsys.readouterr().err, "sample", "ConfigError: ")


def test_evaluate(run, capsys):
    assert main(["evaluate", str(run / "model.xvae")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["dataset"], result["split"], result["backend"]) == ("digits", "test", "numpy")
    expected = xvae.load(run / "model.xvae").evaluate(xvae.datasets.load("digits", split="test").x, seed=0)
    assert result["loss"] == pytest.approx(expected["loss"], rel=1e-12)
    assert set(expected) <= set(result)
    # wrong data for the model: one line saying what does not fit
    assert main(["evaluate", str(run / "model.xvae"), "--dataset", "digits", "--split", "nope"]) == 2
    one_line_error(capsys.readouterr().err, "evaluate", "DataError: unknown split 'nope'")


TOY = """
    import numpy as np
    import xvae
    from xvae._reference import ReferenceBackend

    class Float32Reference(ReferenceBackend):
        name = "ref32"

        def __init__(self):
            super().__init__(np.float32)

    @xvae.hookimpl
    def xvae_backends():
        return [xvae.BackendInfo(name="ref32", target="ref32_plugin:Float32Reference")]
"""


@pytest.fixture
def ref32(tmp_path, monkeypatch):
    """A second backend without a framework: a float32 reference, installed as a third-party plugin."""
    (tmp_path / "ref32_plugin.py").write_text(textwrap.dedent(TOY))
    dist = tmp_path / "ref32_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ref32-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[xvae.backends]\nref32 = ref32_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("XVAE_DISABLE_PLUGINS", NO_FRAMEWORKS)
    backends.reset()
    yield "ref32"
    backends.reset()


def test_convert_to_another_backend(run, tmp_path, ref32, capsys):
    out = tmp_path / "converted.xvae"
    assert main(["convert", str(run / "model.xvae"), "--to", ref32, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out} (backend ref32)"
    original, converted = xvae.load(run / "model.xvae"), xvae.load(out)
    assert converted.backend == "ref32" and converted.epoch == original.epoch
    for name, w in original.get_weights().items():
        np.testing.assert_array_equal(converted.get_weights()[name], w, err_msg=name)  # bit-exact
    x = xvae.datasets.load("digits", split="test").x
    assert converted.evaluate(x)["loss"] == pytest.approx(original.evaluate(x)["loss"], rel=1e-5)
    # in place (no --out), and to an unknown backend
    inplace = tmp_path / "inplace.xvae"
    shutil.copytree(run / "model.xvae", inplace)
    assert main(["convert", str(inplace), "--to", "ref32"]) == 0
    assert xvae.load(inplace).backend == "ref32"
    assert main(["convert", str(inplace), "--to", "caffe"]) == 2
    one_line_error(capsys.readouterr().err, "convert", "BackendNotFoundError: Unknown backend 'caffe'")


# -- backends, compare --------------------------------------------------------------------

def test_backends(ref32, capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.strip().splitlines()[1:]}
    assert rows == {"ref32": "ok", "numpy": "ok"}
    assert out.splitlines()[0].split() == ["backend", "status", "version", "device"]


def test_compare(ref32, tmp_path, capsys):
    table = tmp_path / "t.json"
    assert main(["compare", "--limit", "200", "--backends", "numpy,ref32", "--epochs", "1", "--hidden", "8",
                 "--json", str(table), "--markdown", str(tmp_path / "t.md")]) == 0
    out = capsys.readouterr().out
    assert "| numpy |" in out and "| ref32 |" in out and "| numpy-ref32 |" in out
    result = json.loads(table.read_text())
    assert [r["backend"] for r in result["rows"]] == ["numpy", "ref32"]
    assert result["max_disagreement"] < 1e-5  # float32 vs float64 reference: rounding only
    assert (tmp_path / "t.md").read_text() in out


# -- the installed console script ---------------------------------------------------------

def test_console_script(tmp_path):
    script = shutil.which("xvae", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip(f"the xvae console script is not installed next to {sys.executable}")
    env = {**os.environ, "XVAE_DISABLE_PLUGINS": NO_FRAMEWORKS}
    done = subprocess.run([script, "--help"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0 and "usage: xvae" in done.stdout
    done = subprocess.run([script, "backends"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0 and "numpy" in done.stdout and "ok" in done.stdout, done.stderr
    done = subprocess.run([script, "sample", str(tmp_path / "missing.xvae")], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    one_line_error(done.stderr, "sample", "CheckpointError: No checkpoint at")
    done = subprocess.run([script, "train", "--epochs"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 2 and "expected one argument" in done.stderr


# -- issue 16, item 6: the CLI says what it does -------------------------------------------

def _actions(parser):
    """Every (command, action) of the parser and its subcommands."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {where}", a) for where, a in _actions(sub))
        else:
            yield "", action


def test_every_flag_has_help():
    import argparse

    from xvae.cli import build_parser

    missing = [f"{where}{'/'.join(a.option_strings) or a.dest}" for where, a in _actions(build_parser())
               if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []


def test_sample_does_not_overwrite_and_says_its_default(run, tmp_path, capsys, monkeypatch):
    assert main(["sample", "--help"]) == 0
    assert "default samples.png" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    (tmp_path / "samples.png").write_bytes(b"precious")
    assert main(["sample", str(run / "model.xvae"), "-n", "4"]) == 2  # an xvae error: exit 2 (issue 15)
    one_line_error(capsys.readouterr().err, "sample", "samples.png exists; pass --overwrite")
    assert (tmp_path / "samples.png").read_bytes() == b"precious"
    assert main(["sample", str(run / "model.xvae"), "-n", "4", "--overwrite"]) == 0
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_refuses_flags_that_would_change_the_model(run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    before = (out / "history.json").read_text()
    args = ["train", "--backend", "numpy", "--limit", "200", "--no-progress", "--no-plots", "--out", str(out),
            "--resume", str(out / "model.xvae"), "--epochs", "3"]
    assert main([*args, "--hidden", "128", "--lr", "0.5", "--seed", "4"]) == 2  # an xvae error: exit 2 (issue 15)
    one_line_error(capsys.readouterr().err, "train",
                   "--hidden 128 (the checkpoint has 16); --seed 4 (a resumed run continues")
    assert (out / "history.json").read_text() == before
    assert main([*args, "--hidden", "16", "--model", "vae"]) == 0  # the checkpoint's own values are fine
    capsys.readouterr()
    assert main([*args[:-1], "4", "--lr", "0.0005"]) == 0
    assert "--lr 0.0005 replaces the checkpoint's learning rate 0.001" in capsys.readouterr().out
    model = xvae.load(out / "model.xvae")
    assert model.epoch == 4 and model.optimizer == xvae.optim.Adam(0.0005)


def test_resume_to_an_epoch_already_reached_says_nothing_to_do(run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out), "--resume", str(out / "checkpoints")]) == 0
    said = capsys.readouterr().out
    assert "reached epoch 2" in said and "nothing to do" in said and "--epochs 3" in said
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing written


def test_train_writes_one_line_per_epoch_when_not_a_terminal(tmp_path, capsys):
    out = tmp_path / "lines"
    assert main(["train", "--backend", "numpy", "--limit", "100", "--hidden", "8", "--epochs", "3",
                 "--out", str(out), "--no-plots"]) == 0
    said = capsys.readouterr()
    assert "\r" not in said.out + said.err
    epochs = [line for line in said.out.splitlines() if line.startswith("epoch ")]
    assert [line.split(" - ")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert main(["train", "--backend", "numpy", "--limit", "100", "--hidden", "8", "--epochs", "1",
                 "--out", str(out), "--no-plots", "--verbose", "0"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]


def test_evaluate_and_resume_take_the_dataset_from_the_checkpoint(tmp_path, capsys):
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST test split not found in {MNIST_DIR} (set XVAE_TEST_MNIST_DIR)")
    out = tmp_path / "mnist"
    data = ["--data-dir", str(MNIST_DIR), "--limit", "100"]
    assert main(["train", "--backend", "numpy", "--hidden", "8", "--dataset", "mnist", "--split", "test", *data,
                 "--epochs", "1", "--out", str(out), "--no-plots", "--verbose", "0"]) == 0
    assert xvae.load(out / "model.xvae").metadata["dataset"] == {"name": "mnist", "split": "test",
                                                                   "image_shape": [28, 28]}
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.xvae"), *data]) == 0  # no --dataset: mnist, not digits
    result = json.loads(capsys.readouterr().out)
    assert (result["dataset"], result["split"]) == ("mnist", "test") and np.isfinite(result["loss"])
    assert main(["train", "--backend", "numpy", *data, "--epochs", "2", "--out", str(out), "--no-plots",
                 "--verbose", "0", "--resume", str(out / "model.xvae")]) == 0
    assert "on mnist/test (100 examples)" in capsys.readouterr().out
