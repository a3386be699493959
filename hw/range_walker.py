"""The look-up front end shared by the integrator and the LTP engine: key -> range -> indices."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RangeWalker", "lookup_stage"]


def lookup_stage(m: Module, keys, lookup, take) -> tuple[Signal, Signal]:
    """Stage P of a walker: one key of the stream ``keys`` buffered while ``lookup`` (a read
    port, one cycle of latency, always enabled) reads its word. ``take`` (driven by the
    caller) consumes the buffered key; a new key is accepted when P is empty or taken. While
    P waits, its key is presented again on ``lookup.addr``, so the port needs no data hold.
    Returns ``(valid, key)`` of the buffered key (its word is on ``lookup.data``)."""
    valid = Signal()
    key = Signal.like(keys.payload)
    accept = Signal()
    m.d.comb += [
        accept.eq(~valid | take),
        keys.ready.eq(accept),
        lookup.en.eq(1),
        lookup.addr.eq(Mux(accept, keys.payload, key)),
    ]
    with m.If(accept):
        m.d.sync += [valid.eq(keys.valid), key.eq(keys.payload)]
    return valid, key


class RangeWalker(wiring.Component):
    """Turns a stream of keys into runs of consecutive indices, one index per enabled cycle.

    For every key accepted on ``keys`` the look-up memory is read at the key on ``lookup``
    (a read port with one cycle of latency, always enabled); its word gives the range: the
    first value of every index field (``starts`` names the word field of each) and the
    word's ``count``. The walker then issues ``count`` indices, ``index = first + j``
    (every field plus ``j``) for ``j = 0 .. count-1``, one per cycle in which ``hold`` is
    low (``issue`` high). Two stages:

    * P (look-up): one key buffered. While P cannot advance its key is presented again on
      ``lookup.addr``, so the look-up port needs no data hold while stalled.
    * G (generator): loads the next range in the cycle it issues the last index of the
      current one, so consecutive ranges follow each other without a bubble.

    With ``drop_empty`` a range with ``count == 0`` is dropped in P without being loaded
    (it costs no cycle while a range is being issued); without it an empty range is loaded
    and costs one cycle. ``key`` is the key of the range in G (for the parent to tag its
    indices with).

    Parameters (keyword-only)
    -------------------------
    key_bits : int
    word : data.StructLayout
        The look-up word; it has a field ``count``.
    starts : dict mapping an index field name to a field of ``word``
        The index fields (as wide as their word fields), each incremented by one per index.
    drop_empty : bool

    Members
    -------
    keys : In(stream.Signature(unsigned(key_bits)))
    lookup : In(memory.ReadPort.Signature(addr_width=key_bits, shape=word))
    hold : In(1)
    issue : Out(1); index : Out(data.StructLayout(fields)); key : Out(key_bits)
    busy : Out(1)
        A key is in P or indices are left to issue.
    """

    def __init__(self, *, key_bits: int, word: data.StructLayout, starts: dict, drop_empty: bool):
        if not isinstance(key_bits, int) or isinstance(key_bits, bool) or key_bits < 1:
            raise ValueError(f"RangeWalker: key_bits must be an int >= 1, got {key_bits!r}")
        fields = dict(word.members) if isinstance(word, data.StructLayout) else {}
        if "count" not in fields or not starts or not set(starts.values()) <= set(fields):
            raise ValueError(f"RangeWalker: word must be a StructLayout with a field count and "
                             f"the fields {sorted(starts.values())} of starts, got {word!r}")
        self._drop_empty = bool(drop_empty)
        self._starts = dict(starts)
        layout = data.StructLayout({name: fields[f] for name, f in starts.items()})
        super().__init__({
            "keys": In(stream.Signature(unsigned(key_bits))),
            "lookup": In(memory.ReadPort.Signature(addr_width=key_bits, shape=word)),
            "hold": In(1),
            "issue": Out(1),
            "index": Out(layout),
            "key": Out(key_bits),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # -- stage P: the look-up, one key buffered ---------------------------------------------
        p_take = Signal()                      # P is consumed (loaded into G, or dropped)
        p_valid, p_key = lookup_stage(m, self.keys, self.lookup, p_take)

        # -- stage G: the index generator -------------------------------------------------------
        word = self.lookup.data
        left = Signal.like(word.count)
        pending = Signal()                     # an index is waiting to be issued
        m.d.comb += [
            pending.eq(left != 0),
            self.issue.eq(pending & ~self.hold),
            self.busy.eq(p_valid | pending),
        ]
        take_next = ~pending | (left == 1) & ~self.hold
        if self._drop_empty:
            empty = word.count == 0
            m.d.comb += p_take.eq(p_valid & (empty | take_next))
            load = p_take & ~empty
        else:
            m.d.comb += p_take.eq(p_valid & take_next)
            load = p_take
        fields = list(self._starts)
        with m.If(load):
            m.d.sync += [left.eq(word.count), self.key.eq(p_key)]
            m.d.sync += [getattr(self.index, f).eq(getattr(word, self._starts[f])) for f in fields]
        with m.Elif(self.issue):
            m.d.sync += left.eq(left - 1)
            m.d.sync += [getattr(self.index, f).eq(getattr(self.index, f) + 1) for f in fields]
        return m
