"""Frontends: trained ANNs from scikit-learn, PyTorch and NIR -> the float :class:`Graph` IR.

* :func:`from_sklearn` -- a fitted ``sklearn.neural_network.MLPClassifier`` with ReLU
  hidden units.
* :func:`from_torch` -- a ``torch.nn.Sequential`` of ``Linear``, ``Conv2d``, ``ReLU``,
  ``AvgPool2d`` and ``Flatten`` (``Dropout`` and ``Identity`` are no-ops at inference and
  are skipped). torch is imported lazily; it is an optional dependency
  (``pip install neurocore[torch]``).
* :func:`from_nir` -- a ``nir.NIRGraph`` that is a chain of ``Input``, ``Affine``,
  ``Linear``, ``Conv2d``, ``Flatten``, ``SumPool2d`` (and ``AvgPool2d``), ``IF``, ``LIF``
  and ``Output`` nodes. With ``keep_dynamics=True`` it also keeps each spiking node's own
  leak, threshold and reset (a :class:`DynamicGraph`), which :func:`convert_dynamics`
  maps onto the core's LIF neurons and :func:`convert_nir_dataset` evaluates.

Anything else raises ``ValueError`` naming the offending layer / node and listing what is
supported.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .graph import AvgPool2d, Conv2d, Dense, Flatten, Graph, ReLU, SumPool2d

__all__ = ["from_sklearn", "from_torch", "from_nir", "TORCH_SUPPORTED", "NIR_SUPPORTED", "DynamicGraph",
           "NeuronDynamics", "leak_shift_for_tau", "convert_dynamics", "convert_nir_dataset", "SNNTORCH_DT",
           "RESET_CHOICES"]

TORCH_SUPPORTED = ("Linear", "Conv2d", "ReLU", "AvgPool2d", "Flatten", "Dropout", "Identity",
                   "Sequential")
NIR_SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d",
                 "IF", "LIF")


# -- scikit-learn --------------------------------------------------------------------------
def from_sklearn(model, input_shape=None) -> Graph:
    """A fitted ``MLPClassifier`` (or ``MLPRegressor``) as a :class:`Graph`.

    ``Dense -> ReLU -> ... -> Dense``: one ``Dense`` per entry of ``coefs_`` (sklearn stores
    them ``[in, out]``; the IR uses ``[out, in]``), a ``ReLU`` after every hidden layer, and
    no nonlinearity after the last one (the output activation -- softmax or logistic --
    is monotonic, so the argmax of the last ``Dense`` is the classifier's prediction).
    Only ``activation="relu"`` is supported. ``input_shape`` (default ``(n_features,)``)
    may be ``(C, H, W)``; a ``Flatten`` is then inserted first.
    """
    name = type(model).__name__
    if not (hasattr(model, "coefs_") and hasattr(model, "intercepts_")):
        if hasattr(model, "hidden_layer_sizes"):
            raise ValueError(f"{name} is not fitted (no coefs_): call fit() first")
        raise ValueError(f"from_sklearn needs a fitted sklearn MLPClassifier or MLPRegressor, got {name}")
    activation = getattr(model, "activation", None)
    if activation != "relu":
        raise ValueError(f"{name} has activation={activation!r}; only 'relu' hidden units can be "
                         "converted to integrate-and-fire neurons (retrain with activation='relu')")
    n_in = int(model.coefs_[0].shape[0])
    layers: list = []
    if input_shape is not None and len(tuple(input_shape)) != 1:
        layers.append(Flatten())
    for i, (w, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        layers.append(Dense(np.asarray(w, np.float64).T, np.asarray(b, np.float64)))
        if i < len(model.coefs_) - 1:
            layers.append(ReLU())
    return Graph(tuple(input_shape) if input_shape is not None else (n_in,), layers)


# -- PyTorch -------------------------------------------------------------------------------
def _torch_modules(model, nn):
    """The leaf modules of a (possibly nested) ``nn.Sequential``, with dotted names."""
    for name, module in model.named_children():
        if isinstance(module, nn.Sequential):
            for sub, leaf in _torch_modules(module, nn):
                yield f"{name}.{sub}", leaf
        else:
            yield name, module


def _np(tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _torch_conv(name: str, m) -> Conv2d:
    if m.groups != 1:
        raise ValueError(f"module {name} (Conv2d): groups={m.groups} is not supported (only groups=1)")
    if tuple(m.dilation) != (1, 1):
        raise ValueError(f"module {name} (Conv2d): dilation={tuple(m.dilation)} is not supported (only 1)")
    if m.padding_mode != "zeros":
        raise ValueError(f"module {name} (Conv2d): padding_mode={m.padding_mode!r} is not supported "
                         "(only 'zeros')")
    padding = m.padding
    kh, kw = m.kernel_size
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"module {name} (Conv2d): padding='same' needs an odd kernel, got {(kh, kw)}")
        padding = (kh // 2, kw // 2)
    bias = None if m.bias is None else _np(m.bias)
    return Conv2d(_np(m.weight), bias, stride=tuple(m.stride), padding=tuple(padding))


def _torch_pool(name: str, m) -> AvgPool2d:
    from .graph import _pair
    if _pair(m.padding, "padding") != (0, 0):
        raise ValueError(f"module {name} (AvgPool2d): padding={m.padding} is not supported (only 0)")
    if m.ceil_mode:
        raise ValueError(f"module {name} (AvgPool2d): ceil_mode=True is not supported")
    if m.divisor_override is not None:
        raise ValueError(f"module {name} (AvgPool2d): divisor_override is not supported")
    return AvgPool2d(m.kernel_size, m.stride if m.stride else None)


def from_torch(model, input_shape=None) -> Graph:
    """A ``torch.nn.Sequential`` (nested ones are flattened) as a :class:`Graph`.

    Supported modules: ``Linear``, ``Conv2d`` (groups 1, dilation 1, zero padding given as
    ints or ``'valid'``/``'same'``), ``ReLU``, ``AvgPool2d`` (no padding, no ceil mode),
    ``Flatten`` (``start_dim=1``, ``end_dim=-1``: everything but the batch); ``Dropout``
    and ``Identity`` are skipped. ``input_shape`` is the shape of one sample without the
    batch: ``(n,)`` or ``(C, H, W)``; it may be omitted when the first module is a
    ``Linear``. Weights are copied as float64; the model is not modified.
    """
    try:
        import torch  # noqa: F401 - lazily, torch is optional
        from torch import nn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("from_torch needs PyTorch: pip install 'neurocore[torch]'") from exc
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"from_torch needs a torch.nn.Sequential, got {type(model).__name__} "
                         f"(supported modules: {', '.join(TORCH_SUPPORTED)})")
    modules = list(_torch_modules(model, nn))
    supported = ", ".join(TORCH_SUPPORTED)
    for name, m in modules:
        if not isinstance(m, (nn.Linear, nn.Conv2d, nn.ReLU, nn.AvgPool2d, nn.Flatten, nn.Dropout,
                              nn.Identity)):
            raise ValueError(f"module {name} ({type(m).__name__}) is not supported; supported modules: "
                             f"{supported}")
    if input_shape is None:
        first = next((m for _, m in modules if not isinstance(m, (nn.Dropout, nn.Identity))), None)
        if isinstance(first, nn.Linear):
            input_shape = (first.in_features,)
        else:
            raise ValueError("from_torch: give input_shape=(C, H, W) (or (n,)) for a model that does not "
                             "start with a Linear layer")
    layers: list = []
    shape = tuple(int(s) for s in input_shape)
    for name, m in modules:
        if isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(m, nn.Linear):
            layer = Dense(_np(m.weight), None if m.bias is None else _np(m.bias))
        elif isinstance(m, nn.Conv2d):
            layer = _torch_conv(name, m)
        elif isinstance(m, nn.AvgPool2d):
            layer = _torch_pool(name, m)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError(f"module {name} (Flatten): only start_dim=1, end_dim=-1 is supported, got "
                                 f"start_dim={m.start_dim}, end_dim={m.end_dim}")
            layer = Flatten()
        else:
            layer = ReLU()
        try:
            shape = layer.output_shape(shape)
        except ValueError as exc:
            raise ValueError(f"module {name} ({type(m).__name__}): {exc}") from None
        layers.append(layer)
    return Graph(tuple(input_shape), layers)


# -- NIR -----------------------------------------------------------------------------------
def _linearise(graph) -> list[str]:
    """Node names of a chain ``Input -> ... -> Output``; ``ValueError`` if it is not one."""
    import nir

    nodes = graph.nodes
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    pred: dict[str, list[str]] = {k: [] for k in nodes}
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in nodes:
                raise ValueError(f"NIR edge {src} -> {dst} names an unknown node {end!r}")
        succ[src].append(dst)
        pred[dst].append(src)
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"NIR graph must have exactly one Input node, found {len(inputs)} ({inputs})")
    order = [inputs[0]]
    while True:
        name = order[-1]
        if len(pred[name]) > (0 if name == inputs[0] else 1):
            raise ValueError(f"NIR graph is not a chain: node {name!r} has {len(pred[name])} incoming "
                             f"edges (from {pred[name]}); only sequential graphs can be converted")
        if len(succ[name]) > 1:
            raise ValueError(f"NIR graph is not a chain: node {name!r} has {len(succ[name])} outgoing "
                             f"edges (to {succ[name]}); only sequential graphs can be converted")
        if not succ[name]:
            break
        nxt = succ[name][0]
        if nxt in order:
            raise ValueError(f"NIR graph is not a chain: it has a cycle through node {nxt!r}")
        order.append(nxt)
    if not isinstance(nodes[order[-1]], nir.Output):
        raise ValueError(f"NIR graph is not a chain: it ends at node {order[-1]!r} "
                         f"({type(nodes[order[-1]]).__name__}), not at an Output node")
    missing = [k for k in nodes if k not in order]
    if missing:
        raise ValueError(f"NIR graph is not a chain: nodes {missing} are not on the path from the Input "
                         "to the Output")
    return order


def _shape_of(node_type) -> tuple | None:
    value = node_type.get("input") if isinstance(node_type, dict) else node_type
    if value is None:
        return None
    shape = tuple(int(s) for s in np.asarray(value).reshape(-1))
    return shape or None


def _neuron_scale(name: str, node, kind: str, *, keep_dynamics: bool = False) -> np.ndarray:
    """``r / (v_threshold - v_reset)``: the factor mapping the node's input to its firing rate."""
    r = np.asarray(node.r, np.float64)
    v_th = np.asarray(node.v_threshold, np.float64)
    v_reset = np.zeros_like(v_th) if node.v_reset is None else np.asarray(node.v_reset, np.float64)
    gap = v_th - v_reset
    if (gap <= 0).any():
        raise ValueError(f"NIR node {name!r} ({kind}): v_threshold must exceed v_reset")
    if (r <= 0).any():
        raise ValueError(f"NIR node {name!r} ({kind}): r must be positive")
    if keep_dynamics and not np.isfinite(r).all():
        raise ValueError(f"NIR node {name!r} ({kind}): r must be finite")
    if kind == "LIF" and not keep_dynamics:
        v_leak = np.asarray(node.v_leak, np.float64)
        if (v_leak != 0).any():
            raise ValueError(f"NIR node {name!r} (LIF): a non-zero v_leak is not supported (the converted "
                             "neurons are non-leaky integrate-and-fire neurons; --keep-dynamics keeps it)")
    return np.broadcast_to(r / gap, np.broadcast_shapes(r.shape, gap.shape)).astype(np.float64)


def _fold_scale(name: str, layers: list, scale: np.ndarray, shape: tuple) -> None:
    """Multiply the outputs of the last Dense/Conv2d of ``layers`` by ``scale`` (in place)."""
    if np.all(scale == 1.0):
        return
    target = None
    for layer in reversed(layers):
        if isinstance(layer, Flatten):
            continue
        target = layer
        break
    if isinstance(target, Dense):
        n = target.weight.shape[0]
        s = scale.reshape(-1)
        if s.size == 1:
            s = np.full(n, s[0])
        if s.size != n:
            raise ValueError(f"NIR node {name!r}: {s.size} neuron parameters for {n} units")
        target.weight = target.weight * s[:, None]
        target.bias = target.bias * s
    elif isinstance(target, Conv2d):
        oc = target.weight.shape[0]
        s = scale.reshape(-1)
        if s.size == 1:
            s = np.full(oc, s[0])
        elif s.size == int(np.prod(shape)) and s.size != oc:
            per_channel = s.reshape(oc, -1)
            if not np.all(per_channel == per_channel[:, :1]):
                raise ValueError(f"NIR node {name!r}: after a Conv2d, r / (v_threshold - v_reset) must be "
                                 "the same for all positions of a channel")
            s = per_channel[:, 0]
        if s.size != oc:
            raise ValueError(f"NIR node {name!r}: {s.size} neuron parameters for {oc} channels")
        target.weight = target.weight * s[:, None, None, None]
        target.bias = target.bias * s
    else:
        raise ValueError(f"NIR node {name!r}: r / (v_threshold - v_reset) != 1 is only supported right "
                         "after an Affine, Linear or Conv2d node")


# -- NIR: the nodes' own dynamics (keep_dynamics) -------------------------------------------
#: The time step of snnTorch's NIR exporter and importer (``dt = 1e-4`` in snntorch/export_nir.py
#: and import_nir.py); it is not written into the graph, so it is the default when neither the
#: caller nor the graph's ``metadata["dt"]`` gives one.
SNNTORCH_DT = 1e-4
#: Reset semantics of the spiking nodes: NIR's (to ``v_reset``; the core's reset to zero) or
#: snnTorch's default ``reset_mechanism="subtract"`` (the core's reset by subtraction).
RESET_CHOICES = ("zero", "subtract")
_DYNAMICS_SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "IF", "LIF")
_DEFAULT_MEMBRANE_BITS = 16     # CoreConfig().membrane_bits: leak_shift 1 .. 15


