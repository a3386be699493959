"""An integer spiking network, before it is placed on a core.

This is the hand-off between the engines that *make* networks (ANN-to-SNN conversion,
STDP training, hand-written models) and the compiler that *places* them on a core
(:mod:`neurocore.sw.compiler`). Like NIR's graph, it is plain data with shape checks and
no behaviour: populations of LIF neurons with the core's integer parameters, and sparse
projections between them. Values are already in the core's integer world (weights in
``weight_bits``, thresholds in membrane units); the compiler only places and validates.

Host inputs are the source ``"input"``; a population's spikes reach the next population
one step later (every internal connection of the core has a delay of one step).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..hw.program import WIDEST, LearningParams, NeuronParams, check_count, int_array
from ..hw.widths import WTA_K_MAX

__all__ = ["Population", "Projection", "ConvProjection", "SnnNetwork", "INPUT"]

INPUT = "input"
_INDEX_RANGE = (0, np.iinfo(np.int64).max)   # pre/post: checked against the population sizes


@dataclasses.dataclass
class Population:
    """``size`` LIF neurons sharing a role (a layer, an excitatory map, ...).

    ``params`` holds one value per neuron (use :meth:`NeuronParams.uniform`), except
    ``wta_group``: set ``wta=True`` to make the whole population one winner-take-all group
    (the compiler assigns the core's group id), or ``block_wta=(size, k)`` for structural
    k-WTA: every block of ``size`` consecutive neurons *in core order* keeps its ``k`` best
    candidates (docs/core-spec.md, section 5, phase 2; one WTA block range of the core). The
    core order of a conv projection's target is position-major with the maps of a position
    consecutive, so ``size = maps`` is winner-take-all between the maps at each position.
    ``output`` marks the population whose spikes go to the host; ``theta`` is the initial
    threshold adaptation (None: zeros).
    """

    name: str
    params: NeuronParams
    output: bool = False
    wta: bool = False
    theta: np.ndarray | None = None
    block_wta: tuple | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or self.name == INPUT:
            raise ValueError(f"population name {self.name!r} is reserved, empty or not a string")
        if not isinstance(self.params, NeuronParams):
            raise ValueError(f"population {self.name}: params must be a NeuronParams, got "
                             f"{type(self.params).__name__}")
        for flag in ("output", "wta"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise ValueError(f"population {self.name}: {flag} must be True or False, got "
                                 f"{getattr(self, flag)!r}")
        if (self.params.wta_group != 0).any():
            raise ValueError(f"population {self.name}: set wta=True instead of params.wta_group")
        if self.block_wta is not None:
            self.block_wta = _block_wta(self.name, self.block_wta, self.size, self.wta)
        if self.theta is not None:
            if np.shape(self.theta) != (self.size,):
                raise ValueError(f"population {self.name}: theta has shape {np.shape(self.theta)}, "
                                 f"expected ({self.size},)")
            self.theta = int_array(self.theta, f"population {self.name}: theta", 0, WIDEST.theta_max)

    @property
    def size(self) -> int:
        return len(self.params)


def _block_wta(name: str, value, size: int, wta: bool) -> tuple[int, int]:
    """``(block size, k)`` of a population's structural WTA, checked against its size."""
    try:
        block, k = (int(v) if not isinstance(v, bool) and float(v) == int(v) else None for v in value)
    except (TypeError, ValueError):
        block = k = None
    if block is None or k is None:
        raise ValueError(f"population {name}: block_wta must be a pair (block size, k) of integers, "
                         f"got {value!r}")
    if wta:
        raise ValueError(f"population {name}: wta=True and block_wta exclude each other "
                         "(a neuron is in at most one WTA group)")
    if block < 1 or size % block:
        raise ValueError(f"population {name}: block_wta size {block} must divide its {size} neurons")
    if not 1 <= k <= min(block, WTA_K_MAX):
        raise ValueError(f"population {name}: block_wta k = {k} must be in 1..{min(block, WTA_K_MAX)} "
                         f"(at most the block size and WTA_K_MAX = {WTA_K_MAX})")
    return block, k


@dataclasses.dataclass
class Projection:
    """Sparse synapses ``source[pre[i]] -> target[post[i]]`` with integer ``weight[i]``."""

    source: str
    target: str
    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    plastic: bool = False

    def __post_init__(self):
        what = f"projection {self.source}->{self.target}"
        self.pre = int_array(self.pre, f"{what}: pre", *_INDEX_RANGE)
        self.post = int_array(self.post, f"{what}: post", *_INDEX_RANGE)
        self.weight = int_array(self.weight, f"{what}: weight", *WIDEST.weight_range)
        if not isinstance(self.plastic, (bool, np.bool_)):
            raise ValueError(f"{what}: plastic must be True or False, got {self.plastic!r}")
        self.plastic = bool(self.plastic)
        if not (len(self.pre) == len(self.post) == len(self.weight)):
            raise ValueError(f"projection {self.source}->{self.target}: pre ({len(self.pre)}), post "
                             f"({len(self.post)}) and weight ({len(self.weight)}) differ in length")

    @classmethod
    def dense(cls, source: str, target: str, weight: np.ndarray, *, plastic: bool = False,
              keep_zeros: bool = False) -> "Projection":
        """From a dense ``[n_target, n_source]`` integer matrix (zeros dropped unless
        ``keep_zeros``; plastic projections keep every synapse, since zero can grow)."""
        weight = np.asarray(weight)
        if weight.ndim != 2:
            raise ValueError(f"dense projection {source}->{target}: weight must be 2-D, got {weight.shape}")
        keep = np.ones(weight.shape, bool) if (keep_zeros or plastic) else weight != 0
        post, pre = np.nonzero(keep)
        return cls(source, target, pre, post, weight[post, pre], plastic)


def _pair(value, name: str, low: int) -> tuple[int, int]:
    values = np.broadcast_to(np.asarray(value), (2,)) if np.ndim(value) == 0 else np.asarray(value).reshape(-1)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low
                                   for v in values.tolist()):
        raise ValueError(f"{name} must be an int >= {low} or a pair of them, got {value!r}")
    return int(values[0]), int(values[1])


