"""The memory-port arbiter: one memory's read and write port, shared by several clients."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, ShapeCastable, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .phase import Phase

__all__ = ["MemoryArbiter", "address_bits"]


def address_bits(depth: int) -> int:
    """Address width of a memory of ``depth`` words (at least 1 bit: depth 1 is built as 2)."""
    return max(1, (max(depth, 2) - 1).bit_length())


def _phases(value) -> tuple:
    try:
        phases = (value,) if isinstance(value, Phase) else tuple(value)
    except TypeError:
        phases = ()
    if not phases or not all(isinstance(p, Phase) for p in phases):
        raise ValueError(f"MemoryArbiter: a client owns the port in one or more Phase members, "
                         f"got {value!r}")
    return phases


class MemoryArbiter(wiring.Component):
    """Multiplexes the clients of one memory onto its read port ``rd`` and write port ``wr``.

    Every client owns the port(s) it uses in the phases it is registered with; the
    controller's ``phase`` selects the owner, and in a phase without an owner the enables
    are 0. Phases never give one port to two clients (checked at construction), which is
    what makes the sharing safe. Read data (``rd.data``) goes to every reader: a read port's
    word arrives **one cycle** after its address (synchronous, not transparent), and the
    memory holds it while ``en`` is low.

    A **single-port** memory (``single_port=True``) has one address for both ports, so that
    synthesis can map it to single-port RAM (the iCE40 UP5K's SPRAM: one address per cycle,
    a read or a write). In each phase the reader and the writer of that phase share it:
    ``addr = writer.en ? writer.addr : reader.addr``, and the read is disabled in a cycle
    that writes (``rd.en = reader.en & ~writer.en``). **Rule for the clients**: never read
    and write in the same cycle (a read issued in a write cycle is lost). The core builds
    the synapse memory single-port (LTD and LTP hold their synapse read in the cycle of a
    write-back) and every memory only the host writes (nobody uses a word read in the cycle
    the host writes). The top level connects ``wr.addr`` to ``rd.addr`` then (``wr.addr``
    is left undriven).

    Parameters (keyword-only)
    -------------------------
    shape : shape-castable
        The memory word.
    depth : int
        Words in the memory (addresses are :func:`address_bits` wide).
    readers, writers : dict mapping a client name to a :class:`Phase` or a tuple of them
        The clients and the phases in which they own the read / write port.
    single_port : bool

    Members
    -------
    phase : In(Phase)
    <reader> : Out(memory.ReadPort.Signature(addr_width, shape)), one per reader
    <writer> : Out(memory.WritePort.Signature(addr_width, shape)), one per writer
        What each client sees: a memory port (the client drives ``addr``, ``en``, ``data``
        of a write).
    rd : In(memory.ReadPort.Signature(addr_width, shape)), wr : In(memory.WritePort.Signature(...))
        To the memory's ports.
    """

    def __init__(self, *, shape, depth: int, readers: dict, writers: dict, single_port: bool = False):
        if not isinstance(shape, ShapeCastable):
            Shape.cast(shape)
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"MemoryArbiter: depth must be a positive int, got {depth!r}")
        self._readers = {name: _phases(p) for name, p in readers.items()}
        self._writers = {name: _phases(p) for name, p in writers.items()}
        if set(self._readers) & set(self._writers) or {"phase", "rd", "wr"} & {*readers, *writers}:
            raise ValueError("MemoryArbiter: client names must be distinct and not phase, rd or wr")
        for kind, clients in (("read", self._readers), ("write", self._writers)):
            owned = [p for phases in clients.values() for p in phases]
            if len(owned) != len(set(owned)):
                raise ValueError(f"MemoryArbiter: two clients own the {kind} port in one phase")
        self._single_port = bool(single_port)
        self.addr_width = address_bits(depth)
        rd_sig = memory.ReadPort.Signature(addr_width=self.addr_width, shape=shape)
        wr_sig = memory.WritePort.Signature(addr_width=self.addr_width, shape=shape)
        members = {"phase": In(Phase), "rd": In(rd_sig), "wr": In(wr_sig)}
        members.update({name: Out(rd_sig) for name in self._readers})
        members.update({name: Out(wr_sig) for name in self._writers})
        super().__init__(members)

    @property
    def single_port(self) -> bool:
        return self._single_port

    def _owner(self, phases):
        cond = self.phase == phases[0]
        for p in phases[1:]:
            cond = cond | (self.phase == p)
        return cond

    def elaborate(self, platform):
        m = Module()
        rd, wr = self.rd, self.wr
        for name in self._readers:
            m.d.comb += getattr(self, name).data.eq(rd.data)
        if not self._single_port:
            for clients, port, fields in ((self._readers, rd, ("addr", "en")),
                                          (self._writers, wr, ("addr", "en", "data"))):
                if not clients:
                    m.d.comb += port.en.eq(0)
                    continue
                for i, (name, phases) in enumerate(clients.items()):
                    with m.If(self._owner(phases)) if i == 0 else m.Elif(self._owner(phases)):
                        for field in fields:
                            m.d.comb += getattr(port, field).eq(getattr(getattr(self, name), field))
                with m.Else():
                    m.d.comb += port.en.eq(0)
            return m
        # Single port: pair the reader and the writer of every phase (phases with the same
        # pair share one condition).
        def owner(clients, phase):
            return next((name for name, phases in clients.items() if phase in phases), None)

        pairs = {}                                   # (reader, writer) -> phases
        for phase in Phase:
            pair = (owner(self._readers, phase), owner(self._writers, phase))
            if pair != (None, None):
                pairs.setdefault(pair, []).append(phase)
        pairs = {tuple(phases): [None if n is None else getattr(self, n) for n in pair]
                 for pair, phases in pairs.items()}
        rd_en, wr_en = Signal(), Signal()
        m.d.comb += [wr.en.eq(wr_en), rd.en.eq(rd_en & ~wr_en)]
        for i, (phases, (reader, writer)) in enumerate(pairs.items()):
            with m.If(self._owner(phases)) if i == 0 else m.Elif(self._owner(phases)):
                if reader is not None:
                    m.d.comb += rd_en.eq(reader.en)
                if writer is not None:
                    m.d.comb += [wr_en.eq(writer.en), wr.data.eq(writer.data)]
                if reader is None:
                    m.d.comb += rd.addr.eq(writer.addr)
                elif writer is None:
                    m.d.comb += rd.addr.eq(reader.addr)
                else:
                    m.d.comb += rd.addr.eq(Mux(writer.en, writer.addr, reader.addr))
        return m