def leak_range(dt: float, membrane_bits: int = _DEFAULT_MEMBRANE_BITS) -> tuple[float, float]:
    """``(tau_lo, tau_hi)``: the time constants :func:`leak_shift_for_tau` maps to a leak,
    ``dt 2^0.5 <= tau < dt 2^(V - 1/2)`` (``V = membrane_bits``)."""
    return dt * 2.0 ** 0.5, dt * 2.0 ** (membrane_bits - 0.5)


def leak_shift_for_tau(tau: float, dt: float, membrane_bits: int = _DEFAULT_MEMBRANE_BITS) -> tuple[int, float]:
    """The core's ``leak_shift`` nearest to the time constant ``tau``, and its decay factor.

    The NIR LIF ``tau dv/dt = (v_leak - v) + r I``, discretised with forward Euler at the
    step ``dt``, decays by ``beta = 1 - dt / tau`` per step (snnTorch's ``Leaky`` is exported
    as ``tau = dt / (1 - beta)``, so this is its ``beta``). The core's leak
    ``v -= v >> k`` (docs/core-spec.md, section 5, phase 2; ``leak_shift k = 1 .. V-1``)
    decays by ``1 - 2^-k``, i.e. it is the same Euler step with ``tau_k = dt 2^k``. The
    chosen ``k`` is the nearest **in log(tau)** (equivalently in log(1 - beta)):
    ``k = floor(log2(tau / dt) + 1/2)``, so ``tau_k / tau`` lies in ``[2^-1/2, 2^1/2)``
    (-29 % .. +41 %). ``tau`` must lie in :func:`leak_range` (``dt 2^0.5 .. dt 2^(V-1/2)``):
    a shorter one (``beta < 0.29``) would need a decay below 1/2, a longer one lies beyond
    the slowest leak; both raise ``ValueError`` naming ``tau`` and the range. ``k = 0`` (no
    leak) is an IF node's, never a rounding of a finite ``tau``. Integer rounding: the shift
    is a floor, so a positive ``v < 2^k`` does not decay at all and a negative one decays
    towards 0 by at least 1.

    Returns ``(k, 1 - 2^-k)``.
    """
    tau, dt = float(tau), float(dt)
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite time step, got {dt:g}")
    lo, hi = leak_range(dt, membrane_bits)
    if not (np.isfinite(tau) and lo <= tau < hi):
        decay = f", decay 1 - dt/tau = {1 - dt / tau:.4g}" if np.isfinite(tau) and tau > 0 else ""
        raise ValueError(f"tau {tau:.4g} s (= {tau / dt:.4g} dt at dt {dt:g} s{decay}) is outside the core's "
                         f"leak range {lo:.4g} .. {hi:.4g} s (tau/dt = 2^0.5 .. 2^{membrane_bits - 0.5:g}: "
                         f"leak_shift 1..{membrane_bits - 1}, decay 0.5 .. {1 - 2.0 ** -(membrane_bits - 1):.6g})")
    # clamped: at the ends of the range log2 may round across the boundary (never to 0, no leak)
    k = min(max(int(math.floor(math.log2(tau / dt) + 0.5)), 1), membrane_bits - 1)
    return k, 1.0 - 2.0 ** -k


