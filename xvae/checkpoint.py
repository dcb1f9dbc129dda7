"""Checkpoints: a directory with the spec as JSON and the arrays as safetensors.

    run.xvae/
      xvae.json              format version, kind, spec, optimizer, step, epoch, seed,
                             precision, and the sha256 of each array file
      weights.safetensors    canonical weight names (DESIGN §4), float32, kernels (in, out)
      optimizer.safetensors  canonical optimizer state (opt.step, opt.m.<w>, ...), if any;
                             opt.step is int64 (format 2; format 1 wrote float32, still read)

Saving is atomic: everything is written into a temporary sibling and fsynced, an existing
checkpoint is moved aside (``run.xvae.old``), the new one renamed in, the old one deleted.
A crash at any point leaves either the old or the new checkpoint; `load` recovers a
set-aside copy when a crash left only that.

Loading never executes code: JSON and safetensors only (no pickle, no ``np.load``, no
``torch.load``), each array file checked against the sha256 recorded at save time and
against the names, shapes and dtypes the spec implies. Anything else is a
`CheckpointError` naming the file and the problem.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xvae import _validate, distribute
from xvae._errors import CheckpointError, SpecError, XVAEError
from xvae._specs import spec_from_dict
from xvae.losses import objective_from_dict, objective_to_dict
from xvae.naming import STEP, optimizer_slots, weight_shapes
from xvae.optim import STEP_DTYPE, optimizer_from_dict, step_count

__all__ = ["FORMAT", "FORMAT_VERSION", "checkpoint_path", "latest", "list_checkpoints", "load", "read", "remove",
           "resolve", "save"]

FORMAT = "xvae-checkpoint"
#: 3: the training randomness is keyed (`xvae.keyed`): the model's "seed" (an int >= 0)
#: replaces the NumPy generator state "rng"; a resumed run continues the same keyed draws.
#: 2: opt.step is an int64 array, and optimizer specs may hold schedules, AdamW, weight
#: decay and clip_norm (an older xvae refuses such a checkpoint by its version, with the
#: advice to upgrade, rather than by a confusing field error). 1 (float32 opt.step) is read.
#: Versions 1 and 2 load (weights, optimizer state, counters); their "rng" cannot continue
#: a keyed run, so they resume with the seed `seed_of_generator` derives from it.
FORMAT_VERSION = 3
META, WEIGHTS, OPTIMIZER = "xvae.json", "weights.safetensors", "optimizer.safetensors"
_ASIDE = ".old"
#: xvae.json holds a spec, counters and an RNG state: kilobytes. Refuse to parse a bomb.
MAX_META_BYTES = 1 << 20
#: Bit generators a checkpoint may name. A table, never getattr(np.random, <file content>).
BIT_GENERATORS: dict[str, type[np.random.BitGenerator]] = {
    cls.__name__: cls for cls in (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937,
                                  np.random.Philox, np.random.SFC64)
}
_KINDS = ("vae", "classifier")
_PRECISIONS = ("highest", "fast")
#: Test hook: the name of a point in `save` at which the process SIGKILLs itself, so a test
#: can prove that every interrupted save leaves a loadable checkpoint (tests/unit/test_checkpoint.py).
CRASH_ENV = "XVAE_CHECKPOINT_CRASH_AT"
CRASH_POINTS = ("weights-half-written", "weights-written", "meta-written", "synced",
                "moved-aside", "renamed-in", "aside-trashed")
_EPOCH_NAME = re.compile(r"^epoch-(\d+)\.xvae$")

Arrays = dict[str, NDArray[Any]]


def checkpoint_path(path: Any, role: str = "checkpoint") -> Path:
    """`path` as an absolute Path with a name, or a CheckpointError saying why it cannot be one.

    The one place every function here turns its argument into a path: a non-path type,
    "", "/", a NUL byte or ".." past the root are refused here, not deep inside pathlib or
    the OS. "." and "run/.." name the folder they point to (made absolute, symlinks kept).
    """
    text = _validate.path_text(path, f"A {role}", CheckpointError, "Pass a folder such as 'run.xvae'.")
    target = Path(os.path.abspath(text))
    if not target.name:
        raise CheckpointError(f"The {role} path {text!r} is the file system root, which cannot be an xvae "
                              f"{role}: pass a folder such as 'run.xvae'.", path=text)
    return target


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        kill = getattr(signal, "SIGKILL", None)
        if kill is None:  # pragma: no cover - Windows
            os._exit(137)
        os.kill(os.getpid(), kill)


def _fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (POSIX); directories cannot be opened on Windows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _write(path: Path, data: bytes, crash_at: str | None = None) -> None:
    """Write, flush and fsync `data`; `crash_at` names a test crash point halfway through."""
    with open(path, "wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        if crash_at:
            f.flush()
            _crash_point(crash_at)
        f.write(data[half:])
        f.flush()
        os.fsync(f.fileno())


def _trash(path: Path) -> None:
    """Delete a directory so that it disappears at once: rename it to a hidden name, then delete.

    A crash during the (non-atomic) deletion leaves only a `.trash-` folder, never a
    half-deleted checkpoint under a checkpoint's name.
    """
    trash = path.with_name(f".{path.name}.trash-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(path, trash)
    except FileNotFoundError:
        return
    _crash_point("aside-trashed")
    shutil.rmtree(trash, ignore_errors=True)


def remove(path: str | os.PathLike[str]) -> None:
    """Delete a checkpoint directory (atomically: it is gone or intact, never half-deleted).

    Also finishes deletions that a crash interrupted in the same folder (`.*.trash-*`).
    """
    target = checkpoint_path(path)
    _trash(target)
    for stale in target.parent.glob(".*.trash-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _clean_siblings(target: Path) -> None:
    """Delete leftovers of interrupted saves of `target` (temporary and trash folders)."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*"):
        if ".tmp-" in stale.name or ".trash-" in stale.name:
            shutil.rmtree(stale, ignore_errors=True)