@dataclasses.dataclass
class ConvProjection:
    """A convolution with one shared integer kernel: ``source`` is an image ``in_shape =
    (C_in, H, W)`` (neuron ``(c*H + y)*W + x``), ``target`` the ``C_out`` maps of the
    output ``(C_out, H', W')`` (neuron ``(c*H' + y')*W' + x'``, the order of PyTorch and of
    :class:`Projection`), ``H' = (H + 2 p_h - K_h) // s_h + 1`` (likewise ``W'``)::

        input (ci, y, x) -> output (co, y', x') with weight[co, ci, dy, dx]
        where y = y'*s_h - p_h + dy and x = x'*s_w - p_w + dx (taps on the padding dropped)

    :attr:`pre`, :attr:`post`, :attr:`weight` give the same synapses as an explicit list
    (zero weights dropped); the compiler stores the kernel once, ``C_in*K_h*K_w*C_out``
    words, in shared rows (docs/core-spec.md, section 3), placing the target population
    position-major (the maps of one position consecutive) on the core.

    A source of ``"input"`` reads the first ``C_in*H*W`` network inputs (a chip's core may
    have more inputs after them: copies of other cores' neurons).

    ``window = (p0, p1)`` keeps only the output positions ``q = y'*W' + x'`` in ``p0 .. p1-1``
    (every map): the part of a convolution one core of a chip holds. The target then has
    ``(p1 - p0) * C_out`` units, already in core order: unit ``(q - p0)*C_out + co``.
    """

    source: str
    target: str
    kernel: np.ndarray                 # int [C_out, C_in, K_h, K_w]
    in_shape: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    plastic: bool = False
    window: tuple | None = None        # (p0, p1): only output positions p0..p1-1 (see below)

    def __post_init__(self):
        what = f"conv projection {self.source}->{self.target}"
        kernel = np.asarray(self.kernel)
        if kernel.ndim != 4:
            raise ValueError(f"{what}: kernel must be 4-D [C_out, C_in, K_h, K_w], got shape {kernel.shape}")
        self.kernel = int_array(kernel.reshape(-1), f"{what}: kernel", *WIDEST.weight_range).reshape(kernel.shape)
        shape = tuple(np.asarray(self.in_shape).reshape(-1).tolist()) if np.ndim(self.in_shape) else ()
        if len(shape) != 3 or any(not isinstance(v, int) or v < 1 for v in shape):
            raise ValueError(f"{what}: in_shape must be (C_in, H, W) of positive ints, got {self.in_shape!r}")
        self.in_shape = shape
        self.stride = _pair(self.stride, f"{what}: stride", 1)
        self.padding = _pair(self.padding, f"{what}: padding", 0)
        if not isinstance(self.plastic, (bool, np.bool_)):
            raise ValueError(f"{what}: plastic must be True or False, got {self.plastic!r}")
        self.plastic = bool(self.plastic)
        if kernel.shape[1] != shape[0]:
            raise ValueError(f"{what}: kernel has {kernel.shape[1]} input channels, in_shape {shape} has {shape[0]}")
        if min(self.out_shape) < 1:
            raise ValueError(f"{what}: a {kernel.shape[2]}x{kernel.shape[3]} kernel does not fit the "
                             f"{shape[1]}x{shape[2]} input (padding {self.padding})")
        if self.window is not None:
            positions = self.out_shape[1] * self.out_shape[2]
            try:
                p0, p1 = (int(v) for v in self.window)
            except (TypeError, ValueError):
                p0 = p1 = -1
            if not 0 <= p0 < p1 <= positions:
                raise ValueError(f"{what}: window must be (p0, p1) with 0 <= p0 < p1 <= {positions} output "
                                 f"positions, got {self.window!r}")
            self.window = (p0, p1)
        self._synapses = None

    @property
    def n_units(self) -> int:
        """Units of the target: every output, or the window's positions times the maps."""
        co, oh, ow = self.out_shape
        return co * (oh * ow if self.window is None else self.window[1] - self.window[0])

    @property
    def out_shape(self) -> tuple[int, int, int]:
        co, _, kh, kw = self.kernel.shape
        (_, h, w), (sh, sw), (ph, pw) = self.in_shape, self.stride, self.padding
        return co, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def _explicit(self):
        if self._synapses is None:
            co, ci, kh, kw = self.kernel.shape
            _, h, w = self.in_shape
            _, oh, ow = self.out_shape
            (sh, sw), (ph, pw) = self.stride, self.padding
            o, c, i, j, y, x = np.meshgrid(np.arange(co), np.arange(ci), np.arange(kh), np.arange(kw),
                                           np.arange(oh), np.arange(ow), indexing="ij")
            yy, xx = y * sh - ph + i, x * sw - pw + j
            weight = self.kernel[o, c, i, j]
            keep = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w) & (weight != 0)
            if self.window is None:
                post = (o * oh + y) * ow + x
            else:
                q = y * ow + x
                keep &= (q >= self.window[0]) & (q < self.window[1])
                post = (q - self.window[0]) * co + o
            self._synapses = ((c * h + yy)[keep] * w + xx[keep], post[keep], weight[keep])
        return self._synapses

    @property
    def pre(self) -> np.ndarray:
        return self._explicit()[0]

    @property
    def post(self) -> np.ndarray:
        return self._explicit()[1]

    @property
    def weight(self) -> np.ndarray:
        return self._explicit()[2]

    def placement(self) -> np.ndarray:
        """``order[u]``: where output unit ``u = (co*H' + y')*W' + x'`` goes in its population
        on the core, position-major: ``(y'*W' + x')*C_out + co`` (spec section 3)."""
        if self.window is not None:                  # already in core order
            return np.arange(self.n_units, dtype=np.int64)
        co, oh, ow = self.out_shape
        o, y, x = np.meshgrid(np.arange(co), np.arange(oh), np.arange(ow), indexing="ij")
        return ((y * ow + x) * co + o).reshape(-1)

    def kernel_words(self) -> np.ndarray:
        """The kernel as stored once: for every ``(ci, dy)`` the ``K_w * C_out`` words
        ``kernel[co, ci, dy, dx]`` with ``dx`` decreasing and ``co`` inside."""
        k = self.kernel[:, :, :, ::-1]                    # [co, ci, dy, K_w-1-dx]
        return np.ascontiguousarray(k.transpose(1, 2, 3, 0)).reshape(-1)

    @staticmethod
    def kernel_from_words(words: np.ndarray, kernel_shape) -> np.ndarray:
        """The kernel ``[C_out, C_in, K_h, K_w]`` stored as ``words`` (the inverse of
        :meth:`kernel_words`)."""
        co, ci, kh, kw = (int(v) for v in kernel_shape)
        words = np.asarray(words, np.int64).reshape(ci, kh, kw, co)
        return np.ascontiguousarray(words.transpose(3, 0, 1, 2)[:, :, :, ::-1])

    def segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The shared rows: ``(pre, word, count, first)`` per segment, ``pre`` the source unit,
        ``word`` the first kernel word (into :meth:`kernel_words`), ``first`` the first target
        in the core order of :meth:`placement`. Per source pixel and kernel row ``dy`` one
        segment of consecutive taps (stride 1 across: ``dx`` decreasing is ``x'``
        increasing); with a horizontal stride > 1, one segment per tap. Ordered by source unit."""
        co, ci, kh, kw = self.kernel.shape
        _, h, w = self.in_shape
        _, oh, ow = self.out_shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        pre, word, count, first = [], [], [], []
        for c in range(ci):
            for y in range(h):
                for dy in range(kh):
                    if (y + ph - dy) % sh:
                        continue
                    yo = (y + ph - dy) // sh
                    if not 0 <= yo < oh:
                        continue
                    row_word = (c * kh + dy) * kw * co
                    for x in range(w):
                        unit = (c * h + y) * w + x
                        taps = [(dx, (x + pw - dx) // sw) for dx in range(kw - 1, -1, -1)
                                if (x + pw - dx) % sw == 0 and 0 <= (x + pw - dx) // sw < ow]
                        groups = [taps] if sw == 1 and taps else [[t] for t in taps]
                        for group in groups:
                            dx0, xo0 = group[0]
                            pre.append(unit)
                            word.append(row_word + (kw - 1 - dx0) * co)
                            count.append(len(group) * co)
                            first.append((yo * ow + xo0) * co)
        pre, word, count, first = (np.array(v, np.int64) for v in (pre, word, count, first))
        if self.window is not None:                  # clip every segment to the window's targets
            lo, hi = self.window[0] * co, self.window[1] * co
            start, stop = np.maximum(first, lo), np.minimum(first + count, hi)
            keep = stop > start
            pre, word = pre[keep], (word + start - first)[keep]
            count, first = (stop - start)[keep], (start - lo)[keep]
        order = np.argsort(pre, kind="stable")
        return tuple(v[order] for v in (pre, word, count, first))

    def frozen(self) -> "ConvProjection":
        """The same convolution, not plastic."""
        return ConvProjection(self.source, self.target, self.kernel.copy(), self.in_shape, self.stride,
                              self.padding, plastic=False, window=self.window)


@dataclasses.dataclass
class SnnNetwork:
    """Populations and projections, plus how the host talks to the network."""

    n_inputs: int
    populations: list[Population]
    projections: list[Projection]
    learning: LearningParams = dataclasses.field(default_factory=LearningParams)
    # Free-form descriptions carried into the image manifest (e.g. {"kind": "rate", ...}).
    encoding: dict = dataclasses.field(default_factory=dict)
    decoding: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise ValueError(f"population names must be unique, got {names}")
        self.n_inputs = check_count(self.n_inputs, "n_inputs")
        if not isinstance(self.learning, LearningParams):
            raise ValueError(f"learning must be a LearningParams, got {type(self.learning).__name__}")
        sizes = {p.name: p.size for p in self.populations} | {INPUT: self.n_inputs}
        for proj in self.projections:
            if isinstance(proj, ConvProjection):
                need = proj.n_units
                have = sizes.get(proj.target)
                if have is not None and have != need:
                    raise ValueError(f"conv projection {proj.source}->{proj.target}: its output "
                                     f"{proj.out_shape} has {need} units but population {proj.target} "
                                     f"has {have} neurons")
                units = int(np.prod(proj.in_shape))      # the network input: its first units
                if proj.source in sizes and (sizes[proj.source] < units if proj.source == INPUT
                                             else sizes[proj.source] != units):
                    raise ValueError(f"conv projection {proj.source}->{proj.target}: in_shape {proj.in_shape} "
                                     f"has {int(np.prod(proj.in_shape))} units but {proj.source} has "
                                     f"{sizes[proj.source]}")
            for role, name, index in (("source", proj.source, proj.pre), ("target", proj.target, proj.post)):
                if name not in sizes or (role == "target" and name == INPUT):
                    raise ValueError(f"projection {proj.source}->{proj.target}: unknown {role} {name!r} "
                                     f"(populations: {', '.join(names)}; sources may also be '{INPUT}')")
                if len(index) and (index.min() < 0 or index.max() >= sizes[name]):
                    bad = int(index[(index < 0) | (index >= sizes[name])][0])
                    raise ValueError(f"projection {proj.source}->{proj.target}: {role} index {bad} "
                                     f"outside 0..{sizes[name] - 1}")

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def outputs(self) -> list[Population]:
        return [p for p in self.populations if p.output]
