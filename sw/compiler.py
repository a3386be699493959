"""The compiler: place an :class:`~neurocore.sw.network.SnnNetwork` on one core.

Placement rule (deterministic, documented in :func:`compile_network`):

* **Neurons.** Populations get consecutive neuron index ranges in list order: the first
  population is neurons ``0 .. size-1``, the next starts where it ends, and so on.
* **Axons.** Host inputs are axons ``0 .. n_inputs-1``. Every population that is the source
  of at least one projection gets one internal axon per neuron, a consecutive range after
  the inputs, in population order; each of its neurons routes its spikes to its own axon
  (spec section 5, phase 3: a delay of exactly one step).
* **Synapses.** Projection ``i`` contributes one synapse per entry:
  ``axon = axon of (source, pre)``, ``target = neuron of (target, post)``, its weight and
  the projection's plastic flag. Synapse memory is axon-major (CSR) in rows of consecutive
  targets (docs/core-spec.md, section 3): each axon's row spans its lowest to its highest
  target neuron, in neuron order, and every neuron of that window it does not connect
  takes a zero-weight, fixed synapse (a gap, of no projection). Two entries connecting
  the same axon to the same neuron are rejected (merge their weights).
* **Convolutions.** A :class:`~neurocore.sw.network.ConvProjection` stores its kernel once,
  after the rows, as ``C_in*K_h*K_w*C_out`` kernel words, and gives every source pixel one
  segment per kernel row (spec section 3, shared rows); its target population is placed
  position-major, the ``C_out`` maps of one position consecutive (population neuron
  ``(c*H' + y)*W' + x`` is core neuron ``first + (y*W' + x)*C_out + c``; its axon stays
  ``a0 + (c*H' + y)*W' + x``). With ``shared=False``, or on a given core without a segment
  table, it is lowered to explicit synapses like any projection.
* **Outputs.** The neurons of the output populations, in population order then neuron
  order, are output columns ``0 .. n_out-1``.
* **WTA.** Populations with ``wta=True`` get the distinct group ids ``1, 2, ...`` in
  population order.
* **Theta and learning.** A population's ``theta`` becomes the program's initial theta;
  ``net.learning`` becomes the program's learning parameters.

Choice of the core (``config=None``): the default :class:`CoreConfig` if the network fits
it; otherwise the default with every capacity that overflows (neurons, axons, synapses,
WTA groups, segments) raised to the next power of two that holds the network (WTA groups: exactly
the number needed, at most 256). Widths and feature switches stay the defaults. A network
that does not fit even the largest capacity, or a given ``config`` that is too small,
raises ``ValueError`` naming every capacity that overflows and by how much.

Decoding (:meth:`CompiledNetwork.decode`) turns the output spike trains of a batch into
one predicted class per sample:

* ``{"kind": "count"}`` (the default): output column ``j`` is class ``j``; the class is the
  column with the most spikes; ties go to the column that spiked first, then to the lowest
  column (a silent sample therefore predicts column 0; :mod:`neurocore.sw.evaluate`
  reports the fraction of silent samples).
* ``{"kind": "vote", "labels": [...], "n_classes": k}``: output column ``j`` is labelled
  with class ``labels[j]`` (``-1``: unlabelled, ignored), as after STDP training; the class
  is the one whose labelled neurons have the highest *mean* spike count; ties go to the
  lowest class. Classes without a labelled neuron are never predicted.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from ..hw.config import CoreConfig
from ..hw.layouts import pointer_layout, segment_layout
from ..hw.widths import CONFIG_RANGES, PARAM_CLASSES_MAX
from ..hw.program import (NEURON_FIELDS, NO_ROUTE, WIDEST, CoreProgram, LearningParams, NeuronParams, ParamClasses, Segments, WtaBlocks,
                          accumulator_bits, accumulator_bounds, check_count, int_array, row_first, synapse_rows)
from .network import INPUT, ConvProjection, Population, Projection, SnnNetwork

__all__ = ["CompiledNetwork", "compile_network", "choose_config", "network_needs", "overflows", "decode_spikes", "decoding_classes",
           "freeze_network", "CAPACITIES"]

# Capacities the compiler checks, with the largest value a CoreConfig allows (hw/widths.py).
CAPACITIES = {name: CONFIG_RANGES[name][1] for name in ("neurons", "axons", "synapses", "wta_groups",
                                                          "segments", "wta_blocks")}
_WIDEST_ACCUMULATOR = CONFIG_RANGES["accumulator_bits"][1]
# A network of more neurons than the default core gets parameter classes when it has at most
# one class per CLASS_SAVING neurons (docs/core-spec.md, section 2).
CLASS_SAVING = 4
_CAPACITY_NAMES = {"neurons": "neurons", "axons": "axons", "synapses": "synapses",
                   "wta_groups": "WTA groups", "segments": "segments", "wta_blocks": "WTA block ranges"}


def decoding_classes(decoding: dict, n_outputs: int) -> int:
    """The classes a ``decoding`` can predict (``vote``: its ``n_classes``; ``count``: one
    per output column unless it says otherwise)."""
    if decoding.get("kind") == "vote":
        return int(decoding["n_classes"])
    return int(decoding.get("n_classes", n_outputs))


def decode_spikes(decoding: dict, spikes: np.ndarray) -> np.ndarray:
    """Predicted class per sample from output spikes ``bool[B, T, n_out]`` under a normalised
    ``decoding`` (the module docstring's rules). Returns ``int64[B]``."""
    counts = spikes.sum(axis=1).astype(np.int64)                    # [B, n_out]
    if decoding.get("kind") == "vote":
        labels = np.asarray(decoding["labels"], np.int64)
        k = int(decoding["n_classes"])
        members = (labels[None, :] == np.arange(k)[:, None]).astype(np.float64)   # [k, n_out]
        per_class = members.sum(axis=1)
        mean = (counts @ members.T) / np.maximum(per_class, 1)     # [B, k]
        mean[:, per_class == 0] = -np.inf
        return np.argmax(mean, axis=1).astype(np.int64)             # argmax: first (lowest) max
    steps = spikes.shape[1]
    fired = spikes.any(axis=1)
    first = np.where(fired, np.argmax(spikes, axis=1), steps)      # first spike step (T: never)
    best = counts.max(axis=1, keepdims=True)
    # among the columns with the most spikes, the earliest first spike, then the lowest column
    key = np.where(counts == best, first, steps + 1)
    return np.argmin(key, axis=1).astype(np.int64)


@dataclasses.dataclass
class CompiledNetwork:
    """A network placed on a core: the program plus the map from network to core indices.

    ``layers[name] = (first neuron, size)``; ``layer_axons[name] = (first axon, size)`` for
    populations whose spikes feed other populations; ``wta_groups[name]`` is the core's
    group id of a WTA population; ``output_layers`` are the output populations in output
    column order; ``projections`` describes each projection (source, target, plastic,
    synapses) and ``synapse_projection[s]`` is the projection of synapse address ``s``.
    """

    program: CoreProgram
    layers: dict[str, tuple[int, int]]
    input_axons: int
    encoding: dict
    decoding: dict
    output_layers: list[str]
    layer_axons: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    wta_groups: dict[str, int] = dataclasses.field(default_factory=dict)
    projections: list[dict] = dataclasses.field(default_factory=list)
    synapse_projection: np.ndarray | None = None

    # -- convenience -----------------------------------------------------------------------
    @property
    def config(self) -> CoreConfig:
        return self.program.config

    @property
    def n_outputs(self) -> int:
        return self.program.n_outputs

    @property
    def output_layer(self) -> str | None:
        """The output population (the first one if there are several; None if none)."""
        return self.output_layers[0] if self.output_layers else None

    @property
    def n_classes(self) -> int:
        """Number of classes :meth:`decode` can predict."""
        return decoding_classes(self.decoding, self.n_outputs)

    def layer_of(self, neuron: int) -> tuple[str, int]:
        """``(layer name, index inside the layer)`` of core neuron ``neuron``."""
        for name, (first, size) in self.layers.items():
            if first <= neuron < first + size:
                return name, neuron - first
        raise IndexError(f"neuron {neuron} belongs to no layer (the program has "
                         f"{self.program.n_neurons} neurons)")

    # -- decoding --------------------------------------------------------------------------
    def decode(self, spikes) -> np.ndarray:
        """Predicted class per sample from output spikes ``bool[B, T, n_out]`` (see module doc).

        A single sample ``[T, n_out]`` is treated as a batch of one. Returns ``int64[B]``.
        """
        spikes = np.asarray(spikes)
        if spikes.ndim == 2:
            spikes = spikes[None]
        if spikes.ndim != 3 or spikes.shape[2] != self.n_outputs:
            raise ValueError(f"decode: spikes must have shape [B, T, {self.n_outputs}], got {spikes.shape}")
        return decode_spikes(self.decoding, spikes)

    # -- reports ---------------------------------------------------------------------------
    def utilisation(self) -> dict:
        """Used vs capacity (and percent) of neurons, axons, synapse words, WTA groups and
        segments (shared rows)."""
        p, cfg = self.program, self.config
        used = {"neurons": p.n_neurons, "axons": p.n_axons, "synapses": p.n_synapses,
                "wta_groups": len(self.wta_groups), "segments": len(p.segments)}
        capacity = {"neurons": cfg.neurons, "axons": cfg.axons, "synapses": cfg.synapses,
                    "wta_groups": cfg.wta_groups if cfg.wta else 0, "segments": cfg.segments}
        return {name: {"used": int(used[name]), "capacity": int(capacity[name]),
                       "percent": round(100.0 * used[name] / capacity[name], 2) if capacity[name] else 0.0}
                for name in used}

    def summary(self) -> dict:
        """Network summary: totals, and neurons / axons / incoming synapses (uses: a shared
        kernel word counts once per use) per layer."""
        p = self.program
        _, target, word = p.uses()
        incoming = np.bincount(target, minlength=p.n_neurons)
        plastic_in = np.bincount(target[p.plastic[word]], minlength=p.n_neurons)
        layers = []
        for name, (first, size) in self.layers.items():
            axons = self.layer_axons.get(name)
            layers.append({
                "name": name, "first_neuron": first, "size": size,
                "neurons": [first, first + size - 1],
                "axons": None if axons is None else [axons[0], axons[0] + axons[1] - 1],
                "wta_group": self.wta_groups.get(name, 0),
                "block_wta": _block_of_layer(self.program.wta_blocks, first, size),
                "output": name in self.output_layers,
                "synapses_in": int(incoming[first:first + size].sum()),
                "plastic_synapses_in": int(plastic_in[first:first + size].sum()),
            })
        return {
            "inputs": self.input_axons,
            "neurons": p.n_neurons,
            "axons": p.n_axons,
            "synapses": p.n_synapses,
            "segments": len(p.segments),
            "plastic_synapses": int(p.plastic.sum()),
            "outputs": p.n_outputs,
            "wta_groups": len(self.wta_groups),
            "learning": bool(p.plastic.any()),
            "layers": layers,
            "projections": [dict(pr) for pr in self.projections],
        }

    # -- (de)serialisation and re-placement --------------------------------------------------
    def meta(self) -> dict:
        """Everything but the program, as plain JSON data (stored in image directories)."""
        return {
            "layers": {k: list(v) for k, v in self.layers.items()},
            "layer_axons": {k: list(v) for k, v in self.layer_axons.items()},
            "wta_groups": dict(self.wta_groups),
            "input_axons": self.input_axons,
            "output_layers": list(self.output_layers),
            "encoding": self.encoding,
            "decoding": self.decoding,
            "projections": [dict(pr) for pr in self.projections],
        }

    def check_synapse_projection(self) -> None:
        """``synapse_projection`` (when given) must agree with the program and ``projections``.

        One entry per synapse address; each a projection index ``0 .. len(projections)-1`` or
        -1 for a gap, and a gap is a zero-weight, fixed synapse; projection ``i`` owns as many
        synapses as its ``synapses`` field says. Anything else would lose synapses silently
        when the network is rebuilt (:meth:`to_network`, ``neurocore compile``).
        """
        if self.synapse_projection is None:
            return
        p, k = self.program, len(self.projections)
        ids = int_array(self.synapse_projection, "synapse_projection", -1, k - 1)
        if len(ids) != p.n_synapses:
            raise ValueError(f"synapse_projection has {len(ids)} entries, the program has {p.n_synapses} "
                             "synapses")
        gap = ids < 0
        bad = np.flatnonzero(gap & ((p.weight != 0) | p.plastic))
        if bad.size:
            s = int(bad[0])
            raise ValueError(f"synapse_projection[{s}] = -1 marks a gap (zero weight, fixed), but synapse {s} "
                             f"has weight {int(p.weight[s])}{' and is plastic' if p.plastic[s] else ''}")
        counts = np.bincount(ids[~gap], minlength=k)
        for i, pr in enumerate(self.projections):
            if "synapses" in pr and int(pr["synapses"]) != counts[i]:
                raise ValueError(f"projection {i} ({pr.get('source')}->{pr.get('target')}) has "
                                 f"{int(pr['synapses'])} synapses but synapse_projection gives it {int(counts[i])}")
        self.synapse_projection = ids

    @classmethod
    def from_meta(cls, program: CoreProgram, meta: dict,
                  synapse_projection: np.ndarray | None = None) -> "CompiledNetwork":
        """Inverse of :meth:`meta`: the types, and ``synapse_projection`` against the program
        (:meth:`check_synapse_projection`)."""
        def span(name, key, value):          # (first, size): two integers, nothing truncated
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise ValueError(f"{name}['{key}'] must be [first, size], got {value!r}")
            return (check_count(value[0], f"{name}['{key}'] first"),
                    check_count(value[1], f"{name}['{key}'] size"))

        try:
            compiled = cls(program=program,
                           # in neuron order: stored JSON keeps its keys sorted by name
                           layers=dict(sorted(((str(k), span("layers", k, v)) for k, v in meta["layers"].items()),
                                              key=lambda item: item[1][0])),
                           input_axons=check_count(meta["input_axons"], "input_axons"),
                           encoding=dict(meta["encoding"]), decoding=dict(meta["decoding"]),
                           output_layers=[str(x) for x in meta["output_layers"]],
                           layer_axons={str(k): span("layer_axons", k, v) for k, v in meta["layer_axons"].items()},
                           wta_groups={str(k): check_count(v, f"wta_groups['{k}']")
                                       for k, v in meta["wta_groups"].items()},
                           projections=[dict(p) for p in meta["projections"]],
                           synapse_projection=synapse_projection)
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
            raise ValueError(f"network metadata is incomplete or malformed "
                             f"({type(exc).__name__}: {exc})") from None
        try:
            compiled.check_synapse_projection()
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"network metadata does not match the program: {exc}") from None
        return compiled

    def to_network(self) -> SnnNetwork:
        """The :class:`SnnNetwork` this was compiled from (up to projection splitting).

        Compiling the result onto the same config gives identical program arrays; onto
        another config it re-places the network (``neurocore compile``).
        """
        p = self.program
        if p.shared:
            return self._shared_to_network()
        populations = self._populations({})
        # axon -> (source, pre)
        source_of = np.full(p.n_axons, -1, np.int64)
        pre_of = np.full(p.n_axons, -1, np.int64)
        names = [INPUT] + list(self.layers)
        source_of[:self.input_axons] = 0
        pre_of[:self.input_axons] = np.arange(self.input_axons)
        for name, (first, size) in self.layer_axons.items():
            source_of[first:first + size] = names.index(name)
            pre_of[first:first + size] = np.arange(size)
        target_layer = np.full(p.n_neurons, -1, np.int64)
        post_of = np.zeros(p.n_neurons, np.int64)
        for i, (name, (first, size)) in enumerate(self.layers.items()):
            target_layer[first:first + size] = i + 1
            post_of[first:first + size] = np.arange(size)
        axon = p.synapse_axon()
        if (source_of[axon] < 0).any():
            s = int(np.flatnonzero(source_of[axon] < 0)[0])
            raise ValueError(f"synapse {s} leaves axon {int(axon[s])}, which is neither a host input "
                             "nor a layer's axon")
        if (target_layer[p.target] < 0).any():
            s = int(np.flatnonzero(target_layer[p.target] < 0)[0])
            raise ValueError(f"synapse {s} targets neuron {int(p.target[s])}, which belongs to no layer")
        self.check_synapse_projection()
        if self.synapse_projection is not None:
            groups = [(np.flatnonzero(self.synapse_projection == i), pr)
                      for i, pr in enumerate(self.projections)]
        else:
            # no per-synapse projection ids: one projection per (source, target, plastic)
            key = (source_of[axon] * (len(names) + 1) + target_layer[p.target]) * 2 + p.plastic
            groups = [(np.flatnonzero(key == k), None) for k in np.unique(key)]
        projections = []
        for idx, pr in groups:
            if pr is None:
                if not len(idx):
                    continue
                src, tgt = names[source_of[axon[idx[0]]]], names[target_layer[p.target[idx[0]]]]
                plastic = bool(p.plastic[idx[0]])
            else:
                src, tgt, plastic = pr["source"], pr["target"], bool(pr["plastic"])
            if len(idx):
                got_src = {names[i] for i in np.unique(source_of[axon[idx]])}
                got_tgt = {names[i] for i in np.unique(target_layer[p.target[idx]])}
                if got_src != {src} or got_tgt != {tgt} or (p.plastic[idx] != plastic).any():
                    raise ValueError(f"synapses of projection {src}->{tgt} do not match the layer map")
            projections.append(Projection(src, tgt, pre_of[axon[idx]], post_of[p.target[idx]],
                                          p.weight[idx], plastic=plastic))
        return SnnNetwork(n_inputs=self.input_axons, populations=populations, projections=projections,
                          learning=p.learning, encoding=dict(self.encoding), decoding=dict(self.decoding))


    def _conv_order(self) -> dict[str, np.ndarray]:
        """``order[i]`` (core position of population neuron ``i``) of every conv target."""
        out = {}
        for pr in self.projections:
            if pr.get("conv"):
                geo = pr["conv"]
                dummy = ConvProjection(pr["source"], pr["target"], np.zeros(geo["kernel_shape"], np.int64),
                                       tuple(geo["in_shape"]), tuple(geo["stride"]), tuple(geo["padding"]),
                                       window=tuple(geo["window"]) if geo.get("window") else None)
                out[pr["target"]] = dummy.placement()
        return out

    def _populations(self, order: dict) -> list[Population]:
        """The populations, each neuron's parameters in population order (``order``: conv targets)."""
        p = self.program
        populations = []
        for name, (first, size) in self.layers.items():
            index = first + order.get(name, np.arange(size))
            params = {f: getattr(p.neurons, f)[index].copy() for f in NEURON_FIELDS}
            params["wta_group"] = np.zeros(size, np.int64)
            block = _block_of_layer(p.wta_blocks, first, size)
            populations.append(Population(name, NeuronParams(**params), output=name in self.output_layers,
                                          wta=name in self.wta_groups, theta=p.theta[index].copy(),
                                          block_wta=tuple(block) if block else None))
        return populations

    def _shared_to_network(self) -> SnnNetwork:
        """:meth:`to_network` of a program with shared rows: every use (row or segment) is mapped
        back through ``synapse_projection``; a conv projection's kernel is read from its words
        (``ConvProjection.kernel_from_words``), the other projections list their uses."""
        p = self.program
        if self.synapse_projection is None:
            raise ValueError("re-placing a program with shared rows needs its per-word projection map "
                             "(synapse_projection); compile the network again from its source")
        self.check_synapse_projection()
        order = self._conv_order()
        names = [INPUT] + list(self.layers)
        source_of = np.full(p.n_axons, -1, np.int64)
        pre_of = np.full(p.n_axons, -1, np.int64)
        source_of[:self.input_axons] = 0
        pre_of[:self.input_axons] = np.arange(self.input_axons)
        post_of = np.full(p.n_neurons, -1, np.int64)
        for name, (first, size) in self.layers.items():
            inverse = np.argsort(order.get(name, np.arange(size)))      # core position -> population index
            post_of[first:first + size] = inverse
            if name in self.layer_axons:
                a0, _ = self.layer_axons[name]
                source_of[a0:a0 + size] = names.index(name)
                pre_of[a0:a0 + size] = inverse
        axon, target, word = p.uses()
        proj_of = self.synapse_projection[word]
        projections = []
        for i, pr in enumerate(self.projections):
            if pr.get("conv"):
                geo = pr["conv"]
                words = np.flatnonzero(self.synapse_projection == i)
                kernel = ConvProjection.kernel_from_words(p.weight[words], geo["kernel_shape"])
                projections.append(ConvProjection(pr["source"], pr["target"], kernel, tuple(geo["in_shape"]),
                                                  tuple(geo["stride"]), tuple(geo["padding"]), plastic=pr["plastic"],
                                                  window=tuple(geo["window"]) if geo.get("window") else None))
                continue
            mine = proj_of == i
            if (source_of[axon[mine]] != names.index(pr["source"])).any():
                raise ValueError(f"synapses of projection {pr['source']}->{pr['target']} do not match the layer map")
            projections.append(Projection(pr["source"], pr["target"], pre_of[axon[mine]], post_of[target[mine]],
                                          p.weight[word[mine]], plastic=bool(pr["plastic"])))
        return SnnNetwork(n_inputs=self.input_axons, populations=self._populations(order), projections=projections,
                          learning=p.learning, encoding=dict(self.encoding), decoding=dict(self.decoding))


