"""The look-up front end shared by the integrator and the LTP engine: key -> range -> indices."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RangeWalker"]


class RangeWalker(wiring.Component):
    """Turns a stream of keys into runs of consecutive indices, one index per enabled cycle.

    For every key accepted on ``keys`` the parent's look-up memory is read at ``key_addr``
    (a read port with one cycle of latency, always enabled); in the next cycle the parent
    presents the word's range on ``start`` (the first value of each index field) and
    ``count``. The walker then issues ``count`` indices: ``index = start + j`` (every field
    plus ``j``) for ``j = 0 .. count-1``, one per cycle in which ``hold`` is low (``issue``
    high). Two stages:

    * P (look-up): one key buffered. While P cannot advance its key is presented again on
      ``key_addr``, so the look-up port needs no data hold while stalled.
    * G (generator): loads the next range in the cycle it issues the last index of the
      current one, so consecutive ranges follow each other without a bubble.

    With ``drop_empty`` a range with ``count == 0`` is dropped in P without being loaded
    (it costs no cycle while a range is being issued); without it an empty range is loaded
    and costs one cycle. ``key`` is the key of the range in G (for the parent to tag its
    indices with).

    Parameters (keyword-only)
    -------------------------
    key_bits : int
    fields : dict mapping a field name to its width
        The index fields, each incremented by one per issued index.
    count_bits : int
    drop_empty : bool

    Members
    -------
    keys : In(stream.Signature(unsigned(key_bits)))
    key_addr : Out(key_bits)
    start : In(data.StructLayout(fields)); count : In(count_bits)
    hold : In(1)
    issue : Out(1); index : Out(data.StructLayout(fields)); key : Out(key_bits)
    busy : Out(1)
        A key is in P or indices are left to issue.
    """

    def __init__(self, *, key_bits: int, fields: dict, count_bits: int, drop_empty: bool):
        for name, value in (("key_bits", key_bits), ("count_bits", count_bits), *fields.items()):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RangeWalker: {name} must be an int >= 1, got {value!r}")
        self._drop_empty = bool(drop_empty)
        layout = data.StructLayout({name: unsigned(width) for name, width in fields.items()})
        super().__init__({
            "keys": In(stream.Signature(unsigned(key_bits))),
            "key_addr": Out(key_bits),
            "start": In(layout),
            "count": In(count_bits),
            "hold": In(1),
            "issue": Out(1),
            "index": Out(layout),
            "key": Out(key_bits),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # -- stage P: the look-up, one key buffered ---------------------------------------------
        p_valid = Signal()
        p_key = Signal.like(self.keys.payload)
        p_take = Signal()                      # P is consumed (loaded into G, or dropped)
        accept = Signal()
        m.d.comb += [
            accept.eq(~p_valid | p_take),
            self.keys.ready.eq(accept),
            self.key_addr.eq(Mux(accept, self.keys.payload, p_key)),
        ]
        with m.If(accept):
            m.d.sync += [p_valid.eq(self.keys.valid), p_key.eq(self.keys.payload)]

        # -- stage G: the index generator -------------------------------------------------------
        left = Signal.like(self.count)
        pending = Signal()                     # an index is waiting to be issued
        m.d.comb += [
            pending.eq(left != 0),
            self.issue.eq(pending & ~self.hold),
            self.busy.eq(p_valid | pending),
        ]
        take_next = ~pending | (left == 1) & ~self.hold
        if self._drop_empty:
            empty = self.count == 0
            m.d.comb += p_take.eq(p_valid & (empty | take_next))
            load = p_take & ~empty
        else:
            m.d.comb += p_take.eq(p_valid & take_next)
            load = p_take
        fields = list(self.index.shape().members)
        with m.If(load):
            m.d.sync += [left.eq(self.count), self.key.eq(p_key)]
            m.d.sync += [getattr(self.index, f).eq(getattr(self.start, f)) for f in fields]
        with m.Elif(self.issue):
            m.d.sync += left.eq(left - 1)
            m.d.sync += [getattr(self.index, f).eq(getattr(self.index, f) + 1) for f in fields]
        return m
