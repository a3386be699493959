"""MemoryArbiter (hw/arbiter.py): the owner of each phase reaches the memory, nobody else
does; read data one cycle after the address; the single-port rule (one address, the read
disabled in a write cycle). Random traffic against a Python model of the memory."""
from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from neurocore.hw.arbiter import MemoryArbiter, address_bits
from neurocore.hw.phase import Phase

DEPTH = 8
READERS = {"host": Phase.HOST, "block": (Phase.FEED, Phase.UPDATE)}
WRITERS = {"host_wr": Phase.HOST, "block_wr": Phase.FEED, "clear": Phase.CLEAR}


class Harness(Elaboratable):
    def __init__(self, single_port):
        self.single_port = single_port
        self.arbiter = MemoryArbiter(shape=8, depth=DEPTH, readers=READERS, writers=WRITERS,
                                     single_port=single_port)
        self.memory = Memory(shape=8, depth=DEPTH, init=range(DEPTH))

    def elaborate(self, platform):
        m = Module()
        m.submodules.arbiter = arb = self.arbiter
        m.submodules.mem = self.memory
        rd, wr = self.memory.read_port(domain="sync"), self.memory.write_port()
        connect(m, arb.rd, rd)
        m.d.comb += [wr.addr.eq(rd.addr if self.single_port else arb.wr.addr),
                     wr.en.eq(arb.wr.en), wr.data.eq(arb.wr.data)]
        return m


def _owner(clients, phase):
    for name, phases in clients.items():
        if phase in ((phases,) if isinstance(phases, Phase) else phases):
            return name
    return None


@pytest.mark.parametrize("single_port", [False, True])
def test_random_traffic_matches_model(single_port):
    h = Harness(single_port)
    arb = h.arbiter
    rng = random.Random(int(single_port))
    model = list(range(DEPTH))
    stats = {"reads": 0, "writes": 0, "lost_reads": 0}
    sim = Simulator(h)
    sim.add_clock(1e-8)

    async def bench(ctx):
        want = None                     # the word read in the previous cycle (None: hold)
        held = ctx.get(arb.host.data)
        for _ in range(600):
            phase = rng.choice(list(Phase))
            ctx.set(arb.phase, phase)
            ports = {}
            for name in (*READERS, *WRITERS):
                port = getattr(arb, name)
                ports[name] = (rng.randrange(DEPTH), rng.random() < 0.5, rng.randrange(256))
                addr, en, word = ports[name]
                ctx.set(port.addr, addr)
                ctx.set(port.en, en)
                if name in WRITERS:
                    ctx.set(port.data, word)
            reader, writer = _owner(READERS, phase), _owner(WRITERS, phase)
            r_addr, r_en, _ = ports[reader] if reader else (0, False, 0)
            w_addr, w_en, w_word = ports[writer] if writer else (0, False, 0)
            if single_port and w_en:
                stats["lost_reads"] += r_en
                r_en = False            # a read in a write cycle is lost
            want = model[r_addr] if r_en else held
            if w_en:
                model[w_addr] = w_word
            await ctx.tick()
            for name in READERS:
                assert ctx.get(getattr(arb, name).data) == want, (phase, ports)
            held = want
            stats["reads"] += r_en
            stats["writes"] += w_en
        assert stats["reads"] > 100 and stats["writes"] > 100, stats
        assert (stats["lost_reads"] > 20) == single_port, stats

    sim.add_testbench(bench)
    sim.run()


def test_single_port_shares_one_address():
    from amaranth.back import rtlil
    h = Harness(True)
    ports = [h.arbiter.phase.as_value()]
    for name in (*READERS, *WRITERS):
        port = getattr(h.arbiter, name)
        ports += [port.addr, port.en, port.data]
    text = rtlil.convert(h, name="top", ports=ports)
    addrs = [line.split(None, 2)[2] for line in text.splitlines()
             if line.strip().startswith("connect \\ADDR") and "$signature" in line]
    assert len(addrs) == 2 and addrs[0] == addrs[1]


def test_bad_clients_are_refused():
    with pytest.raises(ValueError, match="two clients"):
        MemoryArbiter(shape=8, depth=4, readers={"a": Phase.HOST, "b": Phase.HOST}, writers={})
    with pytest.raises(ValueError, match="distinct"):
        MemoryArbiter(shape=8, depth=4, readers={"a": Phase.HOST}, writers={"a": Phase.FEED})
    with pytest.raises(ValueError, match="Phase"):
        MemoryArbiter(shape=8, depth=4, readers={"a": 3}, writers={})
    with pytest.raises(ValueError, match="depth"):
        MemoryArbiter(shape=8, depth=0, readers={}, writers={})
    assert [address_bits(d) for d in (1, 2, 3, 4, 5, 256, 257)] == [1, 1, 2, 2, 3, 8, 9]
