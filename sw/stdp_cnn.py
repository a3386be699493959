r"""The STDP-trained spiking CNN, after Kheradpisheh et al. (2018), trained and run on the core.

Every layer is core neurons; training runs the bit-exact golden model with the core's
learning on (:func:`neurocore.sim.golden.run_batch`, ``learn=True``), so the kernels are the
ones the core itself learns from the same spikes. Only the readout's weights are fitted on
the host, from the spike counts the core produced, and then quantised.

Network (:func:`inference_network`), for an image of ``(1, H, W)`` grey levels
---------------------------------------------------------------------------------

* **Input**: on/off difference-of-Gaussians edges (``datasets.dog_dataset``: 2 channels,
  ``(2, H, W)`` host axons), intensity-to-latency coded over the first ``steps`` steps
  (``encoders.latency_encode`` with ``window = steps``): a stronger edge spikes earlier, an
  input of 0 never spikes.
* **conv1**: ``maps`` maps of ``kernel x kernel`` LIF neurons sharing one kernel per map
  (a :class:`~neurocore.sw.network.ConvProjection` on shared rows), no leak, threshold
  ``threshold`` (in weight units), reset to zero, refractory ``REFRACTORY_MAX`` so that a
  neuron fires at most once per sample, and winner-take-all between the maps at each
  position (``block_wta = (maps, 1)``: of the maps crossing threshold at a position in one
  step, only the one with the largest margin fires; the others restart from 0).
* **pool**: one neuron per map and ``pool x pool`` window, weight 1 from each conv1
  neuron of its window, threshold 1, reset by subtraction, no refractory period: it fires
  once per conv1 spike of its window, at most one spike per step, so the count of its
  spikes is the window's count (sum pooling), delayed by at most ``pool**2`` steps.
* **readout**: ``n_classes`` neurons in one WTA group, fully connected from the pool
  (weights ``w[j, f]``), threshold ``theta_r`` above any sum they can receive, so none fires
  while the pool is counting. A *timer* (``go`` neurons with bias 1, threshold ``t_go``)
  fires once in step ``t_go - 1``; its synapses add ``G_j = G + b_j`` to readout ``j`` in
  step ``t_go``, which makes every readout a WTA candidate, and the core's WTA lets exactly
  one fire: the largest margin ``v_j + G_j - theta_r``, i.e. the class ::

      argmax_j ( sum_f w[j, f] * count_f + b[j] )        ties to the lowest j

  (the quantised linear readout, evaluated exactly by the core). A run is ``t_go + 1``
  steps; ``t_go = steps + pool**2`` leaves the pool time to drain (:func:`readout_step`).
  The decoding is ``count``: the one spike names the class.

Training (:func:`train_conv`, the conv layer's kernels)
--------------------------------------------------------

The training program is conv1 alone (plastic kernel, soft-bound rule) with **one WTA group
per map** instead of per position (:func:`map_wta_program`): in each step at most one
neuron of a map fires, the one with the largest margin, so a map's kernel is updated from
one receptive field per step, as in Kheradpisheh et al.'s "one winner per map", not from
the average of every position where it fires (which makes all maps learn one blob).
Training inputs are the latency code with every silent input spiking in the last step
(:func:`training_spikes`), so that with no trace decay every input of a winner's receptive
field gets exactly one update per win: LTP if it spiked at or before the winner (the pre
trace is set), LTD if it spikes later, silent inputs included (the post trace is set). With
``soft_bound`` the change is ``(A * 255 * u * (R - u)) >> shift`` (docs/core-spec.md,
section 5), the fixed-point form of ``dw = a w (1 - w)`` with ``a = A * 255 * R / 2**shift``
(``a_plus = 4, a_minus = 3, shift = 30, R = 4095``: ``a+ = 0.0039``, ``a- = 0.0029``, the
paper's 0.004 and 0.003). Kernels start at ``0.8 R`` (normal, standard deviation
``0.05 R``), as in the paper. Each epoch presents the training set once in a seeded order.

The readout (:func:`fit_readout`)
-----------------------------------

After each epoch the inference network without readout runs the training split (learning
off) and gives every sample's pool spike counts; scikit-learn's multinomial
``LogisticRegression(C=readout_c)`` is fitted to them, and its weights and intercepts are
scaled so the largest magnitude is ``2**(readout_bits-1) - 1`` and rounded to integers
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

__all__ = ["CnnStdpParams", "CnnStdpResult", "Readout", "training_spikes", "training_network",
           "map_wta_program", "training_program", "core_for", "initial_kernel", "kernel_of", "train_conv", "inference_network",
           "readout_step", "pool_counts", "fit_readout", "quantise_readout", "train_stdp_cnn",
           "plot_kernels"]

CONV, POOL, READOUT, TIMER = "conv1", "pool", "readout", "timer"
WEIGHT_LIMIT = (1 << 15) - 1        # a 16-bit weight: the largest synapse of the go signal
TRACE_JUMP = 255                    # pre/post trace after a spike (8-bit traces, no decay)


@dataclasses.dataclass(frozen=True)
class CnnStdpParams:
    """The architecture, the rule and the readout (every value an integer of the core's, or
    a host-side choice of the readout fit)."""

    maps: int = 32                  # conv1 maps
    kernel: int = 5                 # conv1 kernel side
    pool: int | None = None         # pooling window side (None: 4, 3 or 2, the first dividing the map)
    steps: int = 16                 # latency window (input steps per sample)
    w_max: int = 4095               # plastic range 0..w_max of the kernels (13 bits)
    threshold: int = 10 * 4095      # conv1 threshold while training
    eval_threshold: int = 12 * 4095  # conv1 threshold of the trained network
    init_mean: float = 0.8          # initial kernel weights: normal(init_mean, init_std) * w_max
    init_std: float = 0.05
    a_plus: int = 4
    a_minus: int = 3
    shift: int = 30
    readout_bits: int = 8           # readout weights in -(2**(b-1)-1) .. 2**(b-1)-1
    readout_c: float = 0.01         # inverse L2 strength of the logistic-regression fit

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("init_mean", "init_std", "readout_c"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"CnnStdpParams.{f.name} must be a number >= 0, got {value!r}")
            elif value is not None or f.name != "pool":
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                    raise ValueError(f"CnnStdpParams.{f.name} must be a positive integer, got {value!r}")
        if self.threshold > self.w_max * 2 * self.kernel ** 2 or self.eval_threshold > self.w_max * 2 * self.kernel ** 2:
            raise ValueError(f"CnnStdpParams: a conv1 threshold above {self.w_max * 2 * self.kernel ** 2} "
                             "(every tap at w_max) can never be reached")
        if not 2 <= self.readout_bits <= 16:
            raise ValueError(f"CnnStdpParams.readout_bits must be in 2..16, got {self.readout_bits}")

    def learning(self) -> LearningParams:
        """The soft-bound rule with non-decaying traces (see the module docstring)."""
        return LearningParams(a_plus=self.a_plus, a_minus=self.a_minus, shift=self.shift,
                              pre_decay_shift=0, post_decay_shift=0, pre_jump=TRACE_JUMP,
                              post_jump=TRACE_JUMP, w_min=0, w_max=self.w_max, soft_bound=True)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def pool_side(params: CnnStdpParams, conv_shape: tuple[int, int]) -> int:
    """The pooling window: ``params.pool``, which must divide both sides of the conv map, or
    the first of 4, 3, 2 (then 1) that does."""
    h, w = conv_shape
    if params.pool is not None:
        if h % params.pool or w % params.pool:
            raise ValueError(f"pool {params.pool} must divide the {h}x{w} conv1 maps (nothing is cropped)")
        return params.pool
    return next(p for p in (4, 3, 2, 1) if h % p == 0 and w % p == 0)


def training_spikes(x: np.ndarray, steps: int) -> np.ndarray:
    """The training code: latency over ``steps`` steps, and every input of 0 spikes in the
    last step (so it is depressed in every receptive field that won before)."""
    from .encoders import latency_encode

    spikes = latency_encode(x, steps)
    spikes[:, steps - 1, :] |= np.asarray(x) <= 0
    return spikes


def _conv_params(n: int, threshold: int) -> NeuronParams:
    return NeuronParams.uniform(n, threshold=threshold, refractory=REFRACTORY_MAX)


def training_network(kernel: np.ndarray, image_shape: tuple, params: CnnStdpParams) -> SnnNetwork:
    """Input -> conv1 with the plastic ``kernel`` ``[maps, 2, k, k]`` (see :func:`map_wta_program`
    for its competition)."""
    conv = ConvProjection(INPUT, CONV, kernel, (2, *image_shape), plastic=True)
    pop = Population(CONV, _conv_params(int(np.prod(conv.out_shape)), params.threshold), output=True)
    return SnnNetwork(n_inputs=int(np.prod(conv.in_shape)), populations=[pop], projections=[conv],
                      learning=params.learning())


def map_wta_program(compiled):
    """The training program: ``compiled`` (a :func:`training_network`) with the neurons of map
    ``m`` in explicit WTA group ``m + 1`` (one winner per map per step; the core order of a
    conv layer is position-major, so core neuron ``n`` is in map ``n % maps``)."""
    program = compiled.program
    maps = compiled.projections[0]["conv"]["kernel_shape"][0]
    first, size = compiled.layers[CONV]
    if maps > program.config.wta_groups or not program.config.wta:
        raise ValueError(f"{maps} maps need {maps} WTA groups but the core has "
                         f"{program.config.wta_groups if program.config.wta else 0}")
    group = np.zeros(len(program.neurons), np.int64)
    group[first:first + size] = 1 + np.arange(size) % maps
    neurons = dataclasses.replace(program.neurons, wta_group=group)
    return dataclasses.replace(program, neurons=neurons)


def initial_kernel(params: CnnStdpParams, seed: int) -> np.ndarray:
    """``[maps, 2, k, k]`` integers ``round(normal(init_mean, init_std) * w_max)`` in 0..w_max."""
    rng = np.random.default_rng(seed)
    k = rng.normal(params.init_mean, params.init_std, (params.maps, 2, params.kernel, params.kernel))
    return np.clip(np.rint(k * params.w_max), 0, params.w_max).astype(np.int64)


def kernel_of(compiled, weight: np.ndarray) -> np.ndarray:
    """The ``[maps, 2, k, k]`` kernel stored in the synapse words ``weight`` of ``compiled`` (the
    inverse of :meth:`ConvProjection.kernel_words`: the kernel words are the last words)."""
    co, ci, kh, kw = compiled.projections[0]["conv"]["kernel_shape"]
    words = np.asarray(weight)[-co * ci * kh * kw:]
    return np.ascontiguousarray(words.reshape(ci, kh, kw, co).transpose(3, 0, 1, 2)[:, :, :, ::-1]).astype(np.int64)


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


def training_program(kernel, image_shape, params: CnnStdpParams):
    """The compiled training network and its program with per-map WTA groups."""
    from .compiler import compile_network

    net = training_network(kernel, image_shape, params)
    if params.maps > WIDEST.wta_groups:
        raise ValueError(f"{params.maps} maps: training needs one WTA group per map, a core has at most "
                         f"{WIDEST.wta_groups}")
    compiled = compile_network(net, core_for(net, wta=True, wta_groups=params.maps, param_classes=0))
    return compiled, map_wta_program(compiled)


def train_conv(program, x: np.ndarray, params: CnnStdpParams, *, seed: int, epoch: int,
               state: CoreState | None = None, progress: bool = False, chunk: int = 500):
    """One training epoch of the conv layer: every row of ``x`` once, in a seeded order, as
    :func:`training_spikes`, on the golden model with learning on. Returns the state (its
    ``weight`` the learned kernel words) and the spikes per sample."""
    from ..sim import golden

    state = CoreState.initial(program) if state is None else state
    order = np.random.default_rng([seed, 1, epoch]).permutation(len(x))
    spikes = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(x), desc=f"epoch {epoch + 1}: STDP", unit="image")
    for start in range(0, len(x), chunk):
        batch = golden.run_batch(program, training_spikes(x[order[start:start + chunk]], params.steps),
                                 learn=True, state=state)
        state = batch.state
        spikes += int(batch.spikes.sum())
        if bar is not None:
            bar.update(min(chunk, len(x) - start))
    if bar is not None:
        bar.close()
    return state, spikes / max(1, len(x))


def readout_step(steps: int, pool: int) -> int:
    """``t_go``: the step whose input the go signal joins. conv1 fires by step ``steps - 1``
    (its input ends there, and without leak or bias it cannot cross later); its spikes reach
    the pool by step ``steps``; a pool neuron receives at most ``pool**2`` spikes and fires
    one per step, so its last spike is in step ``steps + pool**2 - 1`` and reaches the
    readout in step ``steps + pool**2``, the go step."""
    return steps + pool * pool


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


def inference_network(kernel: np.ndarray, image_shape: tuple, params: CnnStdpParams,
                      readout: Readout | None = None, *, n_classes: int | None = None,
                      encoding: dict | None = None) -> SnnNetwork:
    """Input -> conv1 (fixed ``kernel``, WTA per position) -> pool [-> readout + timer].

    Without ``readout`` the pool is the output (its spike counts are the readout's
    features); with it, the readout is, decoded by ``count`` (one spike, the class)."""
    conv = ConvProjection(INPUT, CONV, kernel, (2, *image_shape))
    maps, ch, cw = conv.out_shape
    p = pool_side(params, (ch, cw))
    ph, pw = ch // p, cw // p
    m, y, x = np.meshgrid(np.arange(maps), np.arange(ch), np.arange(cw), indexing="ij")
    pre = ((m * ch + y) * cw + x).reshape(-1)
    post = ((m * ph + y // p) * pw + x // p).reshape(-1)
    n_pool = maps * ph * pw
    pops = [Population(CONV, _conv_params(maps * ch * cw, params.eval_threshold), block_wta=(maps, 1)),
            Population(POOL, NeuronParams.uniform(n_pool, threshold=1, reset_mode=RESET_BY_SUBTRACTION),
                       output=readout is None)]
    projs = [conv, Projection(CONV, POOL, pre, post, np.ones(len(pre), np.int64))]
    decoding = {}
    if readout is not None:
        t_go = readout_step(params.steps, p)
        n_go, k = readout.go.shape
        pops += [Population(TIMER, NeuronParams.uniform(n_go, threshold=t_go, bias=1, refractory=REFRACTORY_MAX)),
                 Population(READOUT, NeuronParams.uniform(k, threshold=readout.threshold,
                                                          refractory=REFRACTORY_MAX), output=True, wta=True)]
        projs += [Projection.dense(POOL, READOUT, readout.weight),
                  Projection.dense(TIMER, READOUT, readout.go.T)]
        decoding = {"kind": "count", "n_classes": int(n_classes or k)}
    return SnnNetwork(n_inputs=int(np.prod(conv.in_shape)), populations=pops, projections=projs,
                      encoding=dict(encoding or {}), decoding=decoding)


def _run_steps(params: CnnStdpParams, image_shape: tuple) -> tuple[int, int]:
    """(pool side, steps of an inference run = ``t_go + 1``)."""
    ch, cw = (s - params.kernel + 1 for s in image_shape)
    p = pool_side(params, (ch, cw))
    return p, readout_step(params.steps, p) + 1


def encoding(params: CnnStdpParams, image_shape: tuple, dataset: str) -> dict:
    """The image's encoding section: latency over ``params.steps``, then silence."""
    _, steps = _run_steps(params, image_shape)
    return {"kind": "latency", "dataset": dataset, "steps": steps, "window": params.steps, "t_min": 0}


