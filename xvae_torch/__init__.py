"""PyTorch backend for xvae. Import-light: torch is imported only by `_backend`."""
