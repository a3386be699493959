r"""A small convolutional network trained with PyTorch, for ``neurocore convert --arch cnn``.

**Architecture** (:func:`build_cnn`), for ``maps = (m_1, ..., m_L)`` (default ``(8, 16)``)
and an input of shape ``(C, H, W)``, with ``stride = 1`` (the default)::

    [Conv2d(m_{l-1} -> m_l, 5x5, stride 1, padding p) -> ReLU -> AvgPool2d(2)] x L
    -> Flatten -> Linear(m_L * H_L * W_L -> n_classes)

with ``m_0 = C``. Every block maps ``H -> H_l = (H + 2p - 4) // 2``. The padding ``p`` is
0 ("valid", the classic LeNet layout: 28x28 -> 24 -> 12 -> 8 -> 4) when the image leaves at
least 2x2 units after the last block, else 2 ("same": 8x8 -> 8 -> 4 -> 4 -> 2). With
``stride = s >= 2`` a block is one strided convolution and no pooling::

    [Conv2d(m_{l-1} -> m_l, 5x5, stride s, padding p) -> ReLU] x L -> Flatten -> Linear

mapping ``H -> (H + 2p - 5) // s + 1`` (28x28 -> 12 -> 4 for ``s = 2``, valid): no pooling
population and 4x fewer conv units, so the default maps need 1,418 neurons instead of
6,794 (for small cores). Biases are kept (the converter adds them every step); there is no
batch normalisation and no max pooling, which rate-coded IF neurons cannot reproduce. The
network is exactly what :func:`neurocore.sw.convert.frontends.from_torch` converts.

An optional ``Dropout(dropout)`` before the readout (default 0: none) is skipped by the
converter, as at inference.

**Training** (:func:`train_cnn`): cross-entropy (optionally with ``label_smoothing``,
default 0), Adam (``lr``, default 3e-3, decayed to 0 along a cosine over all
mini-batches), L2 ``weight_decay`` (default 0), mini-batches of ``batch_size`` (default
32) drawn in a seeded random order every epoch, ``epochs`` (default 20), and random
translations (:func:`shift_batch`): every training image of every mini-batch is moved by
its own ``(dy, dx)``, each uniform in ``-shift .. shift`` pixels, zeros moved in; the
default ``shift`` is :func:`default_shift`, ``min(H, W) // 14`` (2 on 28x28, 0 on the 8x8
digits, where 2 pixels is a quarter of the image). The test split is never shifted.

*Why shifts by default* (measured 2026-12-01 on mnist-5k, the repository's split of
:func:`neurocore.sw.datasets.mnist_5k_split`, ANN test accuracy, ``maps = (8, 16)``, one
thread, 7 - 14 s per training; the SNN figures from ``neurocore convert --arch cnn
--dataset mnist-5k --steps 32 --curve 8,16,32 --seed S``):

============================================  ==============  =====================
recipe (changes from the old defaults)        seed 0          seeds 1 / 2
============================================  ==============  =====================
old defaults (20 epochs, lr 3e-3, no shift)   96.9 %          96.7 / 97.7 %
40 epochs                                     97.4 %
lr 1e-3                                       94.9 %
12 maps in the first layer                    97.3 %
shift 1                                       97.7 %
**shift 2 (the new default)**                 **97.7 %**      97.5 / 97.9 %
shift 2, 40 epochs                            97.8 %
stride 2, no shift                            96.3 %
stride 2, shift 2                             97.7 %          98.0 / 96.9 %
============================================  ==============  =====================

With shift 2 the SNN at T = 32 is 97.5 / 97.2 / 97.6 % for seeds 0 / 1 / 2 (gaps -0.2 /
-0.3 / -0.3 points), the stride-2 network's 97.3 / 97.8 / 96.5 % (-0.4 / -0.2 / -0.4).
The choice was made on the test split (1,000 images: one standard error is about 0.5
points), but the shift helps on all three seeds and on two other splits (below), at no
cost in time. The earlier note here (97.8 % for seed 0, 96.9 / 96.5 % for seeds 1 / 2 with
the old defaults) was measured on another split of the same 5,000 images, before the
repository's fixed split existed (the branch that added this module had no mnist-5k
loader); the recipe and seed were the same. The split alone moves the old recipe's seed-0
accuracy by a point: 96.9 % on the repository's split, 97.8 / 97.1 % on the splits of
:func:`~neurocore.sw.datasets.mnist_5k_split` with the keys ``.../split/v2`` and
``.../split/v3``, 96.8 % on scikit-learn's ``train_test_split(test_size=0.2,
stratify=labels, random_state=0)``; with shift 2 these are 97.7, 98.0, 97.2 and 97.8 %.
(Earlier, on the other split: dropout 0.3, label smoothing 0.1, weight decay 1e-4 or more
epochs did not do better.)

Deterministic for a seed: ``torch.manual_seed(seed)`` before the weights are initialised,
a ``torch.Generator`` seeded with ``seed`` for the order, another seeded with
``SeedSequence([seed, 1])`` for the shifts (so a shift does not change the order), one CPU
thread and
``torch.use_deterministic_algorithms(True)`` (the thread count and the determinism flag
are restored afterwards). Ctrl-C (``KeyboardInterrupt``) is not caught: it stops the
training and propagates, so nothing half-trained is converted or reported (the contract
of :func:`neurocore.sw.convert.pipeline.train_mlp`).

torch is an optional dependency (``pip install 'neurocore[torch]'``); :func:`require_torch`
turns its absence into one ``ImportError`` naming the extra.
"""
from __future__ import annotations

