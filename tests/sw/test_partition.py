"""Partitioning a network over a chip (neurocore.sw.partition): the chip runs it bit for bit
as one core holding the whole network does, on random layered networks and grids."""
from __future__ import annotations

import numpy as np
import pytest

from neurocore.hw.chip import ChipConfig
from neurocore.hw.config import CoreConfig
from neurocore.hw.program import NeuronParams
from neurocore.sim import golden, golden_chip
from neurocore.sw.compiler import compile_network
from neurocore.sw.network import INPUT, ConvProjection, Population, Projection, SnnNetwork
from neurocore.sw.partition import compile_chip, partition


def layered(rng, sizes, *, n_inputs, density=0.6, wta_last=False, block=None, recurrent=False):
    """A random layered network: INPUT -> sizes[0] -> sizes[1] ..., the last the output."""
    pops, projs, source, width = [], [], INPUT, n_inputs
    for i, size in enumerate(sizes):
        name = f"l{i}"
        last = i == len(sizes) - 1
        pops.append(Population(name, NeuronParams.uniform(size, threshold=int(rng.integers(20, 80)),
                                                           leak_shift=int(rng.integers(0, 4))),
                               output=last, wta=wta_last and last,
                               block_wta=block if (block and i == 0) else None))
        w = rng.integers(-25, 40, (size, width))
        w[rng.random(w.shape) > density] = 0
        projs.append(Projection.dense(source, name, w))
        source, width = name, size
    if recurrent and len(sizes) > 1:
        w = rng.integers(-10, 10, (sizes[0], sizes[-1]))
        projs.append(Projection.dense(f"l{len(sizes) - 1}", "l0", w))
    return SnnNetwork(n_inputs=n_inputs, populations=pops, projections=projs)


def same_on_chip(net, config, rng, samples=12, steps=10):
    compiled_chip = compile_chip(net, config)
    one = compile_network(net)
    x = rng.random((samples, steps, net.n_inputs)) < rng.choice([0.1, 0.3, 0.6])
    want = golden.run_batch(one.program, x)
    got = golden_chip.run_chip_batch(compiled_chip.chip, x)
    assert np.array_equal(got.spikes[:, :, compiled_chip.output_order], want.spikes)
    assert np.array_equal(compiled_chip.decode(got.spikes), one.decode(want.spikes))
    # (SOP counts differ: rows count their zero-weight gap words, and a cut changes the rows)
    return compiled_chip, got


