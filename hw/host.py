"""The host interface of the core: opcodes, the address map and the stream payloads.

The host talks to the core over three streams (docs/hw.md, "Host interface"):

* ``cmd``: a :func:`command_layout` word: an :class:`Opcode`, a :class:`Region`, an index
  and a data word (``data_bits(config)`` wide: the widest memory word or register);
* ``rsp``: one data word per ``READ``;
* ``spike_in`` (axon ids of host inputs for the next step) and ``spike_out``
  (:func:`output_spike_layout`: neuron and step of every output spike).

Memory words are packed with the layouts of :mod:`neurocore.hw.layouts`: the data word of
a ``WRITE`` to region ``PARAM`` is ``neuron_param_layout(config)`` in its low bits, and so
on. The same packing is used by the host loader and by the compiler's memory images.
"""
from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from .config import CoreConfig
from .layouts import ltp_range_layout, neuron_param_layout, neuron_state_layout, pointer_layout, \
    segment_layout, synapse_layout
from .widths import COUNTER_BITS, INDEX_BITS

__all__ = ["Opcode", "Region", "Register", "command_layout", "output_spike_layout", "data_bits",
           "word_shape", "WTA_BLOCK_FIELDS", "wta_block_register"]


class Opcode(enum.Enum, shape=3):
    """What a ``cmd`` word asks for."""
    NOP = 0
    WRITE = 1   # write ``data`` to (region, index)
    READ = 2    # read (region, index); the word comes back on ``rsp``
    STEP = 3    # run one time step (learning as set by the LEARN register)
    CLEAR = 4   # clear state (docs/core-spec.md, section 6)


class Region(enum.Enum, shape=4):
    """The address map: one region per memory, plus the registers."""
    REG = 0        # registers, see :class:`Register`
    PARAM = 1      # neuron parameters, N words
    STATE = 2      # neuron state (v, refrac), N words
    THETA = 3      # theta, N words
    POST = 4       # post trace y, N words
    PRE = 5        # pre trace x, A words
    POINTER = 6    # axon -> synapse row (base, count, first target), A words
    SYNAPSE = 7    # synapses (weight, plastic), S words
    LTP_RANGE = 8  # neuron -> range of axons with a plastic synapse to it (for LTP), N words
    ACC = 9        # accumulators (read for debugging; zero between steps), N words
    SEGMENT = 10   # shared-row segments (base, count, first), config.segments words (when > 0)
    NCLASS = 11    # neuron -> parameter class, N words (when param_classes > 0; PARAM then holds the classes)


class Register(enum.Enum, shape=INDEX_BITS):
    """Registers in region ``REG`` (read/write unless noted)."""
    STATUS = 0            # read: bit 0 error (sticky), bit 1 busy; write bit 0 = 1 to clear
    N_NEURONS = 1         # active neuron count
    N_AXONS = 2           # active axon count
    N_INPUTS = 3          # host input axons 0 .. N_INPUTS-1
    LEARN = 4             # bit 0: learning enabled for STEP
    A_PLUS = 5
    A_MINUS = 6
    SHIFT = 7
    PRE_DECAY_SHIFT = 8
    POST_DECAY_SHIFT = 9
    PRE_JUMP = 10
    POST_JUMP = 11
    W_MIN = 12            # two's complement in W bits
    W_MAX = 13
    SOFT_BOUND = 14
    STEP_COUNT = 16       # read only: steps run since reset
    CYCLES = 17           # read only: clock cycles since reset
    SOPS = 18             # read only: synaptic operations since reset
    LAST_STEP_CYCLES = 19 # read only: cycles of the last STEP (command accepted to done)
    LAST_STEP_SOPS = 20   # read only: synaptic operations of the last STEP
    ERRORS = 21           # read only: number of rejected commands and spikes
    LTP_UPDATES = 22      # read only: LTP weight updates since reset
    FEED_CYCLES = 23      # read only: cycles the last STEP spent in phase FEED (integration)
    UPDATE_CYCLES = 24    # read only: cycles the last STEP spent in phase UPDATE (neuron pass)
    # Structural WTA block range r (r < wta_blocks, with wta): registers 32 + 4r .. 35 + 4r.
    WTA0_FIRST = 32
    WTA0_SIZE = 33
    WTA0_COUNT = 34       # 0: range slot unused
    WTA0_K = 35
    WTA1_FIRST = 36
    WTA1_SIZE = 37
    WTA1_COUNT = 38
    WTA1_K = 39
    WTA2_FIRST = 40
    WTA2_SIZE = 41
    WTA2_COUNT = 42
    WTA2_K = 43
    WTA3_FIRST = 44
    WTA3_SIZE = 45
    WTA3_COUNT = 46
    WTA3_K = 47


WTA_BLOCK_FIELDS = ("first", "size", "count", "k")


def wta_block_register(slot: int, field: str) -> Register:
    """The register of ``field`` (one of :data:`WTA_BLOCK_FIELDS`) of block range ``slot``."""
    return Register(Register.WTA0_FIRST.value + 4 * slot + WTA_BLOCK_FIELDS.index(field))


def word_shape(config: CoreConfig, region: Region):
    """The shape of one word of ``region`` (registers: ``COUNTER_BITS`` unsigned)."""
    return {
        Region.REG: unsigned(COUNTER_BITS),
        Region.PARAM: neuron_param_layout(config),
        Region.STATE: neuron_state_layout(config),
        Region.THETA: unsigned(config.membrane_bits - 1),
        Region.POST: unsigned(config.trace_bits),
        Region.PRE: unsigned(config.trace_bits),
        Region.POINTER: pointer_layout(config),
        Region.SYNAPSE: synapse_layout(config),
        Region.LTP_RANGE: ltp_range_layout(config),
        Region.ACC: unsigned(config.accumulator_bits),
        Region.SEGMENT: segment_layout(config),
        Region.NCLASS: unsigned(config.class_index_bits),
    }[region]


def data_bits(config: CoreConfig) -> int:
    """Width of the ``cmd``/``rsp`` data word: the widest memory word or register, exactly
    (no rounding: every extra bit is a flip-flop in ``rsp`` and a wire on the host link)."""
    from amaranth.hdl import Shape
    return max(Shape.cast(word_shape(config, r)).width for r in Region)


def command_layout(config: CoreConfig) -> data.StructLayout:
    return data.StructLayout({
        "op": Opcode,
        "region": Region,
        "index": unsigned(INDEX_BITS),
        "data": unsigned(data_bits(config)),
    })


def output_spike_layout(config: CoreConfig) -> data.StructLayout:
    return data.StructLayout({
        "neuron": unsigned(config.neuron_index_bits),
        "step": unsigned(COUNTER_BITS),
    })