def _block_of_layer(blocks: WtaBlocks, first: int, size: int) -> list[int] | None:
    """``[block size, k]`` of the WTA block range that covers exactly a layer, else None."""
    for r in range(len(blocks)):
        if blocks.first[r] == first and blocks.size[r] * blocks.count[r] == size:
            return [int(blocks.size[r]), int(blocks.k[r])]
    return None


def freeze_network(net: SnnNetwork) -> SnnNetwork:
    """A copy of ``net`` for inference-only cores, with the same behaviour when learning is off.

    Every projection becomes non-plastic, each neuron's theta is folded into its threshold
    (``threshold + theta``: the spec compares ``v2`` with exactly this sum and, with learning
    off, theta never changes) and ``theta_inc`` / ``theta_decay_shift`` become 0. The result
    needs neither ``learning`` nor ``adaptive_threshold``; the learning parameters are reset
    to the defaults (nothing is plastic). A folded threshold beyond the ``V-1``-bit
    threshold range is rejected by :func:`compile_network`, naming the layer and neuron.
    """
    populations = []
    for pop in net.populations:
        params = {f: getattr(pop.params, f).copy() for f in NEURON_FIELDS}
        if pop.theta is not None:
            params["threshold"] = params["threshold"] + pop.theta
        params["theta_inc"][:] = 0
        params["theta_decay_shift"][:] = 0
        try:
            frozen = NeuronParams(**params)
        except ValueError as exc:        # a folded threshold beyond what any core holds
            raise ValueError(f"layer '{pop.name}' (threshold + theta folded): {exc}") from None
        populations.append(Population(pop.name, frozen, output=pop.output, wta=pop.wta, block_wta=pop.block_wta))
    projections = [pr.frozen() if isinstance(pr, ConvProjection)
                   else Projection(pr.source, pr.target, pr.pre.copy(), pr.post.copy(), pr.weight.copy(),
                                   plastic=False) for pr in net.projections]
    return SnnNetwork(n_inputs=net.n_inputs, populations=populations, projections=projections,
                      learning=LearningParams(), encoding=dict(net.encoding), decoding=dict(net.decoding))