@dataclasses.dataclass
class NeuronDynamics:
    """The integer-ready dynamics of one NIR spiking node, one value per unit of its layer.

    In the units of the float graph (whose preceding layer already carries the ratio
    ``r / (v_threshold - v_reset)``, as without ``keep_dynamics``) and with the membrane
    shifted by ``v_reset`` (so the reset is to 0 and the threshold is ``v_threshold - v_reset``;
    the core starts every sample at 0, i.e. at ``v = v_reset``), one forward-Euler step of ``dt``
    of the node is

        v <- beta v + input_gain * z + drive;  spike when v >= threshold;  then reset

    with ``z`` the float layer's output (``W x + b``, ratio folded), ``beta = 1 - dt / tau``
    and, for a LIF, ``input_gain = (dt / tau) (v_threshold - v_reset)``,
    ``drive = (dt / tau) (v_leak - v_reset)``; for an IF, ``beta = 1``,
    ``input_gain = dt (v_threshold - v_reset)``, ``drive = 0``. ``leak_shift`` is the
    core's nearest leak (:func:`leak_shift_for_tau`; 0 for an IF). ``reset`` is ``"zero"``
    (the core's reset_mode 0) or ``"subtract"`` (reset_mode 1).
    """

    node: str
    kind: str
    tau: np.ndarray           # requested time constant (s) per unit; inf for an IF
    leak_shift: np.ndarray    # the core's leak per unit (0 = none)
    input_gain: np.ndarray
    threshold: np.ndarray     # v_threshold - v_reset
    drive: np.ndarray
    reset: str
    dt: float

    @property
    def decay(self) -> np.ndarray:
        """Requested decay per step, ``1 - dt / tau`` (1 for an IF)."""
        return 1.0 - self.dt / self.tau

    @property
    def effective_decay(self) -> np.ndarray:
        """The core's decay per step, ``1 - 2^-leak_shift`` (1 for leak_shift 0)."""
        return np.where(self.leak_shift > 0, 1.0 - 2.0 ** -self.leak_shift.astype(np.float64), 1.0)

    def report(self) -> dict:
        """JSON-friendly: per distinct requested ``tau`` its ``decay``, ``leak_shift``,
        ``effective_decay``, ``decay_error`` (relative, ``(effective - requested) / requested``),
        ``effective_tau`` (``dt 2^k``), ``tau_error`` (relative) and ``leak_floor`` (``2^k - 1``:
        the largest positive integer membrane ``v >> k`` leaves undecayed; a leak floor at or
        above the integer threshold means the leak hardly acts), with the number of units."""
        entries = []
        for tau in np.unique(self.tau):
            units = self.tau == tau
            k = int(self.leak_shift[units][0])
            decay, eff = float(1.0 - self.dt / tau), float(self.effective_decay[units][0])
            eff_tau = float(self.dt * 2.0 ** k) if k else math.inf
            entries.append({"tau": float(tau) if np.isfinite(tau) else None, "decay": decay, "leak_shift": k,
                            "effective_decay": eff, "decay_error": (eff - decay) / decay if decay else None,
                            "effective_tau": eff_tau if k else None,
                            "tau_error": float((eff_tau - tau) / tau) if k else 0.0,
                            "leak_floor": (1 << k) - 1 if k else 0, "units": int(units.sum())})
        return {"node": self.node, "kind": self.kind, "dt": self.dt, "reset": self.reset, "entries": entries,
                "max_abs_decay_error": max(abs(e["decay_error"] or 0.0) for e in entries)}


