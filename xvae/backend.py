"""THE SEAM: what a backend plugin implements. Framework-free; this file is the contract.

Everything that crosses it is NumPy plus strings. The core owns every random draw (init,
order, binarization, noise) and hands them over as arrays, so a backend is a pure compiled
step of (weights, optimizer state, batch). A plugin subclasses `Backend` and `Program` once.

Batch keys (host NumPy, one fixed batch shape per run; the last partial batch is padded):
    "x"     float32 (B, input_dim): flat rows, also for images (towers on images begin with
            an implicit Reshape, `xvae.naming.towers`)
    "y"     classifier: float32 (B,) 0/1 labels (outputs=1) or int32 (B,) class ids;
            conditional VAE (`VAESpec.conditions` = C > 0) only: float32 (B, C), the one-hot
            class, concatenated to the encoder's input (or its trunk's output,
            `xvae.naming.condition_site`) and to z; a plain VAE's batch has no "y"
    "noise" VAE only: float32 (B, latents), the reparameterisation eps: z = mean + exp(logvar/2)*eps
    "mask"  float32 (B,): 1.0 for real rows, 0.0 for padding
    "beta"  VAE only: float32 scalar, the KL weight (an input, so a schedule never recompiles)
    "lr"    training steps only: float32 scalar, this step's learning rate (an input like
            beta: the core evaluates the optimizer's `lr` or schedule per step, so changing
            it never recompiles; backends never read `OptimizerSpec.lr`)
    "dropout" only while training a model with Dropout layers: float32 (B, units), the masks
            the core drew (0 or 1/(1-rate)) for every Dropout layer's columns
            (`xvae.layers.Placed.masks`); absent in evaluation, where Dropout is the identity
Every other key is required (`BATCH_KEYS`, plus `TRAIN_KEYS` for train_step/train_steps, plus
"y" for a conditional VAE: `batch_keys`; the core's loop always sends all of them): a backend calls `check_batch` first, so a missing key
is the same ConfigError in every backend.
Metrics: the loss spec's `metrics` names ("loss", "reconstruction", "kl", "kl_per_latent" /
"loss", "accuracy"), each the masked mean over the batch: sum(mask * per_example) / sum(mask);
a scalar, except the vector metrics (`xvae.losses.VECTOR_METRICS`: "kl_per_latent", (latents,)),
which keep their trailing axis after the step's.
`train_steps` takes the same keys with a leading K axis (K steps in one compiled call) and
returns metrics with a leading K axis; K steps fused give the numbers of K single steps
("beta" and "lr" may also stay scalars shared by the K steps).

Optimizer state: "opt.step" is an integer 0-d array (int64 canonically; `xvae.optim.step_count`
also reads the float32 of older checkpoints), every slot float32. The optimizer's equations,
weight decay and global-norm clipping included, are `xvae.optim`'s `update_reference`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
from numpy.typing import NDArray

from xvae._errors import ConfigError
from xvae._specs import ModelSpec
from xvae.losses import LossSpec
from xvae.optim import OptimizerSpec

__all__ = [
    "Weights",
    "OptState",
    "Batch",
    "Metrics",
    "CompileOptions",
    "Backend",
    "Program",
    "FUNCTIONS",
    "BATCH_KEYS",
    "TRAIN_KEYS",
    "check_batch",
    "host_metrics",
    "batch_keys",
    "function_inputs",
    "conditions",
    "CONDITIONED_FUNCTIONS",
    "RepeatCache",
    "broadcast",
    "DeviceDraws",
]

Weights = dict[str, NDArray[np.float32]]
OptState = dict[str, NDArray[Any]]  # "opt.step": integer 0-d; slots: float32
Batch = Mapping[str, NDArray[Any]]
Metrics = Mapping[str, Any]

#: The inference functions `Program.run` offers, per model kind: inputs -> outputs.
#: "encode": x -> mean, logvar; "decode": z -> logits; "classify": x -> logits;
#: "log_weights": x (B, input_dim), noise (B, K, latents) -> log_weights (B, K), the
#: importance weights log p(x, z_k) - log q(z_k | x) of z_k = mean + exp(logvar / 2) * noise_k,
#: in nats, for the decoder's likelihood: ``-nll(x | z_k) - sum(z_k^2) / 2 + sum(noise_k^2 +
#: logvar) / 2`` (the two log(2 pi) terms of p(z) and q(z|x) cancel and are left out; the
#: noise enters q directly, (z - mean)^2 / var = noise^2, so no division by a tiny variance).
#: `xvae.importance` draws the noise and reduces the weights (log-sum-exp, float64, host).
#: A conditional VAE's encode, decode and log_weights also take "y", float32 (B, C) one-hot
#: (`function_inputs`); in log_weights the decoder reads example b's y for all K samples.
FUNCTIONS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "vae": {"encode": (("x",), ("mean", "logvar")), "decode": (("z",), ("logits",)),
            "log_weights": (("x", "noise"), ("log_weights",))},
    "classifier": {"classify": (("x",), ("logits",))},
}

#: The keys a batch must hold, per model kind (see the module docstring).
BATCH_KEYS: dict[str, tuple[str, ...]] = {
    "vae": ("x", "noise", "mask", "beta"),
    "classifier": ("x", "y", "mask"),
}
#: The keys a training batch (train_step, train_steps) holds in addition to BATCH_KEYS.
TRAIN_KEYS: tuple[str, ...] = ("lr",)


#: The inference functions that a conditional VAE's condition "y" enters.
CONDITIONED_FUNCTIONS = ("encode", "decode", "log_weights")


def conditions(spec: ModelSpec) -> int:
    """The one-hot width C of a conditional VAE's "y" (`VAESpec.conditions`); 0 otherwise."""
    return int(getattr(spec, "conditions", 0) or 0)


