"""The whole Core in amaranth.sim against the golden model, through the host interface.

The host is :class:`neurocore.sim.host_driver.HostDriver`, the same driver the cocotb
testbench uses; ``stall`` makes the consumers of ``spike_out`` and ``rsp`` hold ``ready``
low at random (backpressure).
"""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from neurocore.hw.config import CoreConfig
from neurocore.hw.core import Core
from neurocore.hw.host import Opcode, Region, Register
from neurocore.hw.images import unpack
from neurocore.hw.phase import Phase
from neurocore.hw.program import LearningParams
from neurocore.hw.widths import AMPLITUDE_MAX
from neurocore.sim import golden
from neurocore.sim.cosim import rtl_spikes
from neurocore.sim.host_driver import STEP_REGISTERS, run_amaranth
from neurocore.sim.host_protocol import (Command, decode_readback, load_commands,
                                         output_spike_order)
from neurocore.sim.random_programs import random_program

from output_bursts import NO_GROUP, burst_program
from synapse_ports import watch_synapse_ports
from test_integrator import kernel_program


class _WatchedCore(Core):
    """A Core that keeps its synapse-memory clients (the integrator; the LTP engine with
    learning) once elaborated, so that a testbench can watch their ports."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        self.ctrl = m.submodules.ctrl
        self.syn_clients = [m.submodules.integrator]
        if self._config.learning:
            self.syn_clients.append(m.submodules.ltp)
        return m


def run_core(program, inputs, *, learn, samples=1, baked=False, stall=0.0, seed=0,
             step_registers=(), state=None, clear_first=True, read_every_step=False):
    """Run ``inputs`` ([samples, T, n_inputs]) on the Core; returns spikes, state, stats.

    ``baked``: the program is the memories' initial contents instead of being loaded.
    ``stall``: probability that the ``spike_out`` and ``rsp`` consumers hold ``ready`` low in
    a cycle (draws seeded by ``seed``). ``stats`` holds the final registers (``status``,
    ``errors``, ``steps``, ``sops``, ``ltp_updates``), the output spikes in arrival order
    (``spikes``, ``(neuron, step)`` pairs), ``stall_cycles``, ``spike_out_stall_cycles``,
    ``step_registers`` (name -> value per step), the synapse-port counts (``syn_*``) and the
    cycles spent in each controller phase (``phase_cycles``, :class:`Phase` -> cycles).
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
    result = {}
    watch_synapse_ports(sim, dut.syn_clients, result, prefix="syn_")
    phase_cycles = result["phase_cycles"] = dict.fromkeys(Phase, 0)

    async def watch_phase(ctx):
        async for _, _, phase in ctx.tick().sample(dut.ctrl.phase):
            phase_cycles[Phase(phase)] += 1

    sim.add_testbench(watch_phase, background=True)
    raw = {}

    async def host(driver):
        registers = tuple(step_registers)
        if read_every_step and Register.LAST_STEP_SOPS not in registers:
            registers += (Register.LAST_STEP_SOPS,)
        raw.update(await driver.run_case(program, inputs[:samples], learn=learn, load=not baked,
                                         state=state, clear_first=clear_first,
                                         step_registers=registers, step_words=read_every_step))

    run_amaranth(sim, dut, cfg, host, stall=stall, seed=seed)
    regs = raw["registers"]
    result.update(status=regs["STATUS"], errors=regs["ERRORS"], steps=regs["STEP_COUNT"],
                  sops=regs["SOPS"], ltp_updates=regs["LTP_UPDATES"],
                  spikes=[(s["neuron"], s["step"]) for s in raw["spikes"]],
                  stall_cycles=raw["stall_cycles"],
                  spike_out_stall_cycles=raw["spike_out_stall_cycles"],
                  step_registers=raw["step_registers"])
    result.update(step_states=[decode_readback(program, w) for w in raw["step_words"]],
                  step_sops=raw["step_registers"][Register.LAST_STEP_SOPS.name] if read_every_step else [])
    out, stray = rtl_spikes(program, raw, samples, inputs.shape[1])
    assert not stray, f"output spikes of no output neuron or past the last step: {stray}"
    return out, decode_readback(program, raw["words"]), result


