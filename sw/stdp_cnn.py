r"""The STDP-trained spiking CNN, after Kheradpisheh et al. (2018), trained and run on the core.

Every layer is core neurons; training runs the bit-exact golden model with the core's
learning on (:func:`neurocore.sim.golden.run_batch`, ``learn=True``), so the kernels are the
ones the core itself learns from the same spikes. Only the readout's weights are fitted on
the host, from the spike counts the core produced, and then quantised.

Network (:func:`inference_network`), for ``(H, W)`` grey-level images
----------------------------------------------------------------------

* **Input**: on/off difference-of-Gaussians edges (``datasets.dog_dataset``: 2 channels,
  ``(2, H, W)`` host axons), intensity-to-latency coded over the first ``steps`` steps
  (``encoders.latency_encode`` with ``window = steps``): a stronger edge spikes earlier, an
  input of 0 never spikes.
* **conv layers** ``conv1, conv2, ...`` (``maps[l]`` maps of ``kernel[l] x kernel[l]``): LIF
  neurons sharing one kernel per map (a :class:`~neurocore.sw.network.ConvProjection` on
  shared rows), no leak, threshold ``eval_threshold[l]``, reset to zero, refractory
  ``REFRACTORY_MAX`` so that a neuron fires at most once per sample, and winner-take-all
  between the maps at each position (``block_wta = (maps, 1)``: of the maps crossing
  threshold at a position in one step, only the one with the largest margin fires; the
  others restart from 0).
* **max pooling** between two conv layers (``MAX_POOL`` = 2: 2x2 windows, stride 2): a
  neuron per map and window, weight 1 from its window, threshold 1, refractory: it fires
  once, one step after the first spike of its window, so the latency order is kept.
* **sum pooling** after the last conv layer (``pool x pool``): weight 1, threshold 1, reset
  by subtraction, no refractory period: it fires once per spike of its window, at most one
  per step, so its spike count is the window's count, delayed by at most ``pool**2`` steps.
* **readout**: ``n_classes`` neurons in one WTA group, fully connected from the sum pooling
  (weights ``w[j, f]``), threshold ``theta_r`` above any sum they can receive, so none fires
  while the pool is counting. A *timer* (``go`` neurons with bias 1, threshold ``t_go``)
  fires once in step ``t_go - 1``; its synapses add ``G_j = G + b_j`` to readout ``j`` in
  step ``t_go``, which makes every readout a WTA candidate, and the core's WTA lets exactly
  one fire: the largest margin ``v_j + G_j - theta_r``, i.e. the class ::

      argmax_j ( sum_f w[j, f] * count_f + b[j] )        ties to the lowest j

  (the quantised linear readout, evaluated exactly by the core). A run is ``t_go + 1``
  steps (:func:`readout_step`: the pooling has drained by then). The decoding is
  ``count``: the one spike names the class.

Training (:func:`train_conv`), layer by layer
----------------------------------------------

Conv layer ``l`` trains after the ones before it, which run with their learned kernels.
Its training program is the network up to that layer (:func:`conv_network` with
``train = l``; plastic kernel, soft-bound rule, threshold ``threshold[l]``) with **one WTA
group per map** instead of per position (:func:`map_wta_program`): in each step at most one
neuron of a map fires, the one with the largest margin, so a map's kernel is updated from
one receptive field per step, as in Kheradpisheh et al.'s "one winner per map", not from
the average of every position where it fires (which makes all maps learn one blob).
The first layer's inputs are the latency code with every silent input spiking in the last
step (:func:`training_spikes`), so that with no trace decay every input of a winner's
receptive field gets exactly one update per win: LTP if it spiked at or before the winner
(the pre trace is set), LTD if it spikes later, silent inputs included (the post trace is
set). A later layer's inputs are spikes of the layer before; those that stay silent are
not depressed. With ``soft_bound`` the change is ``(A * 255 * u * (R - u)) >> shift``
(docs/core-spec.md, section 5), the fixed-point form of ``dw = a w (1 - w)`` with
``a = A * 255 * R / 2**shift`` (``a_plus = 4, a_minus = 3, shift = 29, R = 4095``:
``a+ = 0.0078``, ``a- = 0.0058``, twice the paper's initial 0.004 and 0.003, which it
doubles during training). Kernels start at ``0.8 R`` (normal, standard deviation ``0.05 R``),
as in the paper. Each epoch presents the training set once in a seeded order.

The readout (:func:`fit_readout`)
-----------------------------------

After each epoch the inference network without readout runs the training split (learning
off) and gives every sample's sum-pool spike counts; scikit-learn's multinomial
``LogisticRegression(C=readout_c)`` is fitted to them; weights and intercepts are scaled by
the factor that makes the largest weight ``2**(readout_bits-1) - 1`` and rounded
(:func:`quantise_readout`). The test accuracy is then measured on the core: the whole
network, readout included, on the golden model.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ..hw.config import CoreConfig
from ..hw.program import RESET_BY_SUBTRACTION, WIDEST, CoreState, LearningParams, NeuronParams
from ..hw.widths import REFRACTORY_MAX
from .network import INPUT, ConvProjection, Population, Projection, SnnNetwork

__all__ = ["CnnStdpParams", "CnnStdpResult", "default_params", "Readout", "Shapes", "shapes", "training_spikes", "conv_network",
           "map_wta_program", "training_program", "training_steps", "core_for", "initial_kernel", "kernel_of",
           "train_conv", "inference_network", "encoding", "evaluate_kernels", "readout_step", "pool_counts", "fit_readout",
           "quantise_readout", "train_stdp_cnn", "plot_kernels"]

READOUT, TIMER = "readout", "timer"
WEIGHT_LIMIT = (1 << 15) - 1        # a 16-bit weight: the largest synapse of the go signal
TRACE_JUMP = 255                    # pre/post trace after a spike (8-bit traces, no decay)
MAX_POOL = 2                        # the max pooling between two conv layers: 2x2, stride 2


# Default conv thresholds as fractions of a receptive field at w_max (C_in * k * k taps):
# the first layer, then every later one. 5x5 on/off: 0.2 * 50 taps = 10 w_max while training.
THRESHOLD_FRACTIONS = (0.20, 0.005)         # while the layer trains (5x5x32 after conv1: 4 w_max)
EVAL_THRESHOLD_FRACTIONS = (0.28, 0.0075)   # once trained (5x5x32: 6 w_max)
SMALL_IMAGE = 16                            # images below this side get 3x3 kernels by default


def conv_name(layer: int) -> str:
    return f"conv{layer + 1}"


def pool_name(layer: int) -> str:
    return f"pool{layer + 1}"


def _per_layer(value, name: str, layers: int) -> tuple:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(values) != layers:
        raise ValueError(f"CnnStdpParams.{name} needs one value per conv layer ({layers}), got {len(values)}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"CnnStdpParams.{name} must hold positive integers, got {value!r}")
    return tuple(int(v) for v in values)


@dataclasses.dataclass(frozen=True)
class CnnStdpParams:
    """The architecture, the rule and the readout (every value an integer of the core's, or
    a host-side choice of the readout fit). ``maps``, ``kernel``, ``threshold`` and
    ``eval_threshold`` hold one value per conv layer (an int is one layer); thresholds are
    in the core's membrane units (``w_max`` is one tap at its bound)."""

    maps: tuple = (32,)             # maps per conv layer
    kernel: tuple = (5,)            # kernel side per conv layer
    pool: int | None = None         # last (sum) pooling window (None: see shapes())
    steps: int = 16                 # latency window (input steps per sample)
    w_max: int = 4095               # plastic range 0..w_max of the kernels (13 bits)
    threshold: tuple | None = None        # per layer, while it trains (None: THRESHOLD_FRACTIONS)
    eval_threshold: tuple | None = None   # per layer, once trained (None: EVAL_THRESHOLD_FRACTIONS)
    init_mean: float = 0.8          # initial kernel weights: normal(init_mean, init_std) * w_max
    init_std: float = 0.05
    a_plus: int = 4
    a_minus: int = 3
    shift: int = 29
    readout_bits: int = 8           # readout weights in -(2**(b-1)-1) .. 2**(b-1)-1
    readout_c: float = 0.01         # inverse L2 strength of the logistic-regression fit

    def __post_init__(self):
        layers = len(self.maps) if isinstance(self.maps, (tuple, list)) else 1
        if isinstance(self.kernel, (int, np.integer)) and not isinstance(self.kernel, bool):
            object.__setattr__(self, "kernel", (int(self.kernel),) * layers)
        for name in ("maps", "kernel"):
            object.__setattr__(self, name, _per_layer(getattr(self, name), name, layers))
        taps = [c * k * k for c, k in zip((2,) + self.maps[:-1], self.kernel)]
        for name, fractions in (("threshold", THRESHOLD_FRACTIONS), ("eval_threshold", EVAL_THRESHOLD_FRACTIONS)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, tuple(max(1, round(fractions[min(i, 1)] * n * self.w_max))
                                                     for i, n in enumerate(taps)))
            object.__setattr__(self, name, _per_layer(getattr(self, name), name, layers))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("maps", "kernel", "threshold", "eval_threshold"):
                continue
            if f.name in ("init_mean", "init_std", "readout_c"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"CnnStdpParams.{f.name} must be a number >= 0, got {value!r}")
            elif value is not None or f.name != "pool":
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                    raise ValueError(f"CnnStdpParams.{f.name} must be a positive integer, got {value!r}")
        channels = (2,) + self.maps[:-1]
        for layer, (c, k) in enumerate(zip(channels, self.kernel)):
            top = self.w_max * c * k * k
            if max(self.threshold[layer], self.eval_threshold[layer]) > top:
                raise ValueError(f"CnnStdpParams: a {conv_name(layer)} threshold above {top} (every tap at "
                                 "w_max) can never be reached")
        if not 2 <= self.readout_bits <= 16:
            raise ValueError(f"CnnStdpParams.readout_bits must be in 2..16, got {self.readout_bits}")

    @property
    def layers(self) -> int:
        return len(self.maps)

    def learning(self) -> LearningParams:
        """The soft-bound rule with non-decaying traces (see the module docstring)."""
        return LearningParams(a_plus=self.a_plus, a_minus=self.a_minus, shift=self.shift,
                              pre_decay_shift=0, post_decay_shift=0, pre_jump=TRACE_JUMP,
                              post_jump=TRACE_JUMP, w_min=0, w_max=self.w_max, soft_bound=True)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class Shapes:
    """Every layer's geometry for an image of ``image`` pixels: ``conv[l]`` the ``(maps, H, W)``
    output of conv layer ``l``, ``pooled[l]`` that of its pooling (``MAX_POOL`` between conv
    layers, ``pool`` after the last), ``pool`` the last window."""

    conv: tuple
    pooled: tuple
    pool: int


