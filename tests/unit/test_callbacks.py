"""Callbacks and History (issue 4.4): early stopping, checkpoints, CSV/JSON loggers, user hooks."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

import xvae
from xvae import checkpoint
from xvae.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
)

SPEC = xvae.VAESpec(input_dim=6, hidden=(8,), latents=2)
X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
FIT = {"batch_size": 16, "progress": False}


def vae() -> xvae.VAE:
    return xvae.VAE(SPEC, backend="numpy", seed=0)


class FakeModel:
    """What a callback sees of a model, with weights that record the epoch they belong to."""

    def __init__(self) -> None:
        self.stop_training = False
        self.epoch = 0
        self.weights = {"w": np.zeros(2, np.float32)}

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.weights.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights


def drive(cb: Callback, values: list[float], monitor: str = "val_loss") -> FakeModel:
    """Run `cb` over epochs whose `monitor` takes `values`, as fit would; stops when asked."""
    model = FakeModel()
    cb.on_train_begin(model)
    for epoch, value in enumerate(values, start=1):
        model.epoch = epoch
        model.weights = {"w": np.full(2, epoch, np.float32)}
        cb.on_epoch_end(model, epoch, {"loss": 1.0, monitor: value})
        if model.stop_training:
            break
    cb.on_train_end(model)
    return model


# -- EarlyStopping ------------------------------------------------------------------------

def test_early_stopping_waits_patience_epochs_without_improvement():
    es = EarlyStopping(patience=2)
    model = drive(es, [5.0, 4.0, 4.5, 4.2, 3.0, 2.0])
    assert model.stop_training and es.stopped_epoch == 4 and model.epoch == 4  # 3 and 4 did not improve
    assert (es.best, es.best_epoch) == (4.0, 2)
    assert model.weights["w"][0] == 4  # restore_best_weights is off


def test_early_stopping_min_delta_mode_and_patience_zero():
    es = EarlyStopping(monitor="val_accuracy", patience=0, min_delta=0.05)  # auto -> max for accuracy
    assert es.mode == "max"
    drive(es, [0.5, 0.6, 0.62, 0.9], monitor="val_accuracy")
    assert es.stopped_epoch == 3 and es.best_epoch == 2  # +0.02 is below min_delta
    assert EarlyStopping(monitor="kl").mode == "min"
    assert not drive(EarlyStopping(patience=5), [3.0, 2.0, 1.0]).stop_training


def test_early_stopping_ignores_non_finite_values():
    es = EarlyStopping(patience=2)
    drive(es, [2.0, math.nan, 1.0])
    assert es.best == 1.0 and es.stopped_epoch == 0


def test_restore_best_weights_at_the_end_of_fit():
    es = EarlyStopping(patience=1, restore_best_weights=True)
    model = drive(es, [3.0, 1.0, 2.0, 2.5])
    assert es.stopped_epoch == 3 and model.weights["w"][0] == 2  # the weights of epoch 2
    es = EarlyStopping(patience=10, restore_best_weights=True)
    model = drive(es, [3.0, 1.0, 2.0])  # never stopped: restored all the same (as Keras 3)
    assert model.weights["w"][0] == 2


def test_early_stopping_in_fit_restores_the_best_weights():
    model = vae()
    seen: dict[int, dict[str, np.ndarray]] = {}
    record = LambdaCallback(lambda m, epoch, logs: seen.__setitem__(epoch, m.get_weights()))
    # min_delta is huge: epoch 1 is the best, epoch 2 does not improve, patience 1 stops there
    es = EarlyStopping(monitor="val_loss", patience=1, min_delta=1e9, restore_best_weights=True)
    h = model.fit(X, epochs=10, validation_data=X[:8], callbacks=[record, es], **FIT)
    assert h.epoch == [1, 2] and model.epoch == 2 and es.stopped_epoch == 2
    for name, w in seen[1].items():
        np.testing.assert_array_equal(model.get_weights()[name], w, err_msg=name)


def test_early_stopping_names_what_is_missing():
    with pytest.raises(xvae.ConfigError, match=r"EarlyStopping monitors 'val_loss', which fit does not report. "
                                               r"Available: loss, reconstruction, kl, lr \(val_\* needs validation_data=\)"):
        vae().fit(X, epochs=2, callbacks=[EarlyStopping()], **FIT)


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"mode": "up"}, "mode must be 'min', 'max' or 'auto'"),
    ({"patience": -1}, "patience must be an integer >= 0"),
    ({"patience": 1.5}, "patience must be an integer >= 0"),
    ({"min_delta": -0.1}, "min_delta must be a finite number >= 0"),
    ({"monitor": ""}, "monitor must be a metric name"),
])
def test_early_stopping_arguments(kwargs, pattern):
    with pytest.raises(xvae.ConfigError, match=pattern):
        EarlyStopping(**kwargs)


# -- ModelCheckpoint ----------------------------------------------------------------------

def test_model_checkpoint_every_and_keep(tmp_path):
    cb = ModelCheckpoint(tmp_path, every=2, keep=2)
    model = vae()
    model.fit(X, epochs=7, callbacks=[cb], **FIT)
    assert [e for e, _ in checkpoint.list_checkpoints(tmp_path)] == [4, 6]
    assert cb.last_saved == tmp_path / "epoch-0006.xvae" and xvae.load(cb.last_saved).epoch == 6


def test_model_checkpoint_save_best_only(tmp_path):
    cb = ModelCheckpoint(tmp_path, save_best_only=True, monitor="val_loss")
    model = FakeSaver()
    cb.on_train_begin(model)
    for epoch, value in enumerate([3.0, 2.0, 2.5, 1.0, 1.5], start=1):
        model.epoch = epoch
        cb.on_epoch_end(model, epoch, {"val_loss": value})
    assert model.saved == [(1, tmp_path / "best.xvae"), (2, tmp_path / "best.xvae"), (4, tmp_path / "best.xvae")]


class FakeSaver(FakeModel):
    def __init__(self) -> None:
        super().__init__()
        self.saved: list[tuple[int, object]] = []

    def save(self, path: object) -> None:
        self.saved.append((self.epoch, path))


def test_model_checkpoint_never_prunes_what_it_just_wrote(tmp_path):
    """Checkpoints of a longer earlier run in the same folder: the new one is kept regardless."""
    model = vae()
    for epoch in (10, 11, 12):
        model.epoch = epoch
        model.save(tmp_path / f"epoch-{epoch:04d}.xvae")
    fresh = vae()
    fresh.fit(X, epochs=1, callbacks=[ModelCheckpoint(tmp_path, keep=2)], **FIT)
    assert [e for e, _ in checkpoint.list_checkpoints(tmp_path)] == [1, 11, 12]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "pruning leaves no trash behind"


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"every": 0}, "every must be an integer >= 1"),
    ({"keep": 0}, "keep must be an integer >= 1"),
    ({"keep": True}, "keep must be an integer >= 1"),
    ({"save_best_only": True, "mode": "sideways"}, "mode must be"),
])
def test_model_checkpoint_arguments(tmp_path, kwargs, pattern):
    with pytest.raises(xvae.ConfigError, match=pattern):
        ModelCheckpoint(tmp_path, **kwargs)


# -- loggers ------------------------------------------------------------------------------

def test_csv_logger_writes_the_history(tmp_path):
    path = tmp_path / "logs" / "train.csv"
    h = vae().fit(X, epochs=3, callbacks=[CSVLogger(path)], **FIT)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "reconstruction", "kl", "lr"] and len(rows) == 4
    columns = CSVLogger.read(path)
    assert columns["epoch"] == [1.0, 2.0, 3.0]
    for name, values in h.history.items():
        assert columns[name] == values, name  # full precision: floats round-trip exactly


def test_csv_logger_append_and_new_columns(tmp_path):
    path = tmp_path / "train.csv"
    model = vae()
    model.fit(X, epochs=2, callbacks=[CSVLogger(path)], **FIT)
    model.fit(X, epochs=1, callbacks=[CSVLogger(path)], **FIT)  # append=False: a new file
    assert CSVLogger.read(path)["epoch"] == [3.0]
    model.fit(X, epochs=1, callbacks=[CSVLogger(path, append=True)], validation_data=X[:8], **FIT)
    columns = CSVLogger.read(path)
    assert columns["epoch"] == [3.0, 4.0]
    assert math.isnan(columns["val_loss"][0]) and columns["val_loss"][1] > 0  # header widened, old cell empty


def test_json_logger(tmp_path):
    path = tmp_path / "train.jsonl"
    h = vae().fit(X, epochs=2, callbacks=[JSONLogger(path)], **FIT)
    records = JSONLogger.read(path)
    assert [r["epoch"] for r in records] == [1, 2]
    assert [r["loss"] for r in records] == h.history["loss"]
    cb = JSONLogger(path, append=True)
    cb.on_epoch_end(None, 3, {"loss": math.inf})
    assert json.loads(path.read_text().splitlines()[-1]) == {"epoch": 3, "loss": None}  # strict JSON


# -- user callbacks -----------------------------------------------------------------------

def test_user_callbacks_see_every_hook_in_order():
    calls: list[tuple[object, ...]] = []

    class Recorder(Callback):
        def on_train_begin(self, model):
            calls.append(("begin", model.epoch))

        def on_epoch_end(self, model, epoch, logs):
            calls.append(("epoch", epoch, sorted(logs)))

        def on_train_end(self, model):
            calls.append(("end", model.epoch))

    model = vae()
    model.fit(X, epochs=2, callbacks=[Recorder()], **FIT)
    assert calls == [("begin", 0), ("epoch", 1, ["kl", "loss", "lr", "reconstruction"]),
                     ("epoch", 2, ["kl", "loss", "lr", "reconstruction"]), ("end", 2)]


def test_a_callback_can_stop_training():
    def stop_at_2(model, epoch, logs):
        model.stop_training = epoch == 2

    model = vae()
    h = model.fit(X, epochs=5, callbacks=[LambdaCallback(stop_at_2)], **FIT)
    assert h.epoch == [1, 2] and model.epoch == 2


def test_lambda_callback_hooks():
    calls: list[str] = []
    cb = LambdaCallback(on_epoch_end=lambda m, e, logs: calls.append(f"epoch {e}"),
                        on_train_begin=lambda m: calls.append("begin"), on_train_end=lambda m: calls.append("end"))
    vae().fit(X, epochs=2, callbacks=[cb], **FIT)
    assert calls == ["begin", "epoch 1", "epoch 2", "end"]
    LambdaCallback().on_epoch_end(None, 1, {})  # every hook optional
    with pytest.raises(xvae.ConfigError, match="LambdaCallback.on_epoch_end must be a function"):
        LambdaCallback(on_epoch_end=3)  # type: ignore[arg-type]


# -- History ------------------------------------------------------------------------------

def test_history_round_trips_through_json(tmp_path):
    h = vae().fit(X, epochs=2, validation_data=X[:8], **FIT)
    assert xvae.History.from_json(h.to_json()) == h
    h.to_json(tmp_path / "h.json")
    back = xvae.History.from_json(tmp_path / "h.json")
    assert back == h and back.params == h.params and back.epoch == [1, 2]
    assert xvae.History.from_json(str(tmp_path / "h.json")) == h


def test_history_json_is_strict_and_keeps_nan():
    h = xvae.History({"loss": [1.0, math.nan, math.inf]}, [1, 2, 3], {"batch_size": np.int64(32)})
    text = h.to_json()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["history"]["loss"] == [1.0, None, None] and data["params"]["batch_size"] == 32
    back = xvae.History.from_json(text)
    assert back.history["loss"][0] == 1.0 and math.isnan(back.history["loss"][1])


def test_history_extend_continues_a_resumed_run():
    a = xvae.History({"loss": [3.0, 2.0]}, [1, 2])
    a.extend(xvae.History({"loss": [1.5]}, [3]))
    assert a.history == {"loss": [3.0, 2.0, 1.5]} and a.epoch == [1, 2, 3]


@pytest.mark.parametrize(("text", "pattern"), [
    ("{not json", "Invalid History JSON"),
    ('{"history": {"loss": ["x"]}}', "not a number"),
    ('{"history": [1]}', "must map metric names"),
    ('{"epoch": [1.5]}', "'epoch' must be a list of integers"),
    ("[1]", "A History is a dict"),
])
def test_history_from_bad_json(text, pattern):
    with pytest.raises(xvae.DataError, match=pattern):
        xvae.History.from_json(text)


def test_history_from_a_missing_file(tmp_path):
    with pytest.raises(xvae.DataError, match="Cannot read a History from .*nope.json") as err:
        xvae.History.from_json(tmp_path / "nope.json")
    assert err.value.path == str(tmp_path / "nope.json")


# -- issue 16, item 4: foreign callbacks are refused before training --------------------------


def test_foreign_callbacks_are_refused_before_any_step():
    """A Keras-style callback (same hook names, other arguments) used to crash after a whole epoch."""
    EarlyStopping = type("EarlyStopping", (), {  # what keras.callbacks.EarlyStopping looks like to xvae
        "__module__": "keras.src.callbacks.early_stopping",
        "on_train_begin": lambda self, logs=None: None,
        "on_epoch_end": lambda self, epoch, logs=None: None,
        "on_train_end": lambda self, logs=None: None,
    })
    vae = xvae.VAE(xvae.VAESpec(input_dim=4, latents=2), backend="numpy")
    x = np.random.default_rng(0).random((8, 4), dtype=np.float32)
    with pytest.raises(xvae.ConfigError, match=r"callbacks\[0\] is not a callback xvae can call "
                       r"\(a keras\.src\.callbacks\.early_stopping\.EarlyStopping\): use xvae\.callbacks\.EarlyStopping"):
        vae.fit(x, epochs=1, callbacks=[EarlyStopping()], progress=False)
    assert vae.epoch == 0 and vae.optimizer is None  # refused before anything ran
    with pytest.raises(xvae.ConfigError, match=r"callbacks\[1\].*subclass xvae.callbacks.Callback"):
        vae.fit(x, epochs=1, callbacks=[xvae.callbacks.Callback(), object()], progress=False)
    with pytest.raises(xvae.ConfigError, match=r"LambdaCallback\(on_epoch_end=fn\)"):
        vae.fit(x, epochs=1, callbacks=[lambda model, epoch, logs: None], progress=False)