# -- compilation ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Placement:
    """Where a network goes on a core (the rule of the module docstring)."""
    layers: dict            # population -> (first neuron, size)
    layer_axons: dict       # source population -> (first axon, size)
    order: dict             # population -> core offset of each of its neurons (position-major conv maps)
    n_neurons: int
    n_axons: int
    rows: tuple             # synapse_rows(): (ptr, target, source) of the listed synapses
    axon: np.ndarray        # listed synapses, projection order then entry order
    target: np.ndarray
    weight: np.ndarray
    plastic: np.ndarray
    projection: np.ndarray  # projection index of every listed synapse
    kernel: tuple           # shared rows: (weight, plastic, projection) of every kernel word
    segments: tuple         # shared rows: (axon, word, count, first) per segment, by axon
    segment_table: Segments  # the same as the core stores them: shared lists with offsets (word-relative bases)


def _place(net: SnnNetwork, shared: bool = True) -> _Placement:
    """Neuron ranges, axon ranges, synapse rows and (``shared``) the kernel words and
    segments of the conv projections of ``net`` (raises on a doubled pair)."""
    layers, first = {}, 0
    for pop in net.populations:
        layers[pop.name] = (first, pop.size)
        first += pop.size
    order = {pop.name: np.arange(pop.size, dtype=np.int64) for pop in net.populations}
    for pr in net.projections:
        if isinstance(pr, ConvProjection):
            placed = pr.placement()
            if pr.target in order and not np.array_equal(order[pr.target], np.arange(len(placed))) \
                    and not np.array_equal(order[pr.target], placed):
                raise ValueError(f"population {pr.target} is the target of conv projections of different "
                                 "output shapes; it can be placed for one of them only")
            order[pr.target] = placed
    sources = {pr.source for pr in net.projections}
    layer_axons, a = {}, net.n_inputs
    for pop in net.populations:
        if pop.name in sources:
            layer_axons[pop.name] = (a, pop.size)
            a += pop.size
    n_axons = max(1, a)                             # a program has at least one axon
    too_big = [f"{n} {_CAPACITY_NAMES[name]} but the largest core has {CAPACITIES[name]} (overflow by "
               f"{n - CAPACITIES[name]})" for name, n in (("neurons", first), ("axons", n_axons))
               if n > CAPACITIES[name]]
    if too_big:                     # before any table is built with indices no core has
        raise ValueError("network does not fit any core: it needs " + "; ".join(too_big))
    axon_base = {INPUT: 0} | {name: a0 for name, (a0, _) in layer_axons.items()}

    def cat(parts, dtype=np.int64):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    def neuron(name, index):
        return layers[name][0] + order[name][index]

    def source_axon(name, index):
        """A layer's axons follow its neurons' order (neuron ``f + k`` drives axon ``a + k``:
        one route offset per layer, docs/core-spec.md section 2); host inputs are in order."""
        return axon_base[name] + (index if name == INPUT else order[name][index])

    explicit = [(i, pr) for i, pr in enumerate(net.projections) if not (shared and isinstance(pr, ConvProjection))]
    axon = cat([source_axon(pr.source, pr.pre) for _, pr in explicit])
    target = cat([neuron(pr.target, pr.post) for _, pr in explicit])
    weight = cat([pr.weight for _, pr in explicit])
    plastic = cat([np.full(len(pr.pre), pr.plastic) for _, pr in explicit], bool)
    proj = cat([np.full(len(pr.pre), i) for i, pr in explicit])
    try:
        rows = synapse_rows(axon, target, n_axons)
    except ValueError as exc:
        raise ValueError(_layer_message(f"{exc} (projections "
                                        + _pair_projections(net, axon, target, proj) + ")", layers)) from None
    words, seg = [], []
    n_words = 0
    for i, pr in enumerate(net.projections):
        if shared and isinstance(pr, ConvProjection):
            kernel = pr.kernel_words()
            pre, word, count, seg_first = pr.segments()
            words.append((kernel, np.full(len(kernel), pr.plastic), np.full(len(kernel), i)))
            seg.append((source_axon(pr.source, pre), n_words + word, count, layers[pr.target][0] + seg_first))
            n_words += len(kernel)
    kernel = tuple(cat([w[k] for w in words], bool if k == 1 else np.int64) for k in range(3))
    segments = tuple(cat([g[k] for g in seg]) for k in range(4))
    by_axon = np.argsort(segments[0], kind="stable")
    segments = tuple(v[by_axon] for v in segments)
    # the core's table: each axon's list relative to its lowest target, equal lists once (spec section 3)
    table = Segments.csr(np.concatenate([[0], np.cumsum(np.bincount(segments[0], minlength=n_axons))]),
                         base=segments[1], count=segments[2], first=segments[3]).shared(WIDEST.neuron_index_bits)
    return _Placement(layers, layer_axons, order, first, n_axons, rows, axon, target, weight, plastic, proj,
                      kernel, segments, table)