@dataclasses.dataclass
class DynamicGraph(Graph):
    """A :class:`Graph` (the same layers, and so the same float forward pass, as
    :func:`from_nir` gives without ``keep_dynamics``) plus the :class:`NeuronDynamics` of
    every spiking node, in chain order: ``dynamics[i]`` drives the ``i``-th Dense/Conv2d
    (the ``i``-th stage of :func:`~neurocore.sw.convert.quantize.lower`). ``dt_source`` says
    where ``dt`` came from: ``"argument"``, ``"graph metadata"`` or ``"snnTorch default"``."""

    dynamics: list = dataclasses.field(default_factory=list)
    dt: float = SNNTORCH_DT
    dt_source: str = "snnTorch default"
    reset: str = "zero"


def _per_unit(name: str, what: str, values, shape: tuple) -> np.ndarray:
    """A node parameter as one float per unit of a layer of ``shape`` (row-major ``(C, H, W)``):
    a scalar, one value per unit, or (for an image) one per channel."""
    v = np.asarray(values, np.float64).reshape(-1)
    n = int(np.prod(shape))
    if v.size == 1:
        return np.full(n, v[0])
    if v.size == n:
        return v.copy()
    if len(shape) == 3 and v.size == shape[0]:
        return np.repeat(v, shape[1] * shape[2])
    raise ValueError(f"NIR node {name!r}: {v.size} values of {what} for a layer of shape {shape}")


