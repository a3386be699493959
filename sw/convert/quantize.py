r"""ANN -> SNN: data-based normalisation and integer quantisation onto the core.

The method is the rate-coded conversion of Rueckauer et al. (2017, *Conversion of
continuous-valued deep networks to efficient event-driven networks for image
classification*, Front. Neurosci. 11:682) with their robust (percentile) normalisation,
followed by a per-layer integer quantisation that keeps the ratio weight : threshold :
bias of the float network.

**1. Lowering.** The graph is cut into *stages*, one per Dense, Conv2d, AvgPool2d or
SumPool2d layer (a Flatten changes no unit numbers: units are numbered row-major in
``(C, H, W)`` order before and after it; a ReLU marks the stage before it as rectified).
Every stage ``l`` becomes one population of ``n_l`` neurons and one projection, an explicit
synapse list ``(pre, post, w)`` with a bias ``b`` per neuron, such that the layer is

.. math::  a_l = \mathrm{ReLU}(M_l a_{l-1} + b_l),\qquad (M_l)_{post,pre} = \sum w

(:func:`lower`). Dense layers give all ``out x in`` pairs, a Conv2d gives one synapse per
(output unit, kernel tap) that lands on the input rather than on the zero padding, a pooling window
gives one synapse per input unit with the weight ``1/k^2`` (average) or ``1`` (sum).
Every stage but the last must be rectified (IF neurons cannot carry negative values);
pooling stages are exempt because pooling non-negative values gives non-negative values.

**2. Normalisation** (Rueckauer et al. 2017, section 2.2.1, "robust normalisation"). An
IF neuron with threshold 1, reset by subtraction and input ``z`` per step fires at the
rate ``clip(z, 0, 1)``. To keep every rate below 1, each stage's activations are
divided by

.. math::  \lambda_l = \mathrm{percentile}_p\{ a_l > 0 \}

the ``p``-th percentile (default 99.9) of its positive activations over calibration data
(a subset of the training set); ``\lambda_0 = 1`` for the input (pixel intensities in
[0, 1] are the input rates). Pooling stages are not renormalised: ``\lambda_l =
\lambda_{l-1}`` (average) or ``k^2 \lambda_{l-1}`` (sum), so their normalised weights are
exactly ``1/k^2``. The normalised parameters are

.. math::  \tilde W_l = W_l \frac{\lambda_{l-1}}{\lambda_l}, \qquad \tilde b_l = \frac{b_l}{\lambda_l}

and a rate of 1 in stage ``l`` stands for the activation ``\lambda_l``. The last stage is
normalised the same way (its positive part: the output neurons spike too, and the
class is the one with the most spikes).

**3. Quantisation** to the core's signed ``B = weight_bits``. With ``q = 2^{B-1} - 1``
and ``m_l = \max |\tilde W_l|``, each stage gets one integer scale, its threshold

.. math::  \theta_l = \lfloor q / m_l \rfloor, \qquad w = \mathrm{round}(\theta_l \tilde W_l),
           \qquad \mathrm{bias} = \mathrm{round}(\theta_l \tilde b_l)

(round half to even). Since ``|w| <= theta_l m_l <= q`` no weight saturates, and
``w / theta_l``, ``bias / theta_l`` equal the float ``\tilde W_l``, ``\tilde b_l`` up to
each element's rounding, ``0.5 / theta_l``. The threshold *is* the scale: using the real
scale ``q / m_l`` and rounding it for the threshold would add a common ratio error of up to
``0.5 / theta_l``, which the floor avoids. A larger threshold (``theta_l 2^k``) would give a
finer bias grid, but the weights would have to grow by the same ``2^k`` to keep the ratio,
and they are already at the edge of the ``B``-bit range; so ``theta_l`` is the largest
threshold that preserves the ratios, and the bias has the same resolution as the weights.
Pooling stages are exact: ``theta = k^2``, ``w = 1``. If ``m_l > q`` (weights more than
``q`` times the threshold), ``theta_l = 1`` and the weights are clipped (reported as
``clipped`` in the layer info). Synapses whose integer weight is 0 are dropped.

Neurons are non-leaky IF neurons (``leak_shift 0``) with **reset by subtraction**,
refractory 0, ``bias`` added every step. Their integer dynamics per step ``t`` are
(docs/core-spec.md, section 5)

.. math::  v \leftarrow v + \sum_{pre} w\, s_{pre}(t - d) + \mathrm{bias};\quad
           s(t) = [v \ge \theta];\quad v \leftarrow v - \theta s(t)

with ``d = 0`` for host inputs and ``d = 1`` between populations (one step per internal
connection). After ``T`` steps a neuron that emitted ``N`` spikes has ``N theta = V_T -
v_T`` exactly (``V_T``: its summed input and bias, ``v_T``: its final membrane; no
saturation occurs in practice with 24-bit membranes), so ``N = floor(V_T / theta)``
whenever ``0 <= v_T < theta``: the count rate approximates the normalised ReLU
activation ``clip(\tilde a, 0, 1)`` with an error below ``1/T`` per layer, plus transients
when the net input changes sign over time.

**Latency.** Stage ``l`` (1-based) first receives input at step ``l - 1``, so with ``T``
steps the output layer integrates ``T - (L - 1)`` steps of input; ``T`` in this package
always counts core steps from the first input step (the honest cost of a sample), see
docs/results.md.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ...hw.config import CoreConfig
from ...hw.program import RESET_BY_SUBTRACTION, NeuronParams
from ..network import INPUT, ConvProjection, Population, Projection, SnnNetwork
from .graph import AvgPool2d, Conv2d, Dense, Flatten, Graph, ReLU

__all__ = ["Stage", "lower", "normalise", "quantise", "convert", "Converted", "LayerInfo", "simulate",
           "DEFAULT_PERCENTILE"]

DEFAULT_PERCENTILE = 99.9


# -- 1. lowering ---------------------------------------------------------------------------
@dataclasses.dataclass
class Stage:
    """One population of the SNN: a float synapse list ``(pre, post, weight)`` and a bias.

    ``output_index`` is the index of the graph layer whose output this stage reproduces
    (the ReLU after the op when ``relu``, else the op itself).
    """

    name: str
    kind: str                 # "dense", "conv", "avgpool", "sumpool"
    in_shape: tuple
    out_shape: tuple
    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    relu: bool
    output_index: int
    area: int = 1             # pooling window size k^2 (pooling stages only)
    layer: object = None      # the graph layer (a Conv2d keeps its kernel for shared rows)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def matrix(self, weight: np.ndarray | None = None):
        """The stage as a sparse ``[n_out, n_in]`` matrix (duplicate entries add)."""
        from scipy.sparse import csr_matrix

        w = self.weight if weight is None else weight
        return csr_matrix((np.asarray(w, np.float64), (self.post, self.pre)), shape=(self.n_out, self.n_in))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Synapse-level evaluation ``x [B, n_in] -> M x + b`` (no ReLU), float64."""
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return np.asarray(self.matrix().dot(x.T).T) + self.bias