def _pair_projections(net: SnnNetwork, axon, target, proj) -> str:
    """The projections that connect the first doubled (axon, neuron) pair."""
    key = axon * (int(target.max(initial=0)) + 1) + target
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    both = np.flatnonzero(counts[inverse] > 1)
    first = both[key[both] == key[both[0]]]
    return " and ".join(f"{net.projections[i].source}->{net.projections[i].target}"
                        for i in sorted(set(proj[first].tolist())))


def network_needs(net: SnnNetwork, *, shared: bool = True) -> dict[str, int]:
    """Capacities the network needs: neurons, axons, synapse words, WTA groups, segments.

    Synapse words count the rows (spec section 3): per axon, the window from its lowest to
    its highest target neuron, gaps included; with ``shared`` (the default) a conv
    projection adds its kernel once and one segment per source pixel and kernel row,
    without it its synapses are listed in rows like any projection.
    """
    return _needs(net, _place(net, shared))


def overflows(net: SnnNetwork, config: CoreConfig) -> list[str]:
    """What ``net`` needs beyond ``config``, one phrase per capacity ("300 neurons but the
    core has 256 (overflow by 44)"); empty when it fits. Shared rows where the core has a
    segment table, as :func:`compile_network` places them."""
    return _overflows(_needs(net, _place(net, config.segments > 0), config.rows), config)


