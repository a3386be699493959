"""Unsupervised STDP training with the core's own learning rule, after Diehl & Cook (2015).

The network is the one of Diehl & Cook: rate-coded pixels -> ``K`` excitatory neurons with a
plastic all-to-all input projection, lateral inhibition (here: the core's winner-take-all
group) and an adaptive threshold (theta) for homeostasis. Training runs on the bit-exact
golden model (:func:`neurocore.sim.golden.run_batch` with ``learn=True``): every weight and
every theta value is exactly what the core itself would learn, step by step, from the same
spike trains (docs/core-spec.md, section 5, phase 4). Nothing is done on the host between
samples or epochs except choosing the order of the samples and encoding them as spikes:
no weight normalisation, no input boosting, no clipping, no parameter schedule.

How the core's primitives map onto Diehl & Cook's network
---------------------------------------------------------

* **Input.** One host axon per pixel, Bernoulli rate ``x * max_rate`` per step
  (``encoders.encode("rate", ...)``). ``complement=True`` adds an OFF axon per pixel with
  rate ``(1 - x) * max_rate`` (twice the axons and synapses); it was not needed
  (docs/results.md).
* **Lateral inhibition = WTA with a forced competition every step.** The core's WTA group
  lets the candidate with the largest margin fire and zeroes the membrane of every other
  candidate. With ``threshold = 1`` and a large constant ``bias`` (default ``2**14``, above any
  ``theta - acc`` reached in training, and small enough that ``acc + bias`` never
  saturates a 16-bit membrane: at most 128 inputs x ``w_max`` 127 + 2**14 < 2**15) every
  neuron is a candidate in every step, so in every step exactly one neuron fires: the one
  with the largest ``acc - theta`` (its weighted input of the step minus its adaptive
  threshold), and every membrane starts the next step from 0. This is the hard
  winner-take-all of Diehl & Cook's strong lateral inhibition, one winner per step,
  evaluated by the core itself. No sample can be silent, so Diehl & Cook's input boosting
  (re-presenting a sample with more intense input when it evokes too few spikes) is never
  needed and not implemented.
* **Homeostasis = theta.** Every spike raises the winner's theta by ``theta_inc``
  (``theta_decay_shift = 0``: no decay, an integral controller like Diehl & Cook's very
  slow theta decay). A neuron that wins too often is handicapped until the others catch
  up, so all neurons take part ("conscience" competitive learning). ``theta_inc`` must
  exceed the growth of a winner's own input per win (about the number of input spikes in
  a step, ~20 for digits), otherwise one neuron runs away with every sample.
* **Learning = the on-chip STDP rule.** With ``pre_decay_shift = 1`` and ``pre_jump = 128``
  the pre trace is at least 128 when the axon spiked in the current step (and below 128
  otherwise, except right after a trace of 255), so ``(a_plus * x) >> shift`` with
  ``a_plus = 1, shift = 7`` adds 1 to each synapse of the winner whose axon spiked with
  the post spike. A neuron's weight vector becomes its initial weights plus the sum of the
  input spike patterns it won: the running sum behind online k-means, with ``w_max`` as
  the only limit. Short presentations (``steps = 2``) over several epochs keep most weights
  below ``w_max``. ``a_minus = 0``: the depression half of the rule is available, but with
  one winner per step an LTD event (a pre spike one step after the winner's spike, in the
  same sample) only cancels LTP on average and did not help (docs/results.md).
* **Multiplicative rule** (``rule="multiplicative"``): the same network with the soft bound
  (``soft_bound=True``), the fixed-point form of Kheradpisheh et al. (2018)'s
  ``dw = a w (1 - w)``; the change is ``(a_plus * x * u * (R - u)) >> shift`` with
  ``u = w - w_min``, ``R = w_max - w_min`` and ``shift = 18``, so weights grow fastest in
  mid-range and stop below ``w_max`` by themselves (~116 of 127). The floor of the shift
  also freezes small weights: below ``u = 12`` a weight never grows, and below ``u ~ 20``
  only when its axon spiked in the previous step too, so the initial weights are drawn
  from 18..26 rather than near 0.

Labelling and classification (Diehl & Cook): after training, learning is frozen, the
training set is presented once more and each neuron is labelled with the class for which
its mean spike count is highest (``-1`` if it never fired). A test sample is classified
as the class whose labelled neurons have the highest mean spike count, which is the
compiler's ``{"kind": "vote"}`` decoding, so a compiled image decodes the same way.
Labelling and test runs use ``learn=False`` (parallel threads) and ``eval_steps`` steps
per sample; the test run is :func:`neurocore.sw.evaluate.evaluate` (what ``neurocore run``
computes on the written image).
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ..hw.config import CoreConfig
from ..hw.program import LearningParams, NeuronParams
from .network import INPUT, Population, Projection, SnnNetwork

__all__ = ["RULES", "StdpParams", "StdpResult", "default_params", "build_network", "complement",
           "weight_matrix", "assign_labels", "vote", "epoch_inputs", "train_program", "train_stdp",
           "plot_weights"]

RULES = ("trace", "multiplicative")
EXCITATORY = "exc"


@dataclasses.dataclass(frozen=True)
class StdpParams:
    """Every integer parameter of the trained network and the presentation schedule.

    Neuron parameters are shared by all ``K`` excitatory neurons; learning parameters are
    the core's global STDP parameters (docs/core-spec.md, section 4).
    """

    # presentation
    steps: int = 2                  # steps per training sample (learning on)
    eval_steps: int = 64            # steps per sample for labelling and testing (learning off)
    max_rate: float = 1.0           # input spike probability per step for intensity 1
    complement: bool = False        # True: an ON and an OFF axon per pixel (2 * features inputs)
    # neurons (one WTA population)
    threshold: int = 1
    bias: int = 1 << 14             # every neuron is a WTA candidate in every step (fits V >= 16)
    leak_shift: int = 0
    refractory: int = 0
    theta_inc: int = 24
    theta_decay_shift: int = 0
    # learning (the core's STDP rule)
    a_plus: int = 1
    a_minus: int = 0
    shift: int = 7
    pre_decay_shift: int = 1
    post_decay_shift: int = 1
    pre_jump: int = 128
    post_jump: int = 128
    w_min: int = 0
    w_max: int = 127
    soft_bound: bool = False
    # initial weights: uniform integers in init_low..init_high (inclusive)
    init_low: int = 0
    init_high: int = 8

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("complement", "soft_bound"):
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"StdpParams.{f.name} must be True or False, got {value!r}")
            elif f.name == "max_rate":
                if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0.0 < value <= 1.0):
                    raise ValueError(f"StdpParams.max_rate must be in (0, 1], got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"StdpParams.{f.name} must be an integer, got {value!r}")
        for name in ("steps", "eval_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"StdpParams.{name} must be at least 1, got {getattr(self, name)}")
        if not self.w_min <= self.init_low <= self.init_high <= self.w_max:
            raise ValueError(f"StdpParams: initial weights {self.init_low}..{self.init_high} must lie "
                             f"within w_min..w_max = {self.w_min}..{self.w_max}")

    def learning(self) -> LearningParams:
        return LearningParams(a_plus=self.a_plus, a_minus=self.a_minus, shift=self.shift,
                              pre_decay_shift=self.pre_decay_shift,
                              post_decay_shift=self.post_decay_shift, pre_jump=self.pre_jump,
                              post_jump=self.post_jump, w_min=self.w_min, w_max=self.w_max,
                              soft_bound=bool(self.soft_bound))

    def neuron_params(self, n: int) -> NeuronParams:
        return NeuronParams.uniform(n, threshold=self.threshold, leak_shift=self.leak_shift,
                                    refractory=self.refractory, bias=self.bias,
                                    theta_inc=self.theta_inc,
                                    theta_decay_shift=self.theta_decay_shift)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_DEFAULTS = {
    "trace": StdpParams(),
    "multiplicative": StdpParams(soft_bound=True, a_plus=1, shift=18, init_low=18, init_high=26),
}
# theta_inc for complement coding (twice the input spikes per step, so twice the growth per win)
_COMPLEMENT_THETA_INC = {"trace": 96, "multiplicative": 80}


def default_params(rule: str = "trace", **overrides) -> StdpParams:
    """The tuned parameters of ``rule`` ("trace" or "multiplicative"), with ``overrides``.

    ``complement=True`` without an explicit ``theta_inc`` also selects the ``theta_inc``
    tuned for complement coding.
    """
    if rule not in _DEFAULTS:
        raise ValueError(f"unknown STDP rule {rule!r}; choose one of {', '.join(RULES)}")
    if overrides.get("complement") and "theta_inc" not in overrides:
        overrides["theta_inc"] = _COMPLEMENT_THETA_INC[rule]
    return dataclasses.replace(_DEFAULTS[rule], **overrides)


def complement(x: np.ndarray) -> np.ndarray:
    """``[x, 1 - x]`` along the feature axis (ON then OFF channel of every pixel)."""
    x = np.asarray(x, np.float32)
    return np.concatenate([x, np.float32(1.0) - x], axis=-1)


def build_network(n_inputs: int, neurons: int, params: StdpParams, weights: np.ndarray,
                  theta: np.ndarray | None = None, labels=None, n_classes: int | None = None,
                  encoding: dict | None = None) -> SnnNetwork:
    """The trainable network: ``n_inputs`` host axons -> ``neurons`` WTA neurons, dense plastic.

    ``weights`` is ``[neurons, n_inputs]``. With ``labels`` the network decodes by
    ``{"kind": "vote", "labels": labels, "n_classes": n_classes}``.
    """
    weights = np.asarray(weights, np.int64)
    if weights.shape != (neurons, n_inputs):
        raise ValueError(f"weights must have shape ({neurons}, {n_inputs}), got {weights.shape}")
    exc = Population(EXCITATORY, params.neuron_params(neurons), output=True, wta=True, theta=theta)
    proj = Projection.dense(INPUT, EXCITATORY, weights, plastic=True)
    decoding = {}
    if labels is not None:
        decoding = {"kind": "vote", "labels": [int(v) for v in labels], "n_classes": int(n_classes)}
    return SnnNetwork(n_inputs=n_inputs, populations=[exc], projections=[proj],
                      learning=params.learning(), encoding=dict(encoding or {}), decoding=decoding)


def weight_matrix(program, neurons: int, n_inputs: int, weight: np.ndarray | None = None) -> np.ndarray:
    """The ``[neurons, n_inputs]`` weight matrix of a compiled STDP network's program.

    ``weight`` (default: the program's) is a synapse-memory array, e.g. a learned
    ``CoreState.weight``.
    """
    weight = program.weight if weight is None else np.asarray(weight)
    w = np.zeros((neurons, n_inputs), np.int64)
    w[program.target, program.synapse_axon()] = weight
    return w


def assign_labels(counts: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Label each neuron with the class of its highest mean spike count (-1: never fired).

    ``counts`` is ``[n_samples, neurons]`` (spikes per sample), ``y`` the samples' classes.
    Ties go to the lowest class; classes without samples are never chosen.
    """
    counts = np.asarray(counts, np.float64)
    y = np.asarray(y, np.int64)
    mean = np.full((n_classes, counts.shape[1]), -np.inf)
    for c in range(n_classes):
        if (y == c).any():
            mean[c] = counts[y == c].mean(axis=0)
    labels = np.argmax(mean, axis=0).astype(np.int64)
    labels[counts.sum(axis=0) == 0] = -1
    return labels


def vote(counts: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class per sample: the class whose labelled neurons have the highest mean count.

    The same rule as the compiler's ``"vote"`` decoding (ties to the lowest class, classes
    without labelled neurons never predicted).
    """
    counts = np.asarray(counts, np.float64)
    labels = np.asarray(labels, np.int64)
    members = (labels[None, :] == np.arange(n_classes)[:, None]).astype(np.float64)
    per_class = members.sum(axis=1)
    mean = (counts @ members.T) / np.maximum(per_class, 1)
    mean[:, per_class == 0] = -np.inf
    return np.argmax(mean, axis=1).astype(np.int64)


@dataclasses.dataclass
class StdpResult:
    """What :func:`train_stdp` produced. ``to_dict()`` is the JSON report."""

    dataset: str
    rule: str
    neurons: int
    epochs: int
    seed: int
    params: StdpParams
    image_shape: tuple[int, int]
    n_classes: int
    weights: np.ndarray          # int64 [neurons, n_inputs], learned on the golden model
    theta: np.ndarray            # int64 [neurons], learned adaptive thresholds
    initial_weights: np.ndarray  # int64 [neurons, n_inputs]
    labels: np.ndarray           # int64 [neurons], -1: never fired during labelling
    accuracy: float              # test split, vote decoding
    train_accuracy: float        # training split (the labelling run), vote decoding
    confusion_matrix: list
    history: list                # one dict per epoch
    network: SnnNetwork          # learned weights and theta, vote decoding, learning kept
    compiled: object             # CompiledNetwork of ``network`` on the training core
    train_seconds: float
    seconds: float               # everything: loading, training, labelling, testing

    @property
    def n_inputs(self) -> int:
        return int(self.weights.shape[1])

    def to_dict(self) -> dict:
        util = self.compiled.utilisation()
        return {
            "dataset": self.dataset,
            "rule": self.rule,
            "accuracy": float(self.accuracy),
            "train_accuracy": float(self.train_accuracy),
            "neurons": int(self.neurons),
            "epochs": int(self.epochs),
            "steps": int(self.params.steps),
            "eval_steps": int(self.params.eval_steps),
            "seed": int(self.seed),
            "seconds": round(float(self.seconds), 3),
            "train_seconds": round(float(self.train_seconds), 3),
            "inputs": self.n_inputs,
            "synapses": int(self.compiled.program.n_synapses),
            "labelled_neurons": int((self.labels >= 0).sum()),
            "neurons_per_class": np.bincount(self.labels[self.labels >= 0],
                                             minlength=self.n_classes).tolist(),
            "weights": {"min": int(self.weights.min()), "max": int(self.weights.max()),
                        "mean": round(float(self.weights.mean()), 3),
                        "at_w_max": round(float((self.weights == self.params.w_max).mean()), 4)},
            "theta": {"min": int(self.theta.min()), "max": int(self.theta.max()),
                      "mean": round(float(self.theta.mean()), 3)},
            "core_config": self.compiled.config.to_dict(),
            "utilisation": {k: v["used"] for k, v in util.items()},
            "params": self.params.to_dict(),
            "history": self.history,
            "confusion_matrix": self.confusion_matrix,
        }


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _encode_inputs(x: np.ndarray, params: StdpParams) -> np.ndarray:
    return complement(x) if params.complement else np.asarray(x, np.float32)


def epoch_inputs(xin: np.ndarray, params: StdpParams, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample order and input spikes ``bool[n, steps, n_inputs]`` of training epoch ``epoch``.

    ``xin`` are the network's input intensities (after complement coding). The order is a
    permutation drawn from ``(seed, epoch)``; the spikes are the rate code of the permuted
    samples (``max_rate``), drawn from another stream of ``(seed, epoch)``.
    """
    from .encoders import encode

    order = np.random.default_rng(_seed(seed, 1, epoch)).permutation(len(xin))
    spikes = encode("rate", np.asarray(xin, np.float32)[order], params.steps, seed=_seed(seed, 2, epoch),
                    max_rate=params.max_rate)
    return order, spikes


def train_program(program, xin: np.ndarray, *, epochs: int, params: StdpParams, seed: int = 0,
                  progress: bool = False, state=None):
    """Run ``epochs`` training epochs of ``program`` on the golden model with learning on.

    Each epoch presents every row of ``xin`` once, in the order of :func:`epoch_inputs`, for
    ``params.steps`` steps, clearing the state before each sample and carrying weights and
    theta (:func:`neurocore.sim.golden.run_batch` with ``learn=True``). Returns the final
    :class:`~neurocore.hw.program.CoreState` and one statistics dict per epoch.
    """
    import sys

    from ..hw.program import CoreState
    from ..sim import golden

    state = CoreState.initial(program) if state is None else state.copy()
    history = []
    for epoch in range(epochs):
        _, inputs = epoch_inputs(xin, params, seed, epoch)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}", file=sys.stderr, flush=True)
        batch = golden.run_batch(program, inputs, learn=True, state=state, progress=progress)
        state = batch.state
        counts = batch.spikes.sum(axis=1)
        w = state.weight[program.plastic]
        history.append({
            "epoch": epoch + 1,
            "spikes_per_sample": round(float(counts.sum(axis=1).mean()), 3),
            "neurons_fired": int((counts.sum(axis=0) > 0).sum()),
            "theta_mean": round(float(state.theta.mean()), 3),
            "theta_max": int(state.theta.max()),
            "weight_mean": round(float(w.mean()), 3) if w.size else 0.0,
            "at_w_max": round(float((w == params.w_max).mean()), 4) if w.size else 0.0,
        })
    return state, history


