"""The whole Core in amaranth.sim against the golden model, through the host interface."""
from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.core import Core
from neurocore.hw.host import Opcode, Region, Register
from neurocore.hw.images import unpack
from neurocore.hw.host import output_spike_layout
from neurocore.sim import golden
from neurocore.sim.host_protocol import (Command, clear_command, decode_readback, input_axons,
                                         load_commands, readback_plan, step_command)
from neurocore.sim.random_programs import random_program

from synapse_ports import watch_synapse_ports


class _WatchedCore(Core):
    """A Core that keeps its synapse-memory clients (the integrator; the LTP engine with
    learning) once elaborated, so that a testbench can watch their ports."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        self.syn_clients = [m.submodules.integrator]
        if self._config.learning:
            self.syn_clients.append(m.submodules.ltp)
        return m


def run_core(program, inputs, *, learn, samples=1, baked=False, state=None, clear_first=True,
             read_every_step=False):
    """Run ``inputs`` ([samples, T, n_inputs]) on the Core; returns spikes, state, stats.

    ``baked``: the program is the memories' initial contents instead of being loaded.
    ``state``: loaded after the program (its host-visible fields: pending spikes are not).
    ``clear_first``: a CLEAR before the first sample too (False: it runs from the loaded state).
    ``read_every_step``: also read the state and LAST_STEP_SOPS back after every step
    (``stats["step_states"]``, ``stats["step_sops"]``).
    """
    from neurocore.hw.images import program_images, program_registers

    cfg = program.config
    dut = (_WatchedCore(config=cfg, images=program_images(program),
                        registers=program_registers(program, learn=learn))
           if baked else _WatchedCore(config=cfg))
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    spikes = []
    result = {}
    watch_synapse_ports(sim, dut.syn_clients, result, prefix="syn_")
    layout = output_spike_layout(cfg)

    async def put(ctx, stream, value):
        ctx.set(stream.payload.as_value() if hasattr(stream.payload, "as_value") else stream.payload,
                value)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def command(ctx, c: Command):
        await put(ctx, dut.cmd, c.packed(cfg))

    async def read(ctx, region, index):
        await command(ctx, Command(Opcode.READ, region, index))
        ctx.set(dut.rsp.ready, 1)
        word, = await ctx.tick().sample(dut.rsp.payload).until(dut.rsp.valid)
        ctx.set(dut.rsp.ready, 0)
        return int(word)

    async def monitor(ctx):
        ctx.set(dut.spike_out.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(dut.spike_out.valid,
                                                             dut.spike_out.payload.as_value()):
            if valid:
                spikes.append(unpack(layout, int(payload)))

    async def read_state(ctx):
        return decode_readback(program, [await read(ctx, region, i) for region, i in readback_plan(program)])

    async def host(ctx):
        for c in ([] if baked else load_commands(program, learn=learn, state=state)):
            await command(ctx, c)
        result["step_states"], result["step_sops"] = [], []
        step = 0
        for b in range(samples):
            if b or clear_first:
                await command(ctx, clear_command())
            for row in inputs[b]:
                for axon in input_axons(row):
                    await put(ctx, dut.spike_in, axon)
                await command(ctx, step_command())
                step += 1
                if read_every_step:
                    result["step_states"].append(await read_state(ctx))
                    result["step_sops"].append(await read(ctx, Region.REG, Register.LAST_STEP_SOPS.value))
        status = await read(ctx, Region.REG, Register.STATUS.value)
        await ctx.tick().repeat(30)     # drain the output FIFO
        result["status"] = status
        result["words"] = [await read(ctx, region, i) for region, i in readback_plan(program)]
        result["errors"] = await read(ctx, Region.REG, Register.ERRORS.value)
        result["steps"] = await read(ctx, Region.REG, Register.STEP_COUNT.value)
        result["sops"] = await read(ctx, Region.REG, Register.SOPS.value)
        result["ltp_updates"] = await read(ctx, Region.REG, Register.LTP_UPDATES.value)

    sim.add_testbench(host)
    sim.add_testbench(monitor, background=True)
    sim.run()
    steps = inputs.shape[1]
    out = np.zeros((samples, steps, program.n_outputs), bool)
    column = {int(n): j for j, n in enumerate(program.outputs)}
    for spike in spikes:
        b, t = divmod(spike["step"], steps)
        out[b, t, column[spike["neuron"]]] = True
    return out, decode_readback(program, result["words"]), result


def assert_state_equal(got, want):
    for name in ("v", "refrac", "theta", "y", "x", "weight"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), \
            f"{name}: core {getattr(got, name)} golden {getattr(want, name)}"


CONFIGS = [
    dict(learning=False),
    dict(learning=True),
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("learning", [False, True])
def test_core_matches_golden(seed, learning):
    program, inputs = random_program(seed * 2 + int(learning), learning=learning, batch=2,
                                     max_steps=6, max_neurons=8, max_synapses=24)
    out, state, stats = run_core(program, inputs, learn=learning, samples=2)
    want = golden.run_batch(program, inputs, learn=learning)
    assert stats["errors"] == 0 and stats["status"] & 1 == 0
    assert stats["steps"] == inputs.shape[0] * inputs.shape[1]
    assert stats["sops"] == int(want.sops.sum())
    assert np.array_equal(out, want.spikes), f"spikes differ:\ncore {np.argwhere(out)}\ngolden {np.argwhere(want.spikes)}"
    assert_state_equal(state, want.state)
    assert stats["syn_both"] == 0, "the synapse memory was read and written in the same cycle"
    assert stats["syn_reads"] >= stats["sops"]       # integration reads, LTP reads
    assert stats["syn_writes"] >= stats["ltp_updates"]


def test_learning_steps_never_read_and_write_synapses_at_once():
    """Busier learning programs than above (dense inputs, more synapses, nearly all plastic
    in some draws): LTD and LTP write back while the step keeps reading synapses, never in
    the same cycle (single-port synapse memory), and spikes, state and weights still equal
    the golden model's."""
    totals = {"syn_writes": 0, "ltp_updates": 0, "weight_changes": 0}
    for seed in range(8):
        program, inputs = random_program(500 + seed, learning=True, batch=1, steps=10, density=0.6,
                                         max_neurons=12, max_synapses=64)
        out, state, stats = run_core(program, inputs, learn=True)
        want = golden.run_batch(program, inputs, learn=True)
        assert stats["errors"] == 0 and stats["sops"] == int(want.sops.sum()), seed
        assert np.array_equal(out, want.spikes), seed
        assert_state_equal(state, want.state)
        assert stats["syn_both"] == 0, seed
        assert stats["syn_writes"] >= stats["ltp_updates"]
        totals["syn_writes"] += stats["syn_writes"]
        totals["ltp_updates"] += stats["ltp_updates"]
        totals["weight_changes"] += int((want.state.weight != program.weight).sum())
    print(totals)
    # random learning parameters often round dw to 0: a write-back contends for the port all the same
    assert totals["syn_writes"] > 100 and totals["ltp_updates"] > 10 and totals["weight_changes"] > 0, totals


