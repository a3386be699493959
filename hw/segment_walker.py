"""The integrator's front end with shared rows: axon -> its row, then its segments -> words."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import CoreConfig
from .layouts import pointer_layout, row_fields, segment_layout
from .range_walker import RangeWalker, lookup_stage

__all__ = ["SegmentWalker", "range_key_layout"]


def range_key_layout(config: CoreConfig) -> data.StructLayout:
    """One range to walk: the axon's row (``row``: its ``base``, ``count``, ``first``, taken
    from the pointer word) or the entry ``seg`` of the segment table, moved by the axon's list
    ``offset``. A core without rows (``config.rows`` false) has no row fields and ``row`` is
    always 0."""
    return data.StructLayout({
        "row": 1,
        "seg": config.segment_index_bits,
        **(row_fields(config) if config.rows else {}),
        "offset": pointer_layout(config).members["seg_offset"],
    })


class SegmentWalker(wiring.Component):
    """The uses of every axon (docs/core-spec.md, section 3), one per enabled cycle.

    For every axon accepted on ``axons``, the pointer word is read from ``ptr_rd`` (row
    ``base, count, first``; its segment list ``seg_start .. seg_start+seg_count-1`` and
    ``seg_offset``), and the walker issues the axon's uses in the spec's order: ``(addr,
    target) = (base + j, first + j)`` for ``j < count`` of the row, then ``(base + j, t0 + j)``
    for every entry of the list, whose ``(base, count, first)`` is read from ``seg_rd``,
    with ``t0 = (seg_offset + first) mod 2^nib`` (one adder after the table's read port).
    ``shared`` is high for the words of a segment (kernel words).

    Three stages, each holding one entry:

    * P (pointer): the axon buffered, its pointer read (as in
      :class:`~neurocore.hw.range_walker.RangeWalker`, the address is re-presented while P
      waits, so ``ptr_rd`` needs no data hold).
    * L (list): the axon's ranges, one per cycle: the row, then each segment index. It loads
      the next axon in the cycle it hands out the last range of the current one.
    * a :class:`RangeWalker` whose keys are those ranges and whose look-up reads the segment
      table (a row's word is the key itself, registered beside the read): it issues one use
      per cycle in which ``hold`` is low, loading the next range in the cycle it issues the
      last use of the current one.

    So uses follow each other without a bubble, across ranges and axons, whatever their
    lengths, except that every empty range costs one cycle: an axon with ``r`` segments
    and a row of ``c >= 0`` words takes ``max(c, 1) + (sum of its segment counts)`` cycles,
    and the first use is issued 3 cycles after its axon is accepted. On a core without rows
    (``config.rows`` false) an axon has no row range: it takes the sum of its segment counts
    (0 for an axon without segments).

    Members
    -------
    axons : In(stream.Signature(unsigned(axon_index_bits)))
    ptr_rd : In(memory.ReadPort.Signature(addr_width=axon_index_bits, shape=pointer_layout))
    seg_rd : In(memory.ReadPort.Signature(addr_width=segment_index_bits, shape=segment_layout))
    hold : In(1)
    issue : Out(1); addr : Out(synapse_address_bits); target : Out(neuron_index_bits)
    shared : Out(1)
    busy : Out(1)
    """

    def __init__(self, *, config: CoreConfig):
        if not isinstance(config, CoreConfig) or not config.segments:
            raise ValueError("SegmentWalker: needs a CoreConfig with a segment table (segments > 0)")
        self._config = config
        super().__init__({
            "axons": In(stream.Signature(config.axon_index_bits)),
            "ptr_rd": In(memory.ReadPort.Signature(addr_width=config.axon_index_bits,
                                                   shape=pointer_layout(config))),
            "seg_rd": In(memory.ReadPort.Signature(addr_width=config.segment_index_bits,
                                                   shape=segment_layout(config))),
            "hold": In(1),
            "issue": Out(1),
            "addr": Out(config.synapse_address_bits),
            "target": Out(config.neuron_index_bits),
            "shared": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        key_shape = range_key_layout(cfg)

        # -- stage P: the pointer look-up, one axon buffered --------------------------------------
        p_take = Signal()
        p_valid, _ = lookup_stage(m, self.axons, self.ptr_rd, p_take)

        # -- stage L: the ranges of one axon, the row first ---------------------------------------
        ranges = stream.Signature(key_shape).create()
        l_row = Signal()                               # the row is still to hand out
        l_seg = Signal(cfg.segment_index_bits)         # next segment
        l_left = Signal(cfg.segment_index_bits + 1)    # segments left
        l_word = Signal(key_shape)                     # the row's fields
        word = self.ptr_rd.data
        last = ranges.ready & (l_row & (l_left == 0) | ~l_row & (l_left == 1))
        m.d.comb += [
            ranges.valid.eq(l_row | (l_left != 0)),
            ranges.payload.eq(l_word),
            ranges.payload.row.eq(l_row),
            ranges.payload.seg.eq(l_seg),
            p_take.eq(p_valid & (~ranges.valid | last)),
        ]
        with m.If(p_take):
            m.d.sync += [l_row.eq(int(cfg.rows)), l_seg.eq(word.seg_start), l_left.eq(word.seg_count),
                         l_word.offset.eq(word.seg_offset)]
            if cfg.rows:
                m.d.sync += [l_word.base.eq(word.base), l_word.count.eq(word.count),
                             l_word.first.eq(word.first)]
        with m.Elif(ranges.valid & ranges.ready):
            with m.If(l_row):
                m.d.sync += l_row.eq(0)
            with m.Else():
                m.d.sync += [l_seg.eq(l_seg + 1), l_left.eq(l_left - 1)]

        # -- the range walker; its look-up: a segment word, or the row's own fields ---------------
        m.submodules.uses = uses = RangeWalker(
            key_bits=key_shape.size, word=segment_layout(cfg),
            starts={"addr": "base", "target": "first"}, drop_empty=False)
        m.d.comb += [uses.keys.valid.eq(ranges.valid), uses.keys.payload.eq(ranges.payload),
                     ranges.ready.eq(uses.keys.ready)]
        looked_up = Signal(key_shape)                  # the key the look-up is reading
        m.d.sync += looked_up.eq(uses.lookup.addr)
        key_in = data.View(key_shape, uses.lookup.addr)
        entry = self.seg_rd.data
        entry_first = (entry.first + looked_up.offset)[:cfg.neuron_index_bits]
        if cfg.rows:
            m.d.comb += [
                uses.lookup.data.base.eq(Mux(looked_up.row, looked_up.base, entry.base)),
                uses.lookup.data.count.eq(Mux(looked_up.row, looked_up.count, entry.count)),
                uses.lookup.data.first.eq(Mux(looked_up.row, looked_up.first, entry_first)),
            ]
        else:
            m.d.comb += [uses.lookup.data.base.eq(entry.base), uses.lookup.data.count.eq(entry.count),
                         uses.lookup.data.first.eq(entry_first)]
        m.d.comb += [
            self.seg_rd.addr.eq(key_in.seg),
            self.seg_rd.en.eq(uses.lookup.en),
            uses.hold.eq(self.hold),
            self.issue.eq(uses.issue),
            self.addr.eq(uses.index.addr),
            self.target.eq(uses.index.target),
            self.shared.eq(~data.View(key_shape, uses.key).row),
            self.busy.eq(p_valid | ranges.valid | uses.busy),
        ]
        return m