def _dense_synapses(layer: Dense):
    n_out, n_in = layer.weight.shape
    post, pre = np.meshgrid(np.arange(n_out), np.arange(n_in), indexing="ij")
    return pre.ravel(), post.ravel(), layer.weight.ravel().copy()


def _conv_synapses(layer: Conv2d, in_shape: tuple, out_shape: tuple):
    oc, ic, kh, kw = layer.weight.shape
    _, h, w = in_shape
    _, oh, ow = out_shape
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    o, c, i, j, y, x = np.meshgrid(np.arange(oc), np.arange(ic), np.arange(kh), np.arange(kw),
                                   np.arange(oh), np.arange(ow), indexing="ij", sparse=False)
    yy = y * sh - ph + i
    xx = x * sw - pw + j
    valid = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    pre = (c * h + yy) * w + xx
    post = (o * oh + y) * ow + x
    weight = layer.weight[o, c, i, j]
    return pre[valid], post[valid], weight[valid].astype(np.float64)


def _pool_synapses(layer, in_shape: tuple, out_shape: tuple):
    ch, h, w = in_shape
    _, oh, ow = out_shape
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    c, y, x, i, j = np.meshgrid(np.arange(ch), np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw),
                                indexing="ij")
    pre = (c * h + y * sh + i) * w + x * sw + j
    post = (c * oh + y) * ow + x
    value = 1.0 / layer.area if isinstance(layer, AvgPool2d) else 1.0
    return pre.ravel(), post.ravel(), np.full(pre.size, value)