def _node_dynamics(name: str, node, kind: str, shape: tuple, dt: float, reset: str,
                   membrane_bits: int) -> NeuronDynamics:
    """The :class:`NeuronDynamics` of the IF/LIF ``node`` after a layer of output ``shape``."""
    v_th = _per_unit(name, "v_threshold", node.v_threshold, shape)
    v_reset = _per_unit(name, "v_reset", 0.0 if node.v_reset is None else node.v_reset, shape)
    gap = v_th - v_reset
    if reset == "subtract" and (v_reset != 0).any():
        raise ValueError(f"NIR node {name!r} ({kind}): reset by subtraction needs v_reset = 0")
    n = gap.size
    if kind == "IF":
        return NeuronDynamics(name, kind, tau=np.full(n, np.inf), leak_shift=np.zeros(n, np.int64),
                              input_gain=dt * gap, threshold=gap, drive=np.zeros(n), reset=reset, dt=dt)
    tau = _per_unit(name, "tau", node.tau, shape)
    v_leak = _per_unit(name, "v_leak", node.v_leak, shape)
    shifts = np.zeros(n, np.int64)
    for value in np.unique(tau):
        try:
            k, _ = leak_shift_for_tau(value, dt, membrane_bits)
        except ValueError as exc:
            raise ValueError(f"NIR node {name!r} (LIF): {exc}") from None
        shifts[tau == value] = k
    rate = dt / tau
    return NeuronDynamics(name, kind, tau=tau, leak_shift=shifts, input_gain=rate * gap, threshold=gap,
                          drive=rate * (v_leak - v_reset), reset=reset, dt=dt)


