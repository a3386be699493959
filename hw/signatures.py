"""Named port groups that recur between the blocks of the core."""
from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import CoreConfig
from .host import output_spike_layout
from .layouts import fired_layout, segment_layout, synapse_layout
from .widths import AMPLITUDE_BITS, LEARN_SHIFT_BITS, TRACE_DECAY_BITS, WTA_K_MAX

__all__ = ["LearningSignature", "WtaBlocksSignature", "axon_stream", "neuron_stream", "fired_stream",
           "output_spike_stream", "synapse_ports", "segment_ports"]


def synapse_ports(config: CoreConfig) -> dict:
    """The members ``syn_rd``, ``syn_wr`` of a client of the synapse memory (the integrator's
    LTD, the LTP engine): memory ports the client drives. The memory is single-port, so a
    client never enables both in one cycle (hw/arbiter.py)."""
    shape, bits = synapse_layout(config), config.synapse_address_bits
    return {"syn_rd": In(memory.ReadPort.Signature(addr_width=bits, shape=shape)),
            "syn_wr": In(memory.WritePort.Signature(addr_width=bits, shape=shape))}


def segment_ports(config: CoreConfig) -> dict:
    """The member ``seg_rd`` of a client of the segment table (the integrator, the LTP
    engine): its read port, present only with a table (``config.segments > 0``)."""
    if not config.segments:
        return {}
    return {"seg_rd": In(memory.ReadPort.Signature(addr_width=config.segment_index_bits,
                                                   shape=segment_layout(config)))}


# The spike streams. ``stream.Signature`` cannot be subclassed (Amaranth 0.5), so each is a
# named constructor; equal configs give equal signatures.

def axon_stream(config: CoreConfig) -> stream.Signature:
    """Axon ids: host input spikes (``spike_in``) and the active axons fed to the integrator."""
    return stream.Signature(unsigned(config.axon_index_bits))


def neuron_stream(config: CoreConfig) -> stream.Signature:
    """Neuron ids: the fired neurons the LTP engine visits."""
    return stream.Signature(unsigned(config.neuron_index_bits))


def fired_stream(config: CoreConfig) -> stream.Signature:
    """Fired neurons leaving the neuron unit, with their route and output flag."""
    return stream.Signature(fired_layout(config))


def output_spike_stream(config: CoreConfig) -> stream.Signature:
    """Output spikes ``(neuron, step)`` (``spike_out``; the layout of ``hw/host.py``)."""
    return stream.Signature(output_spike_layout(config))


class LearningSignature(wiring.Signature):
    """The learning parameters of spec section 4, as the register file drives them.

    ``a_plus``, ``a_minus`` (``AMPLITUDE_BITS``), ``shift`` (``LEARN_SHIFT_BITS``),
    ``pre_decay_shift``, ``post_decay_shift`` (``TRACE_DECAY_BITS``), ``pre_jump``,
    ``post_jump`` (``X`` = ``trace_bits``), ``w_min``, ``w_max`` (``signed(W)``),
    ``soft_bound`` (1). All are ``Out`` from the register file; a block takes them as
    ``In(LearningSignature(config))`` and reads the fields it needs (they are stable while
    the block is busy: the host writes registers only while the core is idle).
    """

    def __init__(self, config: CoreConfig):
        if not isinstance(config, CoreConfig):
            raise ValueError(f"LearningSignature: config must be a CoreConfig, got {config!r}")
        self._config = config
        w, x = config.weight_bits, config.trace_bits
        super().__init__({
            "a_plus": Out(AMPLITUDE_BITS),
            "a_minus": Out(AMPLITUDE_BITS),
            "shift": Out(LEARN_SHIFT_BITS),
            "pre_decay_shift": Out(TRACE_DECAY_BITS),
            "post_decay_shift": Out(TRACE_DECAY_BITS),
            "pre_jump": Out(unsigned(x)),
            "post_jump": Out(unsigned(x)),
            "w_min": Out(signed(w)),
            "w_max": Out(signed(w)),
            "soft_bound": Out(1),
        })

    def __eq__(self, other):
        return type(other) is type(self) and other._config == self._config

    def __hash__(self):
        return hash((type(self), self._config))

    def __repr__(self):
        return f"LearningSignature({self._config!r})"


class WtaBlocksSignature(wiring.Signature):
    """The structural WTA block ranges of docs/core-spec.md (section 5, phase 2), as the
    register file drives them.

    ``R = ranges = config.wta_blocks`` (0 without ``config.wta``: block ranges need WTA) range
    slots ``r = 0 .. R-1``, each ``(first, size, count, k)``: ``count`` blocks of ``size``
    consecutive neurons from neuron ``first``, each keeping its ``k`` best candidates.
    Every member is an array over the slots, ``Out`` from the register file:

    ========= ==================================== =========================================
    member    element shape                        meaning
    ========= ==================================== =========================================
    ``first`` ``unsigned(neuron_index_bits)``      first neuron of the range
    ``size``  ``unsigned(neuron_index_bits + 1)``  neurons per block, ``1 .. neurons``
    ``count`` ``unsigned(neuron_index_bits + 1)``  blocks, ``1 .. neurons``; **0: slot unused**
    ``k``     ``unsigned(3)``                      winners per block, ``1 .. min(size, WTA_K_MAX)``
    ========= ==================================== =========================================

    A program with fewer ranges than ``R`` leaves the other slots at ``count = 0`` (the
    register file's reset value); the ranges may be loaded in any order (they must not
    overlap, ``CoreProgram.validate()``). With ``R == 0`` the signature has no members and
    no block takes it. A block takes it as ``In(WtaBlocksSignature(config))``; the values are
    stable while the block is busy (the host writes registers only while the core is idle).
    """

    K_BITS = (WTA_K_MAX).bit_length()      # k = 1 .. WTA_K_MAX: 3 bits

    def __init__(self, config: CoreConfig):
        if not isinstance(config, CoreConfig):
            raise ValueError(f"WtaBlocksSignature: config must be a CoreConfig, got {config!r}")
        self._config = config
        self.ranges = config.wta_blocks if config.wta else 0
        nib = config.neuron_index_bits
        members = {}
        if self.ranges:
            members = {
                "first": Out(data.ArrayLayout(unsigned(nib), self.ranges)),
                "size": Out(data.ArrayLayout(unsigned(nib + 1), self.ranges)),
                "count": Out(data.ArrayLayout(unsigned(nib + 1), self.ranges)),
                "k": Out(data.ArrayLayout(unsigned(self.K_BITS), self.ranges)),
            }
        super().__init__(members)

    def __eq__(self, other):
        return type(other) is type(self) and other._config == self._config

    def __hash__(self):
        return hash((type(self), self._config))

    def __repr__(self):
        return f"WtaBlocksSignature({self._config!r})"