def lower(graph: Graph) -> list[Stage]:
    """Cut ``graph`` into stages (see the module docstring) with explicit synapse lists.

    Raises ``ValueError`` for a graph without any Dense/Conv2d/pooling layer, or with an
    unrectified Dense/Conv2d before the last stage.
    """
    stages: list[Stage] = []
    counts: dict[str, int] = {}
    shape = graph.input_shape
    for index, layer in enumerate(graph.layers):
        out_shape = graph.shapes[index]
        if isinstance(layer, ReLU):
            if stages and not stages[-1].relu:
                stages[-1].relu = True
                stages[-1].output_index = index
            elif stages:
                stages[-1].output_index = index   # ReLU after ReLU: idempotent
            # a ReLU on the input is a no-op: inputs are rates in [0, 1]
        elif isinstance(layer, Flatten):
            if stages and stages[-1].output_index == index - 1:
                stages[-1].output_index = index   # same values, new shape
        else:
            if stages and not stages[-1].relu and stages[-1].kind in ("dense", "conv"):
                prev = stages[-1]
                raise ValueError(f"layer {index} ({type(layer).__name__}) follows {prev.name} without a ReLU: "
                                 "every Dense/Conv2d but the last must be followed by a ReLU (spiking "
                                 "neurons carry only non-negative values)")
            if isinstance(layer, Dense):
                kind, (pre, post, w) = "dense", _dense_synapses(layer)
                bias, area = layer.bias.copy(), 1
            elif isinstance(layer, Conv2d):
                kind, (pre, post, w) = "conv", _conv_synapses(layer, shape, out_shape)
                bias, area = np.repeat(layer.bias, out_shape[1] * out_shape[2]), 1
            else:
                kind = "avgpool" if isinstance(layer, AvgPool2d) else "sumpool"
                pre, post, w = _pool_synapses(layer, shape, out_shape)
                bias, area = np.zeros(int(np.prod(out_shape))), layer.area
            counts[kind] = counts.get(kind, 0) + 1
            stages.append(Stage(name=f"{kind}{counts[kind]}", kind=kind, in_shape=shape,
                                out_shape=out_shape, pre=np.asarray(pre, np.int64),
                                post=np.asarray(post, np.int64), weight=np.asarray(w, np.float64),
                                bias=np.asarray(bias, np.float64), relu=False, output_index=index,
                                area=area, layer=layer))
        shape = out_shape
    if not stages:
        raise ValueError("the graph has no Dense, Conv2d or pooling layer: nothing to convert")
    return stages


# -- 2. normalisation ----------------------------------------------------------------------
def normalise(graph: Graph, stages: list[Stage], x_calib, *, percentile: float = DEFAULT_PERCENTILE,
              output_percentile: float | None = None, progress: bool = False) -> list[float]:
    """``lambda_l`` of every stage: the ``percentile`` of its positive activations on ``x_calib``.

    Pooling stages inherit ``lambda_{l-1}`` (times ``k^2`` for sum pooling). A stage that
    is never positive on the calibration data gets ``lambda = 1``. ``output_percentile``
    (default: ``percentile``) is used for the last stage.
    """
    output_percentile = percentile if output_percentile is None else output_percentile
    for value in (percentile, output_percentile):
        if not 0 < value <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {value}")
    x_calib = np.asarray(x_calib, np.float64)
    if x_calib.size and (x_calib.min() < 0 or x_calib.max() > 1):
        raise ValueError("calibration inputs must lie in [0, 1] (they are the input spike rates)")
    acts = graph.forward(x_calib, return_all=True)
    lambdas: list[float] = []
    prev = 1.0
    items = stages
    if progress:
        from tqdm import tqdm
        items = tqdm(stages, desc="normalise", unit="layer", leave=False)
    for i, stage in enumerate(items):
        p = output_percentile if i == len(stages) - 1 else percentile
        if stage.kind in ("avgpool", "sumpool"):
            lam = prev * (stage.area if stage.kind == "sumpool" else 1.0)
        else:
            a = acts[stage.output_index].reshape(-1)
            a = a[a > 0]
            lam = float(np.percentile(a, p)) if a.size else 1.0
            if not lam > 0:
                lam = 1.0
        lambdas.append(lam)
        prev = lam
    return lambdas


# -- 3. quantisation -----------------------------------------------------------------------
@dataclasses.dataclass
class LayerInfo:
    """What the conversion did to one stage (JSON-friendly through :meth:`as_dict`)."""

    name: str
    kind: str
    shape: tuple
    neurons: int
    synapses: int
    relu: bool
    scale: float          # lambda_l, the activation a rate of 1 stands for
    threshold: int
    max_weight: int
    bias_min: int
    bias_max: int
    clipped: int          # weights clipped to the B-bit range (0 unless theta had to be 1)
    dropped: int          # synapses whose integer weight rounded to 0

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}


