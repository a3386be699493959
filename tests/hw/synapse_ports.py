"""A background monitor of the single-port synapse memory, shared by the block and core tests,
and the simulation run of the block harnesses that use it."""
from __future__ import annotations


def watch_synapse_ports(sim, clients, counts: dict, *, prefix: str = "") -> None:
    """Count, in ``counts``, the cycles in which ``clients`` (blocks with ``syn_rd`` and
    ``syn_wr`` ports) read the synapse memory (``reads``), write it (``writes``) and do both
    (``both``; the memory is single-port, so a read in a write cycle would be lost). The keys
    get ``prefix``; counting starts from 0 when the simulation does."""
    reads, writes, both = (prefix + key for key in ("reads", "writes", "both"))
    counts.update({reads: 0, writes: 0, both: 0})
    enables = [sig for client in clients for sig in (client.syn_rd.en, client.syn_wr.en)]

    async def monitor(ctx):
        async for _, _, *values in ctx.tick().sample(*enables):
            read, write = any(values[0::2]), any(values[1::2])
            counts[reads] += read
            counts[writes] += write
            counts[both] += read and write

    sim.add_testbench(monitor, background=True)


def simulate(harness, testbench, *, monitor: bool) -> None:
    """Run ``testbench`` on ``harness`` (an Elaboratable) with a 100 MHz clock; ``monitor``:
    also its ``add_monitor`` (the synapse-port counts of :func:`watch_synapse_ports`)."""
    from amaranth.sim import Simulator

    sim = Simulator(harness)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if monitor:
        harness.add_monitor(sim)
    sim.run()