def _resolve_dt(graph, dt) -> tuple[float, str]:
    if dt is not None:
        value, source = dt, "argument"
    elif isinstance(graph.metadata, dict) and graph.metadata.get("dt") is not None:
        value, source = graph.metadata["dt"], "graph metadata"
    else:
        value, source = SNNTORCH_DT, "snnTorch default"
    try:
        value = float(np.asarray(value, np.float64).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"dt ({source}) must be a positive time step in seconds, got {value!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"dt ({source}) must be a positive finite time step in seconds, got {value:g}")
    return value, source


def from_nir(graph, input_shape=None, *, keep_dynamics: bool = False, dt: float | None = None,
             reset: str = "zero", membrane_bits: int = _DEFAULT_MEMBRANE_BITS) -> Graph:
    """A chain-shaped ``nir.NIRGraph`` as a :class:`Graph` (a :class:`DynamicGraph` with
    ``keep_dynamics``).

    The graph is linearised first (one ``Input``, one ``Output``, every node with at most
    one predecessor and one successor, all nodes on the path; otherwise ``ValueError``).
    Node mapping:

    * ``Affine(weight, bias)`` -> ``Dense``; ``Linear(weight)`` -> ``Dense`` with zero bias.
    * ``Conv2d`` -> ``Conv2d`` (groups 1, dilation 1; padding int / pair / ``'valid'`` /
      ``'same'`` with an odd kernel).
    * ``SumPool2d`` / ``AvgPool2d`` (no padding) -> ``SumPool2d`` / ``AvgPool2d``.
    * ``Flatten`` -> ``Flatten`` (everything but the batch is flattened, whatever
      ``start_dim``/``end_dim`` say).
    * ``IF(r, v_threshold, v_reset)`` and ``LIF(tau, r, v_leak, v_threshold, v_reset)`` are
      the spiking nonlinearity: an IF neuron driven by a constant current ``I`` fires at
      the rate ``max(r I, 0) / (v_threshold - v_reset)`` spikes per unit time, so the node
      becomes a ``ReLU`` and the per-neuron factor ``r / (v_threshold - v_reset)`` is folded
      into the rows (Dense) or channels (Conv2d) of the preceding weighted layer. The
      converted network re-derives its own thresholds by data-based normalisation, so
      only this ratio matters. The LIF leak (``tau``) is dropped -- the core neurons are
      non-leaky IF neurons, exact for the rate code -- and ``v_leak`` must be 0. The NIR
      reset to ``v_reset`` becomes reset by subtraction.
    * ``Input`` gives the input shape (``(n,)``, ``(H, W)`` -> ``(1, H, W)``, or
      ``(C, H, W)``) unless ``input_shape`` is given; ``Output`` ends the chain.

    Anything else (e.g. ``CubaLIF``, ``LI``, ``Delay``, ``Scale``, nested graphs) raises
    ``ValueError`` naming the node and the supported types.

    **keep_dynamics** (``neurocore convert --nir FILE --keep-dynamics``): the network runs
    with its own dynamics instead of being re-normalised as a rate network. The layers are
    the same, and every spiking node also gives a :class:`NeuronDynamics`: the NIR LIF
    ``tau dv/dt = (v_leak - v) + r I`` as one forward-Euler step of ``dt`` per core step,

        v[t+1] = (1 - dt/tau) v[t] + (dt/tau) (v_leak + r I[t])

    (snnTorch's ``Leaky`` ``U[t+1] = beta U[t] + I[t+1]`` exports as ``tau = dt / (1 - beta)``,
    ``r = tau / dt``: exactly this step), an IF ``v[t+1] = v[t] + r dt I[t]``. The decay
    ``1 - dt/tau`` becomes the nearest leak the core can do, in log(tau)
    (:func:`leak_shift_for_tau`: decays ``1 - 2^-k``, ``k = 1 .. membrane_bits - 1``); ``r``,
    ``v_threshold``, ``v_reset`` and ``v_leak`` are kept (the membrane is shifted by
    ``v_reset``, so ``v_leak - v_reset`` becomes a constant drive, the core's bias).
    ``reset`` is the reset semantics, which NIR files do not record: ``"zero"`` (NIR's: to
    ``v_reset``; the core's reset_mode 0, snnTorch's ``reset_mechanism="zero"``) or
    ``"subtract"`` (snnTorch's default ``reset_mechanism="subtract"``: ``v -= threshold``;
    the core's reset_mode 1; needs ``v_reset = 0``). ``dt`` (seconds) defaults to the
    graph's ``metadata["dt"]``, else to :data:`SNNTORCH_DT` (snnTorch's exporter uses a
    fixed ``1e-4`` and does not store it). Only chains of ``Affine`` / ``Linear`` /
    ``Conv2d`` layers each followed by one ``IF`` or ``LIF`` (``Flatten`` anywhere) are
    accepted: the core has no neuron-less layer and the output is decoded by spike
    count, so a pooling node, a spiking node without a weighted layer before it, or a last
    layer without a spiking node raises ``ValueError``; so does a ``tau`` outside the
    core's leak range (one line naming the node, its ``tau`` and the range).
    :func:`convert_dynamics` quantises the result.
    """
    import nir

    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(f"from_nir needs a nir.NIRGraph, got {type(graph).__name__}")
    if reset not in RESET_CHOICES:
        raise ValueError(f"reset must be one of {', '.join(RESET_CHOICES)}, got {reset!r}")
    supported = ", ".join(NIR_SUPPORTED)
    kinds = {nir.Input: "Input", nir.Output: "Output", nir.Affine: "Affine", nir.Linear: "Linear",
             nir.Conv2d: "Conv2d", nir.Flatten: "Flatten", nir.SumPool2d: "SumPool2d",
             nir.AvgPool2d: "AvgPool2d", nir.IF: "IF", nir.LIF: "LIF"}
    for name, node in graph.nodes.items():
        if type(node) not in kinds:
            raise ValueError(f"NIR node {name!r} has type {type(node).__name__}, which is not supported; "
                             f"supported node types: {supported}")
        if keep_dynamics and kinds[type(node)] not in _DYNAMICS_SUPPORTED:
            raise ValueError(f"NIR node {name!r} ({kinds[type(node)]}) is not supported with keep_dynamics "
                             f"(every core layer is a layer of spiking neurons); supported node types: "
                             f"{', '.join(_DYNAMICS_SUPPORTED)}")
    order = _linearise(graph)
    if keep_dynamics:
        dt, dt_source = _resolve_dt(graph, dt)

    if input_shape is None:
        input_shape = _shape_of(graph.nodes[order[0]].input_type)
        if input_shape is None:
            raise ValueError("the NIR Input node has no shape; pass input_shape=")
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) == 2:
        input_shape = (1,) + input_shape
    if len(input_shape) not in (1, 3):
        raise ValueError(f"NIR input shape {input_shape} is not (n,), (H, W) or (C, H, W)")

    layers: list = []
    dynamics: list[NeuronDynamics] = []
    undriven = None          # keep_dynamics: the weighted node still waiting for its spiking node
    shape = input_shape
    for name in order[1:-1]:
        node = graph.nodes[name]
        kind = kinds[type(node)]
        if kind in ("IF", "LIF"):
            if keep_dynamics and undriven is None:
                raise ValueError(f"NIR node {name!r} ({kind}) does not follow an Affine, Linear or Conv2d node: "
                                 "with keep_dynamics every spiking node drives the layer before it")
            _fold_scale(name, layers, _neuron_scale(name, node, kind, keep_dynamics=keep_dynamics), shape)
            if keep_dynamics:
                dynamics.append(_node_dynamics(name, node, kind, shape, dt, reset, membrane_bits))
                undriven = None
            layer = ReLU()
        elif kind in ("Affine", "Linear"):
            try:
                layer = Dense(np.asarray(node.weight, np.float64),
                              np.asarray(node.bias, np.float64) if kind == "Affine" else None)
            except ValueError as exc:
                raise ValueError(f"NIR node {name!r} ({kind}): {exc}") from None
        elif kind == "Conv2d":
            if node.groups != 1:
                raise ValueError(f"NIR node {name!r} (Conv2d): groups={node.groups} is not supported")
            from .graph import _pair
            if _pair(node.dilation, "dilation") != (1, 1):
                raise ValueError(f"NIR node {name!r} (Conv2d): dilation {node.dilation} is not supported")
            weight = np.asarray(node.weight, np.float64)
            padding = node.padding
            if isinstance(padding, str):
                kh, kw = weight.shape[2:]
                if padding == "same" and (kh % 2 == 0 or kw % 2 == 0):
                    raise ValueError(f"NIR node {name!r} (Conv2d): padding='same' needs an odd kernel")
                padding = (kh // 2, kw // 2) if padding == "same" else (0, 0)
            bias = None if node.bias is None else np.broadcast_to(
                np.asarray(node.bias, np.float64), (weight.shape[0],))
            try:
                layer = Conv2d(weight, bias, stride=node.stride, padding=padding)
            except ValueError as exc:
                raise ValueError(f"NIR node {name!r} (Conv2d): {exc}") from None
        elif kind in ("SumPool2d", "AvgPool2d"):
            from .graph import _pair
            if node.padding is not None and _pair(node.padding, "padding") != (0, 0):
                raise ValueError(f"NIR node {name!r} ({kind}): padding {node.padding} is not supported (only 0)")
            cls = SumPool2d if kind == "SumPool2d" else AvgPool2d
            layer = cls(node.kernel_size, node.stride)
        else:  # Flatten
            layer = Flatten()
        if keep_dynamics and kind in ("Affine", "Linear", "Conv2d"):
            if undriven is not None:
                raise ValueError(f"NIR node {name!r} ({kind}) follows {undriven!r} without an IF or LIF node "
                                 "between them: with keep_dynamics every weighted layer drives spiking neurons")
            undriven = name
        try:
            shape = layer.output_shape(shape)
        except ValueError as exc:
            raise ValueError(f"NIR node {name!r} ({kind}): {exc}") from None
        layers.append(layer)
    if not keep_dynamics:
        return Graph(input_shape, layers)
    if undriven is not None:
        raise ValueError(f"NIR node {undriven!r} is not followed by an IF or LIF node: with keep_dynamics the "
                         "output is decoded by spike count, so the chain must end in spiking neurons")
    if not dynamics:
        raise ValueError("the NIR graph has no IF or LIF node: nothing to keep the dynamics of")
    return DynamicGraph(input_shape, layers, dynamics=dynamics, dt=dt, dt_source=dt_source, reset=reset)


# -- NIR with its dynamics -> the core ----------------------------------------------------
def convert_dynamics(graph: DynamicGraph, *, weight_bits: int | None = None, config=None,
                     encoding: dict | None = None, n_classes: int | None = None, shared: bool = True):
    r"""Quantise a :class:`DynamicGraph` onto the core's LIF neurons, keeping its dynamics.

    No data-based normalisation: every stage ``l`` (a Dense or Conv2d and its spiking node,
    :func:`~neurocore.sw.convert.quantize.lower`) keeps the node's threshold, leak and reset.
    With ``W_l``, ``b_l`` the float stage (ratio folded) and the node's ``input_gain``
    ``g``, ``drive`` ``c`` and threshold ``v_th`` (:class:`NeuronDynamics`), the float step
    is ``v <- beta v + g (W_l s + b_l) + c`` and, with ``q = 2^(B-1) - 1``, one scale per
    stage

    .. math::  S_l = \min(q / \max|g W_l|,\ \theta_{max} / \max v_{th}),\quad
               w = \mathrm{round}(S_l g W_l),\quad \mathrm{bias} = \mathrm{round}(S_l (g b_l + c)),
               \quad \mathrm{threshold} = \mathrm{round}(S_l v_{th})

    (round half to even; when all units share one ``v_th`` the threshold is
    ``floor(S_l v_th)`` and ``S_l`` is set to ``threshold / v_th``, so the weight : threshold
    ratio has no common error, as in :func:`~neurocore.sw.convert.quantize.quantise`). The
    leak is the node's ``leak_shift``, the reset ``reset_mode`` 0 (``"zero"``) or 1
    (``"subtract"``), refractory 0. Scaling the membrane by ``S_l`` changes nothing else:
    the leak, the threshold test and both resets commute with it.

    What the core does differently from the float step (docs/core-spec.md, section 5):
    the decay is ``1 - 2^-leak_shift`` (the report gives its error), a floor (``v >> k``);
    a spike fires at ``v >= threshold`` (snnTorch: ``>``); reset by subtraction happens in
    the step of the spike and the remainder decays (snnTorch subtracts the threshold in
    the next step, undecayed); every population adds one step of latency (snnTorch's
    layers all act in the same step). ``LayerInfo.scale`` holds ``S_l`` (integer membrane
    units per unit of the node's potential). ``ValueError`` when a stage's weights all
    round to 0. Returns a :class:`~neurocore.sw.convert.quantize.Converted` whose
    ``percentile`` is ``nan`` (not used).
    """
    from ...hw.config import CoreConfig
    from ...hw.program import RESET_BY_SUBTRACTION, RESET_TO_ZERO, NeuronParams
    from ..network import INPUT, ConvProjection, Population, Projection, SnnNetwork
    from .quantize import Converted, LayerInfo, lower

    if not isinstance(graph, DynamicGraph):
        raise ValueError(f"convert_dynamics needs a DynamicGraph (from_nir(..., keep_dynamics=True)), got "
                         f"{type(graph).__name__}")
    config = config or CoreConfig()
    weight_bits = config.weight_bits if weight_bits is None else int(weight_bits)
    if not 2 <= weight_bits <= 16:
        raise ValueError(f"weight_bits must be in 2..16, got {weight_bits}")
    stages = lower(graph)
    if len(stages) != len(graph.dynamics) or any(s.kind not in ("dense", "conv") for s in stages):
        raise ValueError("convert_dynamics: every stage must be a Dense or Conv2d driving one spiking node")
    q = (1 << (weight_bits - 1)) - 1
    lo, hi = config.membrane_range
    populations, projections, infos = [], [], []
    source, last = INPUT, len(stages) - 1
    for i, (stage, dyn) in enumerate(zip(stages, graph.dynamics)):
        name = "output" if i == last else stage.name
        gain = dyn.input_gain
        w = stage.weight * gain[stage.post]
        m = float(np.abs(w).max()) if w.size else 0.0
        if not m > 0:
            raise ValueError(f"NIR node {dyn.node!r}: the layer driving it has no non-zero weight")
        scale = min(q / m, config.theta_max / float(dyn.threshold.max()))
        if np.all(dyn.threshold == dyn.threshold[0]):
            threshold = np.full(stage.n_out, max(1, int(np.floor(scale * dyn.threshold[0]))), np.int64)
            scale = float(threshold[0] / dyn.threshold[0])
        else:
            threshold = np.maximum(1, np.rint(scale * dyn.threshold)).astype(np.int64)
        raw = np.rint(w * scale)
        clipped = int(((raw > q) | (raw < -q - 1)).sum())
        weight = np.clip(raw, -q - 1, q).astype(np.int64)
        bias = np.clip(np.rint((stage.bias * gain + dyn.drive) * scale), lo, hi).astype(np.int64)
        keep = weight != 0
        if not keep.any():
            raise ValueError(f"NIR node {dyn.node!r}: every weight rounds to 0 at threshold {int(threshold.max())} "
                             f"(the weights are below 1/{2 * int(threshold.max())} of the threshold)")
        params = NeuronParams.uniform(stage.n_out, threshold=1,
                                      reset_mode=RESET_BY_SUBTRACTION if dyn.reset == "subtract" else RESET_TO_ZERO)
        params.threshold = threshold
        params.leak_shift = dyn.leak_shift
        params.bias = bias
        populations.append(Population(name, params, output=(i == last)))
        per_channel = None
        if stage.kind == "conv":
            oc = stage.layer.weight.shape[0]
            g = gain.reshape(oc, -1)
            if np.all(g == g[:, :1]):
                per_channel = g[:, 0]
        if shared and per_channel is not None:
            kernel = np.clip(np.rint(stage.layer.weight * per_channel[:, None, None, None] * scale),
                             -q - 1, q).astype(np.int64)
            layer = stage.layer
            projections.append(ConvProjection(source, name, kernel, tuple(stage.in_shape), layer.stride,
                                              layer.padding))
        else:
            projections.append(Projection(source, name, stage.pre[keep], stage.post[keep], weight[keep]))
        infos.append(LayerInfo(name=name, kind=stage.kind, shape=tuple(stage.out_shape), neurons=stage.n_out,
                               synapses=int(keep.sum()), relu=True, scale=scale, threshold=int(threshold.max()),
                               max_weight=int(np.abs(weight).max()), bias_min=int(bias.min()),
                               bias_max=int(bias.max()), clipped=clipped, dropped=int((~keep).sum())))
        source = name
    network = SnnNetwork(
        n_inputs=graph.n_inputs, populations=populations, projections=projections,
        encoding=dict(encoding or {"kind": "current"}),
        decoding={"kind": "count", "n_classes": int(n_classes if n_classes is not None else stages[-1].n_out)})
    return Converted(network=network, graph=graph, layers=infos, weight_bits=weight_bits, percentile=math.nan)


def convert_nir_dataset(nir_path, dataset: str = "digits", steps: int = 16, weight_bits: int | None = None,
                        seed: int = 0, data_dir=None, *, keep_dynamics: bool = False, dt: float | None = None,
                        reset: str = "zero", encoder: str = "current", curve_steps=None, out=None,
                        overwrite: bool = False, progress: bool = False, **ratio_options) -> dict:
    """``neurocore convert --nir FILE [--keep-dynamics]``: import, convert, compile, evaluate.

    Without ``keep_dynamics`` this is exactly
    :func:`~neurocore.sw.convert.pipeline.convert_dataset` with ``nir_path`` (ratio only,
    data-based normalisation; ``ratio_options`` such as ``percentile`` go there; ``dt`` and
    ``reset`` are refused). With ``keep_dynamics`` the file is read (the checks and messages
    of :func:`~neurocore.sw.convert.pipeline.load_nir_graph`),
    converted by :func:`from_nir` ``(keep_dynamics=True, dt=, reset=)`` and
    :func:`convert_dynamics`, compiled onto the default core and evaluated on the golden
    model at ``steps`` and every ``T`` of ``curve_steps`` (default: the pipeline's curve;
    ``()`` skips it). The report has the keys of ``convert_dataset``'s (``ann_accuracy`` is
    the float graph's, the ReLU view of the same layers; ``rate_limit_accuracy``,
    ``percentile`` and ``output_percentile`` are None: no rate model, no normalisation),
    plus ``keep_dynamics``, ``dt``, ``dt_source``, ``reset`` and ``dynamics``: per layer the
    node, its requested ``tau`` and ``decay``, the chosen ``leak_shift``, the
    ``effective_decay``, the relative ``decay_error`` and ``tau_error``
    (:meth:`NeuronDynamics.report`) and the integer ``threshold`` and ``scale``.
    """
    from .pipeline import DEFAULT_CURVE, convert_dataset

    curve_steps = DEFAULT_CURVE if curve_steps is None else curve_steps
    if keep_dynamics and ratio_options:
        raise ValueError(f"{', '.join(sorted(ratio_options))}: not used with keep_dynamics (no normalisation)")
    return convert_dataset(dataset, steps=steps, weight_bits=weight_bits, seed=seed, data_dir=data_dir,
                           nir_path=nir_path, encoder=encoder, curve_steps=curve_steps, out=out,
                           overwrite=overwrite, progress=progress, keep_dynamics=keep_dynamics, dt=dt,
                           reset=reset, **ratio_options)