"""JAX (flax + optax) backend for xvae. Import-light: jax is imported only by `_backend`."""