import math
import sys

import numpy as np

from .graph import AvgPool2d, Conv2d, Dense, Flatten, Graph, SumPool2d

__all__ = ["DEFAULT_MAPS", "DEFAULT_EPOCHS", "MAX_MAPS", "MAX_CONV_LAYERS", "MAX_EPOCHS", "KERNEL",
           "TORCH_MISSING", "require_torch", "check_maps", "check_epochs", "check_stride", "check_shift",
           "DEFAULT_STRIDE", "MAX_STRIDE", "SHIFT_DIVISOR", "MAX_SHIFT", "default_shift", "shift_batch", "cnn_padding", "build_cnn",
           "train_cnn", "predict_torch", "dataset_input_shape", "unshared_synapse_words", "fold_pooling",
           "lift_readout", "FOLD_CHOICES", "DEFAULT_FOLD"]

DEFAULT_MAPS = (8, 16)
DEFAULT_EPOCHS = 20
MAX_MAPS = 64              # feature maps per conv layer
MAX_CONV_LAYERS = 3        # conv blocks (each halves the image)
MAX_EPOCHS = 200
KERNEL = 5
DEFAULT_LR = 3e-3
DEFAULT_WEIGHT_DECAY = 0.0
DEFAULT_BATCH = 32
DEFAULT_DROPOUT = 0.0
DEFAULT_LABEL_SMOOTHING = 0.0
DEFAULT_STRIDE = 1
MAX_STRIDE = 3
SHIFT_DIVISOR = 14         # the default shift: the image's shorter side // SHIFT_DIVISOR pixels
MAX_SHIFT = 4
TORCH_MISSING = "--arch cnn trains with PyTorch, which is not installed: pip install 'neurocore[torch]'"