def _spikes(x: np.ndarray, enc: dict) -> np.ndarray:
    from .encoders import latency_encode

    return latency_encode(x, enc["steps"], window=enc["window"])


def pool_counts(compiled, x: np.ndarray, enc: dict, *, chunk: int = 500) -> np.ndarray:
    """Spikes per pool neuron and sample, ``int [n, n_pool]``: the inference network without
    readout (:func:`inference_network`) on the golden model, learning off."""
    from ..sim import golden

    out = np.zeros((len(x), compiled.n_outputs), np.int64)
    for start in range(0, len(x), chunk):
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


@dataclasses.dataclass
class CnnStdpResult:
    """What :func:`train_stdp_cnn` produced; ``to_dict()`` is the JSON report."""

    dataset: str
    params: CnnStdpParams
    epochs: int
    seed: int
    image_shape: tuple
    n_classes: int
    kernel: np.ndarray               # int [maps, 2, k, k], learned on the golden model
    initial_kernel: np.ndarray
    readout: Readout
    accuracy: float                  # test split, the whole network on the golden model
    train_accuracy: float            # training split, the quantised readout on the pool counts
    confusion_matrix: list
    history: list                    # one dict per epoch, epoch 0 = the initial kernels
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
                        "weight_min": int(self.readout.weight.min()), "weight_max": int(self.readout.weight.max()),
                        "bits": int(self.params.readout_bits)},
            "kernel": {"min": int(self.kernel.min()), "max": int(self.kernel.max()),
                       "mean": round(float(self.kernel.mean()), 1),
                       "at_bounds": round(float(((self.kernel <= 0) | (self.kernel >= self.params.w_max)).mean()), 4)},
            "core_config": self.compiled.config.to_dict(),
            "utilisation": {k: v["used"] for k, v in util.items()},
            "params": self.params.to_dict(),
            "history": self.history,
            "confusion_matrix": self.confusion_matrix,
        }