def batch_keys(spec: ModelSpec, train: bool = False) -> tuple[str, ...]:
    """The keys a batch of `spec` must hold: `BATCH_KEYS[spec.kind]`, "y" for a conditional
    VAE, and `TRAIN_KEYS` if `train`."""
    need = BATCH_KEYS[spec.kind] + (("y",) if conditions(spec) else ())
    return need + (TRAIN_KEYS if train else ())


def function_inputs(spec: ModelSpec, fn: str) -> tuple[str, ...]:
    """The inputs of inference function `fn` (`FUNCTIONS`), "y" added for a conditional VAE."""
    names = FUNCTIONS[spec.kind][fn][0]
    return names + ("y",) if conditions(spec) and fn in CONDITIONED_FUNCTIONS else names


def check_batch(batch: Batch, kind: str, train: bool = False, *, spec: ModelSpec | None = None) -> None:
    """Raise ConfigError naming every key of `BATCH_KEYS[kind]` (and, if `train`,
    `TRAIN_KEYS`; with `spec`, "y" of a conditional VAE: `batch_keys`) that `batch` lacks."""
    need = batch_keys(spec, train) if spec is not None else BATCH_KEYS[kind] + (TRAIN_KEYS if train else ())
    missing = [key for key in need if key not in batch]
    if missing:
        what = f"A {kind} training batch" if train else f"A {kind} batch"
        raise ConfigError(f"{what} needs the keys {', '.join(need)}. "
                          f"Missing: {', '.join(missing)}. (Model.fit builds complete batches; "
                          "a direct Program call must pass them all.)")


def host_metrics(values: dict[str, NDArray[Any]]) -> dict[str, Any]:
    """`Program.loss_and_grads`' metrics from `to_numpy`'s arrays: Python floats, and NumPy
    arrays for the vector metrics ("kl_per_latent")."""
    return {name: float(a) if np.ndim(a) == 0 else np.asarray(a) for name, a in values.items()}


def broadcast(value: Any, shape: tuple[int, ...], dtype: Any = np.float32) -> NDArray[Any]:
    """`value` as an array of `shape` and `dtype`; np.broadcast_to only when the shape
    differs (it costs ~50 us a call, a per-step cost for a mask that already fits)."""
    a = np.asarray(value, dtype)
    return a if a.shape == shape else np.broadcast_to(a, shape)