def _is_checkpoint_dir(path: Path) -> bool:
    return path.is_dir() and (path / META).is_file()


def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write `model` to the directory `path` atomically; returns the path.

    Raises:
        CheckpointError: `path` exists and is not an xvae checkpoint (it is never overwritten).
    """
    target = checkpoint_path(path)
    try:
        return _save(model, target)
    except CheckpointError:
        raise
    except OSError as err:  # a parent that is a file, a read-only folder, a full disk, a symlink loop
        raise CheckpointError(f"Could not save a checkpoint to {target}: {err.strerror or err} "
                              f"({type(err).__name__}{', ' + repr(err.filename) if err.filename else ''}). "
                              "Choose a writable folder.", path=str(target)) from err


def _save(model: Any, target: Path) -> Path:
    from safetensors.numpy import save as to_bytes

    from xvae import __version__

    if not distribute.is_chief(model):  # data parallel over processes: rank 0 writes, once
        return target
    if target.exists() and not _is_checkpoint_dir(target) and not (target.is_dir() and not any(target.iterdir())):
        raise CheckpointError(f"{target} exists and is not an xvae checkpoint; refusing to overwrite it. "
                              "Choose another path or delete it first.", path=str(target))
    optimizer = _optimizer_json(model.optimizer, target)
    metadata = getattr(model, "metadata", None) or {}
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"model.metadata must hold JSON data (dicts, lists, strings, numbers); "
                              f"{err}. Nothing was written to {target}.", path=str(target)) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    weights, opt_state = model._program.get_state()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        hashes = {}
        for name, arrays in ((WEIGHTS, weights), (OPTIMIZER, opt_state)):
            if name == OPTIMIZER and not arrays:
                continue
            data = to_bytes({k: np.array(v, dtype=STEP_DTYPE if k == STEP else np.float32, order="C")
                             for k, v in arrays.items()})
            _write(tmp / name, data, crash_at="weights-half-written" if name == WEIGHTS else None)
            hashes[name] = hashlib.sha256(data).hexdigest()
            if name == WEIGHTS:
                _crash_point("weights-written")
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "xvae_version": __version__,
            "kind": model.kind,
            "spec": model.spec.to_dict(),
            "optimizer": optimizer,
            "step": int(model.step),
            "epoch": int(model.epoch),
            "seed": int(model.seed),
            "precision": model.options.precision,
            "init": model.init,
            "backend": model.backend,
            "files": hashes,
        }
        if metadata:
            meta["metadata"] = metadata
        objective = objective_to_dict(getattr(model, "_objective", None))
        if objective is not None:  # the training objective (loss="iwae", k, free_bits): resume continues it
            meta["objective"] = objective
        _write(tmp / META, json.dumps(meta, indent=1, sort_keys=True).encode())
        _crash_point("meta-written")
        _fsync_dir(tmp)
        _crash_point("synced")
        aside = target.with_name(target.name + _ASIDE)
        if target.exists():
            if aside.exists():
                # Both exist only after a crash that had already renamed the new one in:
                # `target` is complete, `aside` is the stale older copy.
                _trash(aside)
            os.replace(target, aside)
            _fsync_dir(target.parent)
            _crash_point("moved-aside")
        _rename_in(tmp, target, aside)
        _fsync_dir(target.parent)
        _crash_point("renamed-in")
        if aside.exists():
            _trash(aside)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _clean_siblings(target)
    return target


def _optimizer_json(optimizer: Any, target: Path) -> dict[str, Any] | None:
    """The optimizer spec as JSON, refused before anything is written if `load` could not
    rebuild it (e.g. a user-defined schedule, which `xvae.schedules.SCHEDULES` does not list)."""
    if optimizer is None:
        return None
    try:
        data = optimizer.to_dict()
        if optimizer_from_dict(json.loads(json.dumps(data))) != optimizer:
            raise SpecError(f"it reads back as {optimizer_from_dict(data)!r}")
    except (SpecError, TypeError, ValueError) as err:
        raise CheckpointError(f"Cannot save {target}: the optimizer {optimizer!r:.200} would not load back "
                              f"({err}). Use the schedules of xvae.schedules (or register a custom one in "
                              "xvae.schedules.SCHEDULES).", path=str(target)) from None
    return data


def _rename_in(tmp: Path, target: Path, aside: Path) -> None:
    """os.replace(tmp, target), once more if a concurrent `load` put the set-aside copy back."""
    for attempt in range(3):
        try:
            os.replace(tmp, target)
            return
        except OSError:
            if attempt == 2 or not _is_checkpoint_dir(target):
                raise
            if aside.exists():
                _trash(aside)
            os.replace(target, aside)


def _plain(value: Any) -> Any:
    """JSON-ready copy of a bit generator state (numpy ints -> int, arrays -> lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ndarray__", "dtype"} and value["dtype"] in ("<u4", "<u8", "<i4", "<i8"):
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: _unplain(v) for k, v in value.items()}
    return value