def _evaluate_epoch(kernel, data, params, *, x_train, y_train, x_test, y_test, enc, name):
    """Fit the readout on the pool counts of ``kernel``, build the network, test it on the core."""
    from .evaluate import evaluate

    from .compiler import compile_network

    shape = tuple(data.image_shape)
    p, _ = _run_steps(params, shape)
    features = inference_network(kernel, shape, params)
    counts = pool_counts(compile_network(features, core_for(features)), x_train, enc)
    readout = fit_readout(counts, y_train, params, n_classes=data.n_classes, max_count=p * p)
    train_pred = np.argmax(counts @ readout.weight.T + readout.bias, axis=1)
    net = inference_network(kernel, shape, params, readout, n_classes=data.n_classes, encoding=enc)
    compiled = compile_network(net, core_for(net))
    report = evaluate(compiled, x_test, y_test, steps=enc["steps"], encoder="latency",
                      encoder_kwargs={"window": enc["window"]})
    return readout, net, compiled, report, float((train_pred == y_train).mean()), float(counts.sum(axis=1).mean())


def train_stdp_cnn(dataset="mnist-5k", epochs: int = 1, seed: int = 0, params: CnnStdpParams | None = None,
                   progress: bool = True, data_dir=None, limit_train: int | None = None,
                   limit_test: int | None = None, log=None) -> CnnStdpResult:
    """Train conv1 with the core's STDP on ``dataset`` (its ``:dog`` variant is taken), fit the
    readout, test the whole network on the golden model; after every epoch (and before the
    first: the initial kernels) the readout is refitted and the test accuracy recorded.

    ``dataset`` names a grey-scale dataset of :func:`~neurocore.sw.datasets.load_dataset`
    (``digits``, ``mnist-5k``, ``mnist`` with ``data_dir``, ...). Every random choice
    derives from ``seed``. ``log`` (a callable taking one line) reports each epoch.
    """
    from .datasets import Dataset, dog_dataset, load_dataset

    t_start = time.perf_counter()
    params = params or CnnStdpParams()
    for name, value, low in (("epochs", epochs, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_dir)
    if not data.name.endswith(":dog"):
        data = dog_dataset(data)
    shape = tuple(data.image_shape)
    if min(shape) < params.kernel:
        raise ValueError(f"a {params.kernel}x{params.kernel} kernel does not fit the {shape[0]}x{shape[1]} "
                         f"images of {data.name}")
    _, run_steps = _run_steps(params, shape)
    if run_steps > REFRACTORY_MAX:
        raise ValueError(f"a run of {run_steps} steps exceeds the refractory period {REFRACTORY_MAX} that "
                         "keeps every conv1 neuron to one spike; use fewer steps or a smaller pool")
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    if limit_train is not None:
        x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    if limit_test is not None:
        x_test, y_test = x_test[:limit_test], y_test[:limit_test]
    if len(x_train) == 0 or len(x_test) == 0:
        raise ValueError("train-stdp needs at least one training and one test sample")
    enc = encoding(params, shape, data.name)
    kernel0 = initial_kernel(params, seed)
    compiled_train, program = training_program(kernel0, shape, params)   # refuses what no core holds
    split = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, enc=enc, name=data.name)

    history, state, train_seconds = [], None, 0.0
    kernel = kernel0
    for epoch in range(epochs + 1):
        spikes = None
        if epoch:
            t0 = time.perf_counter()
            state, spikes = train_conv(program, x_train, params, seed=seed, epoch=epoch - 1, state=state,
                                       progress=progress)
            train_seconds += time.perf_counter() - t0
            kernel = kernel_of(compiled_train, state.weight)
        readout, net, compiled, report, train_acc, pool_spikes = _evaluate_epoch(kernel, data, params, **split)
        history.append({"epoch": epoch, "accuracy": float(report["accuracy"]), "train_accuracy": train_acc,
                        "training_spikes_per_sample": None if spikes is None else round(spikes, 2),
                        "pool_spikes_per_sample": round(pool_spikes, 2),
                        "kernel_mean": round(float(kernel.mean()) / params.w_max, 4),
                        "kernel_at_bounds": round(float(((kernel <= 0) | (kernel >= params.w_max)).mean()), 4)})
        if log is not None:
            h = history[-1]
            log(f"epoch {epoch}/{epochs}: test accuracy {h['accuracy']:.4f} (train {h['train_accuracy']:.4f}), "
                f"{h['pool_spikes_per_sample']} pool spikes per sample, {h['kernel_at_bounds']:.1%} of the "
                "kernel at 0 or w_max")
    return CnnStdpResult(dataset=data.name, params=params, epochs=epochs, seed=seed, image_shape=shape,
                         n_classes=data.n_classes, kernel=kernel, initial_kernel=kernel0, readout=readout,
                         accuracy=float(report["accuracy"]), train_accuracy=history[-1]["train_accuracy"],
                         confusion_matrix=report["confusion_matrix"], history=history, network=net,
                         compiled=compiled, train_seconds=train_seconds, seconds=time.perf_counter() - t_start)