@pytest.mark.parametrize("seed", range(3))
def test_baked_program_runs_without_loading(seed):
    # A program baked in as initial memory contents (the FPGA bitstream case) behaves exactly
    # like one loaded through the host interface.
    program, inputs = random_program(100 + seed, learning=True, batch=1, steps=8, density=0.5,
                                     max_neurons=8, max_synapses=24)
    out, state, stats = run_core(program, inputs, learn=True, baked=True)
    want = golden.run_batch(program, inputs, learn=True)
    assert stats["errors"] == 0
    assert np.array_equal(out, want.spikes)
    assert_state_equal(state, want.state)
    assert stats["syn_both"] == 0 and stats["syn_writes"] > 0


def test_reading_a_memory_word_does_not_change_it():
    from neurocore.hw.images import program_images

    program, _ = random_program(3, learning=True, max_neurons=6, max_synapses=12)
    config = program.config
    images = program_images(program)

    async def body(ctx, host, dut):
        for region, words in images.items():
            for i, word in enumerate(words):
                await host.command(ctx, Opcode.WRITE, region, i, word)
        for _ in range(2):                       # a READ must not write its idle data word
            for region, words in images.items():
                for i, word in enumerate(words):
                    assert await host.read(ctx, region, i) == word, (region, i)

    _simulate(config, body)


