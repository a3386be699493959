"""A compiled program: everything one core needs to run one network, and the core's state.

The data layout and every range check follow docs/core-spec.md, sections 2-4 and 7.
Arrays are numpy ``int64`` (or ``bool``) so every engine can use them directly.

Every field is converted where it enters, on construction and on every later assignment
(:func:`int_array`, :func:`flag_array`, :func:`check_int`): 1-D arrays of an integer type,
integer scalars, each value inside the range its field can hold (weights and theta: the
program's config; indices and neuron parameters: the widest core, :data:`WIDEST`), checked
before the conversion, so nothing can wrap or be truncated in it. ``CoreProgram.validate()`` then checks
the program against its own config; a program is validated when it is built, and the
models validate it again at the start of every run (an array may have been changed in
place since).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .config import CoreConfig
from .widths import (AMPLITUDE_MAX, CONFIG_RANGES, LEARN_SHIFT_MAX, REFRACTORY_MAX, SHIFT_BITS,
                     TRACE_DECAY_MAX, WTA_K_MAX)

__all__ = ["NeuronParams", "LearningParams", "ParamClasses", "Segments", "WtaBlocks", "CoreProgram", "CoreState", "synapse_rows", "row_first",
           "accumulator_bounds", "accumulator_bits", "int_array", "flag_array", "check_int", "check_count"]

NEURON_FIELDS = ("threshold", "leak_shift", "reset_mode", "refractory", "bias",
                 "theta_inc", "theta_decay_shift", "wta_group")

RESET_TO_ZERO = 0
RESET_BY_SUBTRACTION = 1
NO_ROUTE = -1


# The largest core: every entry check uses its ranges (the config's own come in validate()).
WIDEST = CoreConfig(**{name: high for name, (_, high) in CONFIG_RANGES.items()})
_SHIFT_MAX = (1 << SHIFT_BITS) - 1


def int_array(values, name: str, low: int, high: int) -> np.ndarray:
    """``values`` as a new 1-D ``int64`` array, every element in ``low..high``.

    Bools count as 0/1 and an empty list as an empty array; anything else must be a 1-D
    array of an integer type (floats, strings, objects and 2-D arrays are refused). The
    range is checked before the conversion, so a ``uint64`` 2^64-1 is refused, not wrapped
    to -1.
    """
    array = np.asarray(values)
    if array.dtype == bool or (array.ndim == 1 and array.size == 0):
        array = array.astype(np.int64)   # bools; and empty lists, which numpy makes float64
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array, got shape {array.shape} dtype {array.dtype}")
    _check_range(array, name, low, high)
    return array.astype(np.int64)


def flag_array(values, name: str) -> np.ndarray:
    """``values`` as a new 1-D ``bool`` array: bools, or integers 0/1 (nothing else)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of flags (bool or 0/1), got shape {array.shape}")
    if array.dtype != bool:
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{name} must be a 1-D array of flags (bool or 0/1), got dtype {array.dtype}")
        bad = np.flatnonzero((array != 0) & (array != 1))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{name}[{i}] = {array[i]} is not a flag (0/1 or bool)")
    return array.astype(bool)


def check_int(value, name: str, low: int, high: int) -> int:
    """``value`` as an ``int``: a Python or numpy integer (not a bool; a 0-d integer array, as
    ``numpy.load`` gives, counts as its value) in ``low..high``."""
    value = _unwrap(value)
    _check_scalar(value, name, low, high)
    return int(value)


def _shown(value) -> str:
    """``repr(value)`` for a message, cut at 60 characters: values can come from untrusted
    files (a program.npz), and one line must stay one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(value):
    """A 0-d array's value (what ``numpy.load`` gives for a stored scalar); anything else as is."""
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


def check_count(value, name: str) -> int:
    """``value`` as an ``int``: a non-negative Python or numpy integer (not a bool)."""
    value = _unwrap(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {_shown(value)}")
    return int(value)


def _check_range(array: np.ndarray, name: str, low: int, high: int) -> None:
    """Raise ``ValueError`` naming the first element of ``array`` outside ``low..high``."""
    bad = np.flatnonzero((array < low) | (array > high))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}[{i}] = {int(array[i])} is outside {low}..{high}"
                         + (f" ({bad.size} values out of range)" if bad.size > 1 else ""))