def require_torch():
    """``import torch``, or one ``ImportError`` naming the extra that installs it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(TORCH_MISSING) from exc
    return torch


def check_maps(maps) -> tuple[int, ...]:
    """``maps`` as a tuple of ints; ``ValueError`` unless 1..MAX_CONV_LAYERS values in 1..MAX_MAPS."""
    try:
        values = tuple(int(m) for m in maps)
    except (TypeError, ValueError):
        raise ValueError(f"maps must be 1 to {MAX_CONV_LAYERS} integers in 1..{MAX_MAPS}, got {maps!r}") from None
    if not 1 <= len(values) <= MAX_CONV_LAYERS or min(values) < 1 or max(values) > MAX_MAPS:
        raise ValueError(f"maps must be 1 to {MAX_CONV_LAYERS} integers in 1..{MAX_MAPS} (feature maps per "
                         f"conv layer), got {list(values)}")
    return values


def _whole_in(value, low: int, high: int) -> bool:
    """``value`` is an integer (not a bool; ``3.0`` counts, ``3.5`` does not) in ``low..high``."""
    try:
        whole = not isinstance(value, bool) and int(value) == value
    except (TypeError, ValueError):
        return False
    return whole and low <= int(value) <= high


def check_epochs(epochs) -> int:
    """``epochs`` as an int; ``ValueError`` unless in 1..MAX_EPOCHS."""
    if not _whole_in(epochs, 1, MAX_EPOCHS):
        raise ValueError(f"epochs must be an integer in 1..{MAX_EPOCHS}, got {epochs!r}")
    return int(epochs)


def check_stride(stride) -> int:
    """``stride`` as an int; ``ValueError`` unless in 1..MAX_STRIDE."""
    if not _whole_in(stride, 1, MAX_STRIDE):
        raise ValueError(f"stride must be an integer in 1..{MAX_STRIDE} (1: conv and 2x2 average pooling; "
                         f"2 or more: a strided conv, no pooling), got {stride!r}")
    return int(stride)


def check_shift(shift) -> int:
    """``shift`` as an int; ``ValueError`` unless in 0..MAX_SHIFT."""
    if not _whole_in(shift, 0, MAX_SHIFT):
        raise ValueError(f"shift must be an integer in 0..{MAX_SHIFT} (pixels of random translation), "
                         f"got {shift!r}")
    return int(shift)


def default_shift(input_shape) -> int:
    """The default training shift of :func:`train_cnn`: ``min(H, W) // SHIFT_DIVISOR`` pixels
    (2 on 28x28 MNIST and 32x32 CIFAR-10, 0 on the 8x8 digits), at most ``MAX_SHIFT``."""
    _, h, w = (int(s) for s in input_shape)
    return min(MAX_SHIFT, min(h, w) // SHIFT_DIVISOR)


def _block_size(size: int, padding: int, stride: int = 1) -> int:
    """The side of a block's output: conv then 2x2 pooling (stride 1) or a strided conv."""
    if stride == 1:
        return (size + 2 * padding - (KERNEL - 1)) // 2
    return (size + 2 * padding - KERNEL) // stride + 1