def plot_kernels(result: CnnStdpResult, path) -> None:
    """The learned kernels as a PNG: per map ON minus OFF weights (red: a bright centre on a
    dark surround is wanted, blue: the opposite), before and after training, and the test
    accuracy per epoch."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    maps = result.kernel.shape[0]
    cols = min(maps, 16)
    rows = -(-maps // cols)
    fig = plt.figure(figsize=(max(6.0, cols * 0.55), 2 * rows * 0.6 + 2.6))
    grid = fig.add_gridspec(2 * rows + 1, cols, height_ratios=[0.6] * (2 * rows) + [2.0])
    bound = float(result.params.w_max)
    for half, (kernel, what) in enumerate(((result.initial_kernel, "initial"), (result.kernel, "learned"))):
        for m in range(maps):
            ax = fig.add_subplot(grid[half * rows + m // cols, m % cols])
            ax.imshow(kernel[m, 0] - kernel[m, 1], cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if m == 0:
                ax.set_ylabel(what, fontsize=6)
    ax = fig.add_subplot(grid[2 * rows, :])
    epochs = [h["epoch"] for h in result.history]
    ax.plot(epochs, [100 * h["accuracy"] for h in result.history], "o-", label="test (on the core)")
    ax.plot(epochs, [100 * h["train_accuracy"] for h in result.history], "s--", label="train (readout fit)")
    ax.set_xlabel("epoch (0: initial kernels)", fontsize=7)
    ax.set_ylabel("accuracy %", fontsize=7)
    ax.set_xticks(epochs)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6)
    fig.suptitle(f"{result.dataset}: {maps} conv1 maps ({result.params.kernel}x{result.params.kernel}, "
                 f"ON - OFF), STDP on the core, {result.epochs} epochs, test accuracy {result.accuracy:.1%}",
                 fontsize=7)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=130)
    plt.close(fig)
