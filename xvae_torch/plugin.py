"""Entry-point target of the PyTorch backend: declares it without importing torch."""

from xvae import hookimpl
from xvae.backends import BackendInfo


@hookimpl
def xvae_backends() -> list[BackendInfo]:
    return [
        BackendInfo(
            name="torch",
            target="xvae_torch._backend:TorchBackend",
            requires=("torch",),
            extra="torch",
            aliases=("pytorch",),
        )
    ]