def _needs(net: SnnNetwork, placed: _Placement, rows: bool = True) -> dict[str, int]:
    return {
        "neurons": placed.n_neurons,
        "axons": placed.n_axons,
        "synapses": int(placed.rows[0][-1]) + len(placed.kernel[0]),
        "wta_groups": sum(1 for p in net.populations if p.wta),
        "segments": len(_segment_table(placed, rows)),
        "wta_blocks": sum(1 for p in net.populations if p.block_wta is not None),
    }


def _segment_table(placed: _Placement, rows: bool = True) -> Segments:
    """The core's segment table, word bases absolute (the kernel words follow the rows); for a
    core without rows (``rows`` false) every row is its axon's first list entry (spec
    section 3, :meth:`Segments.with_rows`)."""
    ptr, target, source = placed.rows
    table = dataclasses.replace(placed.segment_table, base=len(source) + placed.segment_table.base)
    if rows:
        return table
    return table.with_rows(ptr, row_first(ptr, target), WIDEST.neuron_index_bits)


def _pointer_bits(config: CoreConfig) -> int:
    """Bits of the POINTER and SEGMENT memories of ``config`` (what ``rows`` trades)."""
    return (config.axons * pointer_layout(config).size
            + (config.segments * segment_layout(config).size if config.segments else 0))


