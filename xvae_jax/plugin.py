"""Entry-point target of the JAX backend: declares it without importing jax."""

from xvae import hookimpl
from xvae.backends import BackendInfo


@hookimpl
def xvae_backends() -> list[BackendInfo]:
    return [
        BackendInfo(
            name="jax",
            target="xvae_jax._backend:JaxBackend",
            requires=("jax", "flax", "optax"),
            extra="jax",
            aliases=("flax",),
        )
    ]