def _recover(target: Path) -> Path:
    """Finish or undo a save that a crash interrupted; returns the folder to read.

    Only the aside copy left: the new one never arrived, the old one is the checkpoint.
    Both left: the new one arrived, the old one is stale. If the folder is read-only the
    aside copy is read in place.
    """
    aside = target.with_name(target.name + _ASIDE)
    try:
        if not target.exists() and _is_checkpoint_dir(aside):
            os.replace(aside, target)
        elif _is_checkpoint_dir(target) and aside.exists():
            _trash(aside)
    except OSError:
        if not target.exists() and _is_checkpoint_dir(aside):
            return aside
    return target


def _fail(message: str, path: Path, key: str | None = None) -> CheckpointError:
    return CheckpointError(message, path=str(path), key=key)


def _read_meta(folder: Path) -> dict[str, Any]:
    file = folder / META
    if folder.is_file():
        raise _fail(f"{folder} is a file; an xvae checkpoint is a directory (saved with model.save(path)).", folder)
    if not file.is_file():
        what = "does not exist" if not folder.exists() else f"has no {META}"
        raise _fail(f"No checkpoint at {folder}: it {what}. Save one with model.save(path).", file)
    if file.stat().st_size > MAX_META_BYTES:
        raise _fail(f"{file} is {file.stat().st_size} bytes, far larger than any checkpoint's metadata: "
                    "the file is corrupted or not an xvae checkpoint.", file)
    raw = file.read_bytes()
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _fail(f"{file} is not valid JSON ({type(err).__name__}: {str(err)[:200]}): "
                    "the checkpoint is corrupted or truncated.", file) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise _fail(f"{file} is not an xvae checkpoint (format {found!r}, expected {FORMAT!r}).", file)
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(f"{file} has an invalid format_version {version!r}: the checkpoint is corrupted.", file)
    if version > FORMAT_VERSION:
        raise _fail(f"{file} has checkpoint format version {version}, written by xvae "
                    f"{meta.get('xvae_version', '?')}; this xvae reads versions up to {FORMAT_VERSION}. "
                    "Upgrade xvae to load it.", file)
    return meta