@pytest.mark.parametrize("seed", range(25))
def test_random_layered_networks_run_on_a_chip_as_on_one_core(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(v) for v in rng.integers(3, 40, int(rng.integers(1, 4)))]
    net = layered(rng, sizes, n_inputs=int(rng.integers(4, 30)), wta_last=bool(seed % 3 == 0),
                  block=(2, 1) if seed % 4 == 1 and sizes[0] % 2 == 0 else None, recurrent=seed % 5 == 2)
    rows, cols = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    neurons = max(max(sizes) if seed % 3 == 0 else 4, -(-sum(sizes) // (rows * cols)) + 4)
    config = ChipConfig(rows=rows, cols=cols, core=CoreConfig(neurons=neurons, axons=256, synapses=8192, wta_blocks=1))
    compiled_chip, got = same_on_chip(net, config, rng)
    used = {core for parts in compiled_chip.slices.values() for core, _, _ in parts}
    assert sum(hi - lo for parts in compiled_chip.slices.values() for _, lo, hi in parts) == sum(sizes)
    if sum(sizes) > neurons:
        assert len(used) > 1                                        # really split
    # a WTA population is never cut
    for pop in net.populations:
        if pop.wta:
            assert len(compiled_chip.slices[pop.name]) == 1
        if pop.block_wta:
            assert all((hi - lo) % pop.block_wta[0] == 0 for _, lo, hi in compiled_chip.slices[pop.name])


def test_split_layers_send_packets_and_multicast():
    rng = np.random.default_rng(3)
    net = layered(rng, [30, 30], n_inputs=10, density=1.0)
    config = ChipConfig(rows=2, cols=2, core=CoreConfig(neurons=16, axons=128, synapses=4096))
    compiled_chip, got = same_on_chip(net, config, rng)
    assert got.packets.sum() > 0
    assert any((np.diff(t.start) > 1).any() for t in compiled_chip.chip.remote)   # a neuron to 2+ cores
    assert compiled_chip.remote_entries() == sum(len(t) for t in compiled_chip.chip.remote)


def conv_then_dense(rng, maps, side, outputs):
    """input (1, side, side) -> conv 3x3 with ``maps`` maps -> ``outputs`` dense neurons."""
    kernel = rng.integers(-3, 8, (maps, 1, 3, 3))
    n_conv = maps * (side - 2) ** 2
    pops = [Population("c", NeuronParams.uniform(n_conv, threshold=6)),
            Population("o", NeuronParams.uniform(outputs, threshold=10), output=True)]
    projections = [ConvProjection(INPUT, "c", kernel, (1, side, side)),
                   Projection.dense("c", "o", rng.integers(-5, 9, (outputs, n_conv)))]
    return SnnNetwork(n_inputs=side * side, populations=pops, projections=projections), kernel


def test_a_conv_layer_stays_whole_with_its_shared_kernel():
    rng = np.random.default_rng(4)
    net, kernel = conv_then_dense(rng, 3, 6, 4)
    config = ChipConfig(rows=1, cols=2, core=CoreConfig(neurons=48, axons=128, synapses=4096, segments=256))
    compiled_chip, _ = same_on_chip(net, config, rng)
    assert compiled_chip.slices == {"c": [(0, 0, 48)], "o": [(1, 0, 4)]}
    assert compiled_chip.cores[0].projections[0]["synapses"] == kernel.size      # the kernel once


@pytest.mark.parametrize("sizes, core, message", [
    ([40], dict(neurons=16, axons=64, synapses=4096), "network does not fit the 1x2 chip: population l0 neurons 32..39 remain"),
    ([20], dict(neurons=8, axons=64, synapses=4096), "population l0 (it cannot be cut: 20 neurons) does not fit an empty core"),
    ([8], dict(neurons=16, axons=4, synapses=4096), "population l0, neurons 0..0 does not fit an empty core of the chip: it needs 20 axons but the core has 4"),
])
def test_what_does_not_fit_gets_one_line(sizes, core, message):
    rng = np.random.default_rng(0)
    net = layered(rng, sizes, n_inputs=20, density=1.0, wta_last="cannot be cut" in message)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        partition(net, ChipConfig(rows=1, cols=2, core=CoreConfig(**core)))


@pytest.mark.parametrize("block", [None, (4, 1), (4, 2)])
def test_a_conv_layer_too_big_for_a_core_is_cut_by_positions_with_its_kernel_on_each_core(block):
    """A conv target bigger than a core is cut between output positions (all maps of a
    position together, so per-position WTA blocks stay whole); every core with a slice
    stores the kernel once; the chip spikes as one core does."""
    rng = np.random.default_rng(6)
    net, kernel = conv_then_dense(rng, 4, 8, 5)                   # 4 x 6 x 6 = 144 conv neurons
    if block:
        net.populations[0].block_wta = block
    config = ChipConfig(rows=2, cols=2, core=CoreConfig(neurons=64, axons=256, synapses=4096, segments=512,
                                                        wta_blocks=1))
    compiled_chip, got = same_on_chip(net, config, rng)
    parts = compiled_chip.slices["c"]
    assert len(parts) == 3 and got.packets.sum() > 0
    assert all(lo % 4 == 0 and hi % 4 == 0 for _, lo, hi in parts)   # between positions
    for core, _, _ in parts:
        conv = [pr for pr in compiled_chip.cores[core].projections if pr.get("conv")]
        assert len(conv) == 1 and conv[0]["synapses"] == kernel.size and conv[0]["conv"]["window"]