def test_core_converts_to_verilog():
    text = verilog.convert(Core(config=CoreConfig(neurons=16, axons=16, synapses=64)), name="core")
    for port in ("cmd__payload", "cmd__valid", "cmd__ready", "rsp__payload", "spike_in__payload",
                 "spike_out__payload", "busy", "error"):
        assert port in text


class _Host:
    """Minimal host-side helpers for directed amaranth.sim tests of the Core."""

    def __init__(self, dut, config):
        self.dut, self.config = dut, config

    async def put(self, ctx, stream, value):
        payload = stream.payload
        ctx.set(payload.as_value() if hasattr(payload, "as_value") else payload, value)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def command(self, ctx, op, region=Region.REG, index=0, data=0):
        await self.put(ctx, self.dut.cmd, Command(op, region, index, data).packed(self.config))

    async def read(self, ctx, region, index):
        await self.command(ctx, Opcode.READ, region, index)
        ctx.set(self.dut.rsp.ready, 1)
        word, = await ctx.tick().sample(self.dut.rsp.payload).until(self.dut.rsp.valid)
        ctx.set(self.dut.rsp.ready, 0)
        return int(word)


def _simulate(config, body):
    dut = Core(config=config)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    host = _Host(dut, config)

    async def tb(ctx):
        await body(ctx, host, dut)

    sim.add_testbench(tb)
    sim.run()


def test_every_memory_word_writes_and_reads_back():
    from amaranth.hdl import Shape
    from neurocore.hw.host import word_shape

    config = CoreConfig(neurons=4, axons=4, synapses=8, wta_groups=2)
    depth = {Region.PARAM: 4, Region.STATE: 4, Region.THETA: 4, Region.POST: 4, Region.PRE: 4,
             Region.POINTER: 4, Region.SYNAPSE: 8, Region.LTP_RANGE: 4, Region.ACC: 4}
    rng = random.Random(5)
    words = {(r, i): rng.getrandbits(Shape.cast(word_shape(config, r)).width)
             for r, n in depth.items() for i in range(n)}
    registers = {r: rng.getrandbits(1) for r in (Register.LEARN, Register.SOFT_BOUND)}
    registers[Register.A_PLUS] = 200
    registers[Register.N_NEURONS] = 3

    async def body(ctx, host, dut):
        for (region, index), word in words.items():
            await host.command(ctx, Opcode.WRITE, region, index, word)
        for register, value in registers.items():
            await host.command(ctx, Opcode.WRITE, Region.REG, register.value, value)
        for (region, index), word in words.items():
            assert await host.read(ctx, region, index) == word, (region, index)
        for register, value in registers.items():
            assert await host.read(ctx, Region.REG, register.value) == value, register
        assert await host.read(ctx, Region.REG, Register.ERRORS.value) == 0

    _simulate(config, body)


def test_bad_commands_and_spikes_set_the_sticky_error_flag():
    config = CoreConfig(neurons=4, axons=4, synapses=8, wta_groups=2)

    async def body(ctx, host, dut):
        await host.command(ctx, Opcode.WRITE, Region.REG, Register.N_INPUTS.value, 2)
        await host.put(ctx, dut.spike_in, 3)                         # axon >= N_INPUTS
        await host.command(ctx, Opcode.WRITE, Region.SYNAPSE, 8, 1)  # index beyond depth
        await host.command(ctx, Opcode.WRITE, Region.REG, Register.CYCLES.value, 1)  # read-only
        assert ctx.get(dut.error) == 1
        assert await host.read(ctx, Region.REG, Register.ERRORS.value) == 3
        assert await host.read(ctx, Region.REG, Register.STATUS.value) & 1 == 1
        await host.command(ctx, Opcode.WRITE, Region.REG, Register.STATUS.value, 1)  # clear
        assert await host.read(ctx, Region.REG, Register.STATUS.value) & 1 == 0
        assert ctx.get(dut.error) == 0
        # The rejected spike never reached the input queue: a step integrates nothing.
        await host.command(ctx, Opcode.STEP)
        assert await host.read(ctx, Region.REG, Register.LAST_STEP_SOPS.value) == 0

    _simulate(config, body)


