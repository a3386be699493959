"""Random valid programs, input spike trains and core states, for differential testing.

Used by the hypothesis strategies in ``tests/strategies.py`` and by co-simulation
(``neurocore cosim --random N``). Every draw comes from one ``numpy.random.Generator``, so a seed
reproduces a case exactly.

Parameters are drawn with a bias towards extremes (range ends, 0, 1, -1, values next to the ends)
so that every corner of docs/core-spec.md is reached often: membrane saturation in both directions,
refractory periods of 0/1/255, WTA ties (neurons are sometimes cloned), reset by subtraction, theta
saturation, soft bound at the ends of the plastic range, trace saturation, weight clamping and an
accumulator bound that is exactly tight.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..hw.config import CoreConfig
from ..hw.program import (NO_ROUTE, CoreProgram, CoreState, LearningParams, NeuronParams, Segments,
                          WtaBlocks, accumulator_bits, accumulator_bounds)
from ..hw.widths import (AMPLITUDE_BITS, AMPLITUDE_MAX, CONFIG_RANGES, LEARN_SHIFT_MAX, REFRACTORY_MAX,
                         TRACE_DECAY_MAX, WTA_BLOCKS_MAX, WTA_K_MAX)

__all__ = ["random_program", "random_inputs", "random_state", "FEATURES", "program_features"]

_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(CoreConfig))
_SIZE_KEYS = ("n_neurons", "n_inputs", "n_axons", "n_synapses", "steps", "batch", "density",
              "max_neurons", "max_inputs", "max_synapses", "max_steps", "config", "features")

#: Optional program features ``random_program`` can draw (``features=``): shared rows
#: (segments over kernel words), plastic kernel words (learning on shared words; with
#: ``shared_rows``), structural WTA blocks, parameter classes (a core storing a few class
#: words instead of a word per neuron) and cores without rows (every row a one-entry list).
FEATURES = ("shared_rows", "shared_learning", "structural_wta", "param_classes", "rowless")


def program_features(program: CoreProgram) -> dict[str, bool]:
    """What a program uses, for reports (``neurocore cosim``'s ``features``): shared rows,
    structural WTA blocks, explicit WTA groups, plastic words (learning), plastic kernel words
    (learning on shared weights), parameter classes, shared segment lists (an offset, or
    table entries listed by two axons) and a core without rows."""
    kernel_plastic = bool(program.plastic[program.n_row_synapses:].any())
    seg = program.segments
    listed = seg.start[seg.length > 0]
    shared_lists = bool((seg.offset != 0).any() or len(np.unique(listed)) < len(listed))
    return {"shared_rows": program.shared, "structural_wta": len(program.wta_blocks) > 0,
            "wta_groups": bool((program.neurons.wta_group != 0).any()),
            "learning": bool(program.plastic.any()),
            "shared_learning": program.shared and kernel_plastic,
            "param_classes": program.config.param_classes > 0,
            "shared_lists": shared_lists,
            "rowless": not program.config.rows}


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _biased(rng: np.random.Generator, lo: int, hi: int, *, extra=(), p_special: float = 0.5) -> int:
    """An integer in ``lo..hi``: with probability ``p_special`` one of the extremes
    (``lo``, ``lo+1``, ``hi-1``, ``hi``, ``0``, ``1``, ``-1`` and ``extra``, where in range), else uniform."""
    if lo > hi:
        raise ValueError(f"empty range {lo}..{hi}")
    if rng.random() < p_special:
        specials = sorted({v for v in (lo, lo + 1, hi - 1, hi, 0, 1, -1, *extra) if lo <= v <= hi})
        return int(specials[rng.integers(len(specials))])
    return int(rng.integers(lo, hi + 1))


def _small_or_biased(rng: np.random.Generator, lo: int, hi: int, scale: int, p_small: float = 0.6) -> int:
    """Mostly a value of magnitude ``<= scale`` (so it matters next to the weights), else ``_biased``."""
    if rng.random() < p_small:
        return int(rng.integers(max(lo, -scale), min(hi, scale) + 1))
    return _biased(rng, lo, hi)


def random_inputs(rng, n_inputs: int, steps: int | None = None, *, batch: int | None = None,
                  density: float | None = None, max_steps: int = 30) -> np.ndarray:
    """Bool spike trains ``[T, n_inputs]`` (or ``[batch, T, n_inputs]``) of varying density."""
    rng = _as_rng(rng)
    if steps is None:
        steps = 0 if rng.random() < 0.02 else _biased(rng, 1, max_steps, extra=(2, 3))
    shape = (steps, n_inputs) if batch is None else (batch, steps, n_inputs)
    if density is None:
        if rng.random() < 0.5:
            density = float(rng.choice([0.0, 0.05, 0.2, 0.5, 0.8, 1.0]))
        else:       # one density per input column
            density = rng.choice([0.0, 0.1, 0.3, 0.6, 0.9, 1.0], size=n_inputs)
    return rng.random(shape) < density


def _stored(rng: np.random.Generator, segments: Segments, neuron_index_bits: int) -> Segments:
    """``segments`` as the core may store them: often each axon's list stored once for all
    axons whose lists are shifts of it (:meth:`Segments.shared`), and then some lists rotated
    (every first target moved by ``d`` and the offsets of its axons by ``-d``, mod 2^nib) so
    that ``offset + first`` wraps around; the uses stay the same."""
    if rng.random() < 0.3 or not len(segments):
        return segments
    shared = segments.shared(neuron_index_bits)
    mask = (1 << neuron_index_bits) - 1
    first, offset = shared.first.copy(), shared.offset.copy()
    for start in np.unique(shared.start[shared.length > 0]):
        if rng.random() < 0.4:
            users = (shared.start == start) & (shared.length > 0)
            d = int(rng.integers(0, mask + 1))
            entries = slice(int(start), int(start + shared.length[users][0]))
            first[entries] = (first[entries] + d) & mask
            offset[users] = (offset[users] - d) & mask
    return dataclasses.replace(shared, first=first, offset=offset)


def random_program(rng, **overrides) -> tuple[CoreProgram, np.ndarray]:
    """A random valid ``CoreProgram`` and a random input spike train for it.

    ``rng`` is a ``numpy.random.Generator`` or a seed. ``overrides`` fix parts of the draw:

    * any ``CoreConfig`` field (``learning=True``, ``membrane_bits=8``, ...), or ``config`` (a whole
      ``CoreConfig``; sizes then stay within its capacities);
    * ``n_neurons``, ``n_inputs``, ``n_axons``, ``n_synapses``;
    * ``steps`` (T), ``batch`` (inputs become ``[batch, T, n_inputs]``), ``density``;
    * ``max_neurons`` (12), ``max_inputs`` (6), ``max_synapses`` (48), ``max_steps`` (30);
    * ``features``: the optional features of :data:`FEATURES` that may be drawn (default none):
      with ``"shared_rows"`` about three programs in four get kernel words and segments naming them
      (several axons sharing words), plastic ones with ``"shared_learning"`` (so that LTD and
      LTP update a word several times in a step),
      with ``"structural_wta"`` about half of those with ``wta`` get block ranges (k-WTA),
      with ``"param_classes"`` about two programs in three run on a core with parameter classes
      (neurons drawn from a small palette of parameter sets, routed like a layer: one offset),
      with ``"rowless"`` about one program in three runs on a core without rows (its rows
      become one-entry segment lists, :meth:`CoreProgram.rows_as_lists`).

    A fixed config with ``rows = False`` always gets its rows as lists; the segments drawn
    then leave ``n_axons`` entries of its table free for them.

    A fixed config with ``param_classes = P > 0`` always gets a program of at most ``P`` classes:
    at most ``max(1, P // 8)`` parameter sets, each in a WTA group or not (below 8 classes: not),
    routed or not (one route offset; below 2 classes: none) and an output or not (below 4
    classes: all or none).

    If ``accumulator_bits`` is fixed and the drawn synapses break the accumulator bound, synapses
    become zero-weight gaps until it holds; otherwise ``accumulator_bits`` is chosen (often exactly tight).
    Returns ``(program, inputs)``; ``program.validate()`` has passed.
    """
    rng = _as_rng(rng)
    unknown = sorted(set(overrides) - set(_CONFIG_FIELDS) - set(_SIZE_KEYS))
    if unknown:
        raise ValueError(f"random_program: unknown override(s) {', '.join(unknown)}; "
                         f"known: {', '.join(_CONFIG_FIELDS + _SIZE_KEYS)}")
    fixed_config: CoreConfig | None = overrides.get("config")
    if fixed_config is not None:
        clash = sorted(set(overrides) & set(_CONFIG_FIELDS))
        if clash:
            raise ValueError(f"random_program: give either config or config fields, not both ({clash})")
        fixed = fixed_config.to_dict()
    else:
        fixed = {k: overrides[k] for k in _CONFIG_FIELDS if k in overrides}

    def cfg(name, draw):
        return fixed[name] if name in fixed else draw()

    # -- widths and features (section 1) --------------------------------------------------------
    W = cfg("weight_bits", lambda: _biased(rng, *CONFIG_RANGES["weight_bits"], extra=(3, 4, 8)))
    V = cfg("membrane_bits", lambda: _biased(rng, *CONFIG_RANGES["membrane_bits"], extra=(9, 12, 16)))
    X = cfg("trace_bits", lambda: _biased(rng, *CONFIG_RANGES["trace_bits"], extra=(3, 4, 8)))
    G = cfg("wta_groups", lambda: _biased(rng, *CONFIG_RANGES["wta_groups"], extra=(2, 3, 4)))
    learning = cfg("learning", lambda: bool(rng.random() < 0.6))
    wta = cfg("wta", lambda: bool(rng.random() < 0.6))
    adaptive = cfg("adaptive_threshold", lambda: bool(rng.random() < 0.6))
    wlo, whi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    vlo, vhi = -(1 << (V - 1)), (1 << (V - 1)) - 1
    theta_max = (1 << (V - 1)) - 1
    trace_max = (1 << X) - 1
    wscale = 1 << (W - 1)

    # -- sizes (section 3) ----------------------------------------------------------------------
    cap_n = fixed.get("neurons", CONFIG_RANGES["neurons"][1])
    cap_a = fixed.get("axons", CONFIG_RANGES["axons"][1])
    cap_s = fixed.get("synapses", CONFIG_RANGES["synapses"][1])
    n_neurons = overrides.get("n_neurons")
    if n_neurons is None:
        n_neurons = _biased(rng, 1, min(overrides.get("max_neurons", 12), cap_n), extra=(2, 3))
    n_axons = overrides.get("n_axons")
    n_inputs = overrides.get("n_inputs")
    if n_inputs is None:
        hi_inputs = min(overrides.get("max_inputs", 6), cap_a if n_axons is None else n_axons)
        n_inputs = _biased(rng, 0, hi_inputs, extra=(2,), p_special=0.3)
    if n_axons is None:
        # internal axons: usually one per routed neuron; sometimes one spare nobody drives
        n_internal = int(rng.integers(0, n_neurons + 2))
        n_axons = min(max(1, n_inputs + n_internal), cap_a)
    n_synapses = overrides.get("n_synapses")
    if n_synapses is None:
        n_synapses = _biased(rng, 0, min(overrides.get("max_synapses", 48), cap_s), extra=(2, 3, 8))

    # -- learning parameters (section 4) ----------------------------------------------------------
    mode = rng.choice([0, 0, 0, 1, 1, 2, 3, 3])
    if mode == 0:
        w_min, w_max = wlo, whi
    elif mode == 1:
        w_min, w_max = 0, whi
    elif mode == 2:
        w_min = w_max = _biased(rng, wlo, whi)
    else:
        w_min, w_max = sorted((_biased(rng, wlo, whi), _biased(rng, wlo, whi)))
    soft_bound = bool(rng.random() < 0.4)
    product_bits = AMPLITUDE_BITS + X + (2 * (W + 1) if soft_bound else 0)   # widest dw product
    lp = LearningParams(
        a_plus=_biased(rng, 0, AMPLITUDE_MAX, extra=(2, 128)),
        a_minus=_biased(rng, 0, AMPLITUDE_MAX, extra=(2, 128)),
        shift=(_biased(rng, 0, LEARN_SHIFT_MAX) if rng.random() < 0.15
               else int(rng.integers(max(0, product_bits - 2 * W - 8),
                                     min(LEARN_SHIFT_MAX, max(1, product_bits - 4))))),
        pre_decay_shift=_biased(rng, 0, TRACE_DECAY_MAX, extra=(2, 3)),
        post_decay_shift=_biased(rng, 0, TRACE_DECAY_MAX, extra=(2, 3)),
        pre_jump=_biased(rng, 0, trace_max),
        post_jump=_biased(rng, 0, trace_max),
        w_min=int(w_min), w_max=int(w_max), soft_bound=soft_bound)

    # -- synapses (section 3) ---------------------------------------------------------------------
    # Rows of consecutive targets (one window per axon), drawn until n_synapses are used.
    used_axons = rng.choice(n_axons, size=int(rng.integers(1, n_axons + 1)), replace=False)
    p_plastic = float(rng.choice([0.0, 0.5, 1.0])) if learning else 0.0
    p_positive = float(rng.choice([0.0, 0.5, 0.8, 1.0]))
    p_gap = float(rng.choice([0.0, 0.2, 0.5]))          # zero-weight, non-plastic synapses
    axon, target, weight, plastic = [], [], [], []
    left = n_synapses
    for a in used_axons:
        if left == 0:
            break
        length = _biased(rng, 1, min(n_neurons, left), extra=(2,))
        first = int(rng.integers(0, n_neurons - length + 1))
        left -= length
        for n in range(first, first + length):
            is_plastic = bool(rng.random() < p_plastic)
            if is_plastic:
                w = _biased(rng, w_min, w_max, extra=(w_min + (w_max - w_min) // 2,))
            elif rng.random() < p_gap:
                w = 0
            elif rng.random() < p_positive:
                w = _biased(rng, 0, whi)
            else:
                w = _biased(rng, wlo, whi)
            axon.append(int(a))
            target.append(n)
            weight.append(w)
            plastic.append(is_plastic)
    axon = np.array(axon, np.int64)
    target = np.array(target, np.int64)
    weight = np.array(weight, np.int64)
    plastic = np.array(plastic, bool)

    # -- shared rows: kernel words and segments (section 3) --------------------------------------
    features = set(overrides.get("features", ()))
    unknown_features = sorted(features - set(FEATURES))
    if unknown_features:
        raise ValueError(f"random_program: unknown feature(s) {unknown_features}; known: {FEATURES}")
    cap_seg = fixed.get("segments", CONFIG_RANGES["segments"][1] if "shared_rows" in features else 0)
    rowless = not fixed.get("rows", True) or ("rowless" in features and "rows" not in fixed
                                              and fixed.get("segments", 1) > 0 and rng.random() < 0.33)
    if not fixed.get("rows", True):
        cap_seg = max(0, cap_seg - n_axons)             # room for one list entry per row
    seg_axon, seg_base, seg_count, seg_first = [], [], [], []
    kernel_weight, kernel_plastic = [], []
    if cap_seg > 0 and rng.random() < 0.75:
        room = cap_s - len(target)                      # synapse words left for kernel words
        n_kernel = _biased(rng, 1, min(16, 2 * n_neurons, room), extra=(2,)) if room > 0 else 0
        same = rng.random() < 0.3                      # equal words: equal inputs, WTA ties
        for _ in range(n_kernel):
            is_plastic = "shared_learning" in features and bool(rng.random() < max(p_plastic, 0.8 if learning else 0.0))
            kernel_plastic.append(is_plastic)
            if same and kernel_weight:
                kernel_weight.append(kernel_weight[-1] if not is_plastic or w_min <= kernel_weight[-1] <= w_max
                                     else _biased(rng, w_min, w_max))
            else:
                kernel_weight.append(_biased(rng, w_min, w_max) if is_plastic else _biased(rng, wlo, whi))
        covered = {}                                    # axon -> neurons it reaches already
        for a, n in zip(axon.tolist(), target.tolist()):
            covered.setdefault(a, set()).add(n)
        bases = sorted({int(rng.integers(0, n_kernel)) for _ in range(2)}) if n_kernel else []
        for _ in range(int(rng.integers(1, 2 * n_axons + 2)) if n_kernel else 0):
            if len(seg_base) >= cap_seg:
                break
            a = int(rng.integers(n_axons))
            b = int(rng.choice(bases)) if rng.random() < 0.7 else int(rng.integers(n_kernel))
            count = _biased(rng, 1, min(n_neurons, n_kernel - b), extra=(2,))
            first = int(rng.integers(0, n_neurons - count + 1))
            window = set(range(first, first + count))
            if window & covered.get(a, set()):
                continue                                # an axon reaches a neuron once
            covered.setdefault(a, set()).update(window)
            seg_axon.append(a)
            seg_base.append(b)
            seg_count.append(count)
            seg_first.append(first)
        # shifted copies of one axon's segments on other axons: lists the core may store once
        donors = sorted(set(seg_axon))
        for _ in range(int(rng.integers(0, n_axons + 1)) if donors and rng.random() < 0.6 else 0):
            a, b = int(rng.choice(donors)), int(rng.integers(n_axons))
            mine = [i for i, x in enumerate(seg_axon) if x == a]
            if b in seg_axon or len(seg_base) + len(mine) > cap_seg:   # b: a pure shifted copy
                continue
            lo = min(seg_first[i] for i in mine)
            hi = max(seg_first[i] + seg_count[i] for i in mine)
            shift = int(rng.integers(-lo, n_neurons - hi + 1))
            window = set().union(*(range(seg_first[i] + shift, seg_first[i] + shift + seg_count[i]) for i in mine))
            if window & covered.get(b, set()):
                continue
            covered.setdefault(b, set()).update(window)
            for i in mine:
                seg_axon.append(b)
                seg_base.append(seg_base[i])
                seg_count.append(seg_count[i])
                seg_first.append(seg_first[i] + shift)
    order = np.argsort(np.array(seg_axon, np.int64), kind="stable")
    seg_axon = np.array(seg_axon, np.int64)[order]
    seg_base = np.array(seg_base, np.int64)[order]             # relative to the first kernel word
    seg_count = np.array(seg_count, np.int64)[order]
    seg_first = np.array(seg_first, np.int64)[order]
    kernel_weight = np.array(kernel_weight, np.int64)
    kernel_plastic = np.array(kernel_plastic, bool)

    def all_uses():
        """(targets, weights, plastic flags) of every use: rows, then segments."""
        j = [np.arange(c) for c in seg_count]
        seg_target = np.concatenate([f + jj for f, jj in zip(seg_first, j)] or [np.zeros(0, np.int64)])
        seg_word = np.concatenate([b + jj for b, jj in zip(seg_base, j)] or [np.zeros(0, np.int64)])
        return (np.concatenate([target, seg_target]).astype(np.int64),
                np.concatenate([weight, kernel_weight[seg_word]]).astype(np.int64),
                np.concatenate([plastic, kernel_plastic[seg_word]]))

    # -- accumulator width: the bound of section 3 must hold ---------------------------------------
    def needed():
        return accumulator_bits(*accumulator_bounds(n_neurons, *all_uses(), lp))

    if "accumulator_bits" in fixed:
        C = fixed["accumulator_bits"]
    else:
        C = max(W, needed())
        if rng.random() < 0.4:
            C += int(rng.choice([1, 2, 8, 32]))
        C = min(C, CONFIG_RANGES["accumulator_bits"][1])
    while needed() > C:       # drop a segment of an offending neuron, else turn its last synapse into a gap
        upper, lower = accumulator_bounds(n_neurons, *all_uses(), lp)
        chi, clo = (1 << (C - 1)) - 1, -(1 << (C - 1))
        bad = int(np.flatnonzero((upper > chi) | (lower < clo))[0])
        mine = np.flatnonzero((seg_first <= bad) & (bad < seg_first + seg_count))
        if mine.size:
            keep = np.arange(len(seg_base)) != mine[-1]
            seg_axon, seg_base, seg_count, seg_first = (seg_axon[keep], seg_base[keep], seg_count[keep],
                                                        seg_first[keep])
            continue
        gap = int(np.flatnonzero((target == bad) & (plastic | (weight != 0)))[-1])
        weight[gap], plastic[gap] = 0, False
    n_synapses = len(target)

    # -- neuron parameters (section 2) -------------------------------------------------------------
    def neuron():
        threshold = (int(rng.integers(1, min(theta_max, 2 * wscale) + 1)) if rng.random() < 0.7
                     else _biased(rng, 1, theta_max, extra=(2,)))
        return dict(
            threshold=threshold,
            leak_shift=_biased(rng, 0, V - 1, extra=(2, 3)),
            reset_mode=int(rng.integers(2)),
            refractory=_biased(rng, 0, REFRACTORY_MAX, extra=(0, 2, 3)) if rng.random() < 0.7 else 0,
            bias=(int(rng.integers(max(vlo, -(wscale // 4)), min(vhi, wscale // 2) + 1)) if rng.random() < 0.8
                  else _biased(rng, vlo, vhi)),
            theta_inc=_small_or_biased(rng, 0, theta_max, wscale) if adaptive else 0,
            theta_decay_shift=_biased(rng, 0, V - 1, extra=(2, 3)),
            theta=_small_or_biased(rng, 0, theta_max, wscale) if adaptive and rng.random() < 0.5 else 0,
        )

    groups_used = sorted({_biased(rng, 1, G) for _ in range(int(rng.integers(1, 4)))})
    p_group = float(rng.choice([0.0, 0.5, 0.9, 1.0])) if wta else 0.0
    # parameter classes: a fixed limit, or (feature) a core sized to the classes drawn
    class_limit = fixed.get("param_classes", 0)
    classy = class_limit > 0 or ("param_classes" in features and "param_classes" not in fixed
                                 and rng.random() < 0.67)
    palette = None
    if class_limit > 0 or (classy and rng.random() < 0.6):
        size = int(rng.integers(1, max(1, class_limit // 8 if class_limit else 4) + 1))
        # a class key is (set, group or 0 once a block takes the neuron, routed, output):
        # below 8 classes, fewer of those may vary
        grouped = p_group if not 0 < class_limit < 8 else 0.0
        palette = [dict(neuron(), wta_group=int(rng.choice(groups_used)) if rng.random() < grouped else 0)
                   for _ in range(size)]
    rows = []
    for n in range(n_neurons):
        if palette is not None:                       # theta is state: it may differ per neuron
            row = dict(palette[int(rng.integers(len(palette)))])
            if adaptive and rng.random() < 0.5:
                row["theta"] = _small_or_biased(rng, 0, theta_max, wscale)
        elif n > 0 and rng.random() < 0.25:           # a clone of an earlier neuron (WTA ties)
            row = dict(rows[int(rng.integers(n))])
        else:
            row = neuron()
        if palette is None:
            row["wta_group"] = int(rng.choice(groups_used)) if rng.random() < p_group else 0
        rows.append(row)
    cap_blocks = fixed.get("wta_blocks", WTA_BLOCKS_MAX if "structural_wta" in features else 0)
    block_ranges = []
    if wta and cap_blocks > 0 and rng.random() < 0.5:
        start = int(rng.integers(0, n_neurons))
        for _ in range(int(rng.integers(1, cap_blocks + 1))):
            size = _biased(rng, 1, min(WTA_K_MAX + 2, n_neurons - start), extra=(2,)) if start < n_neurons else 0
            if size == 0:
                break
            count = int(rng.integers(1, (n_neurons - start) // size + 1))
            k = _biased(rng, 1, min(size, WTA_K_MAX))
            block_ranges.append((start, size, count, k))
            clones = rng.random() < 0.5                 # a block of equal neurons: ties
            for n in range(start, start + size * count):
                if clones and (n - start) % size:
                    rows[n] = dict(rows[n - 1])
                rows[n]["wta_group"] = 0                # a neuron is in at most one group
            start += size * count + int(rng.integers(0, 3))
    neurons = NeuronParams(**{k: [r[k] for r in rows] for k in
                              ("threshold", "leak_shift", "reset_mode", "refractory", "bias",
                               "theta_inc", "theta_decay_shift", "wta_group")})
    theta = [r["theta"] for r in rows]

    # -- routes and outputs --------------------------------------------------------------------------
    internal = np.arange(n_inputs, n_axons)
    k = int(rng.integers(0, min(n_neurons, len(internal)) + 1))
    if len(internal) and rng.random() < 0.5:
        k = min(n_neurons, len(internal))             # often: every internal axon that can be driven is
    route = np.full(n_neurons, NO_ROUTE, np.int64)
    if palette is not None:                           # like a layer: neurons f.. to axons g.., in order
        f = int(rng.integers(0, n_neurons - k + 1))
        g = int(rng.integers(0, len(internal) - k + 1)) if k else 0
        route[f:f + k] = internal[g:g + k]
    else:
        route[rng.choice(n_neurons, size=k, replace=False)] = rng.choice(internal, size=k, replace=False)
    if palette is not None and class_limit == 1:
        route[:] = NO_ROUTE
    n_out = n_neurons if rng.random() < 0.4 else int(rng.integers(0, n_neurons + 1))
    if palette is not None and 0 < class_limit < 4:
        n_out = n_neurons if rng.random() < 0.5 else 0
    outputs = rng.permutation(n_neurons)[:n_out]

    # -- capacities ----------------------------------------------------------------------------------
    def capacity(name, used, low):
        if name in fixed:
            return fixed[name]
        return max(low, used + (0 if rng.random() < 0.5 else int(rng.integers(1, 5))))

    config = fixed_config if fixed_config is not None else CoreConfig(
        neurons=capacity("neurons", n_neurons, 1), axons=capacity("axons", n_axons, 1),
        synapses=capacity("synapses", n_synapses, 1), weight_bits=W, membrane_bits=V,
        accumulator_bits=C, trace_bits=X, wta_groups=G, learning=learning, wta=wta,
        adaptive_threshold=adaptive,
        segments=capacity("segments", len(seg_base), 0) if len(seg_base) else 0,
        wta_blocks=min(WTA_BLOCKS_MAX, capacity("wta_blocks", len(block_ranges), 0)) if block_ranges else 0)
    if len(kernel_weight) and config.synapses < n_synapses + len(kernel_weight):
        config = dataclasses.replace(config, synapses=n_synapses + len(kernel_weight))

    program = CoreProgram.from_synapses(
        dataclasses.replace(config, rows=True), n_inputs=n_inputs, n_axons=n_axons, axon=axon, target=target, weight=weight,
        plastic=plastic, neurons=neurons, route=route, outputs=outputs, learning=lp, theta=theta)
    if len(seg_base) or len(kernel_weight) or block_ranges:
        rows_used = program.n_row_synapses
        seg_ptr = np.zeros(n_axons + 1, np.int64)
        seg_ptr[1:] = np.cumsum(np.bincount(seg_axon, minlength=n_axons))
        program = dataclasses.replace(
            program, weight=np.concatenate([program.weight, kernel_weight]),
            plastic=np.concatenate([program.plastic, kernel_plastic]),
            segments=_stored(rng, Segments.csr(seg_ptr, base=seg_base + rows_used, count=seg_count, first=seg_first),
                             config.neuron_index_bits),
            wta_blocks=WtaBlocks(*(np.array(c, np.int64).reshape(-1) for c in zip(*block_ranges)))
            if block_ranges else None)

    if rowless:       # the rows drawn, as one-entry lists (a fixed config: its table has room)
        program = program.rows_as_lists(None if config.rows else config)

    if classy and fixed_config is None:
        config = dataclasses.replace(program.config, param_classes=0)
        n_classes = len(dataclasses.replace(program, config=config).param_classes())
        program = dataclasses.replace(program, config=dataclasses.replace(
            config, param_classes=capacity("param_classes", n_classes, 1)))

    inputs = random_inputs(rng, n_inputs, overrides.get("steps"), batch=overrides.get("batch"),
                           density=overrides.get("density"), max_steps=overrides.get("max_steps", 30))
    return program, inputs


def random_state(rng, program: CoreProgram) -> CoreState:
    """A random state ``program`` could be in: every field within its width (section 2), plastic
    weights within ``[w_min, w_max]``, fixed weights as loaded, ``pending`` on internal axons only,
    theta 0 without ``adaptive_threshold``."""
    rng = _as_rng(rng)
    cfg = program.config
    n, a = program.n_neurons, program.n_axons
    vlo, vhi = cfg.membrane_range

    def draw(count, lo, hi):
        return np.array([_biased(rng, lo, hi) for _ in range(count)], np.int64)

    theta = draw(n, 0, cfg.theta_max) if cfg.adaptive_threshold else np.zeros(n, np.int64)
    pending = rng.random(a) < float(rng.choice([0.0, 0.5, 1.0]))
    pending[:program.n_inputs] = False
    weight = program.weight.copy()
    lp = program.learning
    for s in np.flatnonzero(program.plastic):
        weight[s] = _biased(rng, lp.w_min, lp.w_max)
    refrac = draw(n, 0, REFRACTORY_MAX) * (rng.random(n) < 0.5)
    return CoreState(v=draw(n, vlo, vhi), refrac=refrac, theta=theta,
                     y=draw(n, 0, cfg.trace_max), x=draw(a, 0, cfg.trace_max), pending=pending,
                     weight=weight)


def random_chip_program(rng, *, rows: int | None = None, cols: int | None = None, steps: int | None = None,
                        batch: int | None = None, **core_overrides):
    """A random chip program (docs/core-spec.md, section 9) and chip input spikes.

    A ``rows x cols`` grid (default: 1..4 each, small grids more often) of random core
    programs of one random config (``core_overrides``: its fields, as for
    :func:`random_program`); every host axon of every core is driven by one of up to 8 chip
    inputs (several host axons share an input), by a random neuron of another core (a
    remote entry; a neuron may get several: multicast) or by nothing. Returns
    ``(chip, inputs)``, inputs bool ``[T, n_inputs]`` (``[batch, T, n_inputs]`` with ``batch``).
    """
    from ..hw.chip import ChipConfig, ChipProgram, Routes

    rng = _as_rng(rng)
    rows = rows or int(rng.choice([1, 1, 2, 2, 3, 4]))
    cols = cols or int(rng.choice([1, 2, 2, 3, 4]))
    first, _ = random_program(rng, **core_overrides)
    config = first.config
    cores = [first]
    for _ in range(rows * cols - 1):
        n_inputs = int(rng.integers(0, min(config.axons, 10) + 1))
        cores.append(random_program(rng, config=config, n_inputs=n_inputs)[0])
    lists = [[[] for _ in range(p.n_neurons)] for p in cores]
    senders = [(k, n) for k, p in enumerate(cores) for n in range(p.n_neurons)]
    n_chip_inputs = int(rng.integers(0, 9))
    inputs = [[] for _ in range(n_chip_inputs)]
    for j, program in enumerate(cores):         # each host axon: a chip input, a remote neuron or none
        others = [s for s in senders if s[0] != j]
        for a in range(program.n_inputs):
            draw = rng.random()
            if draw < 0.45 and n_chip_inputs:
                inputs[int(rng.integers(n_chip_inputs))].append((j, a))
            elif draw < 0.9 and others:
                k, n = others[int(rng.integers(len(others)))]
                lists[k][n].append((j, a))
    to_host = []
    for k, program in enumerate(cores):          # senders become outputs, off the host stream
        senders = [n for n, entries in enumerate(lists[k]) if entries and n not in set(program.outputs.tolist())]
        flags = [True] * program.n_outputs + [False] * len(senders)
        if senders:
            cores[k] = dataclasses.replace(program, outputs=np.concatenate([program.outputs, senders]).astype(np.int64))
        to_host.append(np.array(flags, bool))
    chip = ChipProgram(ChipConfig(rows=rows, cols=cols, core=config), cores,
                       [Routes.from_lists(lst) for lst in lists], Routes.from_lists(inputs), to_host)
    spikes = random_inputs(rng, n_chip_inputs, steps, batch=batch)
    return chip, spikes