def assert_state_equal(got, want):
    for name in ("v", "refrac", "theta", "y", "x", "weight"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), \
            f"{name}: core {getattr(got, name)} golden {getattr(want, name)}"


CONFIGS = [
    dict(learning=False),
    dict(learning=True),
]


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("learning", [False, True])
def test_core_matches_golden(seed, learning, stall):
    """Random programs against the golden model, with the consumers of ``spike_out`` and
    ``rsp`` holding ``ready`` low with probability ``stall`` in every cycle: the output
    spike stream is the golden model's spikes, each once, in the order of the spec."""
    program, inputs = random_program(seed * 2 + int(learning), learning=learning, batch=2,
                                     max_steps=6, max_neurons=8, max_synapses=24)
    out, state, stats = run_core(program, inputs, learn=learning, samples=2, stall=stall,
                                 seed=seed)
    want = golden.run_batch(program, inputs, learn=learning)
    assert stats["errors"] == 0 and stats["status"] & 1 == 0
    assert stats["steps"] == inputs.shape[0] * inputs.shape[1]
    assert stats["sops"] == int(want.sops.sum())
    assert np.array_equal(out, want.spikes), f"spikes differ:\ncore {np.argwhere(out)}\ngolden {np.argwhere(want.spikes)}"
    assert stats["spikes"] == output_spike_order(program, want.spikes)
    assert_state_equal(state, want.state)
    assert stats["syn_both"] == 0, "the synapse memory was read and written in the same cycle"
    assert stats["phase_cycles"][Phase.LTD] == 0      # no segment table: no shared-LTD pass
    assert stats["syn_reads"] >= stats["sops"]       # integration reads, LTP reads
    assert stats["syn_writes"] >= stats["ltp_updates"]
    # every READ offers an rsp word: a stalling consumer stalls some of them
    assert (stats["stall_cycles"] > 0) == (stall > 0), stats["stall_cycles"]


@pytest.mark.parametrize("seed", range(8))
def test_core_with_shared_rows_matches_golden(seed):
    """Programs with a segment table (rows, then segments over shared kernel words; LTD on the
    rows' plastic words) against the golden model; the stall probability varies with the seed."""
    learning = bool(seed % 2)
    for attempt in range(50):         # the draw gives segments to about half the programs
        program, inputs = random_program(900 + 50 * seed + attempt, learning=learning, batch=2, max_steps=6,
                                         max_neurons=8, max_synapses=24, features=("shared_rows",))
        if program.shared:
            break
    assert program.shared
    _matches_golden(program, inputs, learning, stall=(0.0, 0.3, 0.9)[seed % 3], seed=seed)


def _matches_golden(program, inputs, learning, *, stall, seed):
    """Two samples on the Core with stalling consumers: spikes (in the spec's order), SOPs
    and the final state are the golden model's."""
    out, state, stats = run_core(program, inputs, learn=learning, samples=2, stall=stall, seed=seed)
    want = golden.run_batch(program, inputs, learn=learning)
    assert stats["errors"] == 0 and stats["sops"] == int(want.sops.sum())
    assert np.array_equal(out, want.spikes), f"spikes differ:\ncore {np.argwhere(out)}\ngolden {np.argwhere(want.spikes)}"
    assert stats["spikes"] == output_spike_order(program, want.spikes)
    assert_state_equal(state, want.state)


def _repeated_kernel_updates(program, inputs) -> tuple[int, int]:
    """In the golden run of the first sample (learning on), the ``(step, kernel word)`` pairs
    with two or more LTD updates (plastic uses by the active axons) and those with two or more
    LTP updates (plastic uses of the fired neurons): the updates that must be sequential on
    one word. Active axons of a step: the host inputs, and the routes of the neurons fired in
    the step before."""
    axon, target, word = program.uses()
    kernel = (word >= program.n_row_synapses) & program.plastic[word]
    fired = golden.run(program, inputs[0], learn=True, record_neurons=True).neuron_spikes
    ltd = ltp = 0
    for t in range(inputs.shape[1]):
        active = set(np.flatnonzero(inputs[0, t]).tolist())
        if t:
            active |= {int(program.route[n]) for n in np.flatnonzero(fired[t - 1]) if program.route[n] >= 0}
        ltd += int((np.bincount(word[kernel & np.isin(axon, sorted(active))]) >= 2).sum())
        ltp += int((np.bincount(word[kernel & fired[t][target]]) >= 2).sum())
    return ltd, ltp