def _capacity(config: CoreConfig, name: str) -> int:
    if name in ("wta_groups", "wta_blocks") and not config.wta:
        return 0
    return getattr(config, name)


def _overflows(needs: dict[str, int], config: CoreConfig) -> list[str]:
    out = []
    for name, need in needs.items():
        cap = _capacity(config, name)
        if need > cap:
            if name in ("wta_groups", "wta_blocks") and not config.wta:
                out.append(f"{need} {_CAPACITY_NAMES[name]} but the core is configured without WTA (wta=False)")
            else:
                out.append(f"{need} {_CAPACITY_NAMES[name]} but the core has {cap} "
                           f"(overflow by {need - cap})")
    return out


def _uses(placed: _Placement) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, weight, plastic) of every use: the listed synapses, then the segment uses."""
    _, word, count, first = placed.segments
    j = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    seg_word = np.repeat(word, count) + j
    return (np.concatenate([placed.target, np.repeat(first, count) + j]),
            np.concatenate([placed.weight, placed.kernel[0][seg_word]]),
            np.concatenate([placed.plastic, placed.kernel[1][seg_word]]))


def _accumulator_bits(net: SnnNetwork, placed: _Placement) -> int:
    """Smallest accumulator width for which ``net`` meets the bound of spec section 3."""
    return accumulator_bits(*accumulator_bounds(placed.n_neurons, *_uses(placed), net.learning))


def _tight_config(net: SnnNetwork, placed: _Placement, needs: dict, acc_bits: int) -> CoreConfig:
    """The smallest core that runs ``net``: exact capacities (every memory as deep as the
    network needs), only the features it uses, parameter classes when they save words."""
    plastic = any(pr.plastic for pr in net.projections)
    adaptive = any((pop.params.theta_inc != 0).any() or (pop.theta is not None and (pop.theta != 0).any())
                   for pop in net.populations)
    wta = needs["wta_groups"] > 0 or needs["wta_blocks"] > 0
    default = CoreConfig()
    fields = dict(neurons=needs["neurons"], axons=needs["axons"], synapses=max(1, needs["synapses"]),
                  wta_groups=max(1, needs["wta_groups"]), segments=needs["segments"],
                  wta_blocks=needs["wta_blocks"],
                  learning=plastic, wta=wta, adaptive_threshold=adaptive,
                  accumulator_bits=max(acc_bits, default.weight_bits),
                  membrane_bits=max(default.membrane_bits, acc_bits))
    config = CoreConfig(**fields)
    if needs["segments"]:       # rows as one-entry lists when that stores fewer pointer bits
        rowless = dataclasses.replace(config, rows=False, segments=_needs(net, placed, rows=False)["segments"])
        if _pointer_bits(rowless) < _pointer_bits(config):
            config = rowless
    params, _, route, outputs, _ = _neuron_tables(net, placed, _wta_groups(net))
    classes = len(ParamClasses.build(params, route, outputs, config.axon_index_bits))
    if classes <= placed.n_neurons // CLASS_SAVING:
        config = dataclasses.replace(config, param_classes=classes)
    return config


def choose_config(net: SnnNetwork, *, shared: bool = True, tight: bool = False) -> CoreConfig:
    """The default config if ``net`` fits, else the default with what overflows raised.

    Neurons, axons and synapses are raised to the next power of two holding the network;
    WTA groups to exactly the number needed; ``accumulator_bits`` (and ``membrane_bits``
    with it, so the membrane holds what one step can add) to the width the accumulator
    bound needs (spec section 3). A network of more neurons than the default core whose
    neurons fall into at most one parameter class per ``CLASS_SAVING`` neurons (spec
    section 2: a conv layer has one class per map) gets ``param_classes``, the next power
    of two holding its classes. Raises ``ValueError`` if even the largest allowed capacity
    or width is too small.

    ``tight`` picks the smallest core instead (for an FPGA): every capacity exactly what the
    network needs, learning, WTA and the adaptive threshold only if it uses them, and
    parameter classes, exactly as many as it has, whenever they save words.
    """
    return _choose_config(net, _place(net, shared), tight)


def _choose_config(net: SnnNetwork, placed: _Placement, tight: bool = False) -> CoreConfig:
    default = CoreConfig()
    needs = _needs(net, placed)
    too_big = [f"{needs[n]} {_CAPACITY_NAMES[n]} but the largest core has {CAPACITIES[n]} "
               f"(overflow by {needs[n] - CAPACITIES[n]})" for n in needs if needs[n] > CAPACITIES[n]]
    acc_bits = _accumulator_bits(net, placed)
    if acc_bits > _WIDEST_ACCUMULATOR:
        too_big.append(f"a {acc_bits}-bit accumulator (the sum of a neuron's weights) but the widest "
                       f"is {_WIDEST_ACCUMULATOR} bits")
    if too_big:
        raise ValueError("network does not fit any core: it needs " + "; ".join(too_big))
    if tight:
        return _tight_config(net, placed, needs, acc_bits)
    raised = {}
    for name in ("neurons", "axons", "synapses"):
        if needs[name] > getattr(default, name):
            raised[name] = min(1 << (needs[name] - 1).bit_length(), CAPACITIES[name])
    if needs["wta_groups"] > default.wta_groups:
        raised["wta_groups"] = needs["wta_groups"]
    if needs["wta_blocks"] > default.wta_blocks:
        raised["wta_blocks"] = needs["wta_blocks"]
    if needs["segments"]:
        raised["segments"] = min(1 << (needs["segments"] - 1).bit_length(), CAPACITIES["segments"])
    if acc_bits > default.accumulator_bits:
        raised["accumulator_bits"] = acc_bits
        raised["membrane_bits"] = max(default.membrane_bits, acc_bits)
    config = dataclasses.replace(default, **raised) if raised else default
    if placed.n_neurons > default.neurons:
        # a large network whose parameters repeat (conv maps): a class table, not a word a neuron
        params, _, route, outputs, _ = _neuron_tables(net, placed, _wta_groups(net))
        classes = len(ParamClasses.build(params, route, outputs, config.axon_index_bits))
        if classes <= placed.n_neurons // CLASS_SAVING:
            config = dataclasses.replace(config, param_classes=min(1 << (classes - 1).bit_length(),
                                                                   PARAM_CLASSES_MAX))
    return config


def _layer_message(message: str, layers: dict[str, tuple[int, int]]) -> str:
    """Add the layer name after every neuron index a validation message names."""
    def repl(match: re.Match) -> str:
        n = int(match.group(1) or match.group(2))
        for name, (first, size) in layers.items():
            if first <= n < first + size:
                return f"{match.group(0)} (layer '{name}' neuron {n - first})"
        return match.group(0)

    return re.sub(r"(?:neurons\.\w+|theta|route)\[(\d+)\]|\bneuron (\d+)\b", repl, message)


def _plain(data: dict, what: str) -> dict:
    """``data`` as plain JSON values (numpy scalars and arrays become numbers and lists)."""
    import json

    def default(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a dict, got {type(data).__name__}")
    try:
        return json.loads(json.dumps(data, default=default))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must hold JSON data (it goes into the image manifest): {exc}") from None


def _normalise_decoding(decoding: dict, n_outputs: int) -> dict:
    decoding = _plain(decoding or {}, "decoding")
    kind = decoding.setdefault("kind", "count")
    if kind == "count":
        decoding.setdefault("n_classes", n_outputs)
        decoding["n_classes"] = check_count(decoding["n_classes"], "decoding: n_classes")
        if decoding["n_classes"] != n_outputs:
            raise ValueError(f"decoding 'count' needs one output neuron per class: n_classes = "
                             f"{decoding['n_classes']} but the network has {n_outputs} output neurons")
    elif kind == "vote":
        if "labels" not in decoding or "n_classes" not in decoding:
            raise ValueError("decoding 'vote' needs 'labels' (one class per output neuron, -1: none) "
                             "and 'n_classes'")
        labels = np.asarray(decoding["labels"])
        k = check_count(decoding["n_classes"], "decoding 'vote': n_classes")
        if labels.shape != (n_outputs,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"decoding 'vote': labels must be {n_outputs} integers (one per output "
                             f"neuron), got shape {labels.shape}")
        if k < 1 or ((labels < -1) | (labels >= k)).any():
            raise ValueError(f"decoding 'vote': labels must be in -1..{k - 1} (n_classes = {k})")
        decoding["labels"] = [int(v) for v in labels]
        decoding["n_classes"] = k
    else:
        raise ValueError(f"unknown decoding kind {kind!r} (known: 'count', 'vote')")
    return decoding


def _neuron_tables(net: SnnNetwork, placed: _Placement, wta_groups: dict) -> tuple:
    """Per core neuron: parameters, initial theta, route; the output neurons and layers."""
    layers, layer_axons, order = placed.layers, placed.layer_axons, placed.order
    n_neurons = placed.n_neurons
    params = {f: np.zeros(n_neurons, np.int64) for f in NEURON_FIELDS}
    for pop in net.populations:       # a population's neuron i is core neuron first + order[i]
        for f in NEURON_FIELDS:
            params[f][layers[pop.name][0] + order[pop.name]] = getattr(pop.params, f)
    theta = np.zeros(n_neurons, np.int64)
    route = np.full(n_neurons, NO_ROUTE, np.int64)
    outputs, output_layers = [], []
    for pop in net.populations:
        f0, size = layers[pop.name]
        if pop.wta:
            params["wta_group"][f0:f0 + size] = wta_groups[pop.name]
        if pop.theta is not None:
            theta[f0 + order[pop.name]] = pop.theta
        if pop.name in layer_axons:      # neuron f0 + k drives axon a0 + k (its axons follow its order)
            route[f0 + order[pop.name]] = layer_axons[pop.name][0] + order[pop.name]
        if pop.output:
            outputs.append(f0 + order[pop.name])
            output_layers.append(pop.name)
    outputs = np.concatenate(outputs) if outputs else np.zeros(0, np.int64)
    return params, theta, route, outputs, output_layers


def _wta_blocks(net: SnnNetwork, layers: dict) -> WtaBlocks:
    """One structural WTA block range per population with ``block_wta = (size, k)``: its
    neurons in core order, ``size`` at a time (docs/core-spec.md, section 5, phase 2)."""
    ranges = [(layers[p.name][0], p.block_wta[0], p.size // p.block_wta[0], p.block_wta[1])
              for p in net.populations if p.block_wta is not None]
    return WtaBlocks(*(np.array(c, np.int64).reshape(-1) for c in zip(*ranges))) if ranges else WtaBlocks.none()


def _wta_groups(net: SnnNetwork) -> dict[str, int]:
    """WTA group ids ``1, 2, ...`` of the WTA populations, in network order."""
    return {pop.name: g for g, pop in enumerate((p for p in net.populations if p.wta), start=1)}


def compile_network(net: SnnNetwork, config: CoreConfig | None = None, *,
                    shared: bool | None = None) -> CompiledNetwork:
    """Place ``net`` on a core (see the module docstring for the rule) and validate it.

    ``config=None`` picks the default core, or the default with raised capacities
    (:func:`choose_config`). Raises ``ValueError`` when the network does not fit ``config``
    (naming each overflowing capacity and by how much), uses a feature ``config`` leaves
    out, has a weight outside the core's range, or breaks the accumulator bound (naming the
    layer and neuron).
    """
    if not isinstance(net, SnnNetwork):
        raise ValueError(f"compile_network needs an SnnNetwork, got {type(net).__name__}")
    if config is not None and not isinstance(config, CoreConfig):
        raise ValueError(f"config must be a CoreConfig, got {type(config).__name__}")
    if shared is None:          # conv projections in shared rows where the core has a segment table
        shared = config is None or config.segments > 0
    placed = _place(net, shared)
    if config is None:
        config = _choose_config(net, placed)
    over = _overflows(_needs(net, placed, config.rows), config)
    if over:
        raise ValueError(f"network does not fit the core (config {config.hash()[:12]}): it needs "
                         + "; ".join(over))

    layers, layer_axons = placed.layers, placed.layer_axons
    n_neurons = placed.n_neurons
    wta_groups = _wta_groups(net)

    # features the config leaves out, named by layer / projection
    if not config.learning:
        for pr in net.projections:
            if pr.plastic and len(pr.pre):
                raise ValueError(f"projection {pr.source}->{pr.target} is plastic but the core is "
                                 "configured without learning (learning=False); freeze_network() "
                                 "(neurocore compile --freeze) makes the network inference-only")
    if not config.adaptive_threshold:
        for pop in net.populations:
            if (pop.params.theta_inc != 0).any() or (pop.theta is not None and (pop.theta != 0).any()):
                raise ValueError(f"layer '{pop.name}' uses an adaptive threshold (theta_inc or theta "
                                 "non-zero) but the core is configured without adaptive_threshold; "
                                 "freeze_network() (neurocore compile --freeze) folds theta into the "
                                 "thresholds")
    wlo, whi = config.weight_range
    lp = net.learning
    for pr in net.projections:
        if isinstance(pr, ConvProjection):
            kernel = pr.kernel.reshape(-1)
            for bad_w, limits, what in (((kernel < wlo) | (kernel > whi), f"{wlo}..{whi}",
                                         f"the {config.weight_bits}-bit weight range"),
                                        (((kernel < lp.w_min) | (kernel > lp.w_max)) if pr.plastic
                                         else np.zeros(len(kernel), bool), f"{lp.w_min}..{lp.w_max}",
                                         "the plastic range w_min..w_max")):
                if bad_w.any():
                    i = int(np.flatnonzero(bad_w)[0])
                    raise ValueError(f"conv projection {pr.source}->{pr.target}: kernel value {int(kernel[i])} "
                                     f"(flat index {i}) is outside {what} {limits}")
            continue
        if not len(pr.weight):
            continue
        bad = np.flatnonzero((pr.weight < wlo) | (pr.weight > whi))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"projection {pr.source}->{pr.target}: weight[{i}] = {int(pr.weight[i])} is "
                             f"outside the {config.weight_bits}-bit weight range {wlo}..{whi}"
                             + (f" ({bad.size} weights out of range)" if bad.size > 1 else ""))
        if pr.plastic:
            bad = np.flatnonzero((pr.weight < lp.w_min) | (pr.weight > lp.w_max))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"plastic projection {pr.source}->{pr.target}: weight[{i}] = "
                                 f"{int(pr.weight[i])} is outside the plastic range "
                                 f"w_min..w_max = {lp.w_min}..{lp.w_max}")

    params, theta, route, outputs, output_layers = _neuron_tables(net, placed, wta_groups)
    if n_neurons == 0:
        raise ValueError("network has no neurons")

    # synapses: rows of consecutive targets; gaps are zero-weight, fixed, of no projection (-1)
    # "synapses": the words a projection owns in the synapse memory (a shared conv: its kernel)
    projections = []
    for pr in net.projections:
        entry = {"source": pr.source, "target": pr.target, "plastic": bool(pr.plastic), "synapses": len(pr.pre)}
        if isinstance(pr, ConvProjection) and shared:
            entry.update(synapses=int(pr.kernel.size), conv={
                "kernel_shape": list(pr.kernel.shape), "in_shape": list(pr.in_shape),
                "stride": list(pr.stride), "padding": list(pr.padding), "connections": len(pr.pre)})
            if pr.window is not None:
                entry["conv"]["window"] = list(pr.window)
        projections.append(entry)
    ptr, row_target, source = placed.rows
    filled = source >= 0
    syn_weight = np.zeros(len(source), np.int64)
    syn_plastic = np.zeros(len(source), bool)
    syn_proj = np.full(len(source), -1, np.int64)
    syn_weight[filled] = placed.weight[source[filled]]
    syn_plastic[filled] = placed.plastic[source[filled]]
    syn_proj[filled] = placed.projection[source[filled]]
    # shared rows: the kernel words after the rows, the segments naming them
    kernel_weight, kernel_plastic, kernel_proj = placed.kernel
    segments = _segment_table(placed, config.rows)
    if not config.rows:         # every word a kernel word, every row a one-entry list
        ptr, row_target = np.zeros_like(ptr), np.zeros(0, np.int64)
    syn_weight = np.concatenate([syn_weight, kernel_weight])
    syn_plastic = np.concatenate([syn_plastic, kernel_plastic])
    syn_proj = np.concatenate([syn_proj, kernel_proj])

    # accumulator bound, named by layer (spec section 3), before the program's own validation
    upper, lower = accumulator_bounds(n_neurons, *_uses(placed), lp)
    lo, hi = config.accumulator_range
    for bound, ok, what in ((upper, upper <= hi, "sum of its positive weights"),
                            (lower, lower >= lo, "sum of its negative weights")):
        if not ok.all():
            bad = np.flatnonzero(~ok)
            n = int(bad[0])
            name, index = next((nm, n - f0) for nm, (f0, sz) in layers.items() if f0 <= n < f0 + sz)
            raise ValueError(
                f"accumulator overflow: layer '{name}' neuron {index} (core neuron {n}) can receive "
                f"{int(bound[n])} in one step ({what}, plastic synapses at their bound), beyond the "
                f"{config.accumulator_bits}-bit accumulator range {lo}..{hi}"
                + (f"; {bad.size} neurons affected" if bad.size > 1 else "")
                + "; lower the weights or use a wider accumulator_bits")
    try:
        program = CoreProgram(config=config, n_inputs=net.n_inputs, ptr=ptr, target=row_target,
                              weight=syn_weight, plastic=syn_plastic,
                              neurons=NeuronParams(**params), route=route, outputs=outputs,
                              learning=lp, theta=theta, segments=segments,
                              wta_blocks=_wta_blocks(net, layers))   # validated on construction
    except ValueError as exc:
        raise ValueError(_layer_message(str(exc), layers)) from None

    return CompiledNetwork(program=program, layers=layers, input_axons=net.n_inputs,
                           encoding=_plain(net.encoding, "encoding"),
                           decoding=_normalise_decoding(net.decoding, len(outputs)),
                           output_layers=output_layers, layer_axons=layer_axons, wta_groups=wta_groups,
                           projections=projections, synapse_projection=syn_proj)
