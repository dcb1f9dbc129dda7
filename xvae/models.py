"""The user-facing models: `VAE` and `Classifier`, a spec plus a compiled backend program.

A model owns one `numpy.random.Generator`, seeded at construction: it draws the initial
weights, then every epoch's order, binarization and noise (DESIGN §1). Backends only ever
see NumPy arrays, so the same seed gives the same numbers in every backend.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from xvae import _training, _validate
from xvae import backends as _backends
from xvae._errors import ConfigError, SpecError, XVAEError
from xvae._specs import ClassifierSpec, ModelSpec, VAESpec
from xvae.backend import CompileOptions
from xvae.history import History
from xvae.init import initialize
from xvae.losses import loss_for
from xvae.naming import weight_shapes
from xvae.optim import Adam, OptimizerSpec

__all__ = ["Model", "VAE", "Classifier"]

PRECISIONS = ("highest", "fast")
#: Rows per call for encode/decode/predict when batch_size is not given.
INFERENCE_BATCH = 1024


def _sigmoid(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    x = logits.astype(np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


class Model:
    """Common machinery of `VAE` and `Classifier`."""

    spec_type: type = object
    kind: str = ""

    def __init__(self, spec: ModelSpec, backend: str | None = None, seed: int | None = 0,
                 init: str = "glorot_uniform", precision: str = "highest", *, jit: bool = True,
                 xla: bool = True, device: str | None = None) -> None:
        if not isinstance(spec, self.spec_type):
            raise SpecError(f"{type(self).__name__} needs a {self.spec_type.__name__}. "
                            f"Received: {type(spec).__name__}")
        _validate.choice(precision, "precision", PRECISIONS)
        self.spec = spec
        self.backend = _backends.canonical_name(backend) if backend else _default_backend()
        self._backend = _backends.get(self.backend)  # raises here, not at fit()
        self.options = CompileOptions(jit=jit, xla=xla, precision=precision, device=device)  # type: ignore[arg-type]
        self.rng = np.random.default_rng(seed)
        self.init = init
        self.step = 0
        self.epoch = 0
        self.stop_training = False
        self.optimizer: OptimizerSpec | None = None
        weights = initialize(spec, self.rng, init)
        self._program = self._compile(None)
        self._program.set_state(weights)

    # -- plumbing ----------------------------------------------------------------------
    def _compile(self, optimizer: OptimizerSpec | None) -> Any:
        return self._backend.compile(self.spec, loss_for(self.spec), optimizer, self.options)

    def _prepare_training(self, optimizer: OptimizerSpec | None) -> None:
        """Compile with `optimizer`; a different optimizer starts from fresh state."""
        if optimizer is None:
            optimizer = self.optimizer or Adam(1e-3)
        if not isinstance(optimizer, OptimizerSpec):
            raise ConfigError("optimizer must be an xvae.optim spec such as xvae.optim.Adam(1e-3) "
                              f"or xvae.optim.SGD(0.01). Received: {optimizer!r}")
        if optimizer == self.optimizer:
            return
        weights, _ = self._program.get_state()
        self._program = self._compile(optimizer)
        self._program.set_state(weights)
        self.optimizer = optimizer

    @property
    def _latents(self) -> int | None:
        return None

    def _beta_for(self, beta: Any, epoch: int) -> float | None:
        return None

    def _check_xy(self, x: Any, y: Any, name: str = "x") -> tuple[NDArray[np.float32], Any]:
        raise NotImplementedError

    def _run(self, fn: str, key: str, arr: NDArray[np.float32], batch_size: int | None) -> dict[str, NDArray[np.float32]]:
        """Run an inference function in fixed-size chunks (the tail padded: one compiled shape)."""
        bs = _validate.positive_int(batch_size, "batch_size") if batch_size is not None else INFERENCE_BATCH
        if len(arr) <= bs:
            return self._program.run(fn, **{key: arr})
        parts: list[dict[str, NDArray[np.float32]]] = []
        for lo in range(0, len(arr), bs):
            chunk = arr[lo:lo + bs]
            rows = len(chunk)
            if rows < bs:
                chunk = np.concatenate([chunk, np.zeros((bs - rows, arr.shape[1]), np.float32)])
            parts.append({k: v[:rows] for k, v in self._program.run(fn, **{key: chunk}).items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    # -- weights -----------------------------------------------------------------------
    def get_weights(self) -> dict[str, NDArray[np.float32]]:
        """Canonical float32 weights (DESIGN §4): kernels (in, out), names from the spec."""
        return self._program.get_state()[0]

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Load canonical weights exactly; the optimizer state is kept."""
        self._program.set_state(check_weights(self.spec, weights), self._program.get_state()[1] or None)

    def get_optimizer_state(self) -> dict[str, NDArray[np.float32]]:
        """Canonical optimizer state (`opt.step`, `opt.m.<w>`, ...); {} before training."""
        return self._program.get_state()[1]

    # -- training ----------------------------------------------------------------------
    def _fit(self, x: Any, y: Any, *, epochs: int, batch_size: int, optimizer: Any, seed: int | None,
             shuffle: bool, binarize: str | None, validation_data: Any, progress: bool,
             steps_per_call: int, beta: Any, callbacks: Sequence[Any], checkpoint_dir: Any,
             checkpoint_every: int, keep: int, resume: bool) -> History:
        from xvae.callbacks import ModelCheckpoint

        callbacks = list(callbacks or ())
        if checkpoint_dir is not None:
            callbacks.append(ModelCheckpoint(checkpoint_dir, every=checkpoint_every, keep=keep))
        try:
            return _training.fit(self, x, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                                 seed=seed, shuffle=shuffle, binarize=binarize,
                                 validation_data=validation_data, progress=progress,
                                 steps_per_call=steps_per_call, beta=beta, callbacks=callbacks,
                                 resume=resume)
        except XVAEError as err:
            err.add_note(f"while fitting a {self.kind} on the {self.backend!r} backend")
            raise

    # -- persistence -------------------------------------------------------------------
    def save(self, path: Any) -> None:
        """Write a checkpoint directory atomically (see `xvae.checkpoint`)."""
        from xvae import checkpoint

        checkpoint.save(self, path)

    def to(self, backend: str) -> "Model":
        """The same model (weights, optimizer state, RNG, counters) on another backend."""
        other = copy.copy(self)
        other.backend = _backends.canonical_name(backend)
        other._backend = _backends.get(other.backend)
        weights, opt_state = self._program.get_state()
        other._program = other._compile(self.optimizer)
        other._program.set_state(weights, opt_state or None)
        other.rng = np.random.Generator(type(self.rng.bit_generator)())
        other.rng.bit_generator.state = copy.deepcopy(self.rng.bit_generator.state)
        return other

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, backend={self.backend!r}, epoch={self.epoch})"


