"""Frontends: trained ANNs from scikit-learn, PyTorch and NIR -> the float :class:`Graph` IR.

* :func:`from_sklearn` -- a fitted ``sklearn.neural_network.MLPClassifier`` with ReLU
  hidden units.
* :func:`from_torch` -- a ``torch.nn.Sequential`` of ``Linear``, ``Conv2d``, ``ReLU``,
  ``AvgPool2d`` and ``Flatten`` (``Dropout`` and ``Identity`` are no-ops at inference and
  are skipped). torch is imported lazily; it is an optional dependency
  (``pip install neurocore[torch]``).
* :func:`from_nir` -- a ``nir.NIRGraph`` that is a chain of ``Input``, ``Affine``,
  ``Linear``, ``Conv2d``, ``Flatten``, ``SumPool2d`` (and ``AvgPool2d``), ``IF``, ``LIF``
  and ``Output`` nodes.

Anything else raises ``ValueError`` naming the offending layer / node and listing what is
supported.
"""
from __future__ import annotations

import numpy as np

from .graph import AvgPool2d, Conv2d, Dense, Flatten, Graph, ReLU, SumPool2d

__all__ = ["from_sklearn", "from_torch", "from_nir", "TORCH_SUPPORTED", "NIR_SUPPORTED"]

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


def _neuron_scale(name: str, node, kind: str) -> np.ndarray:
    """``r / (v_threshold - v_reset)``: the factor mapping the node's input to its firing rate."""
    r = np.asarray(node.r, np.float64)
    v_th = np.asarray(node.v_threshold, np.float64)
    v_reset = np.zeros_like(v_th) if node.v_reset is None else np.asarray(node.v_reset, np.float64)
    gap = v_th - v_reset
    if (gap <= 0).any():
        raise ValueError(f"NIR node {name!r} ({kind}): v_threshold must exceed v_reset")
    if (r <= 0).any():
        raise ValueError(f"NIR node {name!r} ({kind}): r must be positive")
    if kind == "LIF":
        v_leak = np.asarray(node.v_leak, np.float64)
        if (v_leak != 0).any():
            raise ValueError(f"NIR node {name!r} (LIF): a non-zero v_leak is not supported (the converted "
                             "neurons are non-leaky integrate-and-fire neurons)")
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


def from_nir(graph, input_shape=None) -> Graph:
    """A chain-shaped ``nir.NIRGraph`` as a :class:`Graph`.

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
    """
    import nir

    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(f"from_nir needs a nir.NIRGraph, got {type(graph).__name__}")
    supported = ", ".join(NIR_SUPPORTED)
    kinds = {nir.Input: "Input", nir.Output: "Output", nir.Affine: "Affine", nir.Linear: "Linear",
             nir.Conv2d: "Conv2d", nir.Flatten: "Flatten", nir.SumPool2d: "SumPool2d",
             nir.AvgPool2d: "AvgPool2d", nir.IF: "IF", nir.LIF: "LIF"}
    for name, node in graph.nodes.items():
        if type(node) not in kinds:
            raise ValueError(f"NIR node {name!r} has type {type(node).__name__}, which is not supported; "
                             f"supported node types: {supported}")
    order = _linearise(graph)

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
    shape = input_shape
    for name in order[1:-1]:
        node = graph.nodes[name]
        kind = kinds[type(node)]
        if kind in ("IF", "LIF"):
            _fold_scale(name, layers, _neuron_scale(name, node, kind), shape)
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
        try:
            shape = layer.output_shape(shape)
        except ValueError as exc:
            raise ValueError(f"NIR node {name!r} ({kind}): {exc}") from None
        layers.append(layer)
    return Graph(input_shape, layers)
