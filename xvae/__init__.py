"""xvae: describe a VAE or classifier once; train it in JAX, TensorFlow or PyTorch.

Same specs, initial weights, data order, noise, loss and optimizer math in every backend,
proven by a conformance suite. This package is framework-free: backends are plugins.
"""

from __future__ import annotations

__version__ = "0.1.0"

from xvae import backends as backends
from xvae import callbacks as callbacks
from xvae import datasets as datasets
from xvae import distribute as distribute
from xvae import keyed as keyed
from xvae import layers as layers
from xvae import losses as losses
from xvae import optim as optim
from xvae import schedules as schedules
from xvae._errors import BackendNotFoundError as BackendNotFoundError
from xvae._errors import BackendUnavailableError as BackendUnavailableError
from xvae._errors import CheckpointError as CheckpointError
from xvae._errors import ConfigError as ConfigError
from xvae._errors import DataError as DataError
from xvae._errors import SpecError as SpecError
from xvae._errors import TrainingDivergedError as TrainingDivergedError
from xvae._errors import XVAEError as XVAEError
from xvae._hookspecs import BackendInfo as BackendInfo
from xvae._hookspecs import hookimpl as hookimpl
from xvae._specs import ClassifierSpec as ClassifierSpec
from xvae._specs import DecoderSpec as DecoderSpec
from xvae._specs import EncoderSpec as EncoderSpec
from xvae._specs import VAESpec as VAESpec
from xvae._specs import spec_from_dict as spec_from_dict
from xvae._specs import spec_from_json as spec_from_json
from xvae.checkpoint import load as load
from xvae.history import History as History
from xvae.models import VAE as VAE
from xvae.models import Classifier as Classifier

#: Public submodules that `import xvae` does not import itself (they pull in matplotlib and
#: more); `xvae.plots` etc. import them on first use (PEP 562), so `import xvae` stays light.
_LAZY_SUBMODULES = ("backend", "checkpoint", "cli", "compare", "history", "init", "models", "naming", "plots")


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"xvae.{name}")
    raise AttributeError(f"module 'xvae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))


__all__ = [
    "__version__",
    "backends",
    "callbacks",
    "keyed",
    "layers",
    "datasets",
    "distribute",
    "losses",
    "optim",
    "schedules",
    "BackendInfo",
    "hookimpl",
    "XVAEError",
    "SpecError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "TrainingDivergedError",
    "EncoderSpec",
    "DecoderSpec",
    "VAESpec",
    "ClassifierSpec",
    "spec_from_dict",
    "spec_from_json",
    "VAE",
    "Classifier",
    "History",
    "load",
]
