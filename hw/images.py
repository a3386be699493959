"""Memory images: a :class:`CoreProgram` as the words of the core's memories, and back.

The same packing serves the host loader (cocotb driver), initial memory contents baked
into the Verilog, and the compiler's image files. Field order and widths come from
:mod:`neurocore.hw.layouts` through :func:`neurocore.hw.host.word_shape`.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

from .config import CoreConfig
from .host import WTA_BLOCK_FIELDS, Region, Register, word_shape, wta_block_register
from .layouts import neuron_param_layout
from .program import NEURON_FIELDS, NO_ROUTE, CoreProgram, CoreState

__all__ = ["pack", "pack_many", "unpack", "program_images", "program_registers", "state_images",
           "state_from_images"]


def _fields(shape):
    """(name, offset, width, signed) of every field; a plain shape is one field named ''."""
    if isinstance(shape, data.StructLayout):
        for name, field in shape:
            s = Shape.cast(field.shape)
            yield name, field.offset, s.width, s.signed
    else:
        s = Shape.cast(shape)
        yield "", 0, s.width, s.signed


def _check_names(shape, fields) -> None:
    """A field the word does not have is an error, not silently dropped."""
    unknown = sorted(set(fields) - {name for name, *_ in _fields(shape)})
    if unknown:
        known = ", ".join(name for name, *_ in _fields(shape)) or "value"
        raise ValueError(f"word has no field(s) {', '.join(unknown)} (fields: {known})")


def pack(shape, value=None, **fields) -> int:
    """Pack field values (or one plain ``value``) into an unsigned word of ``shape``.

    Raises ``ValueError`` when a value does not fit its field (nothing is truncated).
    """
    if value is not None:
        fields = {"": value}
    _check_names(shape, fields)
    word = 0
    for name, offset, width, signed in _fields(shape):
        v = fields.get(name, 0)
        if not isinstance(v, (int, np.integer, np.bool_)):
            raise ValueError(f"field {name or 'value'} must be an integer, got {v!r}")
        v = int(v)
        low, high = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        if not low <= v <= high:
            raise ValueError(f"field {name or 'value'} = {v} does not fit {width} "
                             f"{'signed' if signed else 'unsigned'} bits ({low}..{high})")
        word |= (v & ((1 << width) - 1)) << offset
    return word


def pack_many(shape, values=None, **fields) -> list[int]:
    """:func:`pack` over arrays: one word per element (vectorised; same checks, same words)."""
    if values is not None:
        fields = {"": values}
    _check_names(shape, fields)
    arrays = {name: np.asarray(v).reshape(-1) for name, v in fields.items()}
    for name, v in arrays.items():
        if v.size and v.dtype != np.bool_ and not np.issubdtype(v.dtype, np.integer):
            raise ValueError(f"field {name or 'value'} must hold integers, got dtype {v.dtype}")
    count = len(next(iter(arrays.values()))) if arrays else 0
    words = np.zeros(count, dtype=object)
    for name, offset, width, signed in _fields(shape):
        v = arrays.get(name, np.zeros(count, np.int64))
        low, high = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        bad = np.flatnonzero((v < low) | (v > high))
        if bad.size:
            raise ValueError(f"field {name or 'value'}[{int(bad[0])}] = {int(v[bad[0]])} does not fit "
                             f"{width} {'signed' if signed else 'unsigned'} bits ({low}..{high})")
        # The range was checked on the values as given (no int64 conversion could wrap them);
        # two's complement in ``width`` bits, then shifted into place as Python ints (words
        # may be wider than 64 bits).
        field = (v.astype(np.int64).astype(object) & ((1 << width) - 1)) << offset
        words = words + field
    return [int(w) for w in words]


def unpack(shape, word: int) -> dict | int:
    """Inverse of :func:`pack`: a dict of fields (a plain int for a plain shape)."""
    out = {}
    for name, offset, width, signed in _fields(shape):
        v = (int(word) >> offset) & ((1 << width) - 1)
        if signed and v >> (width - 1):
            v -= 1 << width
        out[name] = v
    return out[""] if "" in out else out


def param_fields(config, params: dict) -> dict:
    """The parameters of ``params`` that a PARAM word of ``config`` holds
    (:func:`~neurocore.hw.layouts.neuron_param_layout`: the theta fields only with
    ``adaptive_threshold``, the WTA group only with ``wta``; ``validate()`` keeps the others 0)."""
    members = neuron_param_layout(config).members
    return {name: value for name, value in params.items() if name in members}


def program_images(program: CoreProgram) -> dict[Region, list[int]]:
    """Every memory word the program defines, by region (state regions not included)."""
    cfg = program.config
    p = program.neurons
    images = {}
    if cfg.param_classes:
        # the class table, and each neuron's class (docs/core-spec.md, section 2)
        classes = program.param_classes()
        images[Region.PARAM] = pack_many(word_shape(cfg, Region.PARAM), **param_fields(cfg, classes.params),
                                         route_valid=classes.route_valid, route=classes.route_offset,
                                         output=classes.output)
        images[Region.NCLASS] = pack_many(word_shape(cfg, Region.NCLASS), classes.index)
    else:
        is_output = np.zeros(program.n_neurons, np.int64)
        is_output[program.outputs] = 1
        images[Region.PARAM] = pack_many(
            word_shape(cfg, Region.PARAM), **param_fields(cfg, {f: getattr(p, f) for f in NEURON_FIELDS}),
            route_valid=program.route != NO_ROUTE, route=np.maximum(program.route, 0), output=is_output)
    counts = np.diff(program.ptr)
    seg = program.segments
    segment_fields = (dict(seg_start=seg.start, seg_count=seg.length, seg_offset=seg.offset)
                      if cfg.segments else {})
    row_fields = (dict(count=counts, base=np.where(counts > 0, program.ptr[:-1], 0), first=program.row_first())
                  if cfg.rows else {})             # validate(): a core without rows has none
    images[Region.POINTER] = pack_many(word_shape(cfg, Region.POINTER), **row_fields, **segment_fields)
    if cfg.segments:
        images[Region.SEGMENT] = pack_many(word_shape(cfg, Region.SEGMENT), base=seg.base, count=seg.count,
                                           first=seg.first)
    images[Region.SYNAPSE] = pack_many(word_shape(cfg, Region.SYNAPSE), weight=program.weight,
                                       plastic=program.plastic)
    if cfg.adaptive_threshold:
        images[Region.THETA] = pack_many(word_shape(cfg, Region.THETA), program.theta)
    if cfg.learning:
        first, count = program.ltp_ranges()
        images[Region.LTP_RANGE] = pack_many(word_shape(cfg, Region.LTP_RANGE), first=first, count=count)
    return images


def program_registers(program: CoreProgram, *, learn: bool = False) -> dict[Register, int]:
    """Register values that run ``program`` (``learn``: STDP on for every STEP)."""
    lp = program.learning
    mask = (1 << program.config.weight_bits) - 1
    return {
        Register.N_NEURONS: program.n_neurons,
        Register.N_AXONS: program.n_axons,
        Register.N_INPUTS: program.n_inputs,
        Register.LEARN: int(learn),
        Register.A_PLUS: lp.a_plus,
        Register.A_MINUS: lp.a_minus,
        Register.SHIFT: lp.shift,
        Register.PRE_DECAY_SHIFT: lp.pre_decay_shift,
        Register.POST_DECAY_SHIFT: lp.post_decay_shift,
        Register.PRE_JUMP: lp.pre_jump,
        Register.POST_JUMP: lp.post_jump,
        Register.W_MIN: lp.w_min & mask,
        Register.W_MAX: lp.w_max & mask,
        Register.SOFT_BOUND: int(lp.soft_bound),
        **_block_registers(program),
    }


def _block_registers(program: CoreProgram) -> dict[Register, int]:
    """The WTA block range registers: the program's ranges, the other slots unused (count 0)."""
    cfg, blocks = program.config, program.wta_blocks
    values = {}
    for slot in range(cfg.wta_blocks if cfg.wta else 0):
        for field in WTA_BLOCK_FIELDS:
            values[wta_block_register(slot, field)] = (int(getattr(blocks, field)[slot])
                                                       if slot < len(blocks) else 0)
    return values