def test_unused_region_codes_are_rejected():
    """Region codes 10..15 have no memory: WRITE and READ set the
    sticky error flag, a READ returns 0, and no memory word changes."""
    from neurocore.hw.host import command_layout
    from neurocore.hw.images import pack

    config = CoreConfig(neurons=4, axons=4, synapses=8, wta_groups=2)
    assert not {10, 11, 12, 13, 14, 15} & {r.value for r in Region}

    async def body(ctx, host, dut):
        for region in (Region.SYNAPSE, Region.POINTER, Region.LTP_RANGE):
            for i in range(4):
                await host.command(ctx, Opcode.WRITE, region, i, 0x15 + i)
        errors = 0
        for code in (10, 11, 15):
            for op in (Opcode.WRITE, Opcode.READ):
                word = pack(command_layout(config), op=op.value, region=code, index=1, data=0x3f)
                await host.put(ctx, dut.cmd, word)
                errors += 1
                if op == Opcode.READ:
                    ctx.set(dut.rsp.ready, 1)
                    rsp, = await ctx.tick().sample(dut.rsp.payload).until(dut.rsp.valid)
                    ctx.set(dut.rsp.ready, 0)
                    assert int(rsp) == 0
                assert ctx.get(dut.error) == 1
                assert await host.read(ctx, Region.REG, Register.ERRORS.value) == errors
        for region in (Region.SYNAPSE, Region.POINTER, Region.LTP_RANGE):
            for i in range(4):
                assert await host.read(ctx, region, i) == 0x15 + i, (region, i)

    _simulate(config, body)


def test_duplicate_host_spikes_count_once():
    from neurocore.hw.program import CoreProgram, NeuronParams

    config = CoreConfig(neurons=2, axons=2, synapses=4, learning=False, wta=False,
                        adaptive_threshold=False)
    program = CoreProgram.from_synapses(config, n_inputs=2, n_axons=2, axon=[0, 0, 1], target=[0, 1, 1],
                                        weight=[5, 3, 4], neurons=NeuronParams.uniform(2, threshold=100),
                                        outputs=[0, 1])

    async def body(ctx, host, dut):
        for c in load_commands(program):
            await host.command(ctx, c.op, c.region, c.index, c.data)
        for axon in (0, 0, 1, 0, 1):           # axon 0 three times, axon 1 twice
            await host.put(ctx, dut.spike_in, axon)
        await host.command(ctx, Opcode.STEP)
        assert await host.read(ctx, Region.REG, Register.LAST_STEP_SOPS.value) == 3
        state = [await host.read(ctx, Region.STATE, n) for n in range(2)]
        assert [unpack(neuron_state_layout(config), w)["v"] for w in state] == [5, 7]

    from neurocore.hw.layouts import neuron_state_layout
    _simulate(config, body)


def test_register_numbers_beyond_the_map_are_not_aliased():
    """The register decode looks at the low 5 index bits behind a range check: index 33 is not
    register 1 (N_NEURONS). A WRITE there is an error and changes nothing; a READ gives 0."""
    config = CoreConfig(neurons=4, axons=4, synapses=8, wta_groups=2)

    async def body(ctx, host, dut):
        await host.command(ctx, Opcode.WRITE, Region.REG, Register.N_NEURONS.value, 3)
        for index in (32 + Register.N_NEURONS.value, (1 << 23) + Register.N_NEURONS.value, 31):
            await host.command(ctx, Opcode.WRITE, Region.REG, index, 2)
            assert await host.read(ctx, Region.REG, index) == 0
        assert await host.read(ctx, Region.REG, Register.N_NEURONS.value) == 3
        assert await host.read(ctx, Region.REG, Register.ERRORS.value) == 3

    _simulate(config, body)