def cnn_padding(input_shape, n_blocks: int, stride: int = 1) -> int:
    """The conv padding: 0 if ``n_blocks`` valid blocks leave >= 2x2 units, else ``KERNEL // 2``.

    ``ValueError`` if even the padded blocks leave less than 1x1 (the image is too small).
    """
    _, h, w = input_shape
    stride = check_stride(stride)
    for padding in (0, KERNEL // 2):
        hh, ww = h, w
        for _ in range(n_blocks):
            hh, ww = _block_size(hh, padding, stride), _block_size(ww, padding, stride)
        if min(hh, ww) >= (2 if padding == 0 else 1):
            return padding
    what = "2x2 pooling" if stride == 1 else f"stride {stride}"
    raise ValueError(f"a {h}x{w} image is too small for {n_blocks} conv blocks of {KERNEL}x{KERNEL} "
                     f"kernels and {what}; use fewer --maps")


def dataset_input_shape(data) -> tuple[int, int, int]:
    """``(C, H, W)`` of a :class:`~neurocore.sw.datasets.Dataset` (1 channel if it has none)."""
    shape = tuple(int(s) for s in getattr(data, "input_shape", (1, *data.image_shape)))
    if len(shape) == 2:
        shape = (1, *shape)
    return shape


def build_cnn(input_shape, n_classes: int, *, maps=DEFAULT_MAPS, dropout: float = DEFAULT_DROPOUT,
              stride: int = DEFAULT_STRIDE):
    """The ``nn.Sequential`` of the module docstring (weights from torch's current RNG state)."""
    torch = require_torch()
    nn = torch.nn
    maps = check_maps(maps)
    stride = check_stride(stride)
    c, h, w = (int(s) for s in input_shape)
    padding = cnn_padding((c, h, w), len(maps), stride)
    modules = []
    channels = c
    for m in maps:
        if stride == 1:
            modules += [nn.Conv2d(channels, m, KERNEL, stride=1, padding=padding), nn.ReLU(), nn.AvgPool2d(2)]
        else:
            modules += [nn.Conv2d(channels, m, KERNEL, stride=stride, padding=padding), nn.ReLU()]
        channels, h, w = m, _block_size(h, padding, stride), _block_size(w, padding, stride)
    modules.append(nn.Flatten())
    if dropout:
        modules.append(nn.Dropout(float(dropout)))
    modules.append(nn.Linear(channels * h * w, int(n_classes)))
    return nn.Sequential(*modules)


def predict_torch(model, x, input_shape, batch_size: int = 500) -> np.ndarray:
    """Class predictions (argmax of the logits) of ``model`` on flattened ``x [n, C*H*W]``."""
    torch = require_torch()
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size], np.float32))
            out.append(model(xb.reshape(-1, *input_shape)).argmax(dim=1).numpy())
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def train_cnn(dataset, *, maps=DEFAULT_MAPS, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
              lr: float = DEFAULT_LR, weight_decay: float = DEFAULT_WEIGHT_DECAY,
              batch_size: int = DEFAULT_BATCH, label_smoothing: float = DEFAULT_LABEL_SMOOTHING,
              dropout: float = DEFAULT_DROPOUT, stride: int = DEFAULT_STRIDE, shift: int | None = None,
              progress: bool = False):
    """Train :func:`build_cnn` on ``dataset`` (see the module docstring).

    ``dataset`` is a :class:`~neurocore.sw.datasets.Dataset` (flattened ``x`` in [0, 1],
    its ``input_shape`` or ``(1, *image_shape)``). ``stride`` chooses the blocks (1: conv
    and 2x2 average pooling; 2 or 3: a strided conv), ``shift`` the largest random
    translation in pixels (``None``: :func:`default_shift` of the image; 0: none).
    ``progress`` shows a bar on stderr over the mini-batches of all epochs, with the epoch
    and the running loss.

    Returns ``(model, test_accuracy)``: the trained ``nn.Sequential`` in eval mode (float32)
    and its accuracy on the test split.
    """
    torch = require_torch()
    maps = check_maps(maps)
    epochs = check_epochs(epochs)
    stride = check_stride(stride)
    if not lr > 0 or not weight_decay >= 0 or int(batch_size) < 1:
        raise ValueError(f"lr must be > 0, weight_decay >= 0 and batch_size >= 1, got {lr}, {weight_decay}, "
                         f"{batch_size}")
    shape = dataset_input_shape(dataset)
    shift = default_shift(shape) if shift is None else check_shift(shift)
    x = torch.from_numpy(np.ascontiguousarray(dataset.x_train, np.float32)).reshape(-1, *shape)
    y = torch.from_numpy(np.ascontiguousarray(dataset.y_train, np.int64))
    n_batches = math.ceil(len(x) / int(batch_size))
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    bar = None
    try:
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(int(seed))
        model = build_cnn(shape, dataset.n_classes, maps=maps, dropout=dropout, stride=stride)
        order = torch.Generator().manual_seed(int(seed))
        shifts = torch.Generator().manual_seed(_shift_seed(seed))
        optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        total = epochs * n_batches
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=total, desc="train cnn", unit="batch", file=sys.stderr)
        model.train()
        for epoch in range(epochs):
            running, seen = 0.0, 0
            for idx in torch.randperm(len(x), generator=order).split(int(batch_size)):
                optimiser.zero_grad()
                xb = shift_batch(x[idx], shift, shifts) if shift else x[idx]
                loss = torch.nn.functional.cross_entropy(model(xb), y[idx], label_smoothing=label_smoothing)
                loss.backward()
                optimiser.step()
                schedule.step()
                running += float(loss.detach()) * len(idx)
                seen += len(idx)
                if bar is not None:
                    bar.set_postfix_str(f"epoch {epoch + 1}/{epochs} loss {running / seen:.4f}", refresh=False)
                    bar.update(1)
        model.eval()
        accuracy = float((predict_torch(model, dataset.x_test, shape) == dataset.y_test).mean())
    finally:
        if bar is not None:
            bar.close()
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    return model, accuracy


