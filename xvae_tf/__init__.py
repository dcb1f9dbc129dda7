"""TensorFlow (Keras 3, tf.function) backend for xvae. Import-light: tensorflow is imported only by `_backend`."""
