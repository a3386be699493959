"""The chip's spike network: a ``rows x cols`` grid of :class:`MeshRouter` (docs/core-spec.md,
section 9), neighbours joined by one link per direction; only the local ports leave it."""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .chip import ChipConfig
from .mesh_router import MeshRouter, packet_stream

__all__ = ["Mesh"]


class Mesh(wiring.Component):
    """Routers at every core position, wired north-south and east-west.

    Members
    -------
    inject_K : In(packet_stream(chip))   packets core ``K`` sends (``K = r * cols + c``)
    deliver_K : Out(packet_stream(chip)) packets for core ``K``
    busy : Out(1)                         a packet is somewhere in the mesh

    A packet injected at core ``K`` for ``(row, col)`` leaves on ``deliver_J``, ``J = row *
    cols + col``, after ``hops(K, J) + 1`` router FIFOs; ``busy`` is low once every injected
    packet has been delivered (the step barrier's condition on the network).
    """

    def __init__(self, *, chip: ChipConfig):
        if not isinstance(chip, ChipConfig):
            raise ValueError(f"Mesh: chip must be a ChipConfig, got {chip!r}")
        self._chip = chip
        members = {}
        for k in range(chip.n_cores):
            members[f"inject_{k}"] = In(packet_stream(chip))
            members[f"deliver_{k}"] = Out(packet_stream(chip))
        members["busy"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        chip = self._chip
        routers = {}
        for r in range(chip.rows):
            for c in range(chip.cols):
                routers[r, c] = m.submodules[f"router_{r}_{c}"] = MeshRouter(chip=chip, row=r, col=c)
        busy = 0
        for (r, c), router in routers.items():
            k = r * chip.cols + c
            wiring.connect(m, wiring.flipped(getattr(self, f"inject_{k}")), router.i_local)
            wiring.connect(m, router.o_local, wiring.flipped(getattr(self, f"deliver_{k}")))
            if c + 1 < chip.cols:
                wiring.connect(m, router.o_east, routers[r, c + 1].i_west)
                wiring.connect(m, routers[r, c + 1].o_west, router.i_east)
            if r + 1 < chip.rows:
                wiring.connect(m, router.o_south, routers[r + 1, c].i_north)
                wiring.connect(m, routers[r + 1, c].o_north, router.i_south)
            busy = busy | router.busy
        m.d.comb += self.busy.eq(busy)
        return m
