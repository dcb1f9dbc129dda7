"""TensorFlow (tf.Module + tf.function) backend for xvae. Import-light: tensorflow is imported only by `_backend`."""
