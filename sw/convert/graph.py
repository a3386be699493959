"""A small float ANN graph IR: the common ground of every conversion frontend.

A :class:`Graph` is a *sequential* chain of layers applied to an input of a known shape.
Shapes are tracked and checked when the graph is built:

* vector data has shape ``(n,)``;
* image data has shape ``(C, H, W)`` (channels first, like PyTorch and NIR).

Layers (all float64 numpy arrays, no batch dimension in the stored parameters):

=================  ==========================================  =======================
layer              parameters                                  shape map
=================  ==========================================  =======================
:class:`Dense`     ``weight [out, in]``, ``bias [out]``          ``(in,) -> (out,)``
:class:`Conv2d`    ``weight [oc, ic, kh, kw]``, ``bias [oc]``,   ``(ic,H,W) -> (oc,H',W')``
                   ``stride (sh, sw)``, ``padding (ph, pw)``     ``H' = (H+2ph-kh)//sh+1``
:class:`AvgPool2d` ``kernel (kh, kw)``, ``stride (sh, sw)``      ``(C,H,W) -> (C,H',W')``
:class:`SumPool2d` ``kernel (kh, kw)``, ``stride (sh, sw)``      ``(C,H,W) -> (C,H',W')``
:class:`Flatten`   --                                          ``(C,H,W) -> (C*H*W,)``
:class:`ReLU`      --                                          unchanged
=================  ==========================================  =======================

``Flatten`` is row-major (C, then H, then W), the order of ``numpy.reshape`` and
``torch.flatten``; every layer's units are numbered in that same order, so a flattened
index is also the index of the neuron in the converted population.

:meth:`Graph.forward` evaluates the graph in float64 on a batch; it is the reference
the SNN is compared with, and the source of the activations the converter normalises.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Dense", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "ReLU", "Graph", "Layer",
           "WEIGHTED", "POOLING", "conv2d_forward", "pool2d_forward"]


def _pair(value, name: str) -> tuple[int, int]:
    """``v`` or ``(a, b)`` -> ``(a, b)`` of non-negative Python ints."""
    if np.ndim(value) == 0:
        a = b = value
    else:
        values = [int(v) for v in np.asarray(value).reshape(-1)]
        if len(values) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        a, b = values
    a, b = int(a), int(b)
    if a < 0 or b < 0:
        raise ValueError(f"{name} must be non-negative, got {(a, b)}")
    return a, b


@dataclasses.dataclass
class Dense:
    """Fully connected layer ``y = W x + b`` with ``W [out, in]``, ``b [out]``."""

    weight: np.ndarray
    bias: np.ndarray | None = None

    def __post_init__(self):
        self.weight = np.asarray(self.weight, np.float64)
        if self.weight.ndim != 2:
            raise ValueError(f"Dense: weight must be 2-D [out, in], got shape {self.weight.shape}")
        self.bias = (np.zeros(self.weight.shape[0]) if self.bias is None
                     else np.asarray(self.bias, np.float64).reshape(-1))
        if self.bias.shape != (self.weight.shape[0],):
            raise ValueError(f"Dense: bias has shape {self.bias.shape}, expected ({self.weight.shape[0]},)")

    def output_shape(self, shape: tuple) -> tuple:
        if len(shape) != 1:
            raise ValueError(f"Dense needs a vector input (n,), got shape {shape} (insert a Flatten)")
        if shape[0] != self.weight.shape[1]:
            raise ValueError(f"Dense: weight [out, in] = {list(self.weight.shape)} expects {self.weight.shape[1]} "
                             f"inputs, got {shape[0]}")
        return (self.weight.shape[0],)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight.T + self.bias


@dataclasses.dataclass
class Conv2d:
    """2-D convolution (cross-correlation, as in PyTorch) with zero padding.

    ``weight [oc, ic, kh, kw]``, ``bias [oc]``; ``stride`` and ``padding`` are ints or pairs.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self):
        self.weight = np.asarray(self.weight, np.float64)
        if self.weight.ndim != 4:
            raise ValueError(f"Conv2d: weight must be 4-D [oc, ic, kh, kw], got shape {self.weight.shape}")
        self.bias = (np.zeros(self.weight.shape[0]) if self.bias is None
                     else np.asarray(self.bias, np.float64).reshape(-1))
        if self.bias.shape != (self.weight.shape[0],):
            raise ValueError(f"Conv2d: bias has shape {self.bias.shape}, expected ({self.weight.shape[0]},)")
        self.stride = _pair(self.stride, "Conv2d stride")
        self.padding = _pair(self.padding, "Conv2d padding")
        if min(self.stride) < 1:
            raise ValueError(f"Conv2d: stride must be >= 1, got {self.stride}")

    def output_shape(self, shape: tuple) -> tuple:
        if len(shape) != 3:
            raise ValueError(f"Conv2d needs an image input (C, H, W), got shape {shape}")
        oc, ic, kh, kw = self.weight.shape
        if shape[0] != ic:
            raise ValueError(f"Conv2d: weight [oc, ic, kh, kw] = {list(self.weight.shape)} expects {ic} input "
                             f"channels, got {shape[0]}")
        h = (shape[1] + 2 * self.padding[0] - kh) // self.stride[0] + 1
        w = (shape[2] + 2 * self.padding[1] - kw) // self.stride[1] + 1
        if h < 1 or w < 1:
            raise ValueError(f"Conv2d: kernel {kh}x{kw} does not fit the padded input {shape}")
        return (oc, h, w)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return conv2d_forward(x, self.weight, self.bias, self.stride, self.padding)


