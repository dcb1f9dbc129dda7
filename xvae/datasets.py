"""Datasets: scikit-learn's 8x8 digits (embedded), MNIST and Fashion-MNIST (IDX files).

Two contracts live here:

* ``binarize(x, "dynamic", rng)`` draws exactly ``rng.random(x.shape, dtype=np.float32) < x``:
  one call, float32, the whole array at once (a helper for users' own pipelines). The
  training loop does not use it: its binarization is keyed by (seed, epoch, example id),
  `xvae.keyed.binarize`, the same bits in every backend.
* Data files are verified before use. A file passes if the md5 of its ``.gz`` bytes *or*
  of its decompressed payload is a known one: mirrors recompress the archives (so the
  ``.gz`` hash differs) while the IDX payload stays the same. Downloads go to a temporary
  file, are parsed and verified, and only then renamed into place; a bad download is
  deleted, never cached.

Files are looked up in ``data_dir/<name>/`` and then ``data_dir`` itself, where
``data_dir`` is the ``data_dir=`` argument, else ``$XVAE_DATA_DIR``, else ``~/.cache/xvae``.
Missing files are downloaded into ``data_dir/<name>/`` from ``base_url=``, else
``$XVAE_MNIST_URL`` / ``$XVAE_FASHION_MNIST_URL``, else a public mirror.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from xvae import _validate
from xvae._errors import DataError

__all__ = ["Dataset", "load", "binarize", "data_dir", "DIGITS_TRAIN_SIZE"]

DIGITS_TRAIN_SIZE = 1500
"""Digits split: "train" is the first 1500 of scikit-learn's 1797 rows, "test" the other 297."""

_TIMEOUT_S = 60.0
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class _Source(NamedTuple):
    url: str  # default base URL
    env: str  # environment variable overriding it
    md5: dict[str, frozenset[str]]  # file name -> accepted md5 of the .gz or of the payload


_SOURCES = {
    "mnist": _Source(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "XVAE_MNIST_URL",
        {
            "train-images-idx3-ubyte.gz": frozenset({"f68b3c2dcbeaaa9fbdd348bbdeb94873"}),
            "train-labels-idx1-ubyte.gz": frozenset({"d53e105ee54ea40749a09fcbcd1e9432"}),
            "t10k-images-idx3-ubyte.gz": frozenset(
                {"9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"}
            ),
            "t10k-labels-idx1-ubyte.gz": frozenset(
                {"ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"}
            ),
        },
    ),
    "fashion_mnist": _Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "XVAE_FASHION_MNIST_URL",
        {
            "train-images-idx3-ubyte.gz": frozenset({"8d4fb7e6c68d591d4c3dfef9ec88bf0d"}),
            "train-labels-idx1-ubyte.gz": frozenset({"25c81989df183df01b3e8a0aad5dffbe"}),
            "t10k-images-idx3-ubyte.gz": frozenset({"bef4ecab320f06d8554ea6380940ec79"}),
            "t10k-labels-idx1-ubyte.gz": frozenset({"bb300cfdad3c16e7a12a480ee83fd310"}),
        },
    ),
}
_NAMES = ("digits", *_SOURCES)
_SPLITS = {"digits": ("train", "test", "all"), **{n: tuple(_FILES) for n in _SOURCES}}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image dataset, images flattened row-major.

    Attributes:
        x: float32 array of shape (n, d), d = rows * cols; in [0, 1] when loaded with
            ``scale=True``, raw pixel values (0..16 digits, 0..255 MNIST) otherwise.
        y: int64 class ids of shape (n,).
        name: "digits", "mnist" or "fashion_mnist".
        split: the split it was loaded from ("train", "test" or, for digits, "all").
        image_shape: (rows, cols) of one image: (8, 8) or (28, 28).
    """

    x: np.ndarray
    y: np.ndarray
    name: str
    split: str
    image_shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: slice | Any) -> Dataset:
        """Rows selected by a slice, an integer index array or a boolean mask of shape (n,).

        Returns:
            A Dataset with ``x`` of shape (m, d) and ``y`` of shape (m,).

        Raises:
            DataError: `index` selects a single row (use a slice or an array).
        """
        try:
            x, y = self.x[index], self.y[index]
        except (IndexError, TypeError, ValueError, OverflowError) as err:
            raise DataError(f"subset({index!r:.100}) must select rows with a slice, an integer index array or a "
                            f"boolean mask of shape ({len(self)},): {err}") from None
        if x.ndim != 2:
            raise DataError(f"subset({index!r}) must select rows with a slice or an index array")
        return dataclasses.replace(self, x=x, y=y)


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: `explicit`, else ``$XVAE_DATA_DIR``, else ``~/.cache/xvae``.

    Args:
        explicit: a folder chosen by the caller, or None.

    Returns:
        The folder as an expanded Path (it need not exist).
    """
    if explicit is None:
        explicit = os.environ.get("XVAE_DATA_DIR") or Path.home() / ".cache" / "xvae"
    text = _validate.path_text(explicit, "data_dir", DataError, "Pass a folder; '.' is the working folder.")
    return Path(text).expanduser()


