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

__all__ = ["Population", "Projection", "SnnNetwork", "INPUT"]

INPUT = "input"
_INDEX_RANGE = (0, np.iinfo(np.int64).max)   # pre/post: checked against the population sizes


@dataclasses.dataclass
class Population:
    """``size`` LIF neurons sharing a role (a layer, an excitatory map, ...).

    ``params`` holds one value per neuron (use :meth:`NeuronParams.uniform`), except
    ``wta_group``: set ``wta=True`` to make the whole population one winner-take-all group
    (the compiler assigns the core's group id). ``output`` marks the population whose
    spikes go to the host; ``theta`` is the initial threshold adaptation (None: zeros).
    """

    name: str
    params: NeuronParams
    output: bool = False
    wta: bool = False
    theta: np.ndarray | None = None

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
        if self.theta is not None:
            if np.shape(self.theta) != (self.size,):
                raise ValueError(f"population {self.name}: theta has shape {np.shape(self.theta)}, "
                                 f"expected ({self.size},)")
            self.theta = int_array(self.theta, f"population {self.name}: theta", 0, WIDEST.theta_max)

    @property
    def size(self) -> int:
        return len(self.params)


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