def _shift_seed(seed: int) -> int:
    """The seed of the augmentation's generator (independent of the order's)."""
    return int(np.random.SeedSequence([int(seed), 1]).generate_state(1)[0])


def shift_batch(xb, shift: int, generator):
    """Every image of ``xb [B, C, H, W]`` translated by its own ``(dy, dx)``, each drawn
    uniformly from ``-shift .. shift`` with ``generator``; pixels moved in are 0.

    ``out[b, c, i, j] = xb[b, c, i - dy_b, j - dx_b]`` (0 outside the image).
    """
    torch = require_torch()
    if shift == 0:
        return xb
    h, w = xb.shape[-2:]
    offsets = torch.randint(-shift, shift + 1, (len(xb), 2), generator=generator)
    padded = torch.nn.functional.pad(xb, (shift, shift, shift, shift))
    return torch.stack([padded[b, :, shift - dy:shift - dy + h, shift - dx:shift - dx + w]
                        for b, (dy, dx) in enumerate(offsets.tolist())])


def unshared_synapse_words(converted) -> int:
    """Synapse-memory words that the explicit (unshared) lowering of ``converted`` needs.

    Every conv projection unrolled to one synapse per output unit and kernel tap, stored
    like any projection: each source axon's row is the window from its lowest to its
    highest target neuron, gaps included (:func:`neurocore.sw.compiler.network_needs` with
    ``shared=False``, docs/core-spec.md section 3). The report's ``synapse_words`` is the
    shared lowering: each kernel stored once.
    """
    from ..compiler import network_needs

    return int(network_needs(converted.network, shared=False)["synapses"])


# -- conversion helpers ---------------------------------------------------------------------
FOLD_CHOICES = ("none", "readout", "all")
DEFAULT_FOLD = "readout"
DEFAULT_READOUT_LIFT = 0.6


def _pool_as_kernel(pool, weight: np.ndarray) -> np.ndarray:
    """``weight [..., kh', kw']`` of the layer after ``pool``, spread over the pooling windows.

    Every tap becomes a ``kh x kw`` block of the tap's value times ``1/(kh kw)`` (average)
    or ``1`` (sum): ``(W * P)`` where ``P`` is the pooling operator.
    """
    kh, kw = pool.kernel
    scale = 1.0 / pool.area if isinstance(pool, AvgPool2d) else 1.0
    return np.repeat(np.repeat(weight, kh, axis=-2), kw, axis=-1) * scale


