"""Memory-word and stream-payload layouts of the core, all derived from a ``CoreConfig``.

These layouts are the bit-level form of docs/core-spec.md, sections 2-4: every RTL block,
the host loader and the compiler's memory images pack words with them, so a field's
width is written down exactly once.
"""
from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from .config import CoreConfig
from .widths import REFRACTORY_BITS, SHIFT_BITS

__all__ = ["neuron_param_layout", "neuron_state_layout", "synapse_layout", "pointer_layout",
           "row_fields", "segment_layout", "spike_layout", "fired_layout", "ltp_range_layout"]


def neuron_param_layout(config: CoreConfig) -> data.StructLayout:
    """One word per neuron (with parameter classes: per class): the parameters of spec section
    2, plus its route and output flag. ``theta_inc`` and ``theta_decay_shift`` exist only with
    ``adaptive_threshold``, ``wta_group`` only with ``wta`` (without them they are 0)."""
    v = config.membrane_bits
    fields = {
        "threshold": unsigned(v - 1),
        "leak_shift": unsigned(SHIFT_BITS),
        "reset_mode": unsigned(1),          # 0: to zero, 1: by subtraction
        "refractory": unsigned(REFRACTORY_BITS),
        "bias": signed(v),
    }
    if config.adaptive_threshold:
        fields["theta_inc"] = unsigned(v - 1)
        fields["theta_decay_shift"] = unsigned(SHIFT_BITS)
    if config.wta:
        fields["wta_group"] = unsigned(config.wta_group_bits)   # 0: none
    fields.update(route_valid=unsigned(1), route=unsigned(config.axon_index_bits), output=unsigned(1))
    return data.StructLayout(fields)


def neuron_state_layout(config: CoreConfig) -> data.StructLayout:
    """One word per neuron: membrane potential and refractory counter (theta, trace apart)."""
    return data.StructLayout({
        "v": signed(config.membrane_bits),
        "refrac": unsigned(REFRACTORY_BITS),
    })


def synapse_layout(config: CoreConfig) -> data.StructLayout:
    """One word per synapse address (spec section 3); its target follows from the address."""
    return data.StructLayout({
        "weight": signed(config.weight_bits),
        "plastic": unsigned(1),
    })


def pointer_layout(config: CoreConfig) -> data.StructLayout:
    """One word per axon: its row ``base .. base+count-1``, synapse ``base+j`` targeting
    neuron ``first+j`` (spec section 3). A row reaches each neuron once, so ``count <= N``.
    With a segment table (``config.segments > 0``) also its segment list, table entries
    ``seg_start .. seg_start+seg_count-1``, and the list's offset: an entry's first target is
    ``(seg_offset + first) mod 2^nib``. A core without rows (``config.rows`` false) has the
    list fields only (spec section 3: a row is then a one-entry list)."""
    fields = {}
    if config.rows:
        fields.update(row_fields(config))
    if config.segments:
        fields["seg_start"] = unsigned(config.segment_index_bits)
        fields["seg_count"] = unsigned(config.segment_index_bits + 1)
        fields["seg_offset"] = unsigned(config.neuron_index_bits)
    return data.StructLayout(fields)


def row_fields(config: CoreConfig) -> dict:
    """The fields of a row window ``(base, count, first)``: a pointer word's row and a segment
    table entry (``count <= N``, so ``nib + 1`` bits)."""
    return {
        "base": unsigned(config.synapse_address_bits),
        "count": unsigned(config.neuron_index_bits + 1),
        "first": unsigned(config.neuron_index_bits),
    }


def segment_layout(config: CoreConfig) -> data.StructLayout:
    """One word per segment (region SEGMENT, spec section 3): kernel words ``base .. base+count-1``
    driving neurons ``first .. first+count-1``; like a row, ``count <= N``."""
    return data.StructLayout(row_fields(config))


def spike_layout(config: CoreConfig) -> data.StructLayout:
    """A neuron spike on an internal stream (neuron update unit to router and STDP engine)."""
    return data.StructLayout({"neuron": unsigned(config.neuron_index_bits)})


def fired_layout(config: CoreConfig) -> data.StructLayout:
    """A spike leaving the neuron update unit: the neuron and where its spike goes (phase 3)."""
    return data.StructLayout({
        "neuron": unsigned(config.neuron_index_bits),
        "route_valid": unsigned(1),
        "route": unsigned(config.axon_index_bits),
        "output": unsigned(1),
    })


def ltp_range_layout(config: CoreConfig) -> data.StructLayout:
    """One word per neuron (region LTP_RANGE, docs/hw.md): the axons ``first .. first+count-1``
    that LTP of that neuron visits, from ``CoreProgram.ltp_ranges()`` (spec section 3)."""
    return data.StructLayout({
        "first": unsigned(config.axon_index_bits),
        "count": unsigned(config.axon_index_bits + 1),
    })