def state_images(config: CoreConfig, state: CoreState) -> dict[Region, list[int]]:
    """The state regions holding ``state`` (pending spikes are not host visible); a value
    that does not fit its word raises ``ValueError``, as in :func:`program_images`."""
    images = {Region.STATE: pack_many(word_shape(config, Region.STATE), v=state.v, refrac=state.refrac)}
    if config.adaptive_threshold:
        images[Region.THETA] = pack_many(word_shape(config, Region.THETA), state.theta)
    if config.learning:
        images[Region.POST] = pack_many(word_shape(config, Region.POST), state.y)
        images[Region.PRE] = pack_many(word_shape(config, Region.PRE), state.x)
    return images


def state_from_images(program: CoreProgram, images: dict[Region, list[int]]) -> CoreState:
    """Rebuild a :class:`CoreState` from words read back from the core.

    ``images`` must hold STATE and SYNAPSE words (and THETA, POST, PRE where configured);
    ``pending`` is not host visible and comes back as all-false.
    """
    cfg = program.config
    state = CoreState.initial(program)
    words = [unpack(word_shape(cfg, Region.STATE), w) for w in images[Region.STATE]]
    state.v[:] = [w["v"] for w in words]
    state.refrac[:] = [w["refrac"] for w in words]
    state.weight[:] = [unpack(word_shape(cfg, Region.SYNAPSE), w)["weight"] for w in images[Region.SYNAPSE]]
    if cfg.adaptive_threshold:
        state.theta[:] = images[Region.THETA]
    if cfg.learning:
        state.y[:] = images[Region.POST]
        state.x[:] = images[Region.PRE]
    return state
