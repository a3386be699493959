"""Between a core and its mesh router: a fired neuron's remote spikes become packets.

The core reports every neuron that has remote entries or goes to the host as an output
spike ``(neuron, step)`` (its ``spike_out`` stream): ``ChipProgram`` requires remote senders
to be outputs of their core, and ``to_host`` marks the outputs that are chip outputs (spec
section 9). The bridge looks the neuron up in its core's route table
(docs/core-spec.md, section 9: ``start[n] .. start[n+1]-1``) and sends one packet
``(row, col, axon)`` per entry into the mesh, then, if the neuron is a chip output
(``to_host[n]``), passes the spike on to the host. A packet every two cycles (the entry is
read, then sent); the spike is taken (``spikes.ready``) after its last packet left and its
host copy, if any, was accepted: ``3 + 2 * entries`` cycles per spike without stalls.

Memories (``lib.memory.Memory``, built in ``elaborate``, synchronous read ports with one
cycle of latency, not transparent, never written here): ``route_ptr`` (one word per neuron
plus one: ``start``), ``route_mem`` (one packet per entry), ``to_host_mem`` (one bit per
neuron). Their contents are the chip program's (``init``); the host bridge of the chip
writes them for another program.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .chip import ChipConfig, Routes
from .host import output_spike_layout
from .mesh_router import packet_layout, packet_stream

__all__ = ["ChipBridge"]


class ChipBridge(wiring.Component):
    """The route-table lookup of one core.

    Members
    -------
    spikes : In(stream.Signature(output_spike_layout(core)))   the core's output spikes
    packets : Out(packet_stream(chip))                          into the mesh (inject)
    host : Out(stream.Signature(output_spike_layout(core)))     the chip outputs of this core
    busy : Out(1)                                               a spike is being expanded
    """

    def __init__(self, *, chip: ChipConfig, routes: Routes, to_host, depth: int | None = None):
        if not isinstance(chip, ChipConfig):
            raise ValueError(f"ChipBridge: chip must be a ChipConfig, got {chip!r}")
        if not isinstance(routes, Routes):
            raise ValueError(f"ChipBridge: routes must be a Routes table, got {routes!r}")
        neurons = routes.n_sources
        if neurons > chip.core.neurons or len(routes) > chip.routes:
            raise ValueError(f"ChipBridge: {neurons} neurons and {len(routes)} entries exceed the core's "
                             f"{chip.core.neurons} neurons or the chip's {chip.routes} route entries")
        if len(to_host) != neurons:
            raise ValueError(f"ChipBridge: to_host needs one flag per neuron ({neurons}), got {len(to_host)}")
        self._chip, self._routes, self._to_host = chip, routes, [bool(v) for v in to_host]
        spike = stream.Signature(output_spike_layout(chip.core))
        super().__init__({"spikes": In(spike), "packets": Out(packet_stream(chip)), "host": Out(spike),
                          "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        chip, routes = self._chip, self._routes
        n = chip.core.neurons
        entries = max(1, chip.routes)
        ebits = max(1, entries.bit_length())
        layout = packet_layout(chip)
        start = [int(v) for v in routes.start] + [int(routes.start[-1])] * (n + 1 - len(routes.start))
        packets = [{"row": int(k) // chip.cols, "col": int(k) % chip.cols, "axon": int(a)}
                   for k, a in zip(routes.core, routes.axon)]
        packets += [{"row": 0, "col": 0, "axon": 0}] * (entries - len(packets))
        m.submodules.route_ptr = ptr = Memory(shape=unsigned(ebits), depth=n + 1, init=start)
        m.submodules.route_mem = mem = Memory(shape=layout, depth=entries, init=packets)
        m.submodules.to_host_mem = host_mem = Memory(shape=1, depth=n, init=self._to_host + [False] * (n - len(self._to_host)))
        ptr_rd = ptr.read_port()
        ptr_rd2 = ptr.read_port()
        mem_rd = mem.read_port()
        host_rd = host_mem.read_port()

        spike = self.spikes.payload
        entry = Signal(ebits)
        stop = Signal(ebits)
        host_pending = Signal()
        m.d.comb += [ptr_rd.addr.eq(spike.neuron), ptr_rd2.addr.eq(spike.neuron + 1),
                     host_rd.addr.eq(spike.neuron), mem_rd.addr.eq(entry), self.host.payload.eq(spike)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.spikes.valid):
                    m.next = "LOOKUP"
            with m.State("LOOKUP"):          # the three reads of this spike are ready
                m.d.sync += [entry.eq(ptr_rd.data), stop.eq(ptr_rd2.data), host_pending.eq(host_rd.data)]
                m.next = "FETCH"
            with m.State("FETCH"):           # read the entry ``entry`` (one cycle)
                with m.If(entry == stop):
                    m.next = "HOST"
                with m.Else():
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [self.packets.valid.eq(1), self.packets.payload.eq(mem_rd.data)]
                with m.If(self.packets.ready):
                    m.d.sync += entry.eq(entry + 1)
                    m.next = "FETCH"
            with m.State("HOST"):
                m.d.comb += self.host.valid.eq(host_pending)
                with m.If(~host_pending | self.host.ready):
                    m.d.comb += self.spikes.ready.eq(1)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(self.spikes.valid)
        return m