def train_stdp(dataset="digits", neurons: int = 256, epochs: int = 8, steps: int | None = None, seed: int = 0,
               rule: str = "trace", progress: bool = True, data_dir=None,
               params: StdpParams | None = None, eval_steps: int | None = None,
               limit_train: int | None = None, limit_test: int | None = None,
               config: CoreConfig | None = None) -> StdpResult:
    """Train ``neurons`` excitatory neurons with the core's STDP rule on ``dataset``; label; test.

    ``dataset`` is a name for :func:`neurocore.sw.datasets.load_dataset` (``data_dir`` for
    MNIST-style IDX files) or a :class:`~neurocore.sw.datasets.Dataset`. ``params``
    defaults to :func:`default_params(rule) <default_params>`; ``steps`` / ``eval_steps``
    override its presentation lengths. ``limit_train`` / ``limit_test`` use only the first
    samples of each split (for quick runs). ``config`` is the core to place the network on
    (default: the default :class:`CoreConfig`, which holds up to 256 neurons of 64 pixels
    with complement coding, or the default with the capacities and widths a larger network
    needs raised, as :func:`~neurocore.sw.compiler.choose_config` does). Every random choice (initial weights, sample
    order, spike trains) derives from ``seed``: the same arguments give the same weights.
    """
    from ..sim import golden
    from .compiler import compile_network
    from .datasets import Dataset, limited_splits, load_dataset
    from .evaluate import encode_samples, evaluate

    t_start = time.perf_counter()
    if rule not in RULES:
        raise ValueError(f"unknown STDP rule {rule!r}; choose one of {', '.join(RULES)}")
    for name, value, low in (("neurons", neurons, 1), ("epochs", epochs, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    params = params or default_params(rule)
    if params.soft_bound != (rule == "multiplicative"):
        raise ValueError(f"rule {rule!r} needs soft_bound={rule == 'multiplicative'} in params")
    overrides = {k: v for k, v in (("steps", steps), ("eval_steps", eval_steps)) if v is not None}
    params = dataclasses.replace(params, **overrides)

    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_dir)
    x_train, y_train, x_test, y_test = limited_splits(data, limit_train, limit_test, "train_stdp")
    xin_train, xin_test = _encode_inputs(x_train, params), _encode_inputs(x_test, params)
    n_inputs = xin_train.shape[1]
    encoding = {"kind": "rate", "dataset": data.name, "steps": params.eval_steps,
                "max_rate": params.max_rate, "complement": bool(params.complement),
                "features": int(x_train.shape[1]), "seed": int(seed)}

    # initial network, placed on the core exactly as it will be written out
    rng = np.random.default_rng(seed)
    w0 = rng.integers(params.init_low, params.init_high + 1, size=(neurons, n_inputs), dtype=np.int64)
    # config=None: the default core, or the default with what the network overflows raised
    compiled0 = compile_network(build_network(n_inputs, neurons, params, w0, encoding=encoding), config)
    program = compiled0.program
    first = compiled0.layers[EXCITATORY][0]
    if first != 0 or compiled0.input_axons != n_inputs:
        raise AssertionError("unexpected placement of the STDP network")

    # training: the golden model with learning on; state (weights, theta) carried over
    t_train = time.perf_counter()
    state, history = train_program(program, xin_train, epochs=epochs, params=params, seed=seed,
                                   progress=progress)
    train_seconds = time.perf_counter() - t_train
    weight, theta = state.weight.copy(), state.theta.copy()
    if theta.max() >= params.bias:
        raise ValueError(f"theta reached {int(theta.max())}, beyond the bias {params.bias}: the forced "
                         "competition breaks down; use fewer epochs or a smaller theta_inc")
    weights = weight_matrix(program, neurons, n_inputs, weight)

    # labelling: learning frozen, the training set once more
    learned = dataclasses.replace(program, weight=weight, theta=theta)
    label_inputs = encode_samples(xin_train, params.eval_steps, "rate", _seed(seed, 3),
                                  max_rate=params.max_rate)
    counts = golden.run_batch(learned, label_inputs, learn=False).spikes.sum(axis=1)
    labels = assign_labels(counts, y_train, data.n_classes)
    train_accuracy = float((vote(counts, labels, data.n_classes) == y_train).mean())

    # the trained network (learning parameters kept: the core can keep learning on chip)
    network = build_network(n_inputs, neurons, params, weights, theta=theta, labels=labels,
                            n_classes=data.n_classes, encoding=encoding)
    compiled = compile_network(network, compiled0.config)
    if not np.array_equal(compiled.program.weight, weight):
        raise AssertionError("the compiled network's synapse order differs from the trained program's")
    report = evaluate(compiled, xin_test, y_test, steps=params.eval_steps, encoder="rate", seed=seed,
                      encoder_kwargs={"max_rate": params.max_rate})
    return StdpResult(dataset=data.name, rule=rule, neurons=neurons, epochs=epochs, seed=seed,
                      params=params, image_shape=tuple(data.image_shape), n_classes=data.n_classes,
                      weights=weights, theta=theta, initial_weights=w0, labels=labels,
                      accuracy=float(report["accuracy"]), train_accuracy=train_accuracy,
                      confusion_matrix=report["confusion_matrix"], history=history, network=network,
                      compiled=compiled, train_seconds=train_seconds,
                      seconds=time.perf_counter() - t_start)


def plot_weights(result: StdpResult, path, *, columns: int | None = None) -> None:
    """Save the receptive fields as a PNG grid (one image per neuron, with its label).

    With complement coding a neuron's field is ``w_on - w_off`` per pixel (red: the pixel
    should be bright, blue: dark); otherwise its weights. Uses matplotlib's Agg backend.
    """
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    h, w = result.image_shape
    n_pixels = h * w
    weights = result.weights.astype(np.float64)
    if result.params.complement:
        fields, lo, hi, cmap = weights[:, :n_pixels] - weights[:, n_pixels:2 * n_pixels], None, None, "RdBu_r"
        bound = max(1.0, float(np.abs(fields).max()))
        lo, hi = -bound, bound
    else:
        fields, lo, hi, cmap = weights[:, :n_pixels], result.params.w_min, result.params.w_max, "viridis"
    k = len(fields)
    cols = columns or int(math.ceil(math.sqrt(k)))
    rows = int(math.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.0, cols * 0.62), rows * 0.7 + 0.8), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < k:
            ax.imshow(fields[i].reshape(h, w), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            label = int(result.labels[i])
            ax.set_title("-" if label < 0 else str(label), fontsize=6, pad=1)
    what = "w_on - w_off per pixel" if result.params.complement else "weights"
    fig.suptitle(f"{result.dataset}: {result.neurons} neurons, rule '{result.rule}', {result.epochs} epochs, "
                 f"test accuracy {result.accuracy:.1%}\n{what}; titles: neuron labels", fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (rows * 0.7 + 0.8)), pad=0.2, h_pad=0.1, w_pad=0.1)
    fig.savefig(path, dpi=120)
    plt.close(fig)
