"""Entry-point target of the TensorFlow backend: declares it without importing tensorflow."""

from xvae import hookimpl
from xvae.backends import BackendInfo


@hookimpl
def xvae_backends() -> list[BackendInfo]:
    return [
        BackendInfo(
            name="tf",
            target="xvae_tf._backend:TFBackend",
            requires=("tensorflow", "keras"),
            extra="tf",
            aliases=("tensorflow", "keras"),
        )
    ]