class RepeatCache:
    """Device copies of the small batch arrays that repeat from step to step ("mask", "beta", "lr").

    The loop sends the same all-ones mask and the same beta for every full batch; converting
    them anew costs a host-to-device copy per step (TensorFlow: ~55 us each, measured, of a
    ~9 ms step). Keys are the arrays' bytes, so a changed value is a new entry, never a
    stale one; the cache holds at most `size` entries.
    """

    #: The batch keys whose values repeat from step to step: the ones worth caching.
    KEYS = frozenset({"mask", "beta", "lr"})

    def __init__(self, convert: Any, size: int = 16, max_bytes: int = 1 << 16) -> None:
        self._convert, self._size, self._max_bytes = convert, size, max_bytes
        self._entries: dict[tuple[Any, ...], Any] = {}

    def get(self, name: str, array: NDArray[Any]) -> Any:
        """`convert(array)`, from the cache when the same bytes were converted before."""
        if array.nbytes > self._max_bytes:
            return self._convert(array)
        key = (name, array.dtype.str, array.shape, array.tobytes())
        found = self._entries.get(key)
        if found is None:
            if len(self._entries) >= self._size:
                self._entries.clear()
            found = self._entries[key] = self._convert(np.array(array, order="C", copy=True))
        return found


Precision = Literal["highest", "fast"]


@dataclass(frozen=True)
class DeviceDraws:
    """What a compiled step draws on the device for each example it gathers (device-resident data).

    Every number is `xvae.keyed`'s pure function of (seed, epoch, purpose, ORIGINAL example
    id, element), so the device draws exactly what the host loop draws for the same row,
    whatever the batch, its position in the epoch or `steps_per_call`.

    Attributes:
        binarize: dynamic binarization: x = float32(uniform(seed, epoch, BINARIZE, id, d) < x).
        noise: the per-example noise shape, (latents,) or (k, latents) for the IWAE bound
            (normal(seed, epoch, NOISE, id, k * latents), reshaped); None for a classifier.
        dropout: (lo, hi, rate) column ranges of every Dropout layer (`xvae.layers.Placed.masks`):
            uniform(seed, epoch, DROPOUT, id, hi_last) >= rate -> float32(1 / (1 - rate)), else 0.
    """

    binarize: bool = False
    noise: tuple[int, ...] | None = None
    dropout: tuple[tuple[int, int, float], ...] = ()

    @property
    def units(self) -> int:
        """Dropout columns drawn per example (0 without Dropout)."""
        return self.dropout[-1][1] if self.dropout else 0


@dataclass(frozen=True)
class CompileOptions:
    """How a backend compiles. `precision="highest"` pins full float32 matmuls (no TF32/bf16).

    Attributes:
        jit: compile the steps (jax.jit / tf.function / torch.compile where it pays off).
        xla: TensorFlow only: tf.function(jit_compile=True).
        precision: "highest" pins full float32 matmuls; "fast" allows TF32 / bf16.
        device: a framework device string ("cpu", "cuda:0", "gpu"); None picks the best one.
        devices: data parallelism (`xvae.distribute`): None for one device, an int >= 2,
            "all", or a tuple of device names. The program then splits each global batch's
            rows over the devices (padding them to a multiple, masked) with its framework's
            own engine, and its steps give the numbers of one device to float32 rounding.
    """

    jit: bool = True
    xla: bool = True
    precision: Precision = "highest"
    device: str | None = None
    devices: int | str | tuple[str, ...] | None = None