def quantise(stage: Stage, lam_prev: float, lam: float, weight_bits: int,
             membrane_range: tuple[int, int], theta_max: int):
    """Integer ``(pre, post, weight, threshold, bias, info)`` of one stage (module doc, step 3);
    a conv stage's ``info`` also holds its integer ``kernel`` (the same rounding, per tap)."""
    q = (1 << (weight_bits - 1)) - 1
    if stage.kind in ("avgpool", "sumpool"):
        # normalised weights are exactly 1/k^2: weight 1, threshold k^2
        threshold = stage.area
        weight = np.ones(len(stage.pre), np.int64)
        bias = np.zeros(stage.n_out, np.int64)
        clipped = 0
    else:
        w = stage.weight * (lam_prev / lam)
        b = stage.bias / lam
        m = float(np.abs(w).max()) if w.size else 0.0
        threshold = int(min(max(1, np.floor(q / m)) if m > 0 else q, theta_max))
        raw = np.rint(w * threshold)
        clipped = int(((raw > q) | (raw < -q - 1)).sum())
        weight = np.clip(raw, -q - 1, q).astype(np.int64)
        lo, hi = membrane_range
        bias = np.clip(np.rint(b * threshold), lo, hi).astype(np.int64)
    kernel = None
    if stage.kind == "conv":      # the same expression as the synapse weights, so equal per tap
        raw_kernel = np.rint((stage.layer.weight * (lam_prev / lam)) * threshold)
        kernel = np.clip(raw_kernel, -q - 1, q).astype(np.int64)
    keep = weight != 0
    info = dict(threshold=threshold, max_weight=int(np.abs(weight).max()) if weight.size else 0,
                bias_min=int(bias.min()) if bias.size else 0, bias_max=int(bias.max()) if bias.size else 0,
                clipped=clipped, dropped=int((~keep).sum()))
    if kernel is not None:
        info["kernel"] = kernel
    return stage.pre[keep], stage.post[keep], weight[keep], threshold, bias, info


@dataclasses.dataclass
class Converted:
    """A converted network: the integer :class:`SnnNetwork` plus what the conversion did."""

    network: SnnNetwork
    graph: Graph
    layers: list[LayerInfo]
    weight_bits: int
    percentile: float

    @property
    def n_neurons(self) -> int:
        return sum(layer.neurons for layer in self.layers)

    @property
    def n_synapses(self) -> int:
        return sum(layer.synapses for layer in self.layers)

    @property
    def depth(self) -> int:
        """Number of populations on the path from the input to the output."""
        return len(self.layers)

    def summary(self) -> dict:
        return {"weight_bits": self.weight_bits, "percentile": self.percentile, "depth": self.depth,
                "neurons": self.n_neurons, "synapses": self.n_synapses,
                "layers": [layer.as_dict() for layer in self.layers]}


def convert(graph: Graph, x_calib, *, weight_bits: int | None = None, config: CoreConfig | None = None,
            percentile: float = DEFAULT_PERCENTILE, output_percentile: float | None = None,
            encoding: dict | None = None,
            n_classes: int | None = None, progress: bool = False, shared: bool = True) -> Converted:
    """Convert a float ``graph`` into an integer :class:`SnnNetwork` (see the module docstring).

    ``x_calib`` are calibration inputs (rows in [0, 1], e.g. a subset of the training set)
    for the normalisation. ``weight_bits`` defaults to ``config.weight_bits`` (``config``
    defaults to :class:`CoreConfig`\\ ``()``), whose membrane range and threshold limit are
    also respected. The last stage is the output population (decoded by spike count,
    one neuron per class; ``n_classes`` defaults to its size). ``encoding`` is stored in the
    network (default ``{"kind": "current"}``). With ``shared`` (the default) a conv stage
    becomes a :class:`~neurocore.sw.network.ConvProjection` (its kernel stored once on the
    core); otherwise an explicit projection of the same synapses.
    """
    config = config or CoreConfig()
    weight_bits = config.weight_bits if weight_bits is None else int(weight_bits)
    if not 2 <= weight_bits <= 16:
        raise ValueError(f"weight_bits must be in 2..16, got {weight_bits}")
    stages = lower(graph)
    lambdas = normalise(graph, stages, x_calib, percentile=percentile, output_percentile=output_percentile,
                        progress=progress)
    populations: list[Population] = []
    projections: list[Projection] = []
    infos: list[LayerInfo] = []
    source, lam_prev = INPUT, 1.0
    last = len(stages) - 1
    for i, (stage, lam) in enumerate(zip(stages, lambdas)):
        name = "output" if i == last else stage.name
        pre, post, weight, threshold, bias, info = quantise(
            stage, lam_prev, lam, weight_bits, config.membrane_range, config.theta_max)
        kernel = info.pop("kernel", None)
        params = NeuronParams.uniform(stage.n_out, threshold=threshold, reset_mode=RESET_BY_SUBTRACTION)
        params.bias = bias
        populations.append(Population(name, params, output=(i == last)))
        if shared and kernel is not None:
            layer = stage.layer
            projections.append(ConvProjection(source, name, kernel, tuple(stage.in_shape), layer.stride,
                                              layer.padding))
        else:
            projections.append(Projection(source, name, pre, post, weight))
        infos.append(LayerInfo(name=name, kind=stage.kind, shape=tuple(stage.out_shape), neurons=stage.n_out,
                               synapses=len(pre), relu=stage.relu, scale=lam, **info))
        source, lam_prev = name, lam
    n_out = stages[-1].n_out
    network = SnnNetwork(
        n_inputs=graph.n_inputs, populations=populations, projections=projections,
        encoding=dict(encoding or {"kind": "current"}),
        decoding={"kind": "count", "n_classes": int(n_classes if n_classes is not None else n_out)})
    return Converted(network=network, graph=graph, layers=infos, weight_bits=weight_bits,
                     percentile=float(percentile))


