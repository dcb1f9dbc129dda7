"""numpy32: an example xvae backend plugin. Import-light: the math lives in `_backend`."""