def _check_meta(meta: dict[str, Any], file: Path) -> dict[str, Any]:
    """Every field of xvae.json, typed and validated; returns the parsed values."""
    def bad(field: str, why: str) -> CheckpointError:
        return _fail(f"{file}: field {field!r} {why}: the checkpoint is corrupted or was edited.", file, field)

    kind = meta.get("kind")
    if kind not in _KINDS:
        raise bad("kind", f"must be one of {_KINDS}, found {kind!r}")
    try:
        spec = spec_from_dict(meta.get("spec"))  # type: ignore[arg-type]
    except (SpecError, TypeError, ValueError) as err:
        raise _fail(f"{file} holds an invalid spec: {err}", file, "spec") from None
    if spec.kind != kind:
        raise bad("kind", f"says {kind!r} but the spec is a {spec.kind!r}")
    optimizer = None
    if meta.get("optimizer") is not None:
        try:
            optimizer = optimizer_from_dict(meta["optimizer"])
        except (SpecError, TypeError, ValueError) as err:
            raise _fail(f"{file} holds an invalid optimizer: {err}", file, "optimizer") from None
    for field in ("step", "epoch"):
        value = meta.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(field, f"must be an integer >= 0, found {value!r}")
    if meta.get("precision", "highest") not in _PRECISIONS:
        raise bad("precision", f"must be one of {_PRECISIONS}, found {meta.get('precision')!r}")
    from xvae.init import INITIALIZERS

    init = meta.get("init", "glorot_uniform")
    if not isinstance(init, str) or init not in INITIALIZERS:
        raise bad("init", f"must name an initializer ({', '.join(INITIALIZERS)}), found {init!r}")
    backend = meta.get("backend")
    if backend is not None and not isinstance(backend, str):
        raise bad("backend", f"must be a backend name, found {backend!r}")
    if meta["format_version"] >= 3:
        seed = meta.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise bad("seed", f"must be an integer >= 0, found {str(seed)[:100]!r}")
    else:
        seed = seed_of_generator(_generator(meta.get("rng"), file))
    files = meta.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise bad("files", "must map file names to sha256 digests")
    if WEIGHTS not in files:
        raise bad("files", f"lists no {WEIGHTS}")
    metadata = meta.get("metadata", {})
    if not isinstance(metadata, dict):
        raise bad("metadata", f"must be an object, found {type(metadata).__name__}")
    objective = None  # absent: the spec's ELBO (every checkpoint written before objectives were saved)
    if meta.get("objective") is not None:
        if kind != "vae":
            raise bad("objective", f"belongs to a VAE, found one in a {kind} checkpoint")
        try:
            objective = objective_from_dict(spec, meta["objective"])
        except (XVAEError, TypeError, ValueError) as err:
            raise _fail(f"{file} holds an invalid training objective: {err}", file, "objective") from None
    return {"kind": kind, "spec": spec, "optimizer": optimizer, "seed": seed, "files": files, "metadata": metadata,
            "objective": objective}


def seed_of_generator(generator: np.random.Generator) -> int:
    """The keyed seed a format 1/2 checkpoint resumes with: its saved generator's first
    63-bit draw. Deterministic (loading it twice resumes the same way) and distinct per
    saved run; the draws themselves differ from what that older xvae would have drawn."""
    return int(generator.integers(0, 2**63))