# -- a fast model of converted networks ----------------------------------------------------
def simulate(network: SnnNetwork, inputs, *, membrane_bits: int = 24, record: bool = False):
    """Run a feed-forward :class:`SnnNetwork` of non-leaky, non-refractory neurons in numpy.

    A vectorised model of exactly the subset of docs/core-spec.md section 5 that converted
    networks use (no leak, refractory, WTA, theta or learning; host inputs act in their
    step, population spikes one step later), for calibration and tests; the golden model
    (:mod:`neurocore.sim.golden`) is the authority and the tests check that both agree.
    ``inputs`` is bool ``[B, T, n_inputs]``. Returns ``{population: spike counts [B, n]}``,
    or with ``record`` ``{population: spikes bool [B, T, n]}``.
    """
    inputs = np.asarray(inputs, bool)
    if inputs.ndim != 3 or inputs.shape[2] != network.n_inputs:
        raise ValueError(f"inputs must be [B, T, {network.n_inputs}], got {inputs.shape}")
    for pop in network.populations:
        p = pop.params
        if (p.leak_shift != 0).any() or (p.refractory != 0).any() or pop.wta or (p.theta_inc != 0).any() \
                or (pop.theta is not None and (pop.theta != 0).any()):
            raise ValueError(f"simulate: population {pop.name} uses leak, refractory, WTA or theta; "
                             "use the golden model")
    batch, steps, _ = inputs.shape
    vmin, vmax = -(1 << (membrane_bits - 1)), (1 << (membrane_bits - 1)) - 1
    sizes = {p.name: p.size for p in network.populations} | {INPUT: network.n_inputs}
    from scipy.sparse import csr_matrix
    mats = [(pr.source, pr.target,
             csr_matrix((pr.weight.astype(np.float64), (pr.pre, pr.post)), shape=(sizes[pr.source], sizes[pr.target])))
            for pr in network.projections]
    v = {p.name: np.zeros((batch, p.size), np.int64) for p in network.populations}
    last = {p.name: np.zeros((batch, p.size), bool) for p in network.populations}
    out = {p.name: (np.zeros((batch, steps, p.size), bool) if record else np.zeros((batch, p.size), np.int64))
           for p in network.populations}
    for t in range(steps):
        acc = {p.name: np.zeros((batch, p.size), np.int64) for p in network.populations}
        for src, dst, mat in mats:
            s = inputs[:, t] if src == INPUT else last[src]
            if s.any():
                acc[dst] += np.rint(np.asarray(mat.T.dot(s.T.astype(np.float64)).T)).astype(np.int64)
        fired = {}
        for pop in network.populations:
            p = pop.params
            v2 = np.clip(v[pop.name] + acc[pop.name] + p.bias, vmin, vmax)
            f = v2 >= p.threshold
            reset = np.where(p.reset_mode == RESET_BY_SUBTRACTION, v2 - p.threshold, 0)
            v[pop.name] = np.where(f, reset, v2)
            fired[pop.name] = f
            if record:
                out[pop.name][:, t] = f
            else:
                out[pop.name] += f
        last = fired
    return out
