"""One router of the chip's mesh (docs/core-spec.md, section 9): five ports, dimension order.

A packet is ``(row, col, axon)``: the destination core's position and the axon it drives
there (:func:`packet_layout`). The router at ``(row, col)`` of the grid forwards a packet
along its row first (``east`` while the destination column is larger, ``west`` while it is
smaller), then along its column (``south`` / ``north``), and delivers it on ``local`` when
both match. Every input port has a FIFO of ``link_fifo`` packets (the receiving end of a
link); every output port takes one packet per cycle from the inputs that want it, chosen
round-robin, and only when its ``ready`` is high: a full downstream FIFO stalls the packet,
which waits, and so does everything behind it. Nothing is ever dropped.

Ports are Amaranth streams (``valid``/``ready``, a packet moves in a cycle where both are
high). A router on the edge of the grid still has all five ports; the chip leaves the
outward ones unconnected (their inputs never valid), and dimension-order routing never
sends a packet out of the grid.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .chip import ChipConfig

__all__ = ["PORTS", "LOCAL", "NORTH", "EAST", "SOUTH", "WEST", "packet_layout", "packet_stream", "MeshRouter"]

PORTS = ("local", "north", "east", "south", "west")
LOCAL, NORTH, EAST, SOUTH, WEST = range(5)


def _bits(n: int) -> int:
    """Bits that index ``n`` items (at least 1)."""
    return max(1, (n - 1).bit_length())


def packet_layout(chip: ChipConfig) -> data.StructLayout:
    """``row``, ``col`` of the destination core and the ``axon`` there."""
    return data.StructLayout({"row": unsigned(_bits(chip.rows)), "col": unsigned(_bits(chip.cols)),
                              "axon": unsigned(chip.core.axon_index_bits)})


def packet_stream(chip: ChipConfig) -> stream.Signature:
    return stream.Signature(packet_layout(chip))


class MeshRouter(wiring.Component):
    """The router at ``(row, col)`` of ``chip``.

    Members
    -------
    i_local, i_north, i_east, i_south, i_west : In(packet_stream(chip))
        packets arriving (``local``: from this router's core).
    o_local, o_north, o_east, o_south, o_west : Out(packet_stream(chip))
        packets leaving (``local``: to this router's core).
    busy : Out(1)
        a packet is in a FIFO of this router (the barrier waits until no router is busy).
    """

    def __init__(self, *, chip: ChipConfig, row: int, col: int):
        if not isinstance(chip, ChipConfig):
            raise ValueError(f"MeshRouter: chip must be a ChipConfig, got {chip!r}")
        for name, value, high in (("row", row, chip.rows), ("col", col, chip.cols)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < high:
                raise ValueError(f"MeshRouter: {name} must be an integer in 0..{high - 1}, got {value!r}")
        self._chip, self._row, self._col = chip, row, col
        members = {f"i_{p}": In(packet_stream(chip)) for p in PORTS}
        members |= {f"o_{p}": Out(packet_stream(chip)) for p in PORTS}
        members["busy"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        layout = packet_layout(self._chip)
        ins = [getattr(self, f"i_{p}") for p in PORTS]
        outs = [getattr(self, f"o_{p}") for p in PORTS]
        heads, wants, levels = [], [], []
        for i, port in enumerate(ins):
            buf = fifo.SyncFIFOBuffered(width=layout.size, depth=self._chip.link_fifo)
            m.submodules[f"fifo_{PORTS[i]}"] = buf
            m.d.comb += [buf.w_data.eq(port.payload), buf.w_en.eq(port.valid), port.ready.eq(buf.w_rdy)]
            head = data.View(layout, buf.r_data)
            want = Signal(5, name=f"want_{PORTS[i]}")       # one-hot: the output this head goes to
            with m.If(head.col > self._col):
                m.d.comb += want.eq(1 << EAST)
            with m.Elif(head.col < self._col):
                m.d.comb += want.eq(1 << WEST)
            with m.Elif(head.row > self._row):
                m.d.comb += want.eq(1 << SOUTH)
            with m.Elif(head.row < self._row):
                m.d.comb += want.eq(1 << NORTH)
            with m.Else():
                m.d.comb += want.eq(1 << LOCAL)
            heads.append((buf, head))
            wants.append(want)
            levels.append(buf.level != 0)
        m.d.comb += self.busy.eq(_any(levels))
        # per output: round-robin over the inputs whose head wants it
        for o, out in enumerate(outs):
            last = Signal(range(5), name=f"last_{PORTS[o]}", init=4)   # the input served last
            request = [Signal(name=f"req_{PORTS[o]}_{PORTS[i]}") for i in range(5)]
            for i, (buf, _) in enumerate(heads):
                m.d.comb += request[i].eq(buf.r_rdy & wants[i][o])
            grant = Signal(range(5), name=f"grant_{PORTS[o]}")
            any_request = Signal(name=f"any_{PORTS[o]}")
            m.d.comb += any_request.eq(_any(request))
            # the first requester after ``last``, cyclically
            with m.Switch(last):
                for start in range(5):
                    with m.Case(start):
                        order = [(start + 1 + j) % 5 for j in range(5)]
                        for i in reversed(order):     # later statements win: the first in order
                            with m.If(request[i]):
                                m.d.comb += grant.eq(i)
            m.d.comb += [out.valid.eq(any_request)]
            with m.Switch(grant):
                for i, (buf, _) in enumerate(heads):
                    with m.Case(i):
                        m.d.comb += out.payload.eq(buf.r_data)
            with m.If(any_request & out.ready):
                m.d.sync += last.eq(grant)
            for i, (buf, _) in enumerate(heads):
                with m.If(any_request & out.ready & (grant == i)):
                    m.d.comb += buf.r_en.eq(1)
        return m


def _any(signals):
    result = 0
    for s in signals:
        result = result | s
    return result