def default_params(image_shape: tuple, **overrides) -> CnnStdpParams:
    """:class:`CnnStdpParams` for ``image_shape`` with ``overrides``: 5x5 kernels (the paper's),
    3x3 on images smaller than ``SMALL_IMAGE`` (8x8 digits: a 5x5 kernel leaves 4x4 maps)."""
    if overrides.get("kernel") is None:
        overrides["kernel"] = 3 if min(image_shape) < SMALL_IMAGE else 5
    return CnnStdpParams(**{k: v for k, v in overrides.items() if v is not None})


def shapes(params: CnnStdpParams, image_shape: tuple) -> Shapes:
    """The geometry of the network on ``image_shape``; raises if a kernel does not fit or a
    window does not divide its map (nothing is cropped). The last window is ``params.pool``,
    or the first of 4, 3, 2 that divides the last map and leaves at least 3x3 windows (then 1)."""
    h, w = image_shape
    conv, pooled = [], []
    last = params.layers - 1
    for layer, (maps, k) in enumerate(zip(params.maps, params.kernel)):
        if min(h, w) < k:
            raise ValueError(f"a {k}x{k} kernel does not fit the {h}x{w} "
                             + ("images" if layer == 0 else f"input of {conv_name(layer)}"))
        h, w = h - k + 1, w - k + 1
        conv.append((maps, h, w))
        if layer < last:
            side = MAX_POOL
        elif params.pool is not None:
            side = params.pool
        else:
            side = next((p for p in (4, 3, 2) if h % p == 0 and w % p == 0 and min(h, w) // p >= 3), 1)
        if h % side or w % side:
            raise ValueError(f"pool {side} must divide the {h}x{w} {conv_name(layer)} maps (nothing is cropped)")
        h, w = h // side, w // side
        pooled.append((maps, h, w))
    return Shapes(conv=tuple(conv), pooled=tuple(pooled), pool=side)


def training_spikes(x: np.ndarray, steps: int) -> np.ndarray:
    """The training code: latency over ``steps`` steps, and every input of 0 spikes in the
    last step (so it is depressed in every receptive field that won before)."""
    from .encoders import latency_encode

    spikes = latency_encode(x, steps)
    spikes[:, steps - 1, :] |= np.asarray(x) <= 0
    return spikes


def _pool(source: str, target: str, shape: tuple, side: int, *, sum_pool: bool):
    """A pooling population over ``shape = (maps, H, W)`` in ``side x side`` windows and its
    projection (weight 1 from each neuron of the window). Sum: threshold 1, reset by
    subtraction, one spike per input spike; max: threshold 1, refractory, the first one."""
    maps, h, w = shape
    ph, pw = h // side, w // side
    m, y, x = np.meshgrid(np.arange(maps), np.arange(h), np.arange(w), indexing="ij")
    pre = ((m * h + y) * w + x).reshape(-1)
    post = ((m * ph + y // side) * pw + x // side).reshape(-1)
    params = (NeuronParams.uniform(maps * ph * pw, threshold=1, reset_mode=RESET_BY_SUBTRACTION) if sum_pool
              else NeuronParams.uniform(maps * ph * pw, threshold=1, refractory=REFRACTORY_MAX))
    return Population(target, params), Projection(source, target, pre, post, np.ones(len(pre), np.int64))


def _conv_params(n: int, threshold: int) -> NeuronParams:
    return NeuronParams.uniform(n, threshold=threshold, refractory=REFRACTORY_MAX)


def conv_network(kernels: list, image_shape: tuple, params: CnnStdpParams, *, train: int | None = None
                 ) -> tuple[SnnNetwork, Shapes]:
    """Input -> conv1 [-> pool1 -> conv2 ...] with the fixed ``kernels`` ``[maps, C, k, k]``.

    ``train = l``: the network ends at conv layer ``l``, plastic (its training threshold, no
    WTA in the network: :func:`map_wta_program` adds the per-map groups) and the output;
    earlier layers use their trained thresholds and per-position WTA. ``train = None``:
    every conv layer fixed, then the last (sum) pooling, which is the output."""
    geo = shapes(params, image_shape)
    last = params.layers - 1 if train is None else train
    pops, projs, source, in_shape = [], [], INPUT, (2, *image_shape)
    for layer in range(last + 1):
        plastic = layer == train
        conv = ConvProjection(source, conv_name(layer), kernels[layer], in_shape, plastic=plastic)
        threshold = params.threshold[layer] if plastic else params.eval_threshold[layer]
        pops.append(Population(conv_name(layer), _conv_params(int(np.prod(conv.out_shape)), threshold),
                               output=plastic, block_wta=None if plastic else (params.maps[layer], 1)))
        projs.append(conv)
        if plastic:
            break
        pool, proj = _pool(conv_name(layer), pool_name(layer), geo.conv[layer],
                           geo.pool if layer == params.layers - 1 else MAX_POOL,
                           sum_pool=layer == params.layers - 1)
        pool.output = layer == params.layers - 1
        pops.append(pool)
        projs.append(proj)
        source, in_shape = pool_name(layer), geo.pooled[layer]
    net = SnnNetwork(n_inputs=2 * image_shape[0] * image_shape[1], populations=pops, projections=projs,
                     learning=params.learning() if train is not None else LearningParams())
    return net, geo


def map_wta_program(compiled, layer: int):
    """The training program: ``compiled`` (a :func:`conv_network` with ``train = layer``) with
    the neurons of map ``m`` of that layer in explicit WTA group ``m + 1`` (one winner per map
    per step; the core order of a conv layer is position-major, so its ``n``-th neuron is in
    map ``n % maps``)."""
    program = compiled.program
    conv = next(pr for pr in compiled.projections if pr["target"] == conv_name(layer))
    maps = conv["conv"]["kernel_shape"][0]
    first, size = compiled.layers[conv_name(layer)]
    if maps > program.config.wta_groups or not program.config.wta:
        raise ValueError(f"{maps} maps need {maps} WTA groups but the core has "
                         f"{program.config.wta_groups if program.config.wta else 0}")
    group = program.neurons.wta_group.copy()
    group[first:first + size] = 1 + np.arange(size) % maps
    neurons = dataclasses.replace(program.neurons, wta_group=group)
    return dataclasses.replace(program, neurons=neurons)


def initial_kernel(params: CnnStdpParams, seed: int, layer: int = 0) -> np.ndarray:
    """``[maps, C, k, k]`` integers ``round(normal(init_mean, init_std) * w_max)`` in 0..w_max for
    conv layer ``layer`` (``C`` = 2 or the previous layer's maps)."""
    rng = np.random.default_rng([seed, layer])
    channels = 2 if layer == 0 else params.maps[layer - 1]
    k = params.kernel[layer]
    kernel = rng.normal(params.init_mean, params.init_std, (params.maps[layer], channels, k, k))
    return np.clip(np.rint(kernel * params.w_max), 0, params.w_max).astype(np.int64)


def kernel_of(compiled, weight: np.ndarray) -> np.ndarray:
    """The kernel of the last conv projection of ``compiled``, read from the synapse words
    ``weight`` (the kernel words follow the rows, in projection order, so the last conv's are
    the last words; the inverse of :meth:`ConvProjection.kernel_words`)."""
    shape = [pr for pr in compiled.projections if "conv" in pr][-1]["conv"]["kernel_shape"]
    return ConvProjection.kernel_from_words(np.asarray(weight)[-int(np.prod(shape)):], shape)


def _weight_extent(net: SnnNetwork) -> int:
    """The largest weight magnitude of ``net`` (kernels, synapses, the plastic bound)."""
    values = [int(np.abs(pr.kernel if isinstance(pr, ConvProjection) else pr.weight).max(initial=0))
              for pr in net.projections]
    return max(values + [net.learning.w_max if any(pr.plastic for pr in net.projections) else 0])


def core_for(net: SnnNetwork, **fields) -> CoreConfig:
    """The tight core of ``net`` (``choose_config(tight=True)``, with ``fields`` replaced), its
    weights wide enough for the largest weight and its membrane for the largest threshold
    plus the most one step can add (``v < threshold`` before a step, so that bounds it)."""
    from .compiler import choose_config

    config = dataclasses.replace(choose_config(net, tight=True), **fields)
    weight_bits = max(config.weight_bits, _weight_extent(net).bit_length() + 1)      # signed
    top = max(int(pop.params.threshold.max(initial=0)) for pop in net.populations)
    membrane_bits = max(config.membrane_bits, (top + config.accumulator_range[1]).bit_length() + 1)
    if weight_bits > 16 or membrane_bits > 32:
        raise ValueError(f"the network needs {weight_bits}-bit weights and a {membrane_bits}-bit membrane; "
                         "the widest core has 16 and 32")
    return dataclasses.replace(config, weight_bits=weight_bits, membrane_bits=membrane_bits,
                               accumulator_bits=max(config.accumulator_bits, weight_bits))


def training_program(kernels: list, image_shape: tuple, params: CnnStdpParams, layer: int = 0):
    """The compiled training network of conv layer ``layer`` (the earlier ones trained) and its
    program with per-map WTA groups."""
    from .compiler import compile_network

    if params.maps[layer] > WIDEST.wta_groups:
        raise ValueError(f"{params.maps[layer]} maps: training needs one WTA group per map, a core has at "
                         f"most {WIDEST.wta_groups}")
    net, _ = conv_network(kernels, image_shape, params, train=layer)
    groups = max(params.maps[layer], 1)
    compiled = compile_network(net, core_for(net, wta=True, wta_groups=groups, param_classes=0))
    return compiled, map_wta_program(compiled, layer)


def training_steps(params: CnnStdpParams, layer: int) -> int:
    """Steps of a training presentation of conv layer ``layer``: the latency window, plus
    two steps per earlier layer (its conv and its pooling each add one step of delay)."""
    return params.steps + 2 * layer


def train_conv(program, x: np.ndarray, params: CnnStdpParams, *, seed: int, epoch: int, layer: int = 0,
               state: CoreState | None = None, progress: bool = False, chunk: int = 500):
    """One training epoch of conv layer ``layer``: every row of ``x`` once, in a seeded order,
    on the golden model with learning on. The first layer sees :func:`training_spikes`, a
    later one the latency code (through the trained layers before it). Returns the state
    (its ``weight`` holds the learned kernel words) and the training spikes per sample."""
    from ..sim import golden
    from .encoders import latency_encode

    state = CoreState.initial(program) if state is None else state
    order = np.random.default_rng([seed, 1, layer, epoch]).permutation(len(x))
    steps = training_steps(params, layer)
    spikes = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(x), desc=f"{conv_name(layer)} epoch {epoch + 1}: STDP", unit="image")
    for start in range(0, len(x), chunk):
        rows = x[order[start:start + chunk]]
        inputs = training_spikes(rows, steps) if layer == 0 else latency_encode(rows, steps, window=params.steps)
        batch = golden.run_batch(program, inputs, learn=True, state=state)
        state = batch.state
        spikes += int(batch.spikes.sum())
        if bar is not None:
            bar.update(len(rows))
    if bar is not None:
        bar.close()
    return state, spikes / max(1, len(x))


def readout_step(params: CnnStdpParams, geo: Shapes) -> int:
    """``t_go``: the step whose input the go signal joins. The first conv layer fires by step
    ``steps - 1`` (its input ends there, and without leak or bias a neuron cannot cross
    later); each max pooling and conv layer after it adds one step; the last conv layer's
    spikes reach the sum pooling by step ``steps + 2 (L - 1)``; a pool neuron receives at
    most ``pool**2`` spikes and fires one per step, so its last spike reaches the readout
    in step ``steps + 2 (L - 1) + pool**2``, the go step."""
    return params.steps + 2 * (params.layers - 1) + geo.pool * geo.pool


@dataclasses.dataclass(frozen=True)
class Readout:
    """The quantised readout: ``weight`` int ``[n_classes, n_features]``, ``bias`` int
    ``[n_classes]`` (the class score is ``weight @ counts + bias``), the threshold and the go
    synapses ``go`` int ``[n_go, n_classes]`` (see the module docstring)."""

    weight: np.ndarray
    bias: np.ndarray
    threshold: int
    go: np.ndarray

    @property
    def bound(self) -> int:
        """The largest ``|v|`` a readout neuron reaches before the go step."""
        return self.threshold - 1


def quantise_readout(coef: np.ndarray, intercept: np.ndarray, *, bits: int, max_count: int) -> Readout:
    """Scale ``coef`` and ``intercept`` by one factor, the one that makes the largest weight
    magnitude ``2**(bits-1) - 1``, and round (half to even); the intercepts join the go
    synapses, which have their own range. The threshold is one above the largest sum a readout neuron can get
    before the go step (every feature at ``max_count`` spikes on its positive or its
    negative weights), and the go signal ``G_j = 2 * threshold + max|b| + b_j`` (split into
    synapses of at most ``WEIGHT_LIMIT``) makes every readout a candidate, since
    ``v_j >= -(threshold - 1)``; the margins differ by ``v_j + b_j`` only."""
    coef, intercept = np.asarray(coef, np.float64), np.asarray(intercept, np.float64)
    top = float(np.abs(coef).max(initial=0.0))
    scale = ((1 << (bits - 1)) - 1) / top if top > 0 else 1.0
    weight = np.rint(coef * scale).astype(np.int64)
    bias = np.rint(intercept * scale).astype(np.int64)
    reach = max(int(np.clip(weight, 0, None).sum(axis=1).max()), int((-np.clip(weight, None, 0)).sum(axis=1).max()))
    threshold = reach * max_count + 1
    # v_j >= -(threshold - 1) before the go step, so v_j + go_total_j - threshold >= 1 + B + b_j >= 1
    go_total = 2 * threshold + int(np.abs(bias).max(initial=0)) + bias
    n_go = max(1, -(-int(go_total.max()) // WEIGHT_LIMIT))
    go = np.zeros((n_go, len(bias)), np.int64)
    rest = go_total.copy()
    for i in range(n_go):                                             # WEIGHT_LIMIT each, the rest last
        go[i] = np.minimum(rest, WEIGHT_LIMIT)
        rest -= go[i]
    return Readout(weight=weight, bias=bias, threshold=int(threshold), go=go)


def inference_network(kernels: list, image_shape: tuple, params: CnnStdpParams,
                      readout: Readout | None = None, *, n_classes: int | None = None,
                      encoding: dict | None = None) -> SnnNetwork:
    """The trained network: :func:`conv_network` (every layer fixed, WTA per position) [->
    readout + timer]. Without ``readout`` the last pooling is the output (its spike counts
    are the readout's features); with it, the readout is, decoded by ``count`` (one spike,
    the class)."""
    net, geo = conv_network(kernels, image_shape, params)
    if readout is None:
        return dataclasses.replace(net, encoding=dict(encoding or {}))
    last = pool_name(params.layers - 1)
    net.population(last).output = False
    n_go, k = readout.go.shape
    t_go = readout_step(params, geo)
    pops = net.populations + [
        Population(TIMER, NeuronParams.uniform(n_go, threshold=t_go, bias=1, refractory=REFRACTORY_MAX)),
        Population(READOUT, NeuronParams.uniform(k, threshold=readout.threshold, refractory=REFRACTORY_MAX),
                   output=True, wta=True)]
    projs = net.projections + [Projection.dense(last, READOUT, readout.weight),
                               Projection.dense(TIMER, READOUT, readout.go.T)]
    return SnnNetwork(n_inputs=net.n_inputs, populations=pops, projections=projs, encoding=dict(encoding or {}),
                      decoding={"kind": "count", "n_classes": int(n_classes or k)})


def encoding(params: CnnStdpParams, image_shape: tuple, dataset: str) -> dict:
    """The image's encoding section: latency over ``params.steps``, then silence until the
    go step (a run is ``t_go + 1`` steps)."""
    steps = readout_step(params, shapes(params, image_shape)) + 1
    return {"kind": "latency", "dataset": dataset, "steps": steps, "window": params.steps, "t_min": 0}


def _spikes(x: np.ndarray, enc: dict) -> np.ndarray:
    from .encoders import latency_encode

    return latency_encode(x, enc["steps"], window=enc["window"])


def pool_counts(compiled, x: np.ndarray, enc: dict, *, chunk: int = 500, progress: bool = False) -> np.ndarray:
    """Spikes per pool neuron and sample, ``int [n, n_pool]``: the inference network without
    readout (:func:`inference_network`) on the golden model, learning off."""
    from ..sim import golden

    out = np.zeros((len(x), compiled.n_outputs), np.int64)
    starts = range(0, len(x), chunk)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="readout features", unit="batch")
    for start in starts:
        out[start:start + chunk] = golden.run_batch(compiled.program, _spikes(x[start:start + chunk], enc)).spikes.sum(axis=1)
    return out


def fit_readout(counts: np.ndarray, y: np.ndarray, params: CnnStdpParams, *, n_classes: int,
                max_count: int) -> Readout:
    """Multinomial logistic regression on the pool counts, quantised (:func:`quantise_readout`).
    Classes absent from ``y`` get weights 0 and the lowest intercept."""
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y)
    coef = np.zeros((n_classes, counts.shape[1]))
    intercept = np.zeros(n_classes)
    if len(present) == 1:
        intercept[:] = -1.0
        intercept[present[0]] = 1.0
    else:
        model = LogisticRegression(C=params.readout_c, max_iter=3000).fit(counts.astype(np.float64), y)
        fitted_coef, fitted_b = model.coef_, model.intercept_
        if len(present) == 2:        # scikit-learn's binary form: one row for the second class
            fitted_coef = np.vstack([-fitted_coef, fitted_coef]) / 2
            fitted_b = np.array([-fitted_b[0], fitted_b[0]]) / 2
        coef[present], intercept[present] = fitted_coef, fitted_b
        absent = np.setdiff1d(np.arange(n_classes), present)
        intercept[absent] = intercept[present].min() - abs(intercept).max() - 1.0
    return quantise_readout(coef, intercept, bits=params.readout_bits, max_count=max_count)


def _saturated(kernel: np.ndarray, w_max: int) -> float:
    """Fraction of the taps within 10 % of a bound (the soft bound never reaches one)."""
    return round(float(((kernel < 0.1 * w_max) | (kernel > 0.9 * w_max)).mean()), 4)


@dataclasses.dataclass
class CnnStdpResult:
    """What :func:`train_stdp_cnn` produced; ``to_dict()`` is the JSON report."""

    dataset: str
    params: CnnStdpParams
    epochs: int                      # per conv layer
    seed: int
    image_shape: tuple
    n_classes: int
    kernels: list                    # int [maps, C, k, k] per conv layer, learned on the golden model
    initial_kernels: list
    readout: Readout
    accuracy: float                  # test split, the whole network on the golden model
    train_accuracy: float            # training split, the quantised readout on the pool counts
    confusion_matrix: list
    history: list                    # one dict per (layer, epoch); the first: the initial kernels
    network: SnnNetwork
    compiled: object                 # CompiledNetwork of ``network``
    train_seconds: float
    seconds: float

    def to_dict(self) -> dict:
        summary = self.compiled.summary()
        util = self.compiled.utilisation()
        return {
            "dataset": self.dataset, "arch": "cnn",
            "accuracy": float(self.accuracy), "train_accuracy": float(self.train_accuracy),
            "neurons": int(self.compiled.program.n_neurons),
            "synapse_words": int(self.compiled.program.n_synapses),
            "epochs": int(self.epochs), "seed": int(self.seed),
            "steps": int(self.compiled.encoding["steps"]), "window": int(self.params.steps),
            "seconds": round(float(self.seconds), 3), "train_seconds": round(float(self.train_seconds), 3),
            "layers": {layer["name"]: layer["size"] for layer in summary["layers"]},
            "readout": {"threshold": self.readout.threshold, "go_synapses": int(self.readout.go.size),
                        "features": int(self.readout.weight.shape[1]),
                        "weight_min": int(self.readout.weight.min()), "weight_max": int(self.readout.weight.max()),
                        "bits": int(self.params.readout_bits)},
            "kernels": [{"shape": list(k.shape), "mean": round(float(k.mean()) / self.params.w_max, 4),
                         "saturated": _saturated(k, self.params.w_max)} for k in self.kernels],
            "core_config": self.compiled.config.to_dict(),
            "utilisation": {k: v["used"] for k, v in util.items()},
            "params": self.params.to_dict(),
            "history": self.history,
            "confusion_matrix": self.confusion_matrix,
        }


def evaluate_kernels(kernels, data, params, *, x_train, y_train, x_test, y_test, enc, progress=False):
    """Fit the readout on the pool counts of ``kernels`` over ``x_train``, build the network,
    test it on the core (the golden model) over ``x_test``. Returns ``(readout, network,
    compiled, evaluate-report, train accuracy of the quantised readout, pool spikes per
    training sample)``."""
    from .compiler import compile_network
    from .evaluate import evaluate

    shape = tuple(data.image_shape)
    geo = shapes(params, shape)
    features = inference_network(kernels, shape, params)
    counts = pool_counts(compile_network(features, core_for(features)), x_train, enc, progress=progress)
    readout = fit_readout(counts, y_train, params, n_classes=data.n_classes, max_count=geo.pool ** 2)
    train_pred = np.argmax(counts @ readout.weight.T + readout.bias, axis=1)
    net = inference_network(kernels, shape, params, readout, n_classes=data.n_classes, encoding=enc)
    compiled = compile_network(net, core_for(net))
    report = evaluate(compiled, x_test, y_test, steps=enc["steps"], encoder="latency", progress=progress,
                      encoder_kwargs={"window": enc["window"]})
    return readout, net, compiled, report, float((train_pred == y_train).mean()), float(counts.sum(axis=1).mean())


def train_stdp_cnn(dataset="mnist-5k", epochs: int = 1, seed: int = 0, params: CnnStdpParams | None = None,
                   progress: bool = True, data_dir=None, limit_train: int | None = None,
                   limit_test: int | None = None, log=None, **overrides) -> CnnStdpResult:
    """Train the conv layers one after the other with the core's STDP on ``dataset`` (its
    ``:dog`` variant is taken), ``epochs`` epochs each; fit the readout; test the whole
    network on the golden model. Before training (the initial kernels) and after every epoch
    the readout is refitted and the test accuracy recorded (``history``).

    ``dataset`` names a grey-scale dataset of :func:`~neurocore.sw.datasets.load_dataset`
    (``digits``, ``mnist-5k``, ``mnist`` with ``data_dir``, ...). Every random choice
    derives from ``seed``. ``log`` (a callable taking one line) reports each epoch.
    ``params=None`` takes :func:`default_params` for the images, with ``overrides``
    (``maps``, ``kernel``, ``pool``, ``steps``, ...).
    """
    from .datasets import Dataset, dog_dataset, limited_splits, load_dataset

    t_start = time.perf_counter()
    if params is not None and overrides:
        raise ValueError("give params or overrides, not both")
    for name, value, low in (("epochs", epochs, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_dir)
    if not data.name.endswith(":dog"):
        data = dog_dataset(data)
    shape = tuple(data.image_shape)
    params = params or default_params(shape, **overrides)
    enc = encoding(params, shape, data.name)            # checks every kernel and window
    if enc["steps"] > REFRACTORY_MAX:
        raise ValueError(f"a run of {enc['steps']} steps exceeds the refractory period {REFRACTORY_MAX} that "
                         "keeps every conv neuron to one spike; use fewer steps or a smaller pool")
    x_train, y_train, x_test, y_test = limited_splits(data, limit_train, limit_test, "train-stdp")
    initial = [initial_kernel(params, seed, layer) for layer in range(params.layers)]
    for layer in range(params.layers):                  # refuses what no core holds, before any work
        training_program(initial, shape, params, layer)
    split = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, enc=enc, progress=progress)

    kernels, history, train_seconds = list(initial), [], 0.0

    def record(layer, epoch, spikes):
        outcome = evaluate_kernels(kernels, data, params, **split)
        _, _, _, report, train_acc, pool_spikes = outcome
        history.append({"layer": layer, "epoch": epoch, "accuracy": float(report["accuracy"]),
                        "train_accuracy": train_acc,
                        "training_spikes_per_sample": None if spikes is None else round(spikes, 2),
                        "pool_spikes_per_sample": round(pool_spikes, 2),
                        "kernel_mean": [round(float(k.mean()) / params.w_max, 4) for k in kernels],
                        "kernel_saturated": [_saturated(k, params.w_max) for k in kernels]})
        if log is not None:
            h = history[-1]
            what = "initial kernels" if layer == 0 else f"{conv_name(layer - 1)} epoch {epoch}/{epochs}"
            log(f"{what}: test accuracy {h['accuracy']:.4f} (train {h['train_accuracy']:.4f}), "
                f"{h['pool_spikes_per_sample']} pool spikes per sample, kernels saturated "
                + ", ".join(f"{v:.0%}" for v in h["kernel_saturated"]))
        return outcome

    outcome = record(0, 0, None)
    for layer in range(params.layers):
        compiled_train, program = training_program(kernels, shape, params, layer)
        state = None
        for epoch in range(epochs):
            t0 = time.perf_counter()
            state, spikes = train_conv(program, x_train, params, seed=seed, epoch=epoch, layer=layer,
                                       state=state, progress=progress)
            train_seconds += time.perf_counter() - t0
            kernels[layer] = kernel_of(compiled_train, state.weight)
            outcome = record(layer + 1, epoch + 1, spikes)
    readout, net, compiled, report, train_acc, _ = outcome
    return CnnStdpResult(dataset=data.name, params=params, epochs=epochs, seed=seed, image_shape=shape,
                         n_classes=data.n_classes, kernels=kernels, initial_kernels=initial, readout=readout,
                         accuracy=float(report["accuracy"]), train_accuracy=train_acc,
                         confusion_matrix=report["confusion_matrix"], history=history, network=net,
                         compiled=compiled, train_seconds=train_seconds, seconds=time.perf_counter() - t_start)


def plot_kernels(result: CnnStdpResult, path) -> None:
    """The learned kernels as a PNG: per map ON minus OFF weights (red: a bright centre on a
    dark surround is wanted, blue: the opposite), before and after training, and the test
    accuracy per epoch."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    maps = result.kernels[0].shape[0]
    cols = min(maps, 16)
    rows = -(-maps // cols)
    fig = plt.figure(figsize=(max(6.0, cols * 0.55), 2 * rows * 0.6 + 2.6))
    grid = fig.add_gridspec(2 * rows + 1, cols, height_ratios=[0.6] * (2 * rows) + [2.0])
    bound = float(result.params.w_max)
    for half, (kernel, what) in enumerate(((result.initial_kernels[0], "initial"), (result.kernels[0], "learned"))):
        for m in range(maps):
            ax = fig.add_subplot(grid[half * rows + m // cols, m % cols])
            ax.imshow(kernel[m, 0] - kernel[m, 1], cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if m == 0:
                ax.set_ylabel(what, fontsize=6)
    ax = fig.add_subplot(grid[2 * rows, :])
    points = range(len(result.history))
    ax.plot(points, [100 * h["accuracy"] for h in result.history], "o-", label="test (on the core)")
    ax.plot(points, [100 * h["train_accuracy"] for h in result.history], "s--", label="train (readout fit)")
    ax.set_xticks(list(points), ["initial" if h["layer"] == 0 else f"{conv_name(h['layer'] - 1)} e{h['epoch']}"
                                 for h in result.history])
    ax.set_xlabel("after training (the readout refitted each time)", fontsize=7)
    ax.set_ylabel("accuracy %", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6)
    k = result.params.kernel[0]
    fig.suptitle(f"{result.dataset}: the {maps} conv1 kernels ({k}x{k}, ON - OFF weights), STDP on the core, "
                 f"{result.epochs} epoch(s) per layer; test accuracy {result.accuracy:.1%}", fontsize=7)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=130)
    plt.close(fig)
