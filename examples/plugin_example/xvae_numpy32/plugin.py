"""Entry-point target: declares the backend without importing its framework."""

import xvae


@xvae.hookimpl
def xvae_backends() -> list[xvae.BackendInfo]:
    """The backends this distribution provides; `target` is imported on first use only."""
    return [
        xvae.BackendInfo(
            name="numpy32",
            target="xvae_numpy32._backend:Numpy32Backend",
            requires=("numpy",),  # checked with importlib.util.find_spec, nothing imported
            aliases=("float32-numpy",),
        )
    ]