def check_weights(spec: ModelSpec, weights: Any) -> dict[str, NDArray[np.float32]]:
    """Names, shapes and dtypes against the spec; raises SpecError naming the problem."""
    if not isinstance(weights, dict):
        raise SpecError(f"weights must be a dict of canonical name -> array. Received: {type(weights).__name__}")
    want = weight_shapes(spec)
    missing, extra = sorted(set(want) - set(weights)), sorted(set(weights) - set(want))
    if missing or extra:
        raise SpecError(f"weights do not match the spec: missing {missing or 'none'}, "
                        f"unexpected {extra or 'none'}.")
    out = {}
    for name, shape in want.items():
        arr = np.asarray(weights[name])
        if arr.shape != shape:
            raise SpecError(f"weights[{name!r}] must have shape {shape}. Received {arr.shape}.")
        if arr.dtype != np.float32:
            raise SpecError(f"weights[{name!r}] must be float32 (canonical weights are). Received {arr.dtype}; "
                            "convert with .astype(np.float32).")
        out[name] = np.ascontiguousarray(arr)
    return out


def _default_backend() -> str:
    names = _backends.available()
    return names[0]


class VAE(Model):
    """A variational autoencoder with a Bernoulli decoder, trained on the negative ELBO.

    Example:
        >>> vae = VAE(VAESpec(input_dim=64, hidden=(32,), latents=2), backend="numpy")
        >>> vae.encode(np.zeros((3, 64), np.float32))[0].shape
        (3, 2)
    """

    spec_type = VAESpec
    kind = "vae"

    @property
    def _latents(self) -> int:
        return self.spec.latents  # type: ignore[union-attr]

    def _beta_for(self, beta: Any, epoch: int) -> float:
        value = self.spec.beta if beta is None else (beta(epoch) if callable(beta) else beta)  # type: ignore[union-attr]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not value >= 0:
            raise ConfigError(f"beta must be a number >= 0 (or a function of the epoch returning one). "
                              f"Received: beta={value!r}")
        return float(value)

    def _check_xy(self, x: Any, y: Any, name: str = "x") -> tuple[NDArray[np.float32], None]:
        if y is not None and name == "x":
            raise ConfigError("A VAE trains on x alone: drop the y argument (labels are unused).")
        return _validate.features(x, self.spec.input_dim, name), None  # type: ignore[union-attr]

    def fit(self, x: Any, epochs: int = 1, batch_size: int = 128, optimizer: OptimizerSpec | None = None,
            seed: int | None = None, shuffle: bool = True, binarize: str | None = None,
            validation_data: Any = None, progress: bool = True, *, steps_per_call: int = 1,
            beta: float | Callable[[int], float] | None = None, callbacks: Sequence[Any] = (),
            checkpoint_dir: Any = None, checkpoint_every: int = 1, keep: int = 3,
            resume: bool = False) -> History:
        """Train on x (float32 (n, input_dim), values in [0, 1]).

        Args:
            epochs: epochs to train; with resume=True the total (Keras' initial_epoch).
            batch_size: rows per step; the last partial batch is padded and masked.
            optimizer: an `xvae.optim` spec; None keeps the current one (default Adam(1e-3)).
            seed: None continues the model's generator; an int reseeds it.
            binarize: None, "static" (x > 0.5) or "dynamic" (Bernoulli(x) drawn per epoch).
            validation_data: x_val; evaluated each epoch with fixed noise (Generator(0)).
            steps_per_call: K steps per compiled call (same numbers, less overhead).
            beta: KL weight: a number, or a function of the (1-based) epoch; default spec.beta.
            callbacks: `xvae.callbacks.Callback` objects.
            checkpoint_dir, checkpoint_every, keep: save every N epochs, keep the last `keep`.
        Returns:
            History with "loss", "reconstruction", "kl" (and "val_*") per epoch.
        """
        return self._fit(x, None, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                         shuffle=shuffle, binarize=binarize, validation_data=validation_data,
                         progress=progress, steps_per_call=steps_per_call, beta=beta,
                         callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                         checkpoint_every=checkpoint_every, keep=keep, resume=resume)

    def evaluate(self, x: Any, seed: int = 0, n_samples: int = 1, batch_size: int = 1024,
                 binarize: str | None = None) -> dict[str, float]:
        """Negative ELBO per example in nats ("loss"), "reconstruction" and "kl".

        One z sample per example, averaged over `n_samples` draws; the noise comes from
        `numpy.random.Generator(seed)`, so the figure is reproducible in every backend.
        """
        x = _validate.features(x, self.spec.input_dim)  # type: ignore[union-attr]
        _validate.choice(binarize, "binarize", (None, "static", "dynamic"))
        n_samples = _validate.positive_int(n_samples, "n_samples")
        bs = min(_validate.positive_int(batch_size, "batch_size"), len(x))
        rng = np.random.default_rng(seed)
        totals: dict[str, float] = {}
        for _ in range(n_samples):
            data = _training.draw_epoch(x, None, rng=rng, shuffle=False, binarize=binarize,
                                        latents=self._latents)
            for k, v in _training.evaluate_batches(self._program, data, bs, self._beta_for(None, 0)).items():
                totals[k] = totals.get(k, 0.0) + v / n_samples
        return totals

    def encode(self, x: Any, batch_size: int | None = None) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(mean, logvar) of q(z|x), each float32 (n, latents)."""
        out = self._run("encode", "x", _validate.features(x, self.spec.input_dim), batch_size)  # type: ignore[union-attr]
        return out["mean"], out["logvar"]

    def decode(self, z: Any, logits: bool = False, batch_size: int | None = None) -> NDArray[np.float32]:
        """Bernoulli means (n, output_dim) of p(x|z); logits=True returns the logits."""
        out = self._run("decode", "z", _validate.features(z, self._latents, "z"), batch_size)["logits"]
        return out if logits else _sigmoid(out)

    def reconstruct(self, x: Any, batch_size: int | None = None) -> NDArray[np.float32]:
        """decode(encode(x).mean): the deterministic reconstruction, no sampling."""
        return self.decode(self.encode(x, batch_size)[0], batch_size=batch_size)

    def sample(self, n: int, seed: int = 0, binary: bool = False) -> NDArray[np.float32]:
        """Decode z ~ N(0, I): Bernoulli means (n, output_dim), or 0/1 draws if binary."""
        n = _validate.positive_int(n, "n")
        rng = np.random.default_rng(seed)
        probs = self.decode(rng.standard_normal((n, self._latents), dtype=np.float32))
        return (rng.random(probs.shape, dtype=np.float32) < probs).astype(np.float32) if binary else probs


class Classifier(Model):
    """An MLP classifier: outputs=1 binary (sigmoid/BCE), outputs>1 softmax/CE, on logits.

    Example:
        >>> clf = Classifier(ClassifierSpec(input_dim=4, outputs=3), backend="numpy")
        >>> clf.predict(np.zeros((2, 4), np.float32)).shape
        (2, 3)
    """

    spec_type = ClassifierSpec
    kind = "classifier"

    def _check_xy(self, x: Any, y: Any, name: str = "x") -> tuple[NDArray[np.float32], NDArray[Any]]:
        if y is None:
            what = "fit" if name == "x" else "validation_data=(x_val, y_val)"
            raise ConfigError(f"A classifier needs labels: {what} takes y as well as x.")
        xs = _validate.features(x, self.spec.input_dim, name)  # type: ignore[union-attr]
        return xs, _validate.labels(y, len(xs), self.spec.outputs, "y" if name == "x" else f"{name} y")  # type: ignore[union-attr]

    def fit(self, x: Any, y: Any, epochs: int = 1, batch_size: int = 128,
            optimizer: OptimizerSpec | None = None, seed: int | None = None, shuffle: bool = True,
            validation_data: Any = None, progress: bool = True, *, steps_per_call: int = 1,
            callbacks: Sequence[Any] = (), checkpoint_dir: Any = None, checkpoint_every: int = 1,
            keep: int = 3, resume: bool = False) -> History:
        """Train on x (float32 (n, input_dim)) and y (0/1 labels for outputs=1, class ids otherwise).

        Arguments as in `VAE.fit`; validation_data is (x_val, y_val). History has "loss" and
        "accuracy" (and "val_*") per epoch.
        """
        return self._fit(x, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                         shuffle=shuffle, binarize=None, validation_data=validation_data,
                         progress=progress, steps_per_call=steps_per_call, beta=None,
                         callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                         checkpoint_every=checkpoint_every, keep=keep, resume=resume)

    def evaluate(self, x: Any, y: Any, batch_size: int = 1024) -> dict[str, float]:
        """{"loss", "accuracy"}: masked means over all examples (binary: logit > 0)."""
        xs, ys = self._check_xy(x, y)
        bs = min(_validate.positive_int(batch_size, "batch_size"), len(xs))
        data = _training.EpochData(xs, ys, None)
        return _training.evaluate_batches(self._program, data, bs, None)

    def predict(self, x: Any, batch_size: int | None = None, logits: bool = False) -> NDArray[np.float32]:
        """Probabilities (n, outputs): sigmoid for outputs=1, softmax otherwise."""
        out = self._run("classify", "x", _validate.features(x, self.spec.input_dim), batch_size)["logits"]  # type: ignore[union-attr]
        if logits:
            return out
        if self.spec.outputs == 1:  # type: ignore[union-attr]
            return _sigmoid(out)
        z = out.astype(np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