def _check_scalar(value, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {_shown(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name} = {value} is outside {low}..{high}")


def accumulator_bounds(n_neurons: int, target, weight, plastic, learning: "LearningParams"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron, the largest and smallest sum one step can add to its accumulator (spec
    section 3): its positive and its negative weights, plastic ones at ``w_max`` / ``w_min``.

    The sums are formed in float64, exact here: at most 2^24 synapses of at most 2^15.
    """
    target, plastic = np.asarray(target, np.int64), np.asarray(plastic, bool)
    hi = np.where(plastic, learning.w_max, weight)
    lo = np.where(plastic, learning.w_min, weight)
    upper = np.bincount(target, weights=np.maximum(hi, 0), minlength=n_neurons)
    lower = np.bincount(target, weights=np.minimum(lo, 0), minlength=n_neurons)
    return upper.astype(np.int64), lower.astype(np.int64)


def accumulator_bits(upper, lower) -> int:
    """Smallest ``C`` with every ``upper <= 2^(C-1)-1`` and every ``lower >= -2^(C-1)``."""
    top = int(np.max(upper, initial=0))
    bottom = int(np.min(lower, initial=0))
    return max(top.bit_length(), max(0, -bottom - 1).bit_length()) + 1


def synapse_rows(axon: np.ndarray, target: np.ndarray, n_axons: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay a flat synapse list out as rows of consecutive targets (spec section 3).

    Returns ``(ptr, target, source)``: the CSR pointers, the target of every row synapse,
    and for every row synapse the index of the listed synapse it holds, or -1 for a gap
    (a neuron inside the row's window that the list does not connect). Raises
    ``ValueError`` when an axon is listed twice for one neuron.
    """
    order = np.lexsort((target, axon))
    axon, target = axon[order], target[order]
    twice = np.flatnonzero((np.diff(axon) == 0) & (np.diff(target) == 0))
    if twice.size:
        i = int(twice[0])
        raise ValueError(f"axon {int(axon[i])} is connected to neuron {int(target[i])} twice (synapses "
                         f"{int(order[i])} and {int(order[i + 1])}); a row reaches each neuron once: "
                         f"merge the weights")
    lo = np.full(n_axons, np.iinfo(np.int64).max, np.int64)
    hi = np.full(n_axons, -1, np.int64)
    np.minimum.at(lo, axon, target)
    np.maximum.at(hi, axon, target)
    counts = np.where(hi >= 0, hi - lo + 1, 0)
    ptr = np.zeros(n_axons + 1, np.int64)
    ptr[1:] = np.cumsum(counts)
    row_axon = np.repeat(np.arange(n_axons, dtype=np.int64), counts)
    row_target = lo[row_axon] + (np.arange(ptr[-1], dtype=np.int64) - ptr[:-1][row_axon])
    source = np.full(ptr[-1], -1, np.int64)
    source[ptr[:-1][axon] + target - lo[axon]] = order
    return ptr, row_target, source


# What a field of each parameter can hold in the widest core (docs/core-spec.md, section 2).
_NEURON_WIDEST = {
    "threshold": (0, WIDEST.theta_max), "leak_shift": (0, _SHIFT_MAX),
    "reset_mode": (RESET_TO_ZERO, RESET_BY_SUBTRACTION), "refractory": (0, REFRACTORY_MAX),
    "bias": WIDEST.membrane_range, "theta_inc": (0, WIDEST.theta_max),
    "theta_decay_shift": (0, _SHIFT_MAX), "wta_group": (0, WIDEST.wta_groups),
}


@dataclasses.dataclass
class NeuronParams:
    """Per-neuron parameters (docs/core-spec.md, section 2), one ``int64`` array each."""

    threshold: np.ndarray
    leak_shift: np.ndarray
    reset_mode: np.ndarray
    refractory: np.ndarray
    bias: np.ndarray
    theta_inc: np.ndarray
    theta_decay_shift: np.ndarray
    wta_group: np.ndarray

    def __setattr__(self, name, value):
        if name in _NEURON_WIDEST:
            value = int_array(value, f"neurons.{name}", *_NEURON_WIDEST[name])
        object.__setattr__(self, name, value)

    def __post_init__(self):
        self.check_lengths()

    def check_lengths(self) -> None:
        """Every field has one value per neuron (as many as ``threshold``)."""
        n = len(self.threshold)
        for name in NEURON_FIELDS:
            if len(getattr(self, name)) != n:
                raise ValueError(f"neurons.{name} has length {len(getattr(self, name))}, expected {n} "
                                 "(one value per neuron)")

    def __len__(self) -> int:
        return len(self.threshold)

    @classmethod
    def uniform(cls, n: int, *, threshold: int, leak_shift: int = 0, reset_mode: int = RESET_TO_ZERO,
                refractory: int = 0, bias: int = 0, theta_inc: int = 0, theta_decay_shift: int = 0,
                wta_group: int = 0) -> "NeuronParams":
        """``n`` neurons sharing one set of parameters."""
        values = dict(threshold=threshold, leak_shift=leak_shift, reset_mode=reset_mode,
                      refractory=refractory, bias=bias, theta_inc=theta_inc,
                      theta_decay_shift=theta_decay_shift, wta_group=wta_group)
        n = check_count(n, "NeuronParams.uniform: n")
        return cls(**{k: np.full(n, check_int(v, f"neurons.{k}", *_NEURON_WIDEST[k]), dtype=np.int64)
                      for k, v in values.items()})


# Learning parameters with a fixed range (section 4); the others' ranges depend on the config.
_LEARNING_FIXED = {
    "a_plus": (0, AMPLITUDE_MAX), "a_minus": (0, AMPLITUDE_MAX), "shift": (0, LEARN_SHIFT_MAX),
    "pre_decay_shift": (0, TRACE_DECAY_MAX), "post_decay_shift": (0, TRACE_DECAY_MAX),
}
_LEARNING_CONFIGURED = ("pre_jump", "post_jump", "w_min", "w_max")


@dataclasses.dataclass(frozen=True)
class ParamClasses:
    """The parameter classes of a program (docs/core-spec.md, section 2): the storage form
    of a core with ``param_classes > 0``.

    ``index[n]`` is neuron ``n``'s class; class ``c`` has the parameters ``params[name][c]``
    of :data:`NEURON_FIELDS`, ``route_valid[c]``, ``route_offset[c]`` and ``output[c]``.
    Neuron ``n`` of class ``c`` routes, when ``route_valid[c]``, to axon
    ``(n + route_offset[c]) mod 2^aib``; its key is its parameters, its output flag and
    ``(route[n] - n) mod 2^aib`` (none stays none, offset 0). Classes are numbered in the
    order of their first neuron.
    """

    index: np.ndarray
    params: dict
    route_valid: np.ndarray
    route_offset: np.ndarray
    output: np.ndarray

    def __len__(self) -> int:
        return len(self.route_valid)

    @classmethod
    def of(cls, program: "CoreProgram") -> "ParamClasses":
        return cls.build(program.neurons, program.route, program.outputs, program.config.axon_index_bits)

    @classmethod
    def build(cls, neurons, route, outputs, axon_index_bits: int) -> "ParamClasses":
        """The classes of neurons with parameters ``neurons`` (a :class:`NeuronParams` or a dict
        of its fields), ``route`` (``NO_ROUTE`` for none) and output neurons ``outputs``."""
        get = neurons.get if isinstance(neurons, dict) else lambda name: getattr(neurons, name)
        route = np.asarray(route, np.int64)
        n = len(route)
        modulus = 1 << axon_index_bits
        routed = route != NO_ROUTE
        offset = np.where(routed, (route - np.arange(n)) % modulus, 0)
        output = np.zeros(n, np.int64)
        output[np.asarray(outputs, np.int64)] = 1
        columns = [np.asarray(get(name), np.int64) for name in NEURON_FIELDS]
        keys = np.stack(columns + [routed.astype(np.int64), offset, output], axis=1)
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")            # classes by their first neuron
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        firsts = first[order]
        return cls(index=rank[inverse.reshape(-1)].astype(np.int64),
                   params={name: col[firsts] for name, col in zip(NEURON_FIELDS, columns)},
                   route_valid=routed[firsts].astype(np.int64), route_offset=offset[firsts],
                   output=output[firsts])


@dataclasses.dataclass(frozen=True)
class LearningParams:
    """Global STDP parameters (docs/core-spec.md, section 4)."""

    a_plus: int = 0
    a_minus: int = 0
    shift: int = 0
    pre_decay_shift: int = 0
    post_decay_shift: int = 0
    pre_jump: int = 0
    post_jump: int = 0
    w_min: int = 0
    w_max: int = 0
    soft_bound: bool = False

    def __post_init__(self):
        """The checks that need no config; values become plain ``int`` / ``bool``."""
        for name, (low, high) in _LEARNING_FIXED.items():
            object.__setattr__(self, name, check_int(getattr(self, name), f"learning.{name}", low, high))
        for name in _LEARNING_CONFIGURED:
            value = _unwrap(getattr(self, name))
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"learning.{name} must be an integer, got {_shown(value)}")
            object.__setattr__(self, name, int(value))
        soft_bound = _unwrap(self.soft_bound)
        if not isinstance(soft_bound, (bool, np.bool_)):
            raise ValueError(f"learning.soft_bound must be True or False, got {_shown(soft_bound)}")
        object.__setattr__(self, "soft_bound", bool(soft_bound))

    def validate(self, config: CoreConfig) -> None:
        """The ranges that depend on the config (the fixed ones hold since construction: the
        dataclass is frozen)."""
        wlo, whi = config.weight_range
        _check_scalar(self.pre_jump, "learning.pre_jump", 0, config.trace_max)
        _check_scalar(self.post_jump, "learning.post_jump", 0, config.trace_max)
        _check_scalar(self.w_min, "learning.w_min", wlo, whi)
        _check_scalar(self.w_max, "learning.w_max", self.w_min, whi)


class _IndexTable:
    """Base of :class:`Segments` and :class:`WtaBlocks`: every field a 1-D ``int64`` array,
    converted and range checked where it enters (``_RANGES()``, named ``<_NAME>.<field>``);
    the length is the number of entries (of the field ``_LENGTH``)."""

    _NAME = ""
    _LENGTH = ""

    @staticmethod
    def _RANGES() -> dict:
        return {}

    def __setattr__(self, name, value):
        ranges = self._RANGES()
        if name in ranges:
            value = int_array(value, f"{self._NAME}.{name}", *ranges[name])
        object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(getattr(self, self._LENGTH))


@dataclasses.dataclass
class Segments(_IndexTable):
    """Shared-row segments (docs/core-spec.md, section 3): a table of entries and, per axon,
    a list of them with an offset.

    Axon ``a``'s list is the entries ``start[a] .. start[a]+length[a]-1``; through entry
    ``k`` it drives the neurons ``t0 + j`` with the kernel words ``base[k] + j``, where
    ``t0 = (offset[a] + first[k]) mod 2^nib`` (``nib = neuron_index_bits``)::

        uses of a (after its row) = [(t0 + j, base[k] + j) for k in start[a] .. start[a]+length[a]-1
                                                          for j in 0 .. count[k]-1]

    Lists of several axons may name the same entries (shared lists). :meth:`csr` builds the
    form where every axon has entries of its own, CSR over the axons, offset 0.
    """

    start: np.ndarray
    length: np.ndarray
    offset: np.ndarray
    base: np.ndarray
    count: np.ndarray
    first: np.ndarray

    _NAME, _LENGTH = "segments", "base"

    @staticmethod
    def _RANGES() -> dict:
        return _SEGMENT_RANGES

    @classmethod
    def csr(cls, ptr, base, count, first) -> "Segments":
        """Axon ``a`` owns the entries ``ptr[a] .. ptr[a+1]-1`` (``ptr`` CSR: ``ptr[0] = 0``,
        non-decreasing), with offset 0."""
        ptr = int_array(ptr, "segments.ptr", 0, WIDEST.segments)
        if len(ptr) < 1 or ptr[0] != 0 or (np.diff(ptr) < 0).any():
            raise ValueError("segments.ptr must be a CSR pointer array: ptr[0] = 0, non-decreasing")
        length = np.diff(ptr)
        return cls(start=np.where(length > 0, ptr[:-1], 0), length=length, offset=np.zeros(len(length), np.int64),
                   base=base, count=count, first=first)

    @classmethod
    def none(cls, n_axons: int) -> "Segments":
        """No segments: every axon has only its row."""
        zeros = np.zeros(n_axons, np.int64)
        return cls(start=zeros, length=zeros, offset=zeros, base=[], count=[], first=[])

    def shared(self, neuron_index_bits: int) -> "Segments":
        """The same uses with equal lists stored once: every axon's list is stored relative to
        its lowest first target ``t0``, which becomes its ``offset`` (so each relative ``first``
        is ``t0 - offset >= 0``), and an axon whose relative list equals an earlier axon's
        names that one's entries. Lists are kept in the order of their first axon."""
        axon, entry, t0 = self.listed(neuron_index_bits)
        n_axons = len(self.length)
        start = np.zeros(n_axons, np.int64)
        offset = np.zeros(n_axons, np.int64)
        stored: dict[tuple, int] = {}
        base, count, first = [], [], []
        ends = np.cumsum(self.length)
        for a in np.flatnonzero(self.length):
            items = slice(int(ends[a] - self.length[a]), int(ends[a]))
            low = int(t0[items].min())
            key = tuple(zip(self.base[entry[items]].tolist(), self.count[entry[items]].tolist(),
                            (t0[items] - low).tolist()))
            if key not in stored:
                stored[key] = len(base)
                for b, c, f in key:
                    base.append(b)
                    count.append(c)
                    first.append(f)
            start[a], offset[a] = stored[key], low
        return Segments(start=start, length=self.length.copy(), offset=offset, base=base, count=count, first=first)

    def with_rows(self, ptr, first, neuron_index_bits: int) -> "Segments":
        """These lists with every axon's row (words ``ptr[a] .. ptr[a+1]-1`` targeting
        ``first[a] + j``) as the first entry of its list, stored shared (:meth:`shared`): the
        table of a core without rows (docs/core-spec.md, section 3), the same uses in the same
        order."""
        ptr = np.asarray(ptr, np.int64)
        counts = np.diff(ptr)
        row_axon = np.flatnonzero(counts > 0)
        axon, entry, t0 = self.listed(neuron_index_bits)
        # the row first, then the axon's entries: a stable sort by axon of rows + entries
        all_axon = np.concatenate([row_axon, axon])
        order = np.argsort(all_axon, kind="stable")
        base = np.concatenate([ptr[row_axon], self.base[entry]])[order]
        count = np.concatenate([counts[row_axon], self.count[entry]])[order]
        first = np.concatenate([np.asarray(first, np.int64)[row_axon], t0])[order]
        lists = np.zeros(len(counts) + 1, np.int64)
        lists[1:] = np.cumsum(np.bincount(all_axon, minlength=len(counts)))
        return Segments.csr(lists, base=base, count=count, first=first).shared(neuron_index_bits)

    def listed(self, neuron_index_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (axon, entry) of the axons' lists, in spec order, as ``(axon, entry, t0)``:
        ``t0 = (offset[axon] + first[entry]) mod 2^nib``, the entry's first target."""
        length = self.length
        axon = np.repeat(np.arange(len(length), dtype=np.int64), length)
        entry = (np.arange(int(length.sum()), dtype=np.int64)
                 - np.repeat(np.cumsum(length) - length, length) + np.repeat(self.start, length))
        return axon, entry, (self.offset[axon] + self.first[entry]) & ((1 << neuron_index_bits) - 1)

    def uses(self, neuron_index_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every segment use as ``(axon, target, word)``, in the order of the spec (axon, then
        the entries of its list, then ``j``)."""
        axon_of_item, entry, t0 = self.listed(neuron_index_bits)
        count = self.count[entry]
        item = np.repeat(np.arange(len(entry), dtype=np.int64), count)
        j = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        return axon_of_item[item], t0[item] + j, self.base[entry][item] + j


def row_first(ptr: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``first[a] = target[ptr[a]]`` for every axon ``a`` of the CSR rows ``ptr`` (0 for an
    empty row): the neuron the row's first synapse targets."""
    first = np.zeros(len(ptr) - 1, np.int64)
    has = np.diff(ptr) > 0
    first[has] = target[ptr[:-1][has]]
    return first


@dataclasses.dataclass
class WtaBlocks(_IndexTable):
    """Structural winner-take-all block ranges (docs/core-spec.md, section 5, phase 2).

    Range ``r`` holds ``count[r]`` blocks of ``size[r]`` consecutive neurons from
    ``first[r]``; block ``b`` is ``first + b*size .. first + (b+1)*size - 1`` and keeps its
    ``k[r]`` best candidates (largest margin, ties to the lower index).
    """

    first: np.ndarray
    size: np.ndarray
    count: np.ndarray
    k: np.ndarray

    _NAME, _LENGTH = "wta_blocks", "first"

    @staticmethod
    def _RANGES() -> dict:
        return _BLOCK_RANGES

    @classmethod
    def none(cls) -> "WtaBlocks":
        return cls(first=[], size=[], count=[], k=[])

    def block_of(self, n_neurons: int) -> tuple[np.ndarray, np.ndarray]:
        """``(block, k)``: the block of every neuron (numbered over all ranges in order; -1 for
        none) and the ``k`` of every block."""
        block = np.full(n_neurons, -1, np.int64)
        ks, start = [], 0
        for first, size, count, k in zip(self.first, self.size, self.count, self.k):
            span = np.arange(first, first + size * count)
            block[span[span < n_neurons]] = start + (span[span < n_neurons] - first) // size
            ks.extend([int(k)] * int(count))
            start += int(count)
        return block, np.array(ks, np.int64)


def _value_ranges(cfg: CoreConfig) -> dict[str, tuple[int, int]]:
    """The range of the weights and theta values in a core of config ``cfg`` (sections 2, 3)."""
    return {"weight": cfg.weight_range, "theta": (0, cfg.theta_max if cfg.adaptive_threshold else 0)}


# Index arrays: what they can hold in the widest core. validate() then checks them against
# the program's sizes (targets below n_neurons, routes to internal axons, ...), whose
# messages name the capacity a program exceeds.
_INDEX_RANGES = {"ptr": (0, WIDEST.synapses), "target": (0, WIDEST.neurons - 1),
                 "route": (NO_ROUTE, WIDEST.axons - 1), "outputs": (0, WIDEST.neurons - 1)}
_PROGRAM_ARRAYS = (*_INDEX_RANGES, *_value_ranges(WIDEST))
_PROGRAM_PARTS = {"config": CoreConfig, "neurons": NeuronParams, "learning": LearningParams,
                  "segments": Segments, "wta_blocks": WtaBlocks}
_SEGMENT_RANGES = {"start": (0, WIDEST.segments), "length": (0, WIDEST.segments),
                   "offset": (0, WIDEST.neurons - 1), "base": (0, WIDEST.synapses - 1),
                   "count": (0, WIDEST.neurons), "first": (0, WIDEST.neurons - 1)}
_BLOCK_RANGES = {"first": (0, WIDEST.neurons - 1), "size": (0, WIDEST.neurons),
                 "count": (0, WIDEST.neurons), "k": (0, WTA_K_MAX)}


@dataclasses.dataclass
class CoreProgram:
    """Everything a core needs to run one network (docs/core-spec.md, section 3).

    Synapses are stored axon-major: axon ``a`` owns the row synapses ``ptr[a] .. ptr[a+1]-1``
    (``target`` holds one entry per row synapse); the words ``ptr[n_axons] .. n_synapses-1``
    of ``weight`` / ``plastic`` are kernel words, which only ``segments`` use (shared rows).
    ``wta_blocks`` are the structural winner-take-all groups. Axons ``0 .. n_inputs-1`` take host spikes; the others are driven by the neuron whose
    ``route`` names them (``-1``: no route). ``outputs[j]`` is the neuron reported in output
    column ``j``.
    """

    config: CoreConfig
    n_inputs: int
    ptr: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    plastic: np.ndarray
    neurons: NeuronParams
    route: np.ndarray
    outputs: np.ndarray
    learning: LearningParams = dataclasses.field(default_factory=LearningParams)
    theta: np.ndarray | None = None   # initial threshold adaptation per neuron (None: zeros)
    segments: Segments | None = None  # shared-row segments (None: none)
    wta_blocks: WtaBlocks | None = None   # structural WTA block ranges (None: none)

    def __setattr__(self, name, value):
        """Convert and check a field where it enters (construction or a later assignment)."""
        if name == "segments" and value is None:
            value = Segments.none(len(self.ptr) - 1)
        elif name == "wta_blocks" and value is None:
            value = WtaBlocks.none()
        if name in _PROGRAM_ARRAYS:
            if name == "theta" and value is None:       # the default: zeros, one per neuron
                value = np.zeros(len(self.neurons), np.int64)
            value = int_array(value, name, *(_INDEX_RANGES | _value_ranges(self.config))[name])
        elif name == "plastic":
            value = flag_array(value, name)
        elif name == "n_inputs":
            value = check_int(value, name, 0, WIDEST.axons)
        elif name in _PROGRAM_PARTS and not isinstance(value, _PROGRAM_PARTS[name]):
            raise ValueError(f"{name} must be a {_PROGRAM_PARTS[name].__name__}, got {type(value).__name__}")
        object.__setattr__(self, name, value)

    def __post_init__(self):
        self.validate()

    @property
    def n_axons(self) -> int:
        return len(self.ptr) - 1

    @property
    def n_neurons(self) -> int:
        return len(self.neurons)

    @property
    def n_synapses(self) -> int:
        """Words of the synapse memory: row synapses, then kernel words."""
        return len(self.weight)

    @property
    def n_row_synapses(self) -> int:
        return len(self.target)

    @property
    def shared(self) -> bool:
        """Whether the program has segments (shared rows)."""
        return len(self.segments) > 0

    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_synapses(cls, config: CoreConfig, *, n_inputs: int, n_axons: int, axon, target, weight,
                      plastic=None, neurons: NeuronParams, route=None, outputs=(),
                      learning: LearningParams | None = None, theta=None) -> "CoreProgram":
        """Build a program from a flat synapse list, in any order.

        Each axon's synapses become one row (docs/core-spec.md, section 3): sorted by
        target, spanning the window from its smallest to its largest target, with a
        zero-weight, non-plastic synapse for every neuron of the window the list leaves
        out. An axon listed twice for one neuron is rejected (merge the weights first).
        ``route=None`` gives no neuron a route. The result is validated.
        """
        for name, value in (("config", config), ("neurons", neurons)):
            if not isinstance(value, _PROGRAM_PARTS[name]):
                raise ValueError(f"{name} must be a {_PROGRAM_PARTS[name].__name__}, got {type(value).__name__}")
        n_axons = check_int(n_axons, "n_axons", 1, WIDEST.axons)
        axon = int_array(axon, "axon", 0, WIDEST.axons - 1)
        target = int_array(target, "target", *_INDEX_RANGES["target"])
        weight = int_array(weight, "weight", *config.weight_range)
        plastic = np.zeros(len(axon), bool) if plastic is None else flag_array(plastic, "plastic")
        if not (len(axon) == len(target) == len(weight) == len(plastic)):
            raise ValueError(f"synapse arrays differ in length: axon {len(axon)}, target {len(target)}, "
                             f"weight {len(weight)}, plastic {len(plastic)}")
        _check_range(axon, "axon", 0, n_axons - 1)
        _check_range(target, "target", 0, len(neurons) - 1)
        ptr, row_target, source = synapse_rows(axon, target, n_axons)
        filled = source >= 0
        row_weight = np.zeros(len(source), np.int64)
        row_plastic = np.zeros(len(source), bool)
        row_weight[filled] = weight[source[filled]]
        row_plastic[filled] = plastic[source[filled]]
        return cls(config=config, n_inputs=n_inputs, ptr=ptr, target=row_target,
                   weight=row_weight, plastic=row_plastic, neurons=neurons,
                   route=np.full(len(neurons), NO_ROUTE) if route is None else route,
                   outputs=outputs, learning=learning or LearningParams(), theta=theta)

    # -- derived tables -------------------------------------------------------------------
    def synapse_axon(self) -> np.ndarray:
        """Axon of every synapse address (inverse of the CSR pointer array)."""
        return np.repeat(np.arange(self.n_axons, dtype=np.int64), np.diff(self.ptr))

    def uses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every use ``(axon, target, word)`` (spec section 3): the row synapses in address
        order, then the segment uses (:meth:`Segments.uses`)."""
        axon, target, word = self.segments.uses(self.config.neuron_index_bits)
        return (np.concatenate([self.synapse_axon(), axon]), np.concatenate([self.target, target]),
                np.concatenate([np.arange(self.n_row_synapses, dtype=np.int64), word]))

    def plastic_uses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The plastic uses by target, for LTP (phase 4 (b)): those of neuron ``n`` are
        ``word[start[n]:start[n+1]]`` with axons ``axon[start[n]:start[n+1]]``, in increasing
        axon (an axon has at most one use per neuron). Returns ``(start, word, axon)``."""
        axon, target, word = self.uses()
        keep = self.plastic[word]
        axon, target, word = axon[keep], target[keep], word[keep]
        order = np.lexsort((axon, target))
        start = np.zeros(self.n_neurons + 1, np.int64)
        start[1:] = np.cumsum(np.bincount(target, minlength=self.n_neurons))
        return start, word[order], axon[order]

    def param_classes(self) -> "ParamClasses":
        """The neurons' parameter classes (docs/core-spec.md, section 2), numbered in the order
        of their first neuron: :class:`ParamClasses`."""
        return ParamClasses.of(self)

    def row_first(self) -> np.ndarray:
        """``first[a]``: the neuron the first synapse of axon ``a``'s row targets (0 if empty)."""
        return row_first(self.ptr, self.target)

    def rows_as_lists(self, config: CoreConfig | None = None) -> "CoreProgram":
        """The same program for a core without rows (docs/core-spec.md, section 3): every
        axon's row becomes the first entry of its segment list, its words (now kernel words)
        where they were, and the lists are stored shared (:meth:`Segments.shared`). The uses,
        in their order, and so every spike and weight, are unchanged.

        ``config``: the core to run it on (default: this one with ``rows = False`` and a
        segment table just large enough, if it is not already).
        """
        table = self.segments.with_rows(self.ptr, self.row_first(), self.config.neuron_index_bits)
        if config is None:
            config = dataclasses.replace(self.config, rows=False,
                                         segments=max(self.config.segments, len(table), 1))
        return dataclasses.replace(self, config=config, ptr=np.zeros(self.n_axons + 1, np.int64),
                                   target=np.zeros(0, np.int64), segments=table)

    def ltp_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Per neuron, the range of axons with a plastic use of it: ``(lo, count)``.

        LTP of neuron ``n`` visits axons ``lo[n] .. lo[n] + count[n] - 1`` (spec section 3);
        a neuron without plastic uses has ``(0, 0)``.
        """
        axon, target, word = self.uses()
        keep = self.plastic[word]
        axon, target = axon[keep], target[keep]
        lo = np.full(self.n_neurons, np.iinfo(np.int64).max, np.int64)
        hi = np.full(self.n_neurons, -1, np.int64)
        np.minimum.at(lo, target, axon)
        np.maximum.at(hi, target, axon)
        has = hi >= 0
        return np.where(has, lo, 0), np.where(has, hi - lo + 1, 0)

    def accumulator_bounds(self, weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Largest and smallest value each neuron's accumulator can reach in one step, with
        ``weight`` (default: the program's), over every use (a kernel word once per use)."""
        weight = self.weight if weight is None else weight
        _, target, word = self.uses()
        return accumulator_bounds(self.n_neurons, target, weight[word], self.plastic[word], self.learning)

    # -- validation (docs/core-spec.md, section 7) ------------------------------------------
    def validate(self) -> "CoreProgram":
        """Reject anything the core cannot hold or represent; returns ``self``."""
        cfg = self.config
        if not isinstance(cfg, CoreConfig):
            raise ValueError(f"config must be a CoreConfig, got {type(cfg).__name__}")
        n, a, s = self.n_neurons, self.n_axons, self.n_synapses
        _check_scalar(n, "n_neurons", 1, cfg.neurons)
        _check_scalar(a, "n_axons", 1, cfg.axons)
        _check_scalar(s, "n_synapses", 0, cfg.synapses)
        _check_scalar(self.n_inputs, "n_inputs", 0, a)

        # CSR pointers
        if self.ptr[0] != 0:
            raise ValueError(f"ptr[0] = {int(self.ptr[0])}, must be 0")
        rows = self.n_row_synapses
        if self.ptr[-1] != rows:
            raise ValueError(f"ptr[{a}] = {int(self.ptr[-1])}, must equal the row synapse count {rows} "
                             f"(the length of target)")
        if rows > s:
            raise ValueError(f"target has {rows} row synapses but weight only {s} words")
        if rows and not cfg.rows:
            i = int(np.flatnonzero(np.diff(self.ptr) > 0)[0])
            raise ValueError(f"the core has no rows (CoreConfig.rows = false) but axon {i} has a row of "
                             f"{int(self.ptr[i + 1] - self.ptr[i])} synapses; store it as a one-entry "
                             "segment list")
        steps = np.diff(self.ptr)
        if (steps < 0).any():
            i = int(np.flatnonzero(steps < 0)[0])
            raise ValueError(f"ptr must be non-decreasing: ptr[{i + 1}] = {int(self.ptr[i + 1])} "
                             f"< ptr[{i}] = {int(self.ptr[i])}")
        if len(self.plastic) != s:
            raise ValueError(f"plastic has length {len(self.plastic)}, expected {s} (one per weight word)")

        # synapses
        _check_range(self.target, "target", 0, n - 1)
        if rows > 1:
            row_start = np.zeros(rows, bool)
            row_start[self.ptr[:-1][np.diff(self.ptr) > 0]] = True
            broken = np.flatnonzero(~row_start[1:] & (np.diff(self.target) != 1)) + 1
            if broken.size:
                i = int(broken[0])
                raise ValueError(f"target[{i}] = {int(self.target[i])}, must be target[{i - 1}] + 1 = "
                                 f"{int(self.target[i - 1]) + 1}: a row (axon {int(self.synapse_axon()[i])}) "
                                 f"drives consecutive neurons")
        ranges = _value_ranges(cfg)
        _check_range(self.weight, "weight", *ranges["weight"])
        if self.plastic.any() and not cfg.learning:
            i = int(np.flatnonzero(self.plastic)[0])
            raise ValueError(f"plastic[{i}] is set but the core is configured without learning")

        # neurons
        theta_max = cfg.theta_max
        p = self.neurons
        p.check_lengths()
        _check_range(p.threshold, "neurons.threshold", 1, theta_max)
        _check_range(p.leak_shift, "neurons.leak_shift", 0, cfg.membrane_bits - 1)
        _check_range(p.reset_mode, "neurons.reset_mode", RESET_TO_ZERO, RESET_BY_SUBTRACTION)
        _check_range(p.refractory, "neurons.refractory", 0, REFRACTORY_MAX)
        _check_range(p.bias, "neurons.bias", *cfg.membrane_range)
        _check_range(p.theta_inc, "neurons.theta_inc", 0, theta_max if cfg.adaptive_threshold else 0)
        _check_range(p.theta_decay_shift, "neurons.theta_decay_shift", 0, cfg.membrane_bits - 1)
        _check_range(p.wta_group, "neurons.wta_group", 0, cfg.wta_groups if cfg.wta else 0)

        if len(self.theta) != n:
            raise ValueError(f"theta has length {len(self.theta)}, expected {n} (one per neuron)")
        _check_range(self.theta, "theta", *ranges["theta"])

        # routes and outputs
        if len(self.route) != n:
            raise ValueError(f"route has length {len(self.route)}, expected {n} (one per neuron)")
        routed = self.route[self.route != NO_ROUTE]
        bad = np.flatnonzero((self.route != NO_ROUTE) & ((self.route < self.n_inputs) | (self.route >= a)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"route[{i}] = {int(self.route[i])} is outside the internal axons "
                             f"{self.n_inputs}..{a - 1} (or -1 for none)")
        values, counts = np.unique(routed, return_counts=True)
        if (counts > 1).any():
            axon = int(values[counts > 1][0])
            who = np.flatnonzero(self.route == axon)[:2].tolist()
            raise ValueError(f"axon {axon} is the route of more than one neuron (neurons {who}); "
                             "each internal axon is driven by exactly one neuron")
        _check_range(self.outputs, "outputs", 0, n - 1)
        values, counts = np.unique(self.outputs, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"outputs lists neuron {int(values[counts > 1][0])} more than once")

        self._validate_segments()
        self._validate_blocks()
        if cfg.param_classes:
            classes = self.param_classes()
            if len(classes) > cfg.param_classes:
                raise ValueError(f"the neurons have {len(classes)} parameter classes, more than the core's "
                                 f"param_classes = {cfg.param_classes} (neuron {int(np.flatnonzero(classes.index == cfg.param_classes)[0])} "
                                 f"starts class {cfg.param_classes})")

        # learning
        self.learning.validate(cfg)
        if self.plastic.any():
            w = self.weight[self.plastic]
            _check_range(w, "plastic weight", self.learning.w_min, self.learning.w_max)

        _check_accumulator_bound(self, self.weight, "")
        return self

    def _validate_segments(self) -> None:
        """Section 7: segments name kernel words and neurons that exist; no axon reaches a
        neuron twice."""
        cfg, seg = self.config, self.segments
        n, a, rows = self.n_neurons, self.n_axons, self.n_row_synapses
        if not isinstance(seg, Segments):
            raise ValueError(f"segments must be a Segments, got {type(seg).__name__}")
        for name in ("start", "length", "offset"):
            if len(getattr(seg, name)) != a:
                raise ValueError(f"segments.{name} has length {len(getattr(seg, name))}, expected n_axons = {a} "
                                 "(one per axon)")
        k = len(seg.base)
        for name in ("count", "first"):
            if len(getattr(seg, name)) != k:
                raise ValueError(f"segments.{name} has length {len(getattr(seg, name))}, expected {k} "
                                 "(one per table entry, as segments.base)")
        if k > cfg.segments:
            raise ValueError(f"{k} segment table entries exceed the core's segment table of {cfg.segments} "
                             "(CoreConfig.segments)")
        empty = seg.length == 0
        bad = np.flatnonzero(empty & ((seg.start != 0) | (seg.offset != 0)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"axon {i} has no segments (segments.length 0) but segments.start "
                             f"{int(seg.start[i])} / offset {int(seg.offset[i])}; both must be 0")
        bad = np.flatnonzero(seg.start + seg.length > k)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"axon {i}'s segment list {int(seg.start[i])}..{int(seg.start[i] + seg.length[i]) - 1} "
                             f"leaves the table of {k} entries")
        if k == 0:
            return
        _check_range(seg.count, "segments.count", 1, n)
        _check_range(seg.base, "segments.base", rows, self.n_synapses - 1)   # kernel words only
        end = seg.base + seg.count
        bad = np.flatnonzero(end > self.n_synapses)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"segment {i} uses words {int(seg.base[i])}..{int(end[i]) - 1}, beyond the "
                             f"{self.n_synapses} weight words")
        axon_of_item, entry, t0 = seg.listed(cfg.neuron_index_bits)
        bad = np.flatnonzero(t0 + seg.count[entry] > n)
        if bad.size:
            i = int(bad[0])
            ax, e = int(axon_of_item[i]), int(entry[i])
            raise ValueError(f"axon {ax}'s segment (entry {e}, offset {int(seg.offset[ax])}) drives neurons "
                             f"{int(t0[i])}..{int(t0[i] + seg.count[e]) - 1}, beyond n_neurons = {n}")
        axon, target, _ = self.uses()
        key = axon * n + target
        order = np.argsort(key, kind="stable")
        twice = np.flatnonzero(np.diff(key[order]) == 0)
        if twice.size:
            i = int(key[order][twice[0]])
            raise ValueError(f"axon {i // n} reaches neuron {i % n} through two uses (its row and a segment, "
                             "or two segments); an axon adds at most one weight to a neuron")

    def _validate_blocks(self) -> None:
        """Section 7: block ranges inside the neurons, disjoint, apart from the explicit groups."""
        cfg, blocks, n = self.config, self.wta_blocks, self.n_neurons
        if not isinstance(blocks, WtaBlocks):
            raise ValueError(f"wta_blocks must be a WtaBlocks, got {type(blocks).__name__}")
        r = len(blocks.first)
        for name in ("size", "count", "k"):
            if len(getattr(blocks, name)) != r:
                raise ValueError(f"wta_blocks.{name} has length {len(getattr(blocks, name))}, expected {r} "
                                 "(one per block range, as wta_blocks.first)")
        if r == 0:
            return
        if not cfg.wta or r > cfg.wta_blocks:
            raise ValueError(f"{r} WTA block ranges exceed the core's {cfg.wta_blocks if cfg.wta else 0} "
                             "(CoreConfig.wta_blocks, with wta)")
        _check_range(blocks.size, "wta_blocks.size", 1, n)
        _check_range(blocks.count, "wta_blocks.count", 1, n)
        bad = np.flatnonzero(blocks.k > np.minimum(blocks.size, WTA_K_MAX))
        _check_range(blocks.k, "wta_blocks.k", 1, WTA_K_MAX)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"wta_blocks.k[{i}] = {int(blocks.k[i])} exceeds its block size {int(blocks.size[i])}")
        end = blocks.first + blocks.size * blocks.count
        bad = np.flatnonzero(end > n)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"WTA block range {i} holds neurons {int(blocks.first[i])}..{int(end[i]) - 1}, "
                             f"beyond n_neurons = {n}")
        order = np.argsort(blocks.first, kind="stable")
        overlap = np.flatnonzero(blocks.first[order][1:] < end[order][:-1])
        if overlap.size:
            i, j = int(order[overlap[0]]), int(order[overlap[0] + 1])
            raise ValueError(f"WTA block ranges {i} and {j} overlap; a neuron is in at most one group")
        block, _ = blocks.block_of(n)
        both = np.flatnonzero((block >= 0) & (self.neurons.wta_group != 0))
        if both.size:
            i = int(both[0])
            raise ValueError(f"neuron {i} is in a WTA block and in WTA group {int(self.neurons.wta_group[i])}; "
                             "a neuron is in at most one group")


def _check_accumulator_bound(program: CoreProgram, weight: np.ndarray, what: str) -> None:
    """The accumulator bound (docs/core-spec.md, section 3) with these (program or live) weights."""
    cfg = program.config
    upper, lower = program.accumulator_bounds(weight)
    lo, hi = cfg.accumulator_range
    for bound, ok in ((upper, upper <= hi), (lower, lower >= lo)):
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"{what}neuron {i} can receive {int(bound[i])} in one step, beyond the "
                             f"{cfg.accumulator_bits}-bit accumulator range {lo}..{hi}")


@dataclasses.dataclass
class CoreState:
    """The core's state between steps (docs/core-spec.md, sections 2 and 5).

    ``weight`` is the live synapse memory (it changes when learning is on).
    """

    v: np.ndarray        # int64[n_neurons], V-bit signed membrane
    refrac: np.ndarray   # int64[n_neurons], remaining refractory steps
    theta: np.ndarray    # int64[n_neurons], V-1 bit unsigned threshold adaptation
    y: np.ndarray        # int64[n_neurons], X-bit post trace
    x: np.ndarray        # int64[n_axons], X-bit pre trace
    pending: np.ndarray  # bool[n_axons], neuron spikes to deliver next step
    weight: np.ndarray   # int64[n_synapses]

    @classmethod
    def initial(cls, program: CoreProgram) -> "CoreState":
        """The state after loading ``program``: zeros, with weights and theta from the program."""
        n, a = program.n_neurons, program.n_axons
        return cls(v=np.zeros(n, np.int64), refrac=np.zeros(n, np.int64), theta=program.theta.copy(),
                   y=np.zeros(n, np.int64), x=np.zeros(a, np.int64), pending=np.zeros(a, bool),
                   weight=program.weight.copy())

    def copy(self) -> "CoreState":
        return CoreState(**{f.name: getattr(self, f.name).copy() for f in dataclasses.fields(self)})

    def checked(self, program: CoreProgram) -> "CoreState":
        """A copy in ``int64`` (``pending``: bool), after checking that ``program`` can be in
        this state (docs/core-spec.md, section 2): every field of the right shape and an
        integer type, inside its width; ``pending`` only on internal axons; plastic weights
        in ``w_min .. w_max``; the accumulator bound holding for the live weights. Raises
        ``ValueError`` naming the field, the value and the allowed range.
        """
        cfg = program.config
        n, a = program.n_neurons, program.n_axons
        lp = program.learning
        ranges = _value_ranges(cfg)
        fields = {   # name: (length, low, high)
            "v": (n, *cfg.membrane_range),
            "refrac": (n, 0, REFRACTORY_MAX),
            "theta": (n, *ranges["theta"]),
            "y": (n, 0, cfg.trace_max),
            "x": (a, 0, cfg.trace_max),
            "pending": (a, 0, 1),
            "weight": (program.n_synapses, *ranges["weight"]),
        }
        out = {}
        for name, (length, low, high) in fields.items():
            value = getattr(self, name)
            shape = np.shape(value)
            if shape != (length,):
                raise ValueError(f"state.{name} has shape {shape}, expected ({length},)")
            out[name] = (flag_array(value, f"state.{name}") if name == "pending"
                         else int_array(value, f"state.{name}", low, high))
        if out["pending"][:program.n_inputs].any():
            i = int(np.flatnonzero(out["pending"][:program.n_inputs])[0])
            raise ValueError(f"state.pending[{i}] is set on host axon {i}: only internal axons "
                             f"{program.n_inputs}..{a - 1} can be pending")
        w = out["weight"]
        bad = np.flatnonzero(program.plastic & ((w < lp.w_min) | (w > lp.w_max)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"state.weight[{i}] = {int(w[i])} is a plastic weight outside "
                             f"w_min..w_max = {lp.w_min}..{lp.w_max}")
        _check_accumulator_bound(program, out["weight"], "state.weight: ")
        return CoreState(**out)

    def clear(self) -> None:
        """*Clear state* (spec section 6): zero everything but weights and theta."""
        for name in ("v", "refrac", "y", "x", "pending"):
            getattr(self, name)[:] = 0

    def equals(self, other: "CoreState") -> bool:
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name))
                   for f in dataclasses.fields(self))