_resolve_dir = data_dir  # `load` has a parameter of the same name


def load(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    scale: bool = True,
    *,
    download: bool = True,
    base_url: str | None = None,
    progress: bool = True,
) -> Dataset:
    """Load a dataset split.

    Args:
        name: "digits" (scikit-learn's bundled 8x8 digits, never downloaded), "mnist" or
            "fashion_mnist".
        split: "train" or "test"; digits also "all". Digits "train" is the first 1500 of its
            1797 rows, "test" the remaining 297. MNIST and Fashion-MNIST: "train" 60000 rows,
            "test" 10000.
        data_dir: folder holding the IDX ``.gz`` files (directly or in a ``<name>/``
            subfolder); default ``$XVAE_DATA_DIR``, else ``~/.cache/xvae``.
        scale: True divides by the largest raw value (16 digits, 255 MNIST) to give [0, 1];
            False keeps the raw values.
        download: fetch missing files into ``data_dir/<name>/``.
        base_url: where to fetch from; default ``$XVAE_MNIST_URL`` /
            ``$XVAE_FASHION_MNIST_URL``, else a public mirror.
        progress: show a tqdm progress bar while downloading.

    Returns:
        A Dataset with ``x`` float32 (n, 64) or (n, 784) and ``y`` int64 (n,).

    Raises:
        DataError: unknown name or split; a file is missing (and not downloaded), cannot be
            downloaded, is not a valid IDX gzip file, or fails its checksum.
    """
    key = name.lower().replace("-", "_") if isinstance(name, str) else None
    if key not in _SPLITS:
        raise DataError(f"unknown dataset {name!r:.100}; known datasets: {', '.join(_NAMES)}")
    if not isinstance(split, str) or split not in _SPLITS[key]:
        raise DataError(f"unknown split {split!r:.100} for {key}; known splits: {', '.join(_SPLITS[key])}")
    scale, download, progress = (_validate.flag(v, n) for v, n in ((scale, "scale"), (download, "download"),
                                                                   (progress, "progress")))
    if base_url is not None and not isinstance(base_url, str):
        raise DataError(f"base_url must be a URL string or None. Received: {base_url!r:.100}")
    if key == "digits":
        raw, y, shape, top = *_load_digits(split), (8, 8), 16.0
    else:
        folder = _resolve_dir(data_dir)
        images, labels = (
            _locate_or_fetch(key, fname, folder, download, base_url, progress) for fname in _FILES[split]
        )
        if len(images) != len(labels):
            raise DataError(f"{key} {split}: {len(images)} images but {len(labels)} labels in {folder}")
        raw, y, shape, top = images.reshape(len(images), -1), labels, tuple(images.shape[1:]), 255.0
    x = raw.astype(np.float32)
    if scale:
        x /= np.float32(top)
    return Dataset(x=x, y=np.asarray(y, dtype=np.int64), name=key, split=split, image_shape=shape)