@dataclasses.dataclass
class _Pool2d:
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None   # None: the kernel size (PyTorch's default)

    def __post_init__(self):
        self.kernel = _pair(self.kernel, f"{type(self).__name__} kernel")
        self.stride = self.kernel if self.stride is None else _pair(self.stride, f"{type(self).__name__} stride")
        if min(self.kernel) < 1 or min(self.stride) < 1:
            raise ValueError(f"{type(self).__name__}: kernel and stride must be >= 1, got "
                             f"kernel {self.kernel}, stride {self.stride}")

    def output_shape(self, shape: tuple) -> tuple:
        name = type(self).__name__
        if len(shape) != 3:
            raise ValueError(f"{name} needs an image input (C, H, W), got shape {shape}")
        h = (shape[1] - self.kernel[0]) // self.stride[0] + 1
        w = (shape[2] - self.kernel[1]) // self.stride[1] + 1
        if h < 1 or w < 1:
            raise ValueError(f"{name}: kernel {self.kernel} does not fit the input {shape}")
        return (shape[0], h, w)

    @property
    def area(self) -> int:
        return self.kernel[0] * self.kernel[1]


@dataclasses.dataclass
class AvgPool2d(_Pool2d):
    """Average pooling (no padding): the mean of each ``kh x kw`` window."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return pool2d_forward(x, self.kernel, self.stride) / self.area


@dataclasses.dataclass
class SumPool2d(_Pool2d):
    """Sum pooling (no padding): the sum of each ``kh x kw`` window (NIR's ``SumPool2d``)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return pool2d_forward(x, self.kernel, self.stride)


@dataclasses.dataclass
class Flatten:
    """``(C, H, W) -> (C*H*W,)``, row-major. A no-op on a vector."""

    def output_shape(self, shape: tuple) -> tuple:
        return (int(np.prod(shape)),)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], -1)


@dataclasses.dataclass
class ReLU:
    """``max(x, 0)``; the nonlinearity that IF neurons approximate with their firing rate."""

    def output_shape(self, shape: tuple) -> tuple:
        return shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0)


Layer = Dense | Conv2d | AvgPool2d | SumPool2d | Flatten | ReLU
WEIGHTED = (Dense, Conv2d)
POOLING = (AvgPool2d, SumPool2d)


def _check_shape(shape) -> tuple:
    shape = tuple(int(s) for s in np.asarray(shape).reshape(-1))
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError(f"a shape must be (n,) or (C, H, W) with positive sizes, got {shape}")
    return shape


@dataclasses.dataclass
class Graph:
    """A sequential float network: ``layers`` applied in order to inputs of ``input_shape``.

    Construction checks every layer against the shape it receives (``ValueError`` names the
    layer index and type); :attr:`shapes` lists the shape after every layer.
    """

    input_shape: tuple
    layers: list

    def __post_init__(self):
        self.input_shape = _check_shape(self.input_shape)
        self.layers = list(self.layers)
        shape = self.input_shape
        self.shapes: list[tuple] = []
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, (Dense, Conv2d, AvgPool2d, SumPool2d, Flatten, ReLU)):
                raise ValueError(f"layer {i}: unsupported layer type {type(layer).__name__} (supported: "
                                 "Dense, Conv2d, AvgPool2d, SumPool2d, Flatten, ReLU)")
            try:
                shape = tuple(int(s) for s in layer.output_shape(shape))
            except ValueError as exc:
                raise ValueError(f"layer {i} ({type(layer).__name__}): {exc}") from None
            self.shapes.append(shape)

    @property
    def output_shape(self) -> tuple:
        return self.shapes[-1] if self.shapes else self.input_shape

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    def _batch(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.ndim == 2 and x.shape[1] == self.n_inputs:
            return x.reshape((x.shape[0],) + self.input_shape)
        if x.shape[1:] == self.input_shape:
            return x
        raise ValueError(f"inputs must have shape [batch, {self.n_inputs}] or [batch, *{self.input_shape}], "
                         f"got {x.shape}")

    def forward(self, x, *, return_all: bool = False):
        """Evaluate on a batch ``x`` (``[B, n_inputs]`` or ``[B, *input_shape]``), float64.

        Returns the output ``[B, *output_shape]``, or with ``return_all`` the list of the
        outputs of every layer (``len(layers)`` arrays).
        """
        x = self._batch(x)
        outputs = []
        for layer in self.layers:
            x = layer.forward(x)
            outputs.append(x)
        return outputs if return_all else x

    def predict(self, x) -> np.ndarray:
        """Class predictions: argmax of the flattened output."""
        out = self.forward(x)
        return out.reshape(out.shape[0], -1).argmax(axis=1)

    def summary(self) -> str:
        lines = [f"input {self.input_shape}"]
        for layer, shape in zip(self.layers, self.shapes):
            lines.append(f"{type(layer).__name__:<10} -> {shape}")
        return "\n".join(lines)


# -- numpy reference kernels ---------------------------------------------------------------
def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """``x [B, C, H, W]`` -> ``[B, C, H', W', kh, kw]`` strided view of the windows."""
    view = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))
    return view[:, :, ::stride[0], ::stride[1]]


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride, padding) -> np.ndarray:
    """Cross-correlation of ``x [B, ic, H, W]`` with ``weight [oc, ic, kh, kw]`` plus ``bias``."""
    ph, pw = padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = _windows(x, weight.shape[2:], stride)          # [B, ic, H', W', kh, kw]
    out = np.einsum("bchwij,ocij->bohw", win, weight, optimize=True)
    return out + bias[None, :, None, None]


def pool2d_forward(x: np.ndarray, kernel, stride) -> np.ndarray:
    """Window sums of ``x [B, C, H, W]`` (no padding)."""
    return _windows(x, kernel, stride).sum(axis=(-2, -1))