def _strong_learning(program):
    """``program`` with learning parameters whose updates are seldom 0: full amplitudes and
    jumps, short decays, and ``shift`` such that the largest ``dw`` is about a quarter of the
    weight range (the bounds and ``soft_bound`` kept, so the accumulator bound still holds)."""
    lp, tmax = program.learning, program.config.trace_max
    span = lp.w_max - lp.w_min
    largest = AMPLITUDE_MAX * tmax * (max(span * span // 4, 1) if lp.soft_bound else 1)
    shift = max(largest.bit_length() - max(span // 4, 1).bit_length(), 0)
    strong = dataclasses.replace(lp, a_plus=AMPLITUDE_MAX, a_minus=AMPLITUDE_MAX, shift=shift,
                                 pre_decay_shift=1, post_decay_shift=2, pre_jump=tmax, post_jump=tmax)
    return dataclasses.replace(program, learning=strong).validate()


def _shared_learning_case(seed):
    """A random program with plastic kernel words (shared rows, shared learning, WTA blocks)
    and strong learning whose first sample updates a kernel word twice in a step: by LTD for
    even seeds, by LTP for odd ones (the first of 200 draws that does)."""
    for attempt in range(200):
        program, inputs = random_program(2100 + 200 * seed + attempt, learning=True, batch=2, steps=6,
                                         density=0.5, max_neurons=8, max_synapses=24,
                                         features=("shared_rows", "shared_learning", "structural_wta"))
        program = _strong_learning(program)
        if (program.shared and program.plastic[program.n_row_synapses:].any()
                and _repeated_kernel_updates(program, inputs)[seed % 2] > 0):
            return program, inputs
    raise AssertionError(f"seed {seed}: no program with repeated kernel-word updates in 200 draws")


def test_shared_learning_draws_have_power():
    """The programs of test_core_learns_on_shared_words update kernel words more than once
    in a step, by LTD (even seeds) and by LTP (odd seeds), so the in-flight stalls matter
    (with either stall removed by hand, some of those tests fail)."""
    counts = np.array([_repeated_kernel_updates(*_shared_learning_case(seed)) for seed in range(SHARED_SEEDS)])
    assert (counts[0::2, 0] > 0).all() and (counts[1::2, 1] > 0).all(), counts.tolist()


SHARED_SEEDS = 12


@pytest.mark.parametrize("seed", range(SHARED_SEEDS))
def test_core_learns_on_shared_words(seed):
    """Programs with plastic kernel words (features shared_rows, shared_learning,
    structural_wta), learning on, against the golden model, with the consumers stalling at
    a rate that varies with the seed: the LTD pass over the active axons' segments and LTP on
    segment uses, each sequential on a shared word (the in-flight stall)."""
    program, inputs = _shared_learning_case(seed)
    out, state, stats = run_core(program, inputs, learn=True, samples=2, stall=(0.0, 0.3, 0.9)[seed % 3],
                                 seed=seed)
    want = golden.run_batch(program, inputs, learn=True)
    assert stats["errors"] == 0 and stats["sops"] == int(want.sops.sum())
    assert np.array_equal(out, want.spikes), f"spikes differ:\ncore {np.argwhere(out)}\ngolden {np.argwhere(want.spikes)}"
    assert stats["spikes"] == output_spike_order(program, want.spikes)
    assert_state_equal(state, want.state)
    assert stats["syn_both"] == 0, "the synapse memory was read and written in the same cycle"


@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_core_learns_on_a_shared_kernel(stall):
    """A convolution-like program (every axon's segment over a 3-word plastic kernel, plus a
    plastic row word per axon), dense inputs and low thresholds: every step depresses and
    potentiates each kernel word several times (LTD pass, LTP on segment uses, each
    sequential on the word), with ``spike_out`` and ``rsp`` stalling; against the golden
    model, and the kernel really moves (not stuck at a bound)."""
    config = CoreConfig(neurons=8, axons=8, synapses=32, segments=8, wta_groups=2)
    lp = LearningParams(a_plus=80, a_minus=255, shift=12, pre_decay_shift=1, post_decay_shift=1,
                        pre_jump=120, post_jump=100, w_min=-40, w_max=40)
    program = kernel_program(config, n_axons=6, kernel=[12, -5, 20],
                             rows=[(a, a + 3, 4 + a) for a in range(5)], learning=lp, threshold=10)
    rng = np.random.default_rng(5)
    inputs = rng.random((2, 8, program.n_inputs)) < 0.6
    out, state, stats = run_core(program, inputs, learn=True, samples=2, stall=stall, seed=3)
    want = golden.run_batch(program, inputs, learn=True)
    assert stats["errors"] == 0 and stats["sops"] == int(want.sops.sum())
    assert np.array_equal(out, want.spikes) and stats["spikes"] == output_spike_order(program, want.spikes)
    assert_state_equal(state, want.state)
    assert stats["syn_both"] == 0
    kernel = want.state.weight[program.n_row_synapses:]
    assert (kernel != program.weight[program.n_row_synapses:]).any() and (np.abs(kernel) < 40).any(), kernel
    assert want.spikes.sum() > 8


@pytest.mark.parametrize("kernel, n_axons, active, cycles", [
    ([5], 8, [0], 18), ([5], 8, [7], 25), (list(range(1, 9)), 1, [0], 25),
    ([5], 8, list(range(8)), 95), ([1, 2, 3], 6, [2, 4], 35), ([1, 2, 3], 6, [], 8)])
def test_shared_ltd_state_cycles(kernel, n_axons, active, cycles):
    """The SHARED_LTD state of one learning step (docs/hw.md, "Shared rows"): axon ``a``'s
    bit read in cycle ``a``, its empty row then its kernel uses one per cycle from ``a + 4``,
    none in a write-back cycle, a use of a word only after the previous use's write-back;
    the state lasts (cycle of the last use) + 13, ``N_AXONS + 2`` with nothing active. With
    LEARN = 0 there is no such state, and the weights are the golden model's either way."""
    config = CoreConfig(neurons=8, axons=8, synapses=32, segments=8, wta_groups=2)
    lp = LearningParams(a_minus=255, shift=12, post_decay_shift=1, post_jump=100, w_min=-40, w_max=40)
    program = kernel_program(config, n_axons=n_axons, kernel=kernel, learning=lp)
    inputs = np.zeros((1, 2, program.n_inputs), bool)
    inputs[0, :, active] = True
    for learn in (True, False):
        _, state, stats = run_core(program, inputs, learn=learn)
        assert_state_equal(state, golden.run_batch(program, inputs, learn=learn).state)
        assert stats["phase_cycles"][Phase.LTD] == (2 * cycles if learn else 0), stats["phase_cycles"]


@pytest.mark.parametrize("seed", range(6))
def test_core_with_wta_blocks_matches_golden(seed):
    """Programs with structural k-WTA block ranges (and shared rows) against the golden model."""
    learning = bool(seed % 2)
    for attempt in range(50):
        program, inputs = random_program(1300 + 50 * seed + attempt, learning=learning, wta=True, batch=2,
                                         max_steps=6, max_neurons=10, max_synapses=30,
                                         features=("shared_rows", "structural_wta"))
        if len(program.wta_blocks):
            break
    assert len(program.wta_blocks)
    _matches_golden(program, inputs, learning, stall=(0.0, 0.5, 0.9)[seed % 3], seed=seed)


def test_stalled_consumer_never_loses_duplicates_or_reorders_output_spikes():
    """A consumer of ``spike_out`` that is mostly busy (ready low with probability 0.9) fills
    the 16-word output FIFO, so the core stalls; every spike still arrives exactly once and in
    the spec's order: per step the neurons without WTA group in increasing index, then the
    WTA winners in increasing index (2 wins group 2, 4 wins group 1)."""
    program = burst_program()
    steps = 6
    inputs = np.zeros((1, steps, 1), bool)
    want = golden.run_batch(program, inputs)
    expected = output_spike_order(program, want.spikes)
    assert expected[:22] == [(n, 0) for n in NO_GROUP + [2, 4]]
    assert len(expected) == 22 * steps
    _, _, free = run_core(program, inputs, learn=False, step_registers=STEP_REGISTERS)
    assert free["spikes"] == expected and free["spike_out_stall_cycles"] == 0
    free_cycles = free["step_registers"]["LAST_STEP_CYCLES"]
    for seed in range(2):
        out, state, stats = run_core(program, inputs, learn=False, stall=0.9, seed=seed,
                                     step_registers=STEP_REGISTERS)
        assert stats["spikes"] == expected, seed
        assert np.array_equal(out, want.spikes)
        assert_state_equal(state, want.state)
        assert stats["errors"] == 0 and stats["steps"] == steps
        assert stats["spike_out_stall_cycles"] > len(expected), stats["spike_out_stall_cycles"]
        # the FIFO filled up: the stalled consumer made every step itself longer
        stalled_cycles = stats["step_registers"]["LAST_STEP_CYCLES"]
        assert all(s > f for s, f in zip(stalled_cycles, free_cycles)), (stalled_cycles, free_cycles)


@pytest.mark.parametrize("learning", [False, True])
def test_stalled_consumer_keeps_random_output_streams(learning):
    """Busier random programs (dense inputs, up to 12 neurons) with a consumer stalling at 0.3
    and 0.9: the exact ordered (neuron, step) stream equals the golden model's."""
    stalled_spikes = 0
    for seed in range(3):
        program, inputs = random_program(700 + seed, learning=learning, batch=1, steps=10,
                                         density=0.7, max_neurons=12, max_synapses=48)
        want = golden.run_batch(program, inputs, learn=learning)
        expected = output_spike_order(program, want.spikes)
        for stall in (0.3, 0.9):
            _, state, stats = run_core(program, inputs, learn=learning, stall=stall, seed=seed)
            assert stats["spikes"] == expected, (seed, stall)
            assert_state_equal(state, want.state)
            stalled_spikes += stats["spike_out_stall_cycles"]
    assert stalled_spikes > 0


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

    async def body(host, dut):
        for region, words in images.items():
            for i, word in enumerate(words):
                await host.command(Command(Opcode.WRITE, region, i, word))
        for _ in range(2):                       # a READ must not write its idle data word
            for region, words in images.items():
                for i, word in enumerate(words):
                    assert await host.read(region, i) == word, (region, i)

    _simulate(config, body)


def test_core_converts_to_verilog():
    text = verilog.convert(Core(config=CoreConfig(neurons=16, axons=16, synapses=64)), name="core")
    for port in ("cmd__payload", "cmd__valid", "cmd__ready", "rsp__payload", "spike_in__payload",
                 "spike_out__payload", "busy", "error"):
        assert port in text


def _simulate(config, body):
    """Run ``await body(driver, dut)`` against a fresh Core, ``driver`` a HostDriver."""
    dut = Core(config=config)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def host(driver):
        await body(driver, dut)

    run_amaranth(sim, dut, config, host)


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

    async def body(host, dut):
        for (region, index), word in words.items():
            await host.command(Command(Opcode.WRITE, region, index, word))
        for register, value in registers.items():
            await host.command(Command(Opcode.WRITE, Region.REG, register.value, value))
        for (region, index), word in words.items():
            assert await host.read(region, index) == word, (region, index)
        for register, value in registers.items():
            assert await host.read(Region.REG, register.value) == value, register
        assert await host.read(Region.REG, Register.ERRORS.value) == 0

    _simulate(config, body)


def test_bad_commands_and_spikes_set_the_sticky_error_flag():
    config = CoreConfig(neurons=4, axons=4, synapses=8, wta_groups=2)

    async def body(host, dut):
        await host.command(Command(Opcode.WRITE, Region.REG, Register.N_INPUTS.value, 2))
        await host.spike(3)                         # axon >= N_INPUTS
        await host.command(Command(Opcode.WRITE, Region.SYNAPSE, 8, 1))  # index beyond depth
        await host.command(Command(Opcode.WRITE, Region.REG, Register.CYCLES.value, 1))  # read-only
        assert host.transport.get("error") == 1
        assert await host.read(Region.REG, Register.ERRORS.value) == 3
        assert await host.read(Region.REG, Register.STATUS.value) & 1 == 1
        await host.command(Command(Opcode.WRITE, Region.REG, Register.STATUS.value, 1))  # clear
        assert await host.read(Region.REG, Register.STATUS.value) & 1 == 0
        assert host.transport.get("error") == 0
        # The rejected spike never reached the input queue: a step integrates nothing.
        await host.command(Command(Opcode.STEP))
        assert await host.read(Region.REG, Register.LAST_STEP_SOPS.value) == 0

    _simulate(config, body)


def test_unused_region_codes_are_rejected():
    """Region codes 12..15 have no memory, nor have SEGMENT (10) and NCLASS (11) in a config
    without segments and parameter classes: WRITE and READ set the sticky error flag, a READ
    returns 0, and no memory word changes."""
    from neurocore.hw.host import command_layout
    from neurocore.hw.images import pack

    config = CoreConfig(neurons=4, axons=4, synapses=8, wta_groups=2)
    assert not {12, 13, 14, 15} & {r.value for r in Region}
    assert (Region.SEGMENT.value, Region.NCLASS.value) == (10, 11)
    assert not config.segments and not config.param_classes

    async def body(host, dut):
        for region in (Region.SYNAPSE, Region.POINTER, Region.LTP_RANGE):
            for i in range(4):
                await host.command(Command(Opcode.WRITE, region, i, 0x15 + i))
        errors = 0
        for code in (10, 11, 15):
            for op in (Opcode.WRITE, Opcode.READ):
                word = pack(command_layout(config), op=op.value, region=code, index=1, data=0x3f)
                await host.command(word)
                errors += 1
                if op == Opcode.READ:
                    assert await host.response() == 0
                assert host.transport.get("error") == 1
                assert await host.read(Region.REG, Register.ERRORS.value) == errors
        for region in (Region.SYNAPSE, Region.POINTER, Region.LTP_RANGE):
            for i in range(4):
                assert await host.read(region, i) == 0x15 + i, (region, i)

    _simulate(config, body)


def test_duplicate_host_spikes_count_once():
    from neurocore.hw.program import CoreProgram, NeuronParams

    config = CoreConfig(neurons=2, axons=2, synapses=4, learning=False, wta=False,
                        adaptive_threshold=False)
    program = CoreProgram.from_synapses(config, n_inputs=2, n_axons=2, axon=[0, 0, 1], target=[0, 1, 1],
                                        weight=[5, 3, 4], neurons=NeuronParams.uniform(2, threshold=100),
                                        outputs=[0, 1])

    async def body(host, dut):
        for c in load_commands(program):
            await host.command(c)
        for axon in (0, 0, 1, 0, 1):           # axon 0 three times, axon 1 twice
            await host.spike(axon)
        await host.command(Command(Opcode.STEP))
        assert await host.read(Region.REG, Register.LAST_STEP_SOPS.value) == 3
        state = [await host.read(Region.STATE, n) for n in range(2)]
        assert [unpack(neuron_state_layout(config), w)["v"] for w in state] == [5, 7]

    from neurocore.hw.layouts import neuron_state_layout
    _simulate(config, body)


def test_register_numbers_beyond_the_map_are_not_aliased():
    """The register decode looks at the low 5 index bits behind a range check: index 33 is not
    register 1 (N_NEURONS). A WRITE there is an error and changes nothing; a READ gives 0."""
    config = CoreConfig(neurons=4, axons=4, synapses=8, wta_groups=2)

    async def body(host, dut):
        await host.command(Command(Opcode.WRITE, Region.REG, Register.N_NEURONS.value, 3))
        for index in (32 + Register.N_NEURONS.value, (1 << 23) + Register.N_NEURONS.value, 31):
            await host.command(Command(Opcode.WRITE, Region.REG, index, 2))
            assert await host.read(Region.REG, index) == 0
        assert await host.read(Region.REG, Register.N_NEURONS.value) == 3
        assert await host.read(Region.REG, Register.ERRORS.value) == 3

    _simulate(config, body)
