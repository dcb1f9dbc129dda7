"""Conv2D and Conv2DTranspose: NHWC images, HWIO kernels, one padding rule for every backend.

Padding (per spatial axis, input length n, kernel k, stride s):
- ``"valid"``: no padding; output ``(n - k) // s + 1``.
- ``p`` (an int): p zeros before and after; output ``(n + 2p - k) // s + 1``.
- ``"same"``: output ``ceil(n / s)``; the total padding ``max((out - 1) s + k - n, 0)`` is
  split with the smaller half *before* and the larger *after* (TensorFlow's and Flax's
  rule; PyTorch's ``padding="same"`` splits odd totals the other way and refuses strides,
  so the torch plugin pads explicitly with `F.pad`).

Conv2DTranspose is the adjoint (the gradient with respect to the input) of the Conv2D with
the same kernel, stride and padding, as in TensorFlow and PyTorch: input position i and
kernel tap j write output position ``i * s + j - before``, where ``before`` is the conv's
padding before (0, p, or ``max(k - s, 0) // 2`` for "same"). Output lengths:
``(n - 1) s + k + output_padding`` ("valid"), ``(n - 1) s + k - 2p + output_padding`` (int p),
``n s + output_padding`` ("same"). Its kernel is stored as TensorFlow stores it,
``(kh, kw, out_channels, in_channels)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Union

import numpy as np

from xvae._errors import SpecError
from xvae.layers._base import Array, Layer, Shape, pair, positive_int
from xvae.layers.activations import ACTIVATIONS, check_activation

__all__ = ["Conv2D", "Conv2DTranspose", "conv_padding", "transpose_padding"]

Padding = Union[str, int]


def _padding(owner: str, value: Any) -> Padding:
    if value in ("same", "valid"):
        return str(value)
    if isinstance(value, (bool, np.timedelta64)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise SpecError(f'{owner}.padding must be "same", "valid" or an int >= 0. Received: padding={value!r}')
    return int(value)


def conv_padding(n: int, k: int, s: int, padding: Padding) -> tuple[int, int]:
    """(before, after) zeros of a Conv2D along one axis (see the module docstring).

    Examples:
        >>> conv_padding(28, 3, 2, "same"), conv_padding(8, 4, 1, "same")
        ((0, 1), (1, 2))
    """
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return (total // 2, total - total // 2)
    return (int(padding), int(padding))


def transpose_padding(n: int, k: int, s: int, padding: Padding, output_padding: int) -> tuple[int, int]:
    """(before, output length) of a Conv2DTranspose along one axis: output position
    ``i * s + j - before`` receives input i times kernel tap j (module docstring)."""
    if padding == "valid":
        return 0, (n - 1) * s + k + output_padding
    if padding == "same":
        return max(k - s, 0) // 2, n * s + output_padding
    return int(padding), (n - 1) * s + k - 2 * int(padding) + output_padding


def _conv_out(n: int, k: int, s: int, padding: Padding) -> int:
    before, after = conv_padding(n, k, s, padding)
    return (n + before + after - k) // s + 1


@dataclass(frozen=True)
class _Conv(Layer):
    params: ClassVar[dict[str, str]] = {"kernel": "kernel", "bias": "bias"}
    filters: int
    kernel: Any
    stride: Any = 1
    padding: Any = "same"
    activation: str = "linear"

    def _validate(self) -> None:
        name = type(self).__name__
        object.__setattr__(self, "filters", positive_int(name, "filters", self.filters))
        kernel, stride = pair(name, "kernel", self.kernel), pair(name, "stride", self.stride)
        object.__setattr__(self, "kernel", kernel[0] if kernel[0] == kernel[1] else kernel)
        object.__setattr__(self, "stride", stride[0] if stride[0] == stride[1] else stride)
        object.__setattr__(self, "padding", _padding(name, self.padding))
        check_activation(name, self.activation)

    @property
    def kernel_size(self) -> tuple[int, int]:
        return pair("", "kernel", self.kernel)

    @property
    def strides(self) -> tuple[int, int]:
        return pair("", "stride", self.stride)

    def _image(self, input_shape: Shape) -> None:
        if len(input_shape) != 3:
            raise self._fail(input_shape, "it takes images (height, width, channels); "
                                          "use Reshape((h, w, c)) before it")

    def describe(self) -> str:
        k, s = self.kernel, self.stride
        extra = "" if s == 1 else f", stride={s}"
        extra += "" if self.padding == "same" else f", padding={self.padding!r}"
        extra += "" if self.activation == "linear" else f", {self.activation}"
        return f"{type(self).__name__}({self.filters}, {k}{extra})"


@dataclass(frozen=True)
class Conv2D(_Conv):
    """2-D convolution (cross-correlation, as every framework computes it), NHWC / HWIO.

    Attributes:
        filters: output channels.
        kernel: kernel size, an int or (height, width).
        stride: an int or (height, width); default 1.
        padding: "same" (default), "valid" or an int (see the module docstring).
        activation: applied after the bias ("linear" by default).

    Examples:
        >>> Conv2D(32, 3, stride=2, activation="relu").output_shape((28, 28, 1))
        (14, 14, 32)
    """

    kind: ClassVar[str] = "conv2d"

    def __post_init__(self) -> None:
        self._validate()

    def output_shape(self, input_shape: Shape) -> Shape:
        self._image(input_shape)
        out = []
        for n, k, s in zip(input_shape[:2], self.kernel_size, self.strides):
            before, after = conv_padding(n, k, s, self.padding)
            if n + before + after < k:
                raise self._fail(input_shape, f"the kernel {self.kernel_size} is larger than the "
                                              f"(padded) input {input_shape[:2]}")
            out.append(_conv_out(n, k, s, self.padding))
        return (out[0], out[1], self.filters)

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        return {"kernel": (*self.kernel_size, input_shape[2], self.filters), "bias": (self.filters,)}

    def fans(self, input_shape: Shape) -> tuple[int, int]:
        field = math.prod(self.kernel_size)
        return (field * input_shape[2], field * self.filters)

    def _work_elements(self, input_shape: Shape, output_shape: Shape) -> int:
        # the padded input, and one (output rows x input channels) product per kernel tap
        oh, ow, _ = output_shape
        return super()._work_elements(input_shape, output_shape) + math.prod(self.kernel_size) * oh * ow * input_shape[2]

    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        (pt, pb), (pl, pr) = (conv_padding(n, k, s, self.padding)
                              for n, k, s in zip(x.shape[1:3], (kh, kw), (sh, sw)))
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
        w = params["kernel"]
        pre = np.zeros((x.shape[0], oh, ow, w.shape[3]), x.dtype) + params["bias"]
        for i in range(kh):
            for j in range(kw):
                pre += xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :] @ w[i, j]
        y, deriv = ACTIVATIONS[self.activation](pre)
        return y, (xp, x.shape, (pt, pl), deriv)

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        xp, shape, (pt, pl), deriv = cache
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        dpre = dy * deriv
        oh, ow = dpre.shape[1:3]
        w = params["kernel"]
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        for i in range(kh):
            for j in range(kw):
                window = (slice(None), slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))
                dw[i, j] = np.einsum("nhwc,nhwo->co", xp[window], dpre)
                dxp[window] += dpre @ w[i, j].T
        dx = dxp[:, pt:pt + shape[1], pl:pl + shape[2], :]
        return dx, {"kernel": dw, "bias": dpre.sum(axis=(0, 1, 2))}


@dataclass(frozen=True)
class Conv2DTranspose(_Conv):
    """The adjoint of Conv2D (a "deconvolution"): upsamples by the stride.

    Attributes:
        filters: output channels.
        kernel: kernel size, an int or (height, width); stored (kh, kw, out, in).
        stride: an int or (height, width); default 1.
        padding: "same" (default), "valid" or an int (see the module docstring).
        output_padding: extra rows/columns at the end, 0 <= output_padding < stride.
        activation: applied after the bias ("linear" by default).

    Examples:
        >>> Conv2DTranspose(64, 3, stride=2).output_shape((7, 7, 32))
        (14, 14, 64)
    """

    kind: ClassVar[str] = "conv2d_transpose"
    output_padding: int = 0

    def __post_init__(self) -> None:
        self._validate()
        object.__setattr__(self, "output_padding",
                           positive_int("Conv2DTranspose", "output_padding", self.output_padding, minimum=0))
        if any(self.output_padding >= s for s in self.strides):
            raise SpecError(f"Conv2DTranspose.output_padding must be smaller than the stride {self.stride}. "
                            f"Received: output_padding={self.output_padding}")

    def _geometry(self, input_shape: Shape) -> list[tuple[int, int]]:
        return [transpose_padding(n, k, s, self.padding, self.output_padding)
                for n, k, s in zip(input_shape[:2], self.kernel_size, self.strides)]

    def output_shape(self, input_shape: Shape) -> Shape:
        self._image(input_shape)
        (_, oh), (_, ow) = self._geometry(input_shape)
        if oh < 1 or ow < 1:
            raise self._fail(input_shape, f"the padding {self.padding!r} leaves an empty output ({oh}, {ow})")
        return (oh, ow, self.filters)

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        return {"kernel": (*self.kernel_size, self.filters, input_shape[2]), "bias": (self.filters,)}

    def fans(self, input_shape: Shape) -> tuple[int, int]:
        field = math.prod(self.kernel_size)  # Keras reads (kh, kw, out, in) as in=out-channels
        return (field * self.filters, field * input_shape[2])

    def _work_elements(self, input_shape: Shape, output_shape: Shape) -> int:
        # the uncropped output, and one (input rows x filters) product per kernel tap
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        h, w, _ = input_shape
        full = ((h - 1) * sh + kh) * ((w - 1) * sw + kw) * self.filters
        return super()._work_elements(input_shape, output_shape) + 2 * full + kh * kw * h * w * self.filters

    def forward(self, params: dict[str, Array], x: Array, mask: Array | None = None) -> tuple[Array, Any]:
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        (bt, oh), (bl, ow) = self._geometry(x.shape[1:])
        n, h, wd, _ = x.shape
        w = params["kernel"]
        full = np.zeros((n, (h - 1) * sh + kh, (wd - 1) * sw + kw, self.filters), x.dtype)
        for i in range(kh):
            for j in range(kw):
                full[:, i:i + sh * (h - 1) + 1:sh, j:j + sw * (wd - 1) + 1:sw, :] += x @ w[i, j].T
        pre = _crop(full, bt, oh, bl, ow) + params["bias"]
        y, deriv = ACTIVATIONS[self.activation](pre)
        return y, (x, full.shape, (bt, bl), deriv)

    def backward(self, params: dict[str, Array], cache: Any, dy: Array) -> tuple[Array, dict[str, Array]]:
        x, full_shape, (bt, bl), deriv = cache
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        dpre = dy * deriv
        dfull = _crop(dpre, -bt, full_shape[1], -bl, full_shape[2])  # the adjoint of the crop
        _, h, wd, _ = x.shape
        w = params["kernel"]
        dx, dw = np.zeros_like(x), np.zeros_like(w)
        for i in range(kh):
            for j in range(kw):
                g = dfull[:, i:i + sh * (h - 1) + 1:sh, j:j + sw * (wd - 1) + 1:sw, :]
                dx += g @ w[i, j]
                dw[i, j] = np.einsum("nhwo,nhwc->oc", g, x)
        return dx, {"kernel": dw, "bias": dpre.sum(axis=(0, 1, 2))}


def _crop(a: Array, top: int, height: int, left: int, width: int) -> Array:
    """a[:, top:top+height, left:left+width] where rows/columns outside `a` read as zeros."""
    out = np.zeros((a.shape[0], height, width, a.shape[3]), a.dtype)
    r0, r1 = max(top, 0), min(top + height, a.shape[1])
    c0, c1 = max(left, 0), min(left + width, a.shape[2])
    if r1 > r0 and c1 > c0:
        out[:, r0 - top:r1 - top, c0 - left:c1 - left] = a[:, r0:r1, c0:c1]
    return out
