"""Downloading IDX files from a local HTTP server: verify, cache atomically, reject corruption."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from xvae import DataError, datasets

T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")



class Server:
    """A ThreadingHTTPServer on 127.0.0.1 serving `root`, counting requests."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            timeout = 10

            def log_message(self, format: str, *args: object) -> None:
                server.requests.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=10)


@pytest.fixture()
def served(tmp_path: Path, mnist_dir: Path) -> Iterator[tuple[Server, Path]]:
    """(server, folder it serves) with copies of the shared t10k files in that folder."""
    root = tmp_path / "served"
    root.mkdir()
    for f in T10K:
        shutil.copyfile(mnist_dir / f, root / f)
    server = Server(root)
    try:
        yield server, root
    finally:
        server.close()


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("XVAE_MNIST_URL", raising=False)
    return tmp_path / "cache"


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_download_verify_and_cache(served: tuple[Server, Path], cache: Path) -> None:
    server, _ = served
    d = datasets.load("mnist", split="test", data_dir=cache, base_url=server.url, progress=False)
    assert d.x.shape == (10000, 784) and d.x.dtype == np.float32 and d.y.dtype == np.int64
    assert files_in(cache) == [f"mnist/{f}" for f in T10K]
    assert sorted(server.requests) == sorted(f"/{f}" for f in T10K)
    server.close()
    again = datasets.load("mnist", split="test", data_dir=cache, base_url=server.url, progress=False)
    np.testing.assert_array_equal(again.x, d.x)
    np.testing.assert_array_equal(again.y, d.y)


def test_base_url_from_env_with_progress_bar(
    served: tuple[Server, Path], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = served
    monkeypatch.setenv("XVAE_MNIST_URL", server.url.rstrip("/"))  # no trailing slash
    d = datasets.load("mnist", split="test", data_dir=cache, progress=True)
    assert len(d) == 10000 and len(server.requests) == 2


def test_only_missing_files_are_downloaded(served: tuple[Server, Path], cache: Path, mnist_dir: Path) -> None:
    server, _ = served
    cache.mkdir()
    shutil.copyfile(mnist_dir / T10K[0], cache / T10K[0])  # images in data_dir itself
    datasets.load("mnist", split="test", data_dir=cache, base_url=server.url, progress=False)
    assert server.requests == [f"/{T10K[1]}"]
    assert files_in(cache) == [f"mnist/{T10K[1]}", T10K[0]]


def flip_bytes(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    for i in range(len(blob) // 2, len(blob) // 2 + 16):
        blob[i] ^= 0xFF
    path.write_bytes(bytes(blob))


def truncate(path: Path) -> None:
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) - 100])


@pytest.mark.parametrize("corrupt", [flip_bytes, truncate])
def test_corrupted_download_is_rejected_and_not_cached(
    served: tuple[Server, Path], cache: Path, corrupt: object
) -> None:
    server, root = served
    corrupt(root / T10K[0])  # type: ignore[operator]
    with pytest.raises(DataError, match=T10K[0]) as info:
        datasets.load("mnist", split="test", data_dir=cache, base_url=server.url, progress=False)
    assert server.url + T10K[0] in str(info.value)
    assert any("discarded" in note for note in getattr(info.value, "__notes__", []))
    assert files_in(cache) == []  # neither the file nor a temporary .part


def test_checksum_mismatch_download(served: tuple[Server, Path], cache: Path, mnist_dir: Path) -> None:
    server, root = served
    shutil.copyfile(mnist_dir / T10K[1], root / T10K[0])  # valid gzip, but a labels file
    with pytest.raises(DataError, match="bad IDX magic"):
        datasets.load("mnist", split="test", data_dir=cache, base_url=server.url, progress=False)
    assert files_in(cache) == []
    # a valid images file with other content: fashion_mnist's table rejects the MNIST copy
    shutil.copyfile(mnist_dir / T10K[0], root / T10K[0])
    with pytest.raises(DataError, match="checksum mismatch.*expected.*got"):
        datasets.load("fashion_mnist", split="test", data_dir=cache, base_url=server.url, progress=False)
    assert files_in(cache) == []


def test_http_404(served: tuple[Server, Path], cache: Path) -> None:
    server, root = served
    (root / T10K[1]).unlink()
    with pytest.raises(DataError, match=rf"could not download {server.url}{T10K[1]}.*404"):
        datasets.load("mnist", split="test", data_dir=cache, base_url=server.url, progress=False)
    assert files_in(cache) == [f"mnist/{T10K[0]}"]  # the good file stays cached


def test_unreachable_url(cache: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mirror/"
    with pytest.raises(DataError, match=rf"could not download {url}t10k-images") as info:
        datasets.load("mnist", split="test", data_dir=cache, base_url=url, progress=False)
    message = str(info.value)
    assert str(cache / "mnist") in message and "XVAE_DATA_DIR" in message and "base_url" in message
    assert files_in(cache) == []