def fold_pooling(graph: Graph, where: str = DEFAULT_FOLD) -> Graph:
    r"""An equivalent graph with pooling layers folded into the linear layer after them.

    A pooling layer (kernel == stride ``k``, no overlap) followed by a linear layer ``W`` is
    the linear layer ``W P``, so ``ReLU -> Pool -> W`` computes the same as ``ReLU -> W P``,
    and the SNN needs one population fewer (one step less latency, no rounding of the
    pooling neurons' counts):

    * ``Pool -> Flatten -> Dense(W [out, C*h*w])`` becomes ``Flatten -> Dense(W')`` with
      ``W' [out, C*kh*h*kw*w]``, every weight spread over its ``kh x kw`` window (times
      ``1/(kh kw)`` for average pooling);
    * ``Pool -> Conv2d(W [oc, ic, K, K], stride s, padding 0)`` becomes
      ``Conv2d(W', stride k s)`` with the ``kK x kK`` kernel ``W'`` spread the same way.

    ``where``: ``"none"`` (the graph unchanged), ``"readout"`` (only a pooling layer that
    feeds the final Dense: cheap, the Dense grows ``k^2``-fold) or ``"all"`` (also pooling
    before a Conv2d: its synapses grow ``k^2``-fold). A pooling layer whose windows leave
    part of the image out (the size is not a multiple of ``k``) is left as it is. The
    result is checked to have the same output shape.
    """
    if where not in FOLD_CHOICES:
        raise ValueError(f"fold must be one of {', '.join(FOLD_CHOICES)}, got {where!r}")
    layers = list(graph.layers)
    shapes = [graph.input_shape] + list(graph.shapes)      # shapes[i]: the input of layer i
    out: list = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        if where != "none" and isinstance(layer, (AvgPool2d, SumPool2d)) and layer.kernel == layer.stride:
            (_, h, w), (c, ph, pw) = shapes[i], shapes[i + 1]
            exact = (h, w) == (ph * layer.kernel[0], pw * layer.kernel[1])
            after = layers[i + 1] if i + 1 < len(layers) else None
            if exact and isinstance(after, Flatten) and i + 2 == len(layers) - 1 \
                    and isinstance(layers[i + 2], Dense):
                dense = layers[i + 2]
                weight = _pool_as_kernel(layer, dense.weight.reshape(-1, c, ph, pw))
                out += [Flatten(), Dense(weight.reshape(len(weight), -1), dense.bias.copy())]
                i += 3
                continue
            if exact and where == "all" and isinstance(after, Conv2d) and after.padding == (0, 0):
                stride = (after.stride[0] * layer.kernel[0], after.stride[1] * layer.kernel[1])
                out.append(Conv2d(_pool_as_kernel(layer, after.weight), after.bias.copy(), stride=stride))
                i += 2
                continue
        out.append(layer)
        i += 1
    folded = Graph(graph.input_shape, out)
    if folded.output_shape != graph.output_shape:   # pragma: no cover - guarded by the checks above
        raise ValueError(f"fold_pooling changed the output shape {graph.output_shape} -> {folded.output_shape}")
    return folded


def lift_readout(graph: Graph, x_calib, *, lift: float = DEFAULT_READOUT_LIFT) -> tuple[Graph, float]:
    r"""Add one constant ``c >= 0`` to every bias of the last (Dense) layer; returns ``(graph, c)``.

    The class is the argmax of the logits ``z``, which a common shift does not change, but
    the output neurons spike only for positive ``z``: a sample whose largest logit is
    negative stays silent (and decodes as class 0), and a small winning logit needs many
    steps for its first spike. With ``m(x) = max_k z_k(x)`` on the calibration data,

    .. math::  c = \max\bigl(0,\ \mathrm{lift}\cdot\mathrm{median}_x\, m(x) - \min_x m(x)\bigr)

    lifts the weakest calibration sample's winning logit to ``lift`` (default 0.6) times the
    typical one. The output scale ``lambda`` grows accordingly (the normaliser sees the
    shifted logits). The input graph is not modified.

    Measured once on mnist-5k (a (8, 16) CNN of this module trained 30 epochs, ANN 97.4 %,
    pooling of the readout folded): without the lift 1.5 % of the test samples have no
    positive logit and the T -> infinity limit of the SNN is 96.4 %; shifts of 3, 6 and
    10 give a limit of 97.2 - 97.4 % and raise the SNN at T = 32 from 96.1 % to 96.8,
    97.4 and 97.4 %.
    """
    if not isinstance(graph.layers[-1], Dense):
        raise ValueError(f"lift_readout needs a Dense last layer, got {type(graph.layers[-1]).__name__}")
    if not lift >= 0:
        raise ValueError(f"lift must be >= 0, got {lift}")
    z = graph.forward(x_calib)
    win = z.reshape(len(z), -1).max(axis=1)
    c = float(max(0.0, lift * max(0.0, float(np.median(win))) - float(win.min()))) if len(win) else 0.0
    last = graph.layers[-1]
    lifted = Graph(graph.input_shape, list(graph.layers[:-1]) + [Dense(last.weight.copy(), last.bias + c)])
    return lifted, c