def binarize(x: np.ndarray, mode: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Binarize intensities in [0, 1].

    Args:
        x: array of any shape, values in [0, 1].
        mode: "static" gives ``x > 0.5``; "dynamic" gives Bernoulli(x), drawn as exactly
            ``rng.random(x.shape, dtype=np.float32) < x`` (one call). `fit` binarizes with
            keyed draws instead (`xvae.keyed.binarize`).
        rng: the Generator to draw from; required for "dynamic", ignored for "static".

    Returns:
        float32 array of 0.0 / 1.0 with the shape of `x`.

    Raises:
        DataError: unknown mode, or "dynamic" without `rng`.
    """
    from xvae import _memory

    x = _validate._numeric(x, "x", "(n, d)")
    _memory.require(x.size * 9, f"binarize of an array of shape {x.shape}", "binarize fewer rows at a time")
    if not isinstance(mode, str):
        raise DataError(f"binarize mode must be 'static' or 'dynamic'. Received: {mode!r:.100}")
    if mode == "dynamic" and rng is not None and not isinstance(rng, np.random.Generator):
        raise DataError(f'binarize(x, "dynamic") needs rng=np.random.Generator. Received: {rng!r:.100}')
    if mode == "static":
        return (x > 0.5).astype(np.float32)
    if mode == "dynamic":
        if rng is None:
            raise DataError('binarize(x, "dynamic") needs rng=np.random.Generator')
        return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
    raise DataError(f"unknown binarize mode {mode!r:.100}; known modes: 'static', 'dynamic'")


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # lazy: keeps `import xvae` fast

    bunch = load_digits()
    rows = {"train": slice(0, DIGITS_TRAIN_SIZE), "test": slice(DIGITS_TRAIN_SIZE, None), "all": slice(None)}
    return bunch.data[rows[split]], bunch.target[rows[split]]


def _locate_or_fetch(
    name: str, fname: str, folder: Path, download: bool, base_url: str | None, progress: bool
) -> np.ndarray:
    """The verified array in `fname`, found in `folder/<name>/` or `folder`, or downloaded into folder/name.

    Errors say where it looked, and which split the folder does hold if it is another one.
    """
    candidates = (folder / name / fname, folder / fname)
    for path in candidates:
        if path.is_file():
            return _read_verified(path, name, fname, str(path))
    looked = f"looked for {fname} in {folder / name} and in {folder}{_other_split_hint(name, fname, candidates)}"
    if not download:
        raise DataError(
            f"{name} file {fname} not found ({looked}); pass download=True, or set "
            f"XVAE_DATA_DIR / data_dir= to a folder holding the files",
            path=str(folder),
        )
    base = base_url or os.environ.get(_SOURCES[name].env) or _SOURCES[name].url
    try:
        return _fetch(base.rstrip("/") + "/" + fname, candidates[0], name, progress)
    except DataError as err:  # say first what was looked for: the usual fix is the folder or the split
        again = DataError(f"{name} file {fname} not found ({looked}), and {err}", path=str(folder))
        for note in getattr(err, "__notes__", ()):
            again.add_note(note)
        raise again from err


def _other_split_hint(name: str, fname: str, candidates: tuple[Path, Path]) -> str:
    """"; it holds the 'test' split ...: pass split='test'" when the folder has another split's files."""
    for split, files in _FILES.items():
        if fname in files:
            continue
        for where in (c.parent for c in candidates):
            if all((where / f).is_file() for f in files):
                return f" ({where} holds the {split!r} split: {', '.join(files)}; pass split={split!r} to use it)"
    return ""


def _read_verified(path: Path, name: str, fname: str, label: str) -> np.ndarray:
    """Decompress, parse and checksum one IDX gzip file; `label` names it in errors."""
    try:
        blob = path.read_bytes()
        payload = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{label} is not a readable gzip file ({e})", path=str(path)) from e
    array = _parse_idx(payload, 2051 if "images" in fname else 2049, label)
    got = (hashlib.md5(blob).hexdigest(), hashlib.md5(payload).hexdigest())
    expected = _SOURCES[name].md5[fname]
    if expected.isdisjoint(got):
        raise DataError(
            f"checksum mismatch for {name} {label} (expected md5 of the .gz or payload in "
            f"{sorted(expected)}, got .gz {got[0]}, payload {got[1]}) – delete the file and "
            f"download again, or check the base URL",
            path=str(path),
        )
    return array


def _parse_idx(payload: bytes, magic: int, label: str) -> np.ndarray:
    """The uint8 array in an IDX payload whose big-endian magic must equal `magic`."""
    found = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else None
    if found != magic:
        raise DataError(f"{label}: bad IDX magic number (expected {magic}, got {found})")
    ndim = found & 0xFF
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise DataError(f"{label}: truncated IDX header ({len(payload)} of {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(payload, ">u4", ndim, offset=4))
    claimed = math.prod(dims)
    if len(payload) - header != claimed:
        raise DataError(
            f"{label}: IDX payload length {len(payload) - header} bytes does not match the "
            f"header's dimensions {dims} ({claimed} bytes); the file is truncated or corrupt"
        )
    return np.frombuffer(payload, np.uint8, offset=header).reshape(dims)


def _fetch(url: str, dest: Path, name: str, progress: bool) -> np.ndarray:
    """Download `url` to a temporary file beside `dest`, verify it, then rename it in."""
    import urllib.request  # lazy: pulls in http.client and ssl

    tmp: str | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with _progress_bar(total, dest.name, progress) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
        array = _read_verified(Path(tmp), name, dest.name, f"{dest.name} downloaded from {url}")
        os.replace(tmp, dest)
        tmp = None
        return array
    except DataError as e:
        e.add_note(f"the download was discarded; nothing was cached in {dest.parent}")
        raise
    except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts, unwritable folder; ValueError: not a URL
        raise DataError(
            f"could not download {url} into {dest.parent}: {e}. Set XVAE_DATA_DIR (or data_dir=) "
            f"to a folder holding the files, or point base_url= / ${_SOURCES[name].env} at a "
            f"reachable mirror",
            path=str(dest),
        ) from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False)
    return _NoBar()
