"""The user-facing models: `VAE` and `Classifier`, a spec plus a compiled backend program.

A model owns a seed: `numpy.random.default_rng(seed)` draws its initial weights once, on the
host, and every epoch's order, binarization, noise and dropout masks are keyed by (seed,
epoch, example id) (`xvae.keyed`, DESIGN §1), so the same seed gives the same numbers in
every backend.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import warnings
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from xvae import _device_data, _memory, _training, _validate, distribute, keyed
from xvae import backends as _backends
from xvae._errors import ConfigError, DataError, SpecError, XVAEError
from xvae._numbers import real
from xvae._specs import ClassifierSpec, ModelSpec, VAESpec
from xvae.backend import CompileOptions
from xvae.history import History
from xvae.init import initialize
from xvae.losses import OBJECTIVES, IWAEBound, LossSpec, decoder_mean, kl_per_latent, loss_for, objective_for
from xvae.naming import STEP, towers, weight_shapes
from xvae.optim import Adam, OptimizerSpec
from xvae.schedules import Schedule

__all__ = ["Model", "VAE", "Classifier"]

PRECISIONS = ("highest", "fast")
#: Rows per call for encode/decode/predict when batch_size is not given.
INFERENCE_BATCH = 1024
#: Bytes per weight a new model holds: the canonical float32 copy and the backend's own
#: (float64 in the NumPy reference, the largest); the initialiser's float64 draw of one
#: layer comes on top.
MODEL_BYTES_PER_WEIGHT = 4 + 8
#: Bytes per output value of encode/decode/predict: the float32 chunks, their
#: concatenation, and the float64 temporary of the sigmoid/softmax.
OUTPUT_BYTES_PER_VALUE = 4 + 4 + 8


def _sigmoid(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    x = logits.astype(np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


class Model:
    """Common machinery of `VAE` and `Classifier`.

    Args:
        spec: the model's spec (`VAESpec` for a VAE, `ClassifierSpec` for a classifier).
        backend: a backend name or alias ("jax", "tf", "torch", "numpy", ...); None picks
            the first available one (`xvae.backends.available()[0]`).
        seed: an int >= 0: seeds `numpy.random.default_rng(seed)`, which draws the
            initial weights, and keys every epoch's order, binarization, noise and dropout
            masks (`xvae.keyed`). The same seed gives the same numbers in every backend.
            None: a fresh seed from the OS, kept in `model.seed` (saved with the model).
        init: weight initialiser: "glorot_uniform" (Keras' default), "lecun_normal" or
            "torch_default".
        precision: "highest" (default) pins full float32 matmuls; "fast" allows TF32/bf16.
        jit: compile the steps (jax.jit / tf.function / torch.compile where it pays off).
        xla: TensorFlow only: tf.function(jit_compile=True).
        device: a framework device string ("cpu", "cuda:0", "gpu"); None picks the best.

    Raises:
        SpecError: `spec` is not the model's spec type.
        BackendNotFoundError: unknown backend name.
        BackendUnavailableError: the backend's framework is not installed (the message
            gives the pip command). Raised here, at construction, not at `fit`.
    """

    spec_type: type = object
    kind: str = ""

    def __init__(self, spec: ModelSpec, backend: str | None = None, seed: int | None = 0,
                 init: str = "glorot_uniform", precision: str = "highest", *, jit: bool = True,
                 xla: bool = True, device: str | None = None) -> None:
        if not isinstance(spec, self.spec_type):
            raise SpecError(f"{type(self).__name__} needs a {self.spec_type.__name__}. "
                            f"Received: {type(spec).__name__}")
        _validate.choice(precision, "precision", PRECISIONS)
        jit, xla = _validate.flag(jit, "jit"), _validate.flag(xla, "xla")
        if device is not None and not isinstance(device, str):
            raise ConfigError(f"device must be None or a device string such as 'cpu' or 'cuda:0'. "
                              f"Received: device={device!r:.200}")
        self.spec = spec
        self.backend = _backends.canonical_name(backend) if backend is not None else _default_backend()
        self._backend = _backends.get(self.backend)  # raises here, not at fit()
        self.options = CompileOptions(jit=jit, xla=xla, precision=precision, device=device)  # type: ignore[arg-type]
        seed = _validate.seed(seed)
        #: keys every training draw (`xvae.keyed`); `fit(seed=...)` replaces it
        self.seed: int = keyed.random_seed() if seed is None else seed
        self.init = init
        self.step = 0
        self.epoch = 0
        self.stop_training = False
        self.optimizer: OptimizerSpec | None = None
        self._compiled_optimizer: OptimizerSpec | None = None  # what self._program runs
        #: JSON-ready notes saved with the model (`xvae train` records its dataset here).
        self.metadata: dict[str, Any] = {}
        _check_model_fits(spec)
        weights = initialize(spec, np.random.default_rng(self.seed), init)  # a one-time host draw
        self._program = self._compile(None)
        self._program.set_state(weights)

    # -- plumbing ----------------------------------------------------------------------
    #: The loss the model trains with (`VAE.fit(loss=...)`); None: `loss_for(spec)`.
    _objective: LossSpec | None = None

    def _compile(self, optimizer: OptimizerSpec | None) -> Any:
        loss = self._objective or loss_for(self.spec)
        program = self._backend.compile(self.spec, loss, optimizer, self.options)
        self._compiled_loss = loss
        return program

    def _resolve_optimizer(self, optimizer: Any) -> OptimizerSpec:
        """`optimizer`, or the current one (default Adam(1e-3)); ConfigError if not a spec."""
        if optimizer is None:
            optimizer = self.optimizer or Adam(1e-3)
        if not isinstance(optimizer, OptimizerSpec):
            raise ConfigError("optimizer must be an xvae.optim spec such as xvae.optim.Adam(1e-3) "
                              f"or xvae.optim.SGD(0.01). Received: {optimizer!r:.200}")
        return optimizer

    def _prepare_training(self, optimizer: OptimizerSpec | None) -> None:
        """Make the program run `optimizer`, keeping the optimizer's state where it can.

        Only `lr` differs: nothing to do (the rate is a step input), state kept, no recompile.
        Other hyperparameters of the same kind differ: recompile, carry the step counter and
        every slot both specs have (as PyTorch's ``param_group[...] = ...`` and optax's
        `inject_hyperparams` keep them). Another kind (Adam -> SGD): recompile with fresh
        state, and warn, because the moments and the step count are lost.
        """
        optimizer = self._resolve_optimizer(optimizer)
        compiled = self._compiled_optimizer
        if (compiled is not None and optimizer.without_lr() == compiled.without_lr()
                and self._compiled_loss == (self._objective or loss_for(self.spec))):
            self.optimizer = self._compiled_optimizer = optimizer  # same program: the rate is an input
            return
        weights, state = self._program.get_state()
        new_kind = compiled is not None and compiled.kind != optimizer.kind
        carried = None
        if compiled is not None and not new_kind:
            carried = {name: state.get(name, zero) for name, zero in optimizer.init_state(weights).items()}
        program = self._compile(optimizer)  # may refuse the spec: the model is unchanged then
        program.set_state(weights, carried)
        self._program = program
        self.optimizer = self._compiled_optimizer = optimizer
        if new_kind:
            warnings.warn(
                f"The optimizer changed kind, from {compiled.kind} to {optimizer.kind}: its state (step "  # type: ignore[union-attr]
                f"count {int(state.get(STEP, 0))}, per-weight slots {', '.join(compiled.slots) or 'none'}) "  # type: ignore[union-attr]
                "starts fresh. Changing only hyperparameters of the same kind (lr, betas, momentum, "
                "weight decay, clip_norm) keeps it.", stacklevel=_user_level())

    @property
    def learning_rate(self) -> float | None:
        """The learning rate the next training step will use: `optimizer.lr_at(step)`.

        None before the model has an optimizer. To change it between epochs (a callback's
        `on_epoch_end`), assign ``model.optimizer = dataclasses.replace(model.optimizer,
        lr=new)``: the next epoch reads it, keeps the optimizer's state and recompiles nothing.

        Examples:
            >>> import dataclasses, xvae
            >>> m = xvae.Classifier(xvae.ClassifierSpec(input_dim=2), backend="numpy")
            >>> m.optimizer = xvae.optim.SGD(xvae.schedules.LinearWarmup(peak=0.1, warmup_steps=10))
            >>> m.learning_rate
            0.0
            >>> m.step = 5; m.learning_rate
            0.05
        """
        return None if self.optimizer is None else float(self.optimizer.lr_at(self.step))

    @property
    def _latents(self) -> int | None:
        return None

    def _inference_program(self) -> Any:
        """The program evaluation runs on (a VAE training another objective overrides it)."""
        return self._program

    def _betas(self, beta: Any, epoch: int, first_step: int, steps: int) -> NDArray[np.float32] | None:
        """The KL weight of each of an epoch's steps (float32 (steps,)); None without a KL term."""
        return None

    def _check_xy(self, x: Any, y: Any, name: str = "x") -> tuple[NDArray[np.float32], Any]:
        raise NotImplementedError

    def _rows(self, x: Any, name: str = "x", likelihood: str | None = None) -> NDArray[np.float32]:
        """x as validated flat float32 rows (n, input_dim); images (n, *input_shape) are
        flattened in C order (NHWC), which is what every backend's implicit Reshape undoes."""
        shape = self.spec.input_shape  # type: ignore[union-attr]
        if len(shape) > 1 and np.shape(x)[1:] == tuple(shape):
            x = np.reshape(np.asarray(x), (len(x), -1))
        return _validate.features(x, self.spec.input_dim, name, likelihood=likelihood)  # type: ignore[union-attr]

    @functools.cached_property
    def _dropout_towers(self) -> dict[str, Any] | None:
        """The towers when the model has Dropout layers (the loop then draws masks), else None."""
        placed = towers(self.spec)
        return placed if any(p.masks for tower in placed.values() for p in tower) else None

    def _output_width(self, fn: str) -> int:
        """Values per row that the inference function `fn` returns (for the memory check)."""
        raise NotImplementedError

    def _run(self, fn: str, key: str, arr: NDArray[np.float32], batch_size: int | None,
             y: NDArray[np.float32] | None = None) -> dict[str, NDArray[np.float32]]:
        """Run an inference function in fixed-size chunks (the tail padded: one compiled shape);
        `y`: a conditional VAE's one-hot rows, chunked with `arr`."""
        bs = _validate.positive_int(batch_size, "batch_size") if batch_size is not None else INFERENCE_BATCH
        width = self._output_width(fn)
        _memory.require(len(arr) * width * OUTPUT_BYTES_PER_VALUE,
                        f"{fn} of {len(arr):,} rows ({width} output values each)",
                        "pass fewer rows per call (split the input and concatenate the results)")
        inputs = {key: arr} if y is None else {key: arr, "y": y}
        if len(arr) <= bs:
            return self._program.run(fn, **inputs)
        parts: list[dict[str, NDArray[np.float32]]] = []
        for lo in range(0, len(arr), bs):
            chunks = {name: a[lo:lo + bs] for name, a in inputs.items()}
            rows = len(chunks[key])
            if rows < bs:
                chunks = {name: np.concatenate([c, np.zeros((bs - rows, c.shape[1]), np.float32)])
                          for name, c in chunks.items()}
            parts.append({k: v[:rows] for k, v in self._program.run(fn, **chunks).items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    # -- weights -----------------------------------------------------------------------
    def get_weights(self) -> dict[str, NDArray[np.float32]]:
        """Canonical float32 weights: kernels (in, out), names from the spec.

        Returns:
            A new dict name -> float32 NumPy array, e.g. "encoder.layers.0.kernel" of shape
            (input_dim, hidden[0]) and "encoder.layers.0.bias" of shape (hidden[0],).
            Bit-exact: `set_weights(get_weights())` changes nothing, in every backend.
        """
        return self._program.get_state()[0]

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Load canonical weights exactly; the optimizer state is kept.

        Args:
            weights: name -> float32 array, exactly the names and shapes of `get_weights()`.

        Raises:
            SpecError: a name is missing or unexpected, a shape differs, or a dtype is not
                float32 (the message names the weight).
        """
        self._program.set_state(check_weights(self.spec, weights), self._program.get_state()[1] or None)

    def get_optimizer_state(self) -> dict[str, NDArray[np.float32]]:
        """Canonical optimizer state (`opt.step`, `opt.m.<w>`, ...); {} before training.

        Returns:
            name -> float32 array: "opt.step" (0-d) and one array per weight and slot,
            shaped like the weight (`opt.m.*`, `opt.v.*` for Adam; `opt.u.*` for momentum).
        """
        return self._program.get_state()[1]

    # -- training ----------------------------------------------------------------------
    def _fit(self, x: Any, y: Any, *, epochs: int, batch_size: int, optimizer: Any, seed: int | None,
             shuffle: bool, binarize: str | None, validation_data: Any, validation_split: float,
             verbose: Any, progress: bool | None,
             steps_per_call: int | str, beta: Any, callbacks: Sequence[Any], checkpoint_dir: Any,
             checkpoint_every: int, keep: int, resume: bool, devices: Any = None,
             device_data: float | str = _device_data.AUTO) -> History:
        from xvae.callbacks import ModelCheckpoint

        if devices is not None:
            self._use_devices(devices)
        callbacks = _validate.callbacks(callbacks)
        if checkpoint_dir is not None:
            callbacks.append(ModelCheckpoint(checkpoint_dir, every=checkpoint_every, keep=keep))
        try:
            return _training.fit(self, x, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                                 seed=seed, shuffle=shuffle, binarize=binarize,
                                 validation_data=validation_data, validation_split=validation_split,
                                 verbose=verbose, progress=progress,
                                 steps_per_call=steps_per_call, beta=beta, callbacks=callbacks,
                                 resume=resume, device_data=device_data)
        except XVAEError as err:
            err.add_note(f"while fitting a {self.kind} on the {self.backend!r} backend")
            raise

    def _use_devices(self, devices: Any) -> None:
        """Recompile for `devices` (`xvae.distribute`), carrying weights and optimizer state
        bit for bit; unchanged if the backend refuses them (ConfigError naming those available)."""
        wanted = distribute.normalize(devices)
        if wanted == self.options.devices:
            return
        options = dataclasses.replace(self.options, devices=wanted)
        weights, opt_state = self._program.get_state()
        program = self._backend.compile(self.spec, self._compiled_loss, self._compiled_optimizer, options)
        program.set_state(weights, opt_state or None)
        self._program, self.options = program, options

    # -- persistence -------------------------------------------------------------------
    def save(self, path: Any) -> None:
        """Write a checkpoint directory atomically (see `xvae.checkpoint`).

        Args:
            path: the checkpoint directory, e.g. "run.xvae"; an existing one is replaced
                only once the new one is complete.
        """
        from xvae import checkpoint

        checkpoint.save(self, path)

    def to(self, backend: str) -> "Model":
        """The same model (weights, optimizer state, seed, counters) on another backend.

        Args:
            backend: the target backend's name or alias.

        Returns:
            A new model of the same class; this one is unchanged. Weights and optimizer
            state are carried bit for bit, and the seed and epoch counter are kept, so
            training both continues with the same (keyed) draws.
        """
        other = copy.copy(self)
        other.backend = _backends.canonical_name(backend)
        other._backend = _backends.get(other.backend)
        weights, opt_state = self._program.get_state()
        other._program = other._compile(self._compiled_optimizer)
        other._program.set_state(weights, opt_state or None)
        other.metadata = copy.deepcopy(self.metadata)
        return other

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, backend={self.backend!r}, epoch={self.epoch})"


def _user_level() -> int:
    """The `stacklevel` that points a warning at the first frame outside xvae (the user's)."""
    import sys

    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "xvae":
        frame, level = frame.f_back, level + 1
    return level


def check_weights(spec: ModelSpec, weights: Any) -> dict[str, NDArray[np.float32]]:
    """Names, shapes and dtypes against the spec; raises SpecError naming the problem."""
    if not isinstance(weights, dict):
        raise SpecError(f"weights must be a dict of canonical name -> array. Received: {type(weights).__name__}")
    want = weight_shapes(spec)
    missing, extra = sorted(set(want) - set(weights)), sorted(set(weights) - set(want), key=repr)
    if missing or extra:
        raise SpecError(f"weights do not match the spec: missing {missing or 'none'}, "
                        f"unexpected {extra or 'none'}.")
    out = {}
    for name, shape in want.items():
        try:
            arr = np.asarray(weights[name])
        except (ValueError, TypeError) as err:  # ragged lists, objects NumPy cannot hold
            raise SpecError(f"weights[{name!r}] is not an array ({type(err).__name__}: {str(err)[:100]}). "
                            f"Pass a float32 array of shape {shape}.") from None
        if arr.shape != shape:
            raise SpecError(f"weights[{name!r}] must have shape {shape}. Received {arr.shape}.")
        if arr.dtype != np.float32:
            raise SpecError(f"weights[{name!r}] must be float32 (canonical weights are). Received {arr.dtype}; "
                            "convert with .astype(np.float32).")
        out[name] = np.ascontiguousarray(arr)
    return out


def _check_model_fits(spec: ModelSpec) -> None:
    """ConfigError before initialising a spec whose weights cannot fit in memory."""
    sizes = [math.prod(shape) for shape in weight_shapes(spec).values()]
    count = sum(sizes)
    _memory.require(count * MODEL_BYTES_PER_WEIGHT + 8 * max(sizes, default=0), f"A {spec.kind} with {count:,} weights",
                    "use smaller input_dim, hidden widths, latents or outputs")


def _default_backend() -> str:
    """The first importable backend in preference order; imports no framework after it.

    (`available()` would import every framework, ~880 MB of RSS, to pick one.)
    """
    return next(n for n in _backends.known() if _backends.why_unavailable(n) is None)


class VAE(Model):
    """A variational autoencoder trained on the negative ELBO (decoder likelihood from its spec).

    Examples:
        >>> vae = VAE(VAESpec(input_dim=64, hidden=(32,), latents=2), backend="numpy")
        >>> vae.encode(np.zeros((3, 64), np.float32))[0].shape
        (3, 2)
    """

    spec_type = VAESpec
    kind = "vae"

    @property
    def _latents(self) -> int:
        return self.spec.latents  # type: ignore[union-attr]

    @property
    def _noise_shape(self) -> int | tuple[int, int]:
        """Per-example noise of the compiled loss: (latents,) or (k, latents) for the IWAE bound."""
        loss = self._compiled_loss
        return (loss.k, self._latents) if isinstance(loss, IWAEBound) else self._latents

    def _set_objective(self, loss: Any, k: Any, free_bits: Any = None) -> None:
        """Validate fit's loss=, k= and free_bits= and make them the training objective
        (None keeps the current value)."""
        current = self._objective
        if loss is None and k is None and free_bits is None:
            return
        if free_bits is None:
            free_bits = getattr(current, "free_bits", 0.0)
        if (isinstance(free_bits, bool) or not isinstance(free_bits, (int, float, np.floating))
                or not 0 <= free_bits < float("inf")):
            raise ConfigError(f"free_bits must be a finite number >= 0 (nats per latent; 0 turns it off). "
                              f"Received: free_bits={free_bits!r:.100}")
        name = loss if loss is not None else ("iwae" if isinstance(current, IWAEBound) else "elbo")
        name = _validate.choice(name, "loss", OBJECTIVES)
        if k is None:
            k = current.k if name == "iwae" and isinstance(current, IWAEBound) else 1
        k = _validate.positive_int(k, "k")
        if name == "elbo" and k != 1:
            raise ConfigError(f'k is the number of importance samples of loss="iwae"; loss="elbo" takes '
                              f"one sample. Received: loss={name!r}, k={k}. Pass loss=\"iwae\".")
        if name == "iwae" and free_bits:
            raise ConfigError(f'free_bits applies to loss="elbo" (the KL term); the IWAE bound has no separate '
                              f"KL. Received: loss='iwae', free_bits={free_bits!r}.")
        self._objective = objective_for(self.spec, name, k, float(free_bits))  # type: ignore[arg-type]

    def _inference_program(self) -> Any:
        """A program whose eval step is the ELBO (evaluate's contract), whatever fit trains."""
        if not isinstance(self._compiled_loss, IWAEBound):
            return self._program
        program = self._backend.compile(self.spec, loss_for(self.spec), None, self.options)
        program.set_state(self._program.get_state()[0])
        return program

    def _mean(self, outputs: NDArray[np.float32]) -> NDArray[np.float32]:
        """The decoder's outputs as the mean of p(x|z), for its likelihood."""
        likelihood = self.spec.decoder.likelihood  # type: ignore[union-attr]
        return decoder_mean(likelihood, outputs).astype(np.float32)

    def _image(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        """Flat rows as (n, *output_shape) when the decoder's layers produce images."""
        dec = self.spec.decoder  # type: ignore[union-attr]
        return rows.reshape(len(rows), *dec.output_shape) if dec.layers is not None else rows

    def _output_width(self, fn: str) -> int:
        return 2 * self.spec.latents if fn == "encode" else self.spec.input_dim  # type: ignore[union-attr]

    def _betas(self, beta: Any, epoch: int, first_step: int, steps: int) -> NDArray[np.float32]:
        if isinstance(beta, Schedule):  # per step: a function of the model's step
            return _training.schedule_values(beta, "beta", first_step, steps)
        value = self.spec.beta if beta is None else (beta(epoch) if callable(beta) else beta)  # type: ignore[union-attr]
        number = real(value)
        if number is None or not number >= 0:
            raise ConfigError(f"beta must be a number >= 0, a function of the epoch returning one, or an "
                              f"xvae.schedules schedule of the step. Received: beta={value!r:.100}"
                              + (f" (at epoch {epoch})" if callable(beta) else ""))
        return np.full(steps, number, np.float32)

    def _check_xy(self, x: Any, y: Any, name: str = "x") -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        if y is not None and not self.spec.conditions:  # type: ignore[union-attr]
            where = "drop the y argument" if name == "x" else "pass validation_data=x_val, not (x_val, y_val)"
            raise ConfigError(f"A VAE trains and validates on x alone: {where} (labels are unused; a "
                              "conditional VAE takes them: VAESpec(..., conditions=number of classes)).")
        if y is None and self.spec.conditions and name != "x":  # type: ignore[union-attr]
            raise ConfigError(f"This conditional VAE (conditions={self.spec.conditions}) validates on "  # type: ignore[union-attr]
                              f"labelled data: pass {name}=(x_val, y_val).")
        # shape, finiteness, and the range the decoder's likelihood can score (Bernoulli: [0, 1])
        xs = self._rows(x, name, likelihood=self.spec.decoder.likelihood)  # type: ignore[union-attr]
        return xs, self._condition(y, len(xs), "y" if name == "x" else f"{name} y")

    def _condition(self, y: Any, n: int, name: str = "y") -> NDArray[np.float32] | None:
        """A conditional VAE's labels (`name`) as one-hot float32 (n, conditions); None for a
        plain VAE. ConfigError when a CVAE gets no labels or a plain VAE gets some."""
        classes = self.spec.conditions  # type: ignore[union-attr]
        if not classes:
            if y is not None:
                raise ConfigError(f"{name}= was given, but this VAE has no conditions (VAESpec.conditions=0): "
                                  f"drop {name} (a conditional VAE is VAESpec(..., conditions=number of "
                                  "classes)). If you meant batch_size or logits, pass them by keyword.")
            return None
        if y is None:
            raise ConfigError(f"This conditional VAE (conditions={classes}) needs class labels: pass {name}= "
                              f"(integer class ids in 0..{classes - 1}, one per row).")
        return _validate.conditions(y, n, classes, name)

    def fit(self, x: Any, y: Any = None, *, epochs: int = 1, batch_size: int = 128,
            optimizer: OptimizerSpec | None = None, seed: int | None = None, shuffle: bool = True,
            binarize: str | None = None, validation_data: Any = None, validation_split: float = 0.0,
            verbose: int | str = "auto", steps_per_call: int | str = 1,
            beta: float | Callable[[int], float] | Schedule | None = None, callbacks: Sequence[Any] = (),
            checkpoint_dir: Any = None, checkpoint_every: int = 1, keep: int = 3,
            resume: bool = False, progress: bool | None = None, loss: str | None = None,
            k: int | None = None, free_bits: float | None = None,
            devices: int | str | Sequence[str] | None = None,
            device_data: float | str = _device_data.AUTO) -> History:
        """Train on x (float32 (n, input_dim), values in [0, 1]).

        Epoch e's permutation (if `shuffle`), dynamic binarization (if
        `binarize="dynamic"`), reparameterisation noise (float32 (n, latents)) and dropout
        masks are keyed draws (`xvae.keyed`): pure functions of (model.seed, e, example
        id), so the same seed gives the same arrays in every backend, whatever the batch
        size or steps_per_call, and a resumed run continues them.

        Everything after x and y is keyword-only. A plain VAE has no labels, and `fit(x, y)`
        says so; a conditional VAE (`VAESpec.conditions`) needs them: `fit(x, y=labels)`.

        Args:
            x: training inputs, shape (n, input_dim), values in [0, 1] (cast to float32).
            y: a conditional VAE's class ids, shape (n,), integers in [0, conditions) (one-hot
                at the seam, permuted with x); None (required) for a plain VAE.
            epochs: epochs to train; with resume=True the total (Keras' initial_epoch).
            batch_size: rows per step; the last partial batch is padded and masked.
            optimizer: an `xvae.optim` spec; None keeps the current one (default Adam(1e-3)).
                Its `lr` may be an `xvae.schedules` schedule of the step. A new spec of the
                same kind keeps the optimizer's state (moments, step count); another kind
                starts fresh, with a warning.
            seed: None keeps the model's seed (`model.seed`); an int replaces it (the keyed
                draws of the coming epochs use it).
            shuffle: draw a new order every epoch.
            binarize: None, "static" (x > 0.5) or "dynamic" (Bernoulli(x) drawn per epoch).
            validation_data: x_val (a conditional VAE: (x_val, y_val)); evaluated each epoch
                with fixed noise (keyed, seed 0):
                "val_loss" is its negative ELBO (beta = 1, what `evaluate` reports) and
                "val_objective" the training objective, reconstruction + beta * kl.
            validation_split: a fraction in [0, 1): the last part of x (before shuffling,
                as in Keras) is held out and used as validation_data.
            verbose: 0 silent, 1 a progress bar per epoch with its running metrics, 2 one
                line per epoch; "auto" (default): 1 in a terminal or notebook, 2 when stdout
                is redirected (a log file gets lines, not carriage returns).
            steps_per_call: K steps per compiled call (same numbers, less overhead), or
                "epoch": a whole epoch in one call (then no callback may define per-step hooks
                such as on_batch_end: ConfigError naming it).
            beta: KL weight: a number; a function of the (1-based) epoch; or an
                `xvae.schedules` schedule of the step (`Model.step`), e.g. a KL warm-up
                ``LinearWarmup(peak=1.0, warmup_steps=2000)``; default spec.beta.
            callbacks: `xvae.callbacks.Callback` objects.
            checkpoint_dir: if given, save `checkpoint_dir/epoch-NNNN.xvae` checkpoints.
            checkpoint_every: save every N epochs.
            keep: keep the last `keep` checkpoints.
            resume: continue a loaded model: `epochs` is then the total to reach.
            progress: the older spelling of verbose: False is verbose=0, True is the default.
            loss: the objective: "elbo" (the negative ELBO, analytic KL) or "iwae" (minus the
                importance-weighted bound with `k` samples, `xvae.losses.IWAEBound`; noise
                float32 (n, k, latents) per epoch); None keeps the current one (default "elbo").
                Saved in checkpoints (with k and free_bits): `load` + `fit(resume=True)`
                continues it. With Dropout layers, each example's mask (drawn per example, as
                for the ELBO) is shared by its k samples: the bound of one sub-network.
            k: importance samples per example for loss="iwae" (an int >= 1; default 1).
            free_bits: nats per latent (Kingma et al. 2016): the ELBO charges
                sum_d max(KL_d, free_bits) per example instead of the KL, so a latent below the
                allowance feels no pull to the prior; "kl" in the history stays the KL.
                None keeps the current value (default 0: off). Not with loss="iwae".
            devices: data-parallel training (docs: "Scaling out", `xvae.distribute`): an int
                n (the backend's first n devices), "all", or a list of device names; 1 goes
                back to one device; None keeps the current setting (one device by default).
                Each global batch is the one-device batch, split over the devices by the
                framework's own engine: the same numbers to float32 rounding.
            device_data: the largest fraction of the device's free memory (host memory on
                a CPU) the training set may take to live on the device (docs: "Performance"):
                then each compiled call receives only example ids and gathers and draws its
                batches there (the same numbers to float32 rounding); a larger set is
                streamed from the host with one warning; 0 always streams. "auto" (the
                default): 0.5 on an accelerator, 0 on a CPU (where residency saves little
                and XLA's compiled loops over conv steps are slow).

        Returns:
            History with "loss" (the training objective, reconstruction + beta * kl),
            "reconstruction", "kl" and "lr" (the rate of the epoch's last step) (and
            `vectors["kl_per_latent"]`: the KL of each latent, summing to "kl"), and
            "val_loss" (the negative ELBO), "val_objective", "val_reconstruction",
            "val_kl" with validation_data, per epoch: means over the epoch's examples, nats.

        Raises:
            DataError: x has the wrong shape, NaN/inf values, or values outside [0, 1]
                (the Bernoulli decoder's range; the message suggests the rescaling).
            ConfigError: an invalid argument (the message names it).
            TrainingDivergedError: the loss became NaN or infinite (the error has the step).

        If fit raises for any reason (divergence, a callback's error, KeyboardInterrupt),
        the model is rolled back to its state before the call: weights, optimizer state,
        seed, epoch and step; a note on the error says so.
        """
        previous = self._objective
        self._set_objective(loss, k, free_bits)
        try:
            return self._fit(x, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                             shuffle=shuffle, binarize=binarize, validation_data=validation_data,
                             validation_split=validation_split, verbose=verbose,
                             progress=progress, steps_per_call=steps_per_call, beta=beta,
                             callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                             checkpoint_every=checkpoint_every, keep=keep, resume=resume, devices=devices,
                             device_data=device_data)
        except BaseException:
            if self._compiled_loss != (self._objective or loss_for(self.spec)):
                self._objective = previous  # nothing was compiled with it: keep the old objective
            raise

    def evaluate(self, x: Any, y: Any = None, *, seed: int = 0, n_samples: int = 1, batch_size: int = 1024,
                 binarize: str | None = None) -> dict[str, float]:
        """Negative ELBO per example in nats ("loss"), "reconstruction" and "kl".

        "loss" is reconstruction + kl (beta = 1), whatever beta the model trains with: the
        negative ELBO, comparable across models and runs. One z sample per example,
        averaged over `n_samples` draws; the noise comes from
        keyed draws of `xvae.keyed` (draw s of n_samples: seed `seed`, epoch s, example id =
        row index), so the figure is reproducible in every backend and with any batch size.

        Args:
            x: inputs, shape (n, input_dim), values in [0, 1].
            y: a conditional VAE's class ids (n,) (`VAESpec.conditions`); None for a plain VAE.
                The rest is keyword-only.
            seed: keys the noise (and dynamic binarization).
            n_samples: z draws per example to average over.
            batch_size: rows per evaluation step.
            binarize: None, "static" or "dynamic" (keyed like the noise).

        Returns:
            {"loss", "reconstruction", "kl"}: means over the examples, Python floats, nats.
        """
        x, cond = self._check_xy(x, y)
        _validate.choice(binarize, "binarize", (None, "static", "dynamic"))
        n_samples = _validate.positive_int(n_samples, "n_samples")
        bs = _validate.batch_size(batch_size, len(x))
        seed = _validate.seed(seed)
        seed = keyed.random_seed() if seed is None else seed  # None: fresh noise, as documented for seeds
        program = self._inference_program()
        totals: dict[str, float] = {}
        for draw in range(n_samples):
            data = _training.draw_epoch(x, cond, seed=seed, epoch=draw, shuffle=False, binarize=binarize,
                                        latents=self._latents)
            for k, v in _training.evaluate_batches(program, data, bs, _training.ELBO_BETA).items():
                totals[k] = totals.get(k, 0.0) + v / n_samples
        return totals

    def log_likelihood(self, x: Any, k: int = 1000, seed: int = 0, batch_size: int | None = None, *,
                       y: Any = None) -> NDArray[np.float64]:
        """Importance-weighted estimate of log p(x) per example (IWAE_k, Burda et al. 2016), nats.

        ``log (1/k) sum_i p(x, z_i) / q(z_i | x)`` with z_i drawn from the encoder: a lower
        bound of log p(x) that tightens as k grows (k = 1 is a one-sample ELBO). The noise of
        example i is keyed by (seed, i) (`xvae.importance`, `xvae.keyed`), so
        batch_size never changes the figure and every backend sees the same draws. The
        log-sum-exp over samples is accumulated in float64, chunk by chunk: memory does not
        grow with k. Papers report ``-log_likelihood(x_test, k=5000).mean()`` as "NLL".

        Args:
            x: inputs, shape (n, input_dim) (or images), values as for `fit`.
            k: importance samples per example, an int >= 1.
            seed: keys the noise, with each example's row index.
            batch_size: (example, sample) pairs per backend call (default 1024): the memory knob.
            y: a conditional VAE's class ids (n,): the estimate is then of log p(x | y).

        Returns:
            float64 array (n,): IWAE_k of each example, in nats (negative numbers for
            discrete likelihoods).

        Raises:
            ConfigError: k, seed or batch_size is not a valid integer (the message names it).
            DataError: x has the wrong shape or non-finite values.
        """
        from xvae import importance

        k = importance.check_k(k)
        seed = _validate.seed(seed)
        if seed is None:
            raise ConfigError("log_likelihood needs an integer seed >= 0 (it keys the noise). Received: seed=None")
        bs = importance.IMPORTANCE_BATCH if batch_size is None else _validate.positive_int(batch_size, "batch_size")
        rows, cond = self._check_xy(x, y)  # shape, finiteness and the likelihood's range; the labels
        return importance.log_likelihood(self._program, rows, k=k, seed=seed, latents=self._latents, batch_size=bs,
                                         y=cond)

    def kl_per_latent(self, x: Any, batch_size: int | None = None, *, y: Any = None) -> NDArray[np.float64]:
        """KL(q(z_d | x) || N(0, 1)) of each latent d, mean over the examples: float64 (latents,).

        Sums to `evaluate(x)["kl"]`. A collapsed latent has KL ~ 0; `fit` records its running
        counterpart per epoch in `History.vectors["kl_per_latent"]` (the mean over the epoch's
        training steps, as the history's "kl").

        Args:
            x: inputs, shape (n, input_dim).
            batch_size: rows per encoder call (default 1024).
            y: a conditional VAE's class ids (n,).
        """
        mean, logvar = self.encode(x, y, batch_size)
        return kl_per_latent(mean, logvar).mean(axis=0)

    def latent_activity(self, x: Any, batch_size: int | None = None, *, y: Any = None) -> NDArray[np.float64]:
        """Per latent, the variance over the examples of the posterior mean E_q[z_d | x]:
        Burda et al. (2016)'s activity statistic A_d = Cov_x(E_q[z_d]) (float64 (latents,)).

        A latent the decoder ignores has q(z_d | x) = N(0, 1) for every x (posterior
        collapse): its mean does not move with x, A_d ~ 0.

        Args:
            x: inputs, shape (n, input_dim), n >= 2.
            batch_size: rows per encoder call (default 1024).
            y: a conditional VAE's class ids (n,).
        """
        mean = self.encode(x, y, batch_size)[0].astype(np.float64)
        if len(mean) < 2:
            raise DataError(f"latent_activity needs at least 2 examples (a variance over x). Received: {len(mean)}")
        return np.var(mean, axis=0, ddof=0)

    def active_units(self, x: Any, threshold: float = 0.01, batch_size: int | None = None, *, y: Any = None) -> int:
        """How many latents are active: A_d > threshold (Burda et al. 2016 use 0.01).

        Args:
            x: inputs, shape (n, input_dim) (e.g. the test set).
            threshold: the activity above which a latent counts as used, a number > 0.
            batch_size: rows per encoder call (default 1024).
            y: a conditional VAE's class ids (n,).

        Returns:
            The number of latents d with `latent_activity(x)[d] > threshold`.

        Examples:
            >>> vae = VAE(VAESpec(input_dim=8, hidden=(4,), latents=3), backend="numpy")
            >>> 0 <= vae.active_units(np.eye(8, dtype=np.float32)) <= 3
            True
        """
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not threshold > 0:
            raise ConfigError(f"threshold must be a number > 0 (Burda et al. use 0.01). Received: threshold={threshold!r:.100}")
        return int(np.sum(self.latent_activity(x, batch_size, y=y) > threshold))

    def encode(self, x: Any, y: Any = None, batch_size: int | None = None
               ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(mean, logvar) of q(z|x) (of q(z|x, y) for a conditional VAE), each float32 (n, latents).

        Args:
            x: inputs, shape (n, input_dim).
            y: a conditional VAE's class ids (n,) in [0, conditions); None for a plain VAE.
            batch_size: rows per call (default 1024); the tail is padded.

        Returns:
            (mean, logvar), each float32 of shape (n, latents).
        """
        rows = self._rows(x)
        out = self._run("encode", "x", rows, batch_size, self._condition(y, len(rows)))
        return out["mean"], out["logvar"]

    def decode(self, z: Any, y: Any = None, logits: bool = False, batch_size: int | None = None) -> NDArray[np.float32]:
        """The means of p(x|z) (p(x|z, y) for a conditional VAE), (n, output_dim); logits=True
        returns the decoder's raw outputs.

        The mean is the likelihood's: sigmoid(logits) (Bernoulli), the output itself
        (Gaussian), the continuous Bernoulli's mean. A decoder whose layers produce images
        returns (n, *output_shape).

        Args:
            z: latent codes, shape (n, latents).
            y: a conditional VAE's class ids (n,) (or one int for all rows); None for a plain VAE.
            logits: return the decoder's logits instead of sigmoid(logits).
            batch_size: rows per call (default 1024).

        Returns:
            float32 array of shape (n, output_dim) (or (n, *output_shape)): means, or logits.
        """
        codes = _validate.features(z, self._latents, "z")
        out = self._run("decode", "z", codes, batch_size, self._condition(y, len(codes)))["logits"]
        return self._image(out if _validate.flag(logits, "logits") else self._mean(out))

    def reconstruct(self, x: Any, y: Any = None, batch_size: int | None = None) -> NDArray[np.float32]:
        """decode(encode(x).mean): the deterministic reconstruction, no sampling.

        Args:
            x: inputs, shape (n, input_dim).
            y: a conditional VAE's class ids (n,); None for a plain VAE.
            batch_size: rows per call (default 1024).

        Returns:
            float32 means of p(x|z) of shape (n, input_dim) (images for an image decoder).
        """
        rows = self._rows(x)
        cond = self._condition(y, len(rows))
        mean = self._run("encode", "x", rows, batch_size, cond)["mean"]  # internal: NaN weights give NaN out
        return self._image(self._mean(self._run("decode", "z", mean, batch_size, cond)["logits"]))

    def sample(self, n: int, seed: int = 0, binary: bool = False, *, y: Any = None) -> NDArray[np.float32]:
        """Decode z ~ N(0, I): means of p(x|z) (n, output_dim), or 0/1 draws if binary.

        Args:
            n: how many samples.
            seed: keys the draws (`xvae.keyed`, purpose SAMPLE): sample i's z (float32
                (latents,)) is its elements 0 .. latents-1 and, if binary, its Bernoulli
                uniforms the next output_dim elements: the same samples in every backend, and
                sample i does not depend on n.
            binary: return 0.0/1.0 draws from the means instead of the means.
            y: a conditional VAE's classes: n class ids, or one int for all n samples
                (p(x | z, y)); None for a plain VAE.

        Returns:
            float32 array of shape (n, output_dim).
        """
        n = _validate.positive_int(n, "n")
        binary = _validate.flag(binary, "binary")
        width = self.spec.input_dim  # type: ignore[union-attr]
        _memory.require(n * (4 * self._latents + width * (OUTPUT_BYTES_PER_VALUE + (8 if binary else 0))),
                        f"sample(n={n:,}) of {width} values each", "draw fewer samples per call, in a loop")
        cond = self._condition(y, n)
        seed = _validate.seed(seed)
        seed = keyed.random_seed() if seed is None else seed
        ids = np.arange(n, dtype=np.int64)
        z = keyed.normal(seed, 0, keyed.SAMPLE, ids, self._latents)
        probs = self._image(self._mean(self._run("decode", "z", z, None, cond)["logits"]))
        if binary and self.spec.decoder.likelihood == "gaussian":  # type: ignore[union-attr]
            raise ConfigError("sample(binary=True) draws 0/1 pixels from Bernoulli means; this decoder is "
                              "Gaussian. Use binary=False for its means.")
        if not binary:
            return probs
        u = keyed.uniform(seed, 0, keyed.SAMPLE, ids, width, first=self._latents).reshape(probs.shape)
        return (u < probs).astype(np.float32)


class Classifier(Model):
    """An MLP classifier: outputs=1 binary (sigmoid/BCE), outputs>1 softmax/CE, on logits.

    Examples:
        >>> clf = Classifier(ClassifierSpec(input_dim=4, outputs=3), backend="numpy")
        >>> clf.predict(np.zeros((2, 4), np.float32)).shape
        (2, 3)
    """

    spec_type = ClassifierSpec
    kind = "classifier"

    def _output_width(self, fn: str) -> int:
        return self.spec.outputs  # type: ignore[union-attr]

    def _check_xy(self, x: Any, y: Any, name: str = "x") -> tuple[NDArray[np.float32], NDArray[Any]]:
        if y is None:
            what = "fit" if name == "x" else "validation_data=(x_val, y_val)"
            raise ConfigError(f"A classifier needs labels: {what} takes y as well as x.")
        xs = self._rows(x, name)
        return xs, _validate.labels(y, len(xs), self.spec.outputs, "y" if name == "x" else f"{name} y")  # type: ignore[union-attr]

    def fit(self, x: Any, y: Any = None, *, epochs: int = 1, batch_size: int = 128,
            optimizer: OptimizerSpec | None = None, seed: int | None = None, shuffle: bool = True,
            validation_data: Any = None, validation_split: float = 0.0, verbose: int | str = "auto",
            steps_per_call: int | str = 1, callbacks: Sequence[Any] = (), checkpoint_dir: Any = None,
            checkpoint_every: int = 1, keep: int = 3, resume: bool = False,
            progress: bool | None = None,
            devices: int | str | Sequence[str] | None = None,
            device_data: float | str = _device_data.AUTO) -> History:
        """Train on x (float32 (n, input_dim)) and y (0/1 labels for outputs=1, class ids otherwise).

        Arguments as in `VAE.fit`; validation_data is (x_val, y_val). History has "loss" and
        "accuracy" (and "val_*") per epoch.

        Args:
            x: inputs, shape (n, input_dim).
            y: labels: 0/1 of shape (n,) or (n, 1) for outputs=1; integer class ids of shape
                (n,) otherwise.
            epochs: epochs to train; with resume=True the total.
            batch_size: rows per step; the last partial batch is padded and masked.
            optimizer: an `xvae.optim` spec; None keeps the current one (default Adam(1e-3)).
            seed: None keeps the model's seed (`model.seed`); an int replaces it (the keyed
                draws of the coming epochs use it).
            shuffle: draw a new order every epoch.
            validation_data: (x_val, y_val), evaluated after each epoch.
            validation_split: hold out the last fraction of (x, y), before shuffling (Keras).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch, "auto" (see `VAE.fit`).
            steps_per_call: K steps per compiled call (same numbers, less overhead), or "epoch".
            callbacks: `xvae.callbacks.Callback` objects.
            checkpoint_dir: if given, save `checkpoint_dir/epoch-NNNN.xvae` checkpoints.
            checkpoint_every: save every N epochs.
            keep: keep the last `keep` checkpoints.
            resume: continue a loaded model: `epochs` is then the total to reach.
            progress: the older spelling of verbose: False is verbose=0.
            devices: data-parallel training (docs: "Scaling out", `xvae.distribute`): an int
                n (the backend's first n devices), "all", or a list of device names; 1 goes
                back to one device; None keeps the current setting (one device by default).
                Each global batch is the one-device batch, split over the devices by the
                framework's own engine: the same numbers to float32 rounding.
            device_data: the largest fraction of the device's free memory the training set
                may take to live on the device (see `VAE.fit`); 0 streams it from the host;
                "auto" (the default): 0.5 on an accelerator, 0 on a CPU.

        Returns:
            History with "loss", "accuracy" and "lr" (and "val_*") per epoch.
        """
        return self._fit(x, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                         shuffle=shuffle, binarize=None, validation_data=validation_data,
                         validation_split=validation_split, verbose=verbose, progress=progress,
                         steps_per_call=steps_per_call, beta=None,
                         callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                         checkpoint_every=checkpoint_every, keep=keep, resume=resume, devices=devices,
                         device_data=device_data)

    def evaluate(self, x: Any, y: Any = None, *, batch_size: int = 1024) -> dict[str, float]:
        """{"loss", "accuracy"}: masked means over all examples (binary: logit > 0).

        Args:
            x: inputs, shape (n, input_dim).
            y: labels as in `fit`.
            batch_size: rows per evaluation step.

        Returns:
            {"loss": mean cross-entropy in nats, "accuracy": fraction correct}, floats.
        """
        xs, ys = self._check_xy(x, y)
        bs = _validate.batch_size(batch_size, len(xs))
        data = _training.EpochData(xs, ys, None)
        return _training.evaluate_batches(self._program, data, bs, None)

    def predict(self, x: Any, batch_size: int | None = None, logits: bool = False) -> NDArray[np.float32]:
        """Probabilities (n, outputs): sigmoid for outputs=1, softmax otherwise.

        Args:
            x: inputs, shape (n, input_dim).
            batch_size: rows per call (default 1024).
            logits: return the logits instead of probabilities.

        Returns:
            float32 array of shape (n, outputs).
        """
        out = self._run("classify", "x", self._rows(x), batch_size)["logits"]
        if _validate.flag(logits, "logits"):
            return out
        if self.spec.outputs == 1:  # type: ignore[union-attr]
            return _sigmoid(out)
        z = out.astype(np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


