"""Checkpoints: a directory with the spec as JSON and the arrays as safetensors.

    run.xvae/
      xvae.json              format version, kind, spec, optimizer, step, epoch, RNG state,
                             precision, and the sha256 of each array file
      weights.safetensors    canonical weight names (DESIGN §4), float32, kernels (in, out)
      optimizer.safetensors  canonical optimizer state (opt.step, opt.m.<w>, ...), if any

Saving is atomic: everything is written into a temporary sibling and fsynced, an existing
checkpoint is moved aside, the new one renamed in, the old one deleted. A crash at any
point leaves either the old or the new checkpoint; `load` recovers a set-aside copy.
Loading never executes code: JSON and safetensors only, verified against their hashes
and against the names, shapes and dtypes the spec implies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from xvae._errors import CheckpointError, SpecError
from xvae._specs import spec_from_dict
from xvae.naming import optimizer_slots, weight_shapes
from xvae.optim import optimizer_from_dict

__all__ = ["FORMAT", "FORMAT_VERSION", "save", "load", "read", "latest"]

FORMAT = "xvae-checkpoint"
FORMAT_VERSION = 1
META, WEIGHTS, OPTIMIZER = "xvae.json", "weights.safetensors", "optimizer.safetensors"
_ASIDE = ".old"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write `model` to the directory `path` atomically; returns the path."""
    from safetensors.numpy import save_file

    from xvae import __version__

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    weights, opt_state = model._program.get_state()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        files = {WEIGHTS: weights, OPTIMIZER: opt_state}
        hashes = {}
        for name, arrays in files.items():
            if name == OPTIMIZER and not arrays:
                continue
            save_file({k: np.array(v, order="C") for k, v in arrays.items()}, str(tmp / name))
            _fsync(tmp / name)
            hashes[name] = _sha256(tmp / name)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "xvae_version": __version__,
            "kind": model.kind,
            "spec": model.spec.to_dict(),
            "optimizer": model.optimizer.to_dict() if model.optimizer else None,
            "step": int(model.step),
            "epoch": int(model.epoch),
            "rng": model.rng.bit_generator.state,
            "precision": model.options.precision,
            "init": model.init,
            "backend": model.backend,
            "files": hashes,
        }
        (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        _fsync(tmp / META)
        _fsync(tmp)
        aside = target.with_name(target.name + _ASIDE)
        if target.exists():
            if aside.exists():
                shutil.rmtree(aside)
            os.replace(target, aside)
        os.replace(tmp, target)
        _fsync(target.parent)
        if aside.exists():
            shutil.rmtree(aside)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _recover(target: Path) -> None:
    """Finish or undo a save that a crash interrupted."""
    aside = target.with_name(target.name + _ASIDE)
    if not target.exists() and aside.exists():
        os.replace(aside, target)  # the new one never arrived: the old one is the checkpoint
    elif target.exists() and aside.exists() and (target / META).exists():
        shutil.rmtree(aside, ignore_errors=True)  # the new one arrived: drop the old


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Verified (metadata, weights, optimizer state) of a checkpoint, without building a model."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    target = Path(path)
    _recover(target)
    if not (target / META).is_file():
        raise CheckpointError(f"No checkpoint at {target}: {META} is missing. Save one with model.save(path).",
                              path=str(target))
    try:
        meta = json.loads((target / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{target / META} is not valid JSON ({err}): the checkpoint is corrupted.",
                              path=str(target / META)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{target / META} is not an xvae checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r}).",
                              path=str(target / META))
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{target} has checkpoint format version {version!r}; this xvae reads up to "
                              f"{FORMAT_VERSION}. Upgrade xvae to load it.", path=str(target))
    try:
        spec = spec_from_dict(meta["spec"])
        optimizer = optimizer_from_dict(meta["optimizer"]) if meta.get("optimizer") else None
    except (SpecError, KeyError, TypeError) as err:
        raise CheckpointError(f"{target / META} holds an invalid spec: {err}", path=str(target / META)) from None
    hashes = meta.get("files", {})
    if not isinstance(hashes, dict) or WEIGHTS not in hashes:
        raise CheckpointError(f"{target / META} lists no weights file hash: the checkpoint is incomplete.",
                              path=str(target / META))
    wanted = {WEIGHTS: weight_shapes(spec),
              OPTIMIZER: optimizer_slots(spec, optimizer.slots) if optimizer else {}}
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for name, shapes in wanted.items():
        file = target / name
        if name not in hashes:
            arrays[name] = {}
            continue
        if not file.is_file():
            raise CheckpointError(f"{file} is missing: the checkpoint is incomplete.", path=str(file))
        if _sha256(file) != hashes[name]:
            raise CheckpointError(f"{file} does not match the hash recorded in {META}: the file is corrupted, "
                                  "truncated or was modified after saving.", path=str(file))
        try:
            loaded = load_file(str(file))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{file} is not a valid safetensors file ({err}).", path=str(file)) from None
        for key, shape in shapes.items():
            if key not in loaded:
                raise CheckpointError(f"{file} lacks {key!r}, which the spec needs.", path=str(file), key=key)
            arr = loaded[key]
            if arr.dtype != np.float32:
                raise CheckpointError(f"{file}: {key!r} has dtype {arr.dtype}; checkpoints hold float32.",
                                      path=str(file), key=key)
            if arr.shape != shape:
                raise CheckpointError(f"{file}: {key!r} has shape {arr.shape}; the spec needs {shape}.",
                                      path=str(file), key=key)
        extra = sorted(set(loaded) - set(shapes))
        if extra:
            raise CheckpointError(f"{file} holds names the spec does not have: {extra[:5]}.",
                                  path=str(file), key=extra[0])
        arrays[name] = loaded
    meta["spec"], meta["optimizer"] = spec, optimizer
    return meta, arrays[WEIGHTS], arrays[OPTIMIZER]


def load(path: str | os.PathLike[str], backend: str | None = None, precision: str | None = None) -> Any:
    """Rebuild a model from a checkpoint on any backend (default: the one that saved it)."""
    from xvae import backends
    from xvae.models import Classifier, VAE

    meta, weights, opt_state = read(path)
    cls = VAE if meta["kind"] == "vae" else Classifier
    name = backend or meta.get("backend")
    if name is None or backends.why_unavailable(name):
        name = backend  # None -> the first available backend
    model = cls(meta["spec"], backend=name, seed=None, init=meta.get("init", "glorot_uniform"),
                precision=precision or meta.get("precision", "highest"))
    if meta["optimizer"] is not None:
        model._prepare_training(meta["optimizer"])
    model._program.set_state(weights, opt_state or None)
    model.step, model.epoch = int(meta.get("step", 0)), int(meta.get("epoch", 0))
    try:
        model.rng.bit_generator.state = meta["rng"]
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: invalid RNG state in {META} ({err}).", path=str(path)) from None
    return model


def latest(directory: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint written by ModelCheckpoint in `directory`, or None."""
    found = sorted(Path(directory).glob("epoch-*.xvae"))
    return found[-1] if found else None


