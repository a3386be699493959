"""The chip (docs/core-spec.md, section 9): its config and program checks, and the golden
chip model against the reference on random chip programs (grids 1x1 to 4x4, multicast
remote routes, chip inputs that drive several host axons, learning on and off)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurocore.hw.chip import ChipConfig, ChipProgram, Routes
from neurocore.hw.config import CoreConfig
from neurocore.hw.program import CoreState
from neurocore.sim import golden, golden_chip, reference
from neurocore.sim.random_programs import random_chip_program, random_program

STATE_FIELDS = tuple(f.name for f in dataclasses.fields(CoreState))


def assert_same_states(a, b):
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        for name in STATE_FIELDS:
            assert np.array_equal(getattr(x, name), getattr(y, name)), f"core {k}: state.{name} differs"


@pytest.mark.parametrize("seed", range(120))
def test_golden_chip_equals_reference_on_random_chips(seed):
    rng = np.random.default_rng(seed)
    chip, inputs = random_chip_program(rng, batch=int(rng.integers(1, 4)))
    learn = bool(chip.config.core.learning and rng.random() < 0.6)
    g = golden_chip.run_chip_batch(chip, inputs, learn=learn)
    r_spikes, r_sops, r_states = reference.run_chip_batch(chip, inputs, learn=learn)
    assert np.array_equal(g.spikes, r_spikes), f"output spikes differ ({chip.config.rows}x{chip.config.cols})"
    assert np.array_equal(g.sops, r_sops)
    assert_same_states(g.states, r_states)


def test_random_chips_cover_the_features():
    """The random chips exercise what the differential test claims (grids, multicast, learning)."""
    grids, multicast, remote_spikes, learning = set(), 0, 0, 0
    for seed in range(120):
        rng = np.random.default_rng(seed)
        chip, inputs = random_chip_program(rng, batch=int(rng.integers(1, 4)))
        grids.add((chip.config.rows, chip.config.cols))
        multicast += any((np.diff(t.start) > 1).any() for t in chip.remote)
        learning += chip.config.core.learning
        remote_spikes += int(golden_chip.run_chip_batch(chip, inputs).packets.sum() > 0)
    assert {(1, 1), (2, 2), (4, 4)} <= grids and len(grids) >= 10
    assert multicast >= 20 and remote_spikes >= 40 and learning >= 30


@pytest.mark.parametrize("seed", range(20))
def test_a_one_core_chip_is_the_core(seed):
    rng = np.random.default_rng(1000 + seed)
    program, inputs = random_program(rng, batch=2)
    learn = bool(program.config.learning and seed % 2)
    chip = ChipProgram.single(program)
    g = golden_chip.run_chip_batch(chip, inputs, learn=learn)
    core = golden.run_batch(program, inputs, learn=learn)
    assert np.array_equal(g.spikes, core.spikes) and np.array_equal(g.sops, core.sops)
    assert_same_states(g.states, [core.state])
    assert g.packets.sum() == 0


def test_a_remote_spike_arrives_in_the_next_step_whatever_the_distance():
    """Core 0's neuron fires in step 0 (chip input 0), its spike reaches core 15 of a 4x4 chip
    (6 hops) and core 1 in step 1, where the neurons behind those host axons fire."""
    from neurocore.hw.program import NO_ROUTE, CoreProgram, LearningParams, NeuronParams

    config = CoreConfig(neurons=2, axons=2, synapses=4, learning=False, wta=False, adaptive_threshold=False)

    def core():          # host axon 0 -> neuron 0 with weight 1, threshold 1
        return CoreProgram(config=config, n_inputs=1, ptr=np.array([0, 1]), target=np.array([0]),
                           weight=np.ones(1, np.int64), plastic=np.zeros(1, bool),
                           neurons=NeuronParams.uniform(2, threshold=1), route=np.full(2, NO_ROUTE),
                           outputs=np.array([0]), learning=LearningParams())
    remote = [Routes.from_lists([[(15, 0), (1, 0)], []])] + [Routes.empty(2) for _ in range(15)]
    chip = ChipProgram(ChipConfig(rows=4, cols=4, core=config), [core() for _ in range(16)], remote,
                       Routes(np.array([0, 1]), np.array([0]), np.array([0])))
    inputs = np.zeros((3, 1), bool)
    inputs[0, 0] = True
    out = golden_chip.run_chip(chip, inputs).spikes[0]
    fired = {(int(t), int(k)) for t, k in zip(*np.nonzero(out))}        # output column k = core k's neuron 0
    assert fired == {(0, 0), (1, 1), (1, 15)}
    assert chip.config.hops(0, 15) == 6
    assert np.array_equal(reference.run_chip_batch(chip, inputs[None])[0][0], out)
    with pytest.raises(ValueError, match="core 1's host axons are 0..0"):
        ChipProgram(chip.config, chip.cores, [Routes.from_lists([[(1, 1)], []])] + remote[1:], chip.inputs)
    with pytest.raises(ValueError, match="that host axon is already driven"):
        ChipProgram(chip.config, chip.cores, [Routes.from_lists([[(1, 0)], []])] + remote[1:],
                    Routes(np.array([0, 1]), np.array([1]), np.array([0])))


# -- what the chip refuses -------------------------------------------------------------------------
def _two_cores(rng):
    chip, _ = random_chip_program(rng, rows=1, cols=2)
    return chip


@pytest.mark.parametrize("field, value, message", [
    ("rows", 0, "ChipConfig.rows must be an integer in 1..16, got 0"),
    ("cols", 17, "ChipConfig.cols must be an integer in 1..16, got 17"),
    ("routes", -1, "ChipConfig.routes must be an integer in 0..1048576"),
    ("link_fifo", 0, "ChipConfig.link_fifo must be an integer in 1..64, got 0"),
    ("core", {"neurons": 4}, "ChipConfig.core must be a CoreConfig, got dict"),
])
def test_chip_config_refuses_bad_fields(field, value, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        ChipConfig(**{field: value})


def test_chip_config_round_trips_and_hashes():
    config = ChipConfig(rows=3, cols=2, core=CoreConfig(neurons=64), routes=100, link_fifo=8)
    assert ChipConfig.from_dict(config.to_dict()) == config
    assert config.hash() != dataclasses.replace(config, link_fifo=4).hash()
    with pytest.raises(ValueError, match="unknown field"):
        ChipConfig.from_dict({"rows": 2, "grid": 3})


def test_chip_program_refuses_bad_routes():
    rng = np.random.default_rng(5)
    for _ in range(50):
        chip = _two_cores(rng)
        if chip.cores[0].n_neurons and chip.cores[1].n_inputs:
            break
    c0, c1 = chip.cores
    n0 = c0.n_neurons
    c0 = dataclasses.replace(c0, outputs=np.array([0]))          # neuron 0 sends: it is an output

    def with_remote(entries, inputs=None, cores=(c0, c1), to_host=None):
        lists = [[] for _ in range(n0)]
        lists[0] = entries
        return ChipProgram(chip.config, list(cores), [Routes.from_lists(lists), Routes.empty(c1.n_neurons)],
                           Routes.empty(0) if inputs is None else inputs, to_host)
    with pytest.raises(ValueError, match=r"-> \(core 2, .*the chip has cores 0\.\.1"):
        with_remote([(2, 0)])
    with pytest.raises(ValueError, match="a remote route to its own core"):
        with_remote([(0, 0)])
    with pytest.raises(ValueError, match="core 1's host axons are"):
        with_remote([(1, c1.n_inputs)])
    with pytest.raises(ValueError, match="already driven"):
        with_remote([(1, 0), (1, 0)])
    with pytest.raises(ValueError, match="already driven"):
        with_remote([(1, 0)], Routes.from_lists([[(1, 0)]]))
    ok = with_remote([(1, 0)], to_host=[np.array([False]), np.ones(c1.n_outputs, bool)])
    assert ok.remote[0].axon.tolist() == [0] and ok.n_outputs == c1.n_outputs
    with pytest.raises(ValueError, match="neuron 0 has remote entries but is not an output of core 0"):
        with_remote([(1, 0)], cores=(dataclasses.replace(c0, outputs=np.zeros(0, np.int64)), c1))
    with pytest.raises(ValueError, match=r"to_host\[0\]: one flag per output column of core 0 \(1\), got 2"):
        with_remote([(1, 0)], to_host=[np.ones(2, bool), np.ones(c1.n_outputs, bool)])
    with pytest.raises(ValueError, match="more than the core's route table holds"):
        ChipProgram(dataclasses.replace(chip.config, routes=0), [c0, c1],
                    [Routes.from_lists([[(1, 0)]] + [[]] * (n0 - 1)), Routes.empty(c1.n_neurons)], Routes.empty(0))
    with pytest.raises(ValueError, match="needs 2 core programs"):
        ChipProgram(chip.config, chip.cores[:1], chip.remote[:1], chip.inputs)
    other = random_program(rng, neurons=chip.config.core.neurons + 1)[0]
    with pytest.raises(ValueError, match="is built for config"):
        ChipProgram(chip.config, [chip.cores[0], other], [chip.remote[0], Routes.empty(other.n_neurons)],
                    chip.inputs)


def test_chip_run_refuses_bad_inputs():
    chip, inputs = random_chip_program(np.random.default_rng(2), rows=2, cols=2, batch=1, steps=3)
    assert chip.n_inputs > 0
    with pytest.raises(ValueError, match="chip inputs must have shape"):
        golden_chip.run_chip_batch(chip, inputs[..., :-1])
    bad = inputs.astype(np.int64)
    bad[0, 0, 0] = 2
    with pytest.raises(ValueError, match="must be spikes"):
        golden_chip.run_chip_batch(chip, bad)
    with pytest.raises(ValueError, match="one CoreState per core"):
        golden_chip.run_chip_batch(chip, inputs, states=[])