class Backend(abc.ABC):
    """One framework. Built once per process by `xvae.backends.get`.

    Subclasses set `name` (the registered backend name) and implement `info` and
    `compile`; the constructor takes no arguments.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def info(self) -> dict[str, str]:
        """What `xvae backends` and `xvae compare` show.

        Returns:
            {"version": the framework's version, "device": the device steps run on}.
        """

    @abc.abstractmethod
    def compile(
        self,
        spec: ModelSpec,
        loss: LossSpec,
        optimizer: OptimizerSpec | None,
        options: CompileOptions,
    ) -> Program:
        """Build the model's program. optimizer=None: inference and eval only.

        Args:
            spec: the model (`VAESpec` or `ClassifierSpec`); `xvae.naming.dense_layers(spec)`
                lists its layers with canonical names.
            loss: `xvae.losses.loss_for(spec)`; its `metrics` are what steps report.
            optimizer: the `xvae.optim` spec whose equations `train_step` applies, or None.
            options: jit, precision and device settings.

        Returns:
            A `Program` with no state yet: the core calls `set_state` next.

        Raises:
            SpecError: the spec uses something this backend does not implement.
        """


class Program(abc.ABC):
    """One model in one framework; owns its device-resident weights and optimizer state.

    Every array in and out is host NumPy in canonical names and layouts (see the module
    docstring for the batch keys), so the core never sees a framework type except the
    opaque metrics between `train_step` and `to_numpy`.
    """

    #: False in the processes of a multi-process data-parallel run other than rank 0: the
    #: core writes checkpoints (and callbacks their files) only where it is True.
    chief: bool = True

    @abc.abstractmethod
    def set_state(self, weights: Weights, opt_state: OptState | None = None) -> None:
        """Load canonical weights (and optimizer state; None = fresh zeros). Bit-exact.

        Args:
            weights: name -> float32 array, kernels (in, out) (`xvae.naming.weight_shapes`).
            opt_state: "opt.step" (a whole number: integer, or the float32 of old
                checkpoints; read it with `xvae.optim.step_count`) and float32
                "opt.<slot>.<weight>" arrays, or None for the optimizer's `init_state`
                (ignored without an optimizer).
        """

    @abc.abstractmethod
    def get_state(self) -> tuple[Weights, OptState]:
        """Canonical float32 NumPy copies; OptState is {} without an optimizer. Bit-exact.

        Returns:
            (weights, opt_state): new arrays that `set_state` reproduces bit for bit;
            float32, except "opt.step", an int64 0-d array.
        """

    @abc.abstractmethod
    def run(self, fn: str, **inputs: NDArray[Any]) -> dict[str, NDArray[np.float32]]:
        """An inference function of FUNCTIONS[kind] on host arrays; returns host arrays.

        Args:
            fn: "encode" (x -> mean, logvar), "decode" (z -> logits) or "log_weights"
                (x, noise -> log_weights) for a VAE, "classify" (x -> logits) for a
                classifier (`FUNCTIONS`).
            **inputs: the function's inputs, float32 (n, width); "log_weights" takes noise
                of shape (n, K, latents); a conditional VAE's functions also take "y",
                float32 (n, conditions) one-hot (`function_inputs`).

        Returns:
            The outputs by name, float32 NumPy of shape (n, width) ((n, K) for log_weights).

        Raises:
            ConfigError: `fn` is not a function of this model kind.
        """

    @abc.abstractmethod
    def train_step(self, batch: Batch) -> Metrics:
        """One compiled optimizer step; updates the state; metrics stay on device.

        Args:
            batch: the batch keys of the module docstring, host NumPy, fixed shape (B, ...),
                with "lr" (`TRAIN_KEYS`): the update is the optimizer's equations at that rate.

        Returns:
            The loss spec's metrics (masked means), in any form `to_numpy` understands.

        Raises:
            ConfigError: the program was compiled without an optimizer, or a key is missing.
        """

    @abc.abstractmethod
    def train_steps(self, batches: Batch) -> Metrics:
        """K optimizer steps in one compiled call (leading K axis in and out).

        Args:
            batches: the batch keys with a leading K axis, (K, B, ...); "beta" and "lr"
                have shape (K,) or stay scalars shared by all K steps.

        Returns:
            Metrics with a leading K axis: the numbers of K `train_step` calls.
        """

    @abc.abstractmethod
    def apply_gradients(self, grads: Weights, lr: float | None = None) -> None:
        """One optimizer update from given canonical gradients (conformance: same grads in).

        Args:
            grads: name -> float32 array, the weights' names and shapes.
            lr: this update's learning rate (rounded to float32, as a step input is); None:
                the compiled spec's `lr_at(opt.step)`, read from the program's own counter
                (a host sync: this is a conformance call, not a training path).
        """

    @abc.abstractmethod
    def eval_step(self, batch: Batch) -> Metrics:
        """The step's metrics without an update.

        Args:
            batch: as for `train_step`.

        Returns:
            The loss spec's metrics (masked means), as `train_step` returns them.
        """

    @abc.abstractmethod
    def loss_and_grads(self, batch: Batch) -> tuple[dict[str, float], Weights]:
        """Metrics and canonical gradients of the masked-mean loss (for conformance).

        Args:
            batch: as for `train_step`.

        Returns:
            (metrics as Python floats (a vector metric: a NumPy array), gradients: name ->
            float32 array of each weight's shape).
        """

    # -- device-resident data (optional; the base class keeps the data on the host) ---------
    def accelerator(self) -> bool:
        """Whether the program runs on an accelerator (a GPU or TPU), where `fit(device_data="auto")`
        keeps the training set on the device; on a CPU it streams from the host."""
        return False

    def device_memory(self) -> int | None:
        """Bytes the program's device can still allocate; None: host memory (`xvae._memory`).

        `fit` puts the training set on the device only when it takes at most
        `fit(device_data=...)` of this figure.
        """
        return None

    def place_data(self, x: NDArray[np.float32], y: NDArray[Any] | None) -> Any | None:
        """Put a training set on the device once; None: this program streams host batches.

        The base class returns None, so the numpy reference and third-party backends train
        through `train_step`/`train_steps` with host batches (the same numbers). A backend
        that overrides it also implements `train_resident`,
        and raises MemoryError when the device refuses the memory: `fit` then streams the
        data with one warning (never an out-of-memory crash).

        Args:
            x: float32 (n, input_dim), already statically binarized if asked.
            y: a classifier's labels (n,); a conditional VAE's one-hot float32 (n, conditions),
                the batches' "y" (`xvae._device_data.labels` gives both the device form); or None.

        Returns:
            An opaque handle that `train_resident` takes, or None (this program streams).

        Raises:
            MemoryError: the device has no room for the data.
        """
        return None

    def train_resident(self, data: Any, ids: NDArray[np.int32], mask: NDArray[np.float32],
                       lr: NDArray[np.float32], beta: NDArray[np.float32] | None, *, seed: int,
                       epoch: int, draws: DeviceDraws) -> Metrics:
        """S optimizer steps in one compiled call on device-resident data (`place_data`).

        Step s gathers the rows ``ids[s]`` of the resident data on the device and draws its
        binarization, noise and dropout masks there (`DeviceDraws`), so only the indices
        and the per-step scalars cross: the numbers of `train_steps` on host batches of
        the same rows and draws.

        Args:
            data: the handle `place_data` returned.
            ids: int32 (S, B): original example ids (padding rows repeat a real id).
            mask: float32 (S, B): 1.0 for real rows, 0.0 for padding.
            lr: float32 (S,): each step's learning rate.
            beta: float32 (S,) KL weights for a VAE, None for a classifier.
            seed: the keyed generator's seed (`xvae.keyed`).
            epoch: the 1-based epoch, part of every draw's key.
            draws: what to draw per example.

        Returns:
            Metrics with a leading S axis, as `train_steps` returns them.
        """
        raise ConfigError(f"{type(self).__name__} keeps no data on its device (place_data returned None): "
                          "train with host batches (train_steps).")

    @abc.abstractmethod
    def to_numpy(self, metrics: Metrics) -> dict[str, NDArray[Any]]:
        """Pull metrics to the host: the only host sync the core asks for.

        Args:
            metrics: what `train_step`, `train_steps` or `eval_step` returned.

        Returns:
            name -> NumPy array: 0-d for one step, (K,) for `train_steps`.
        """