def _generator(state: Any, file: Path) -> np.random.Generator:
    """A Generator restored from a saved bit-generator state (from a fixed table of classes)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS:
        raise _fail(f"{file}: field 'rng' must hold a NumPy bit generator state "
                    f"({', '.join(BIT_GENERATORS)}), found {str(state)[:100]!r}.", file, "rng")
    bitgen = BIT_GENERATORS[name]()
    try:
        bitgen.state = _unplain(state)
    except Exception as err:  # noqa: BLE001 - numpy raises TypeError/ValueError/KeyError/OverflowError here
        raise _fail(f"{file}: field 'rng' holds an invalid {name} state ({type(err).__name__}: {err}).",
                    file, "rng") from None
    return np.random.Generator(bitgen)


def _read_arrays(file: Path, digest: str, shapes: dict[str, tuple[int, ...]]) -> Arrays:
    """One safetensors file, verified: hash, format, then names, dtypes and shapes.

    Arrays are float32, except the step counter: int64, or float32 in format-1 checkpoints
    (read as a whole number: `xvae.optim.step_count`).
    """
    from safetensors.numpy import load as from_bytes

    if not file.is_file():
        raise _fail(f"{file} is missing: the checkpoint is incomplete.", file)
    data = file.read_bytes()  # hashed and parsed from the same bytes: no window to swap the file
    if hashlib.sha256(data).hexdigest() != digest:
        raise _fail(f"{file} does not match the sha256 recorded in {META}: the file is corrupted, "
                    "truncated or was modified after saving.", file)
    try:
        loaded = from_bytes(data)
    except Exception as err:  # noqa: BLE001 - safetensors' Rust parser: SafetensorError, or numpy on odd dtypes
        raise _fail(f"{file} is not a valid safetensors file ({type(err).__name__}: {str(err)[:200]}).",
                    file) from None
    for key, shape in shapes.items():
        if key not in loaded:
            raise _fail(f"{file} lacks {key!r}, which the spec needs.", file, key)
        arr = loaded[key]
        if key == STEP:
            if arr.dtype not in (STEP_DTYPE, np.float32) or arr.shape != ():
                raise _fail(f"{file}: {key!r} must be an int64 (or, format 1, float32) scalar. Found "
                            f"{arr.dtype} of shape {arr.shape}.", file, key)
            try:
                loaded[key] = np.asarray(step_count(arr), STEP_DTYPE)
            except XVAEError:
                raise _fail(f"{file}: {key!r} is {arr!r:.60}, not a whole number of steps >= 0.", file, key) from None
            continue
        if arr.dtype != np.float32:
            raise _fail(f"{file}: {key!r} has dtype {arr.dtype}; checkpoints hold float32.", file, key)
        if arr.shape != shape:
            raise _fail(f"{file}: {key!r} has shape {arr.shape}; the spec needs {shape}.", file, key)
    extra = sorted(set(loaded) - set(shapes))
    if extra:
        raise _fail(f"{file} holds names the spec does not have: {extra[:5]}.", file, extra[0])
    return loaded


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Arrays, Arrays]:
    """Verified (metadata, weights, optimizer state) of a checkpoint, without building a model.

    In the metadata, "spec" and "optimizer" are spec objects and "seed" the int that keys
    the model's training draws (for format 1/2, derived by `seed_of_generator`).

    Raises:
        CheckpointError: missing, truncated, corrupted or tampered files, a mismatch between
            the spec and the arrays, or a newer format version; `err.path` names the file.
    """
    target = checkpoint_path(path)
    for attempt in range(_READ_TRIES):
        try:
            folder = _recover(target)
        except OSError as err:  # a name too long for the file system, a path through a file
            raise _fail(f"Could not read the checkpoint {target}: {err.strerror or err} ({type(err).__name__}).",
                        target) from err
        before = _identity(folder / META)
        try:
            return _read(folder)
        except OSError as err:  # CheckpointError is one; so are a vanished or unreadable file
            # A save by another process swapped the folder under us: the metadata file is a
            # different one now. Read again. Real damage leaves it unchanged: report it.
            in_flight = not target.exists() and target.with_name(target.name + _ASIDE).exists()
            swapped = in_flight or _identity(folder / META) != before or _identity(target / META) != before
            if swapped and attempt < _READ_TRIES - 1:
                time.sleep(min(0.01 * attempt, 0.1))
                continue
            if isinstance(err, CheckpointError):
                raise
            if not isinstance(err, FileNotFoundError):
                raise _fail(f"Could not read the checkpoint {target}: {err.strerror or err} "
                            f"({type(err).__name__}, {err.filename!r}).", target) from err
            raise _fail(f"{target} changed while it was being read ({err.filename} vanished): another "
                        "process is saving to it. Load it again once that save is done.", target) from None
    raise AssertionError("unreachable")  # pragma: no cover


_READ_TRIES = 20  # each retry means another save swapped the folder mid-read


def _identity(file: Path) -> tuple[int, int, int, str] | None:
    """Which metadata file this is: inode, mtime, size and content (inodes get reused)."""
    try:
        st = file.stat()
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_META_BYTES:  # a FIFO would block the read
            return st.st_ino, st.st_mtime_ns, st.st_size, ""
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size, digest


def _read(folder: Path) -> tuple[dict[str, Any], Arrays, Arrays]:
    meta = _read_meta(folder)
    checked = _check_meta(meta, folder / META)
    spec, optimizer, files = checked["spec"], checked["optimizer"], checked["files"]
    weights = _read_arrays(folder / WEIGHTS, files[WEIGHTS], weight_shapes(spec))
    opt_state: Arrays = {}
    if OPTIMIZER in files:
        if optimizer is None:
            raise _fail(f"{folder / META} lists {OPTIMIZER} but no optimizer: the checkpoint was edited.",
                        folder / META, "optimizer")
        opt_state = _read_arrays(folder / OPTIMIZER, files[OPTIMIZER], optimizer_slots(spec, optimizer.slots))
    return {**meta, **checked}, weights, opt_state


def load(path: str | os.PathLike[str], backend: str | None = None, precision: str | None = None) -> Any:
    """Rebuild a model from a checkpoint on any backend (default: the one that saved it).

    Weights, optimizer state, step, epoch and the seed all come back, so
    ``fit(..., resume=True)`` continues exactly where the saved run stopped (the keyed draws
    of epoch e depend on (seed, e) only). A checkpoint of format 1 or 2 (before keyed
    randomness) loads its weights and optimizer state; it resumes with the seed
    `seed_of_generator` derives from its saved NumPy generator.

    Args:
        path: the checkpoint directory written by `model.save(path)`, or a folder of
            `epoch-NNNN.xvae` checkpoints (ModelCheckpoint's): its latest one.
        backend: any installed backend; None uses the saving backend if it is installed,
            else the first available one.
        precision: "highest" or "fast"; None keeps the saved setting.

    Raises:
        CheckpointError: the checkpoint is missing, corrupted, tampered with or from a newer
            xvae (the message names the file and the problem).
    """
    from xvae import backends
    from xvae.models import VAE, Classifier

    path = resolve(path)
    meta, weights, opt_state = read(path)
    cls = VAE if meta["kind"] == "vae" else Classifier
    name = backend if backend is not None else meta.get("backend")
    if name is None or (backend is None and backends.why_unavailable(name)):
        name = None  # the saving backend is not installed here: the first available one
    model = cls(meta["spec"], backend=name, seed=None, init=meta.get("init", "glorot_uniform"),
                precision=precision if precision is not None else meta.get("precision", "highest"))
    if meta.get("objective") is not None:  # compiled by _prepare_training, or at the next fit
        model._objective = meta["objective"]
    if meta["optimizer"] is not None:
        model._prepare_training(meta["optimizer"])
    try:
        model._program.set_state(weights, opt_state or None)
    except XVAEError:
        raise
    except Exception as err:  # a backend refusing the arrays is a checkpoint problem, not a crash
        raise CheckpointError(f"{path}: the {model.backend!r} backend rejected the saved arrays "
                              f"({type(err).__name__}: {err}).", path=str(path)) from err
    model.step, model.epoch = int(meta.get("step", 0)), int(meta.get("epoch", 0))
    model.seed = meta["seed"]
    model.metadata = meta["metadata"]
    return model


def list_checkpoints(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(epoch, path) of every `epoch-NNNN.xvae` checkpoint in `directory`, oldest epoch first.

    A checkpoint that a crash left only as its set-aside copy (``.old``) is listed under
    its own name: `load` recovers it.
    """
    folder = checkpoint_path(directory, "checkpoint folder")
    if not folder.is_dir():
        return []
    found: dict[int, Path] = {}
    for entry in folder.iterdir():
        name = entry.name.removesuffix(_ASIDE)
        match = _EPOCH_NAME.match(name)
        if match and entry.is_dir():
            found[int(match.group(1))] = folder / name
    return sorted(found.items())


def resolve(path: str | os.PathLike[str]) -> Path:
    """`path` itself, or, for a folder of `epoch-NNNN.xvae` checkpoints, the latest of them.

    Examples:
        >>> resolve("run.xvae")
        PosixPath('run.xvae')
    """
    checkpoint_path(path)  # what cannot be a checkpoint path is refused here, in one place
    folder = Path(os.fsdecode(os.fspath(path)))
    try:
        if folder.is_dir() and not (folder / META).exists():
            found = latest(folder)
            if found is not None:
                return found
    except OSError:  # a name too long, a path through a file: `read` reports it as a CheckpointError
        pass
    return folder


def latest(directory: str | os.PathLike[str]) -> Path | None:
    """The checkpoint of the highest epoch written by ModelCheckpoint in `directory`, or None."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None
