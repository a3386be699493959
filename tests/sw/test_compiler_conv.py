"""Conv projections in the compiler: the kernel stored once in shared rows (segments), the
target placed position-major, and the same behaviour as the explicit lowering."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.layouts import pointer_layout, segment_layout
from neurocore.hw.program import NeuronParams, Segments
from neurocore.sim import golden, reference
from neurocore.sw.compiler import choose_config, compile_network, network_needs
from neurocore.sw.network import INPUT, ConvProjection, Population, Projection, SnnNetwork


def conv_net(rng, *, stride=(1, 1), padding=(0, 0), channels=2, maps=3, size=(6, 5), kernel=(3, 2)):
    """input (channels, H, W) -> conv -> maps -> dense readout of 4 neurons."""
    k = rng.integers(-6, 9, (maps, channels, *kernel))
    conv = ConvProjection(INPUT, "conv", k, (channels, *size), stride, padding)
    n_conv = int(np.prod(conv.out_shape))
    dense = rng.integers(-4, 6, (4, n_conv))
    pops = [Population("conv", NeuronParams.uniform(n_conv, threshold=12, reset_mode=1)),
            Population("out", NeuronParams.uniform(4, threshold=20), output=True)]
    return SnnNetwork(n_inputs=channels * size[0] * size[1], populations=pops,
                      projections=[conv, Projection.dense("conv", "out", dense)])


@pytest.mark.parametrize("geometry", [dict(), dict(stride=(2, 1)), dict(stride=(1, 2)), dict(padding=(1, 1)),
                                      dict(stride=(2, 2), padding=(1, 0), kernel=(2, 3))])
def test_shared_lowering_equals_explicit(geometry):
    rng = np.random.default_rng(len(str(geometry)))
    net = conv_net(rng, **geometry)
    shared = compile_network(net)
    explicit = compile_network(net, shared=False)
    conv = net.projections[0]
    co, ci, kh, kw = conv.kernel.shape
    assert shared.program.shared and not explicit.program.shared
    assert shared.program.n_synapses - shared.program.n_row_synapses == co * ci * kh * kw   # the kernel once
    assert shared.config.segments >= len(shared.program.segments)
    needs, unshared = network_needs(net), network_needs(net, shared=False)
    assert needs["synapses"] == shared.program.n_synapses and unshared["synapses"] == explicit.program.n_synapses
    x = rng.random((3, 12, net.n_inputs)) < 0.4
    a = golden.run_batch(shared.program, x)
    b = golden.run_batch(explicit.program, x)
    assert np.array_equal(a.spikes, b.spikes) and a.spikes.any()
    # the same inputs, one sample on the reference: the shared program's uses are the spec's
    r = reference.run(shared.program, x[0])
    g = golden.run(shared.program, x[0])
    assert np.array_equal(r.spikes, g.spikes) and r.sops == g.sops


def test_conv_target_is_placed_position_major():
    rng = np.random.default_rng(1)
    net = conv_net(rng)
    compiled = compile_network(net)
    first, size = compiled.layers["conv"]
    _, oh, ow = net.projections[0].out_shape
    # population neuron (c, y, x) -> core neuron first + (y*W' + x)*C + c; its axon follows
    # the core order (neuron first + k drives axon a0 + k: one route offset for the layer)
    c, y, x = 2, 1, 3
    core = first + (y * ow + x) * 3 + c
    a0 = compiled.layer_axons["conv"][0]
    assert compiled.program.route[core] == a0 + core - first
    conv = np.arange(first, first + size)
    assert (compiled.program.route[conv] - conv == a0 - first).all()
    # the readout reads population unit (c, y, x) from that axon: its row for the unit
    dense = net.projections[1]
    unit = (c * oh + y) * ow + x
    p = compiled.program
    row = slice(p.ptr[a0 + core - first], p.ptr[a0 + core - first + 1])
    out0 = compiled.layers["out"][0]
    got = dict(zip(p.target[row] - out0, p.weight[row]))
    want = {int(o): int(w) for o, w in zip(dense.post[dense.pre == unit], dense.weight[dense.pre == unit]) if w}
    assert {o: w for o, w in got.items() if w} == want


def test_bad_conv_projections():
    k = np.ones((2, 1, 3, 3), int)
    with pytest.raises(ValueError, match="does not fit the 2x2 input"):
        ConvProjection(INPUT, "c", k, (1, 2, 2))
    with pytest.raises(ValueError, match="kernel has 1 input channels"):
        ConvProjection(INPUT, "c", k, (2, 5, 5))
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        ConvProjection(INPUT, "c", k, (1, 5, 5), stride=0)
    pops = [Population("c", NeuronParams.uniform(10, threshold=5), output=True)]
    with pytest.raises(ValueError, match="has 18 units but population c has 10 neurons"):
        SnnNetwork(n_inputs=25, populations=pops, projections=[ConvProjection(INPUT, "c", k, (1, 5, 5))])
    net = SnnNetwork(n_inputs=25, populations=[Population("c", NeuronParams.uniform(18, threshold=5), output=True)],
                     projections=[ConvProjection(INPUT, "c", k * 200, (1, 5, 5))])
    with pytest.raises(ValueError, match="kernel value 200 .* outside the 8-bit weight range"):
        compile_network(net)
    with pytest.raises(ValueError, match="segments but the core has 0"):
        compile_network(SnnNetwork(n_inputs=25, populations=net.populations,
                                   projections=[ConvProjection(INPUT, "c", k, (1, 5, 5))]),
                        CoreConfig(), shared=True)


def test_converted_cnn_stores_kernels_once_and_behaves_as_explicit():
    """ANN-to-SNN conversion of a small CNN: conv stages become ConvProjections; the compiled
    program is far smaller than the explicit lowering and spikes identically on the golden model."""
    from neurocore.sw.convert.graph import AvgPool2d, Conv2d, Dense, Flatten, Graph, ReLU
    from neurocore.sw.convert.quantize import convert, simulate

    rng = np.random.default_rng(0)
    graph = Graph(input_shape=(1, 8, 8), layers=[
        Conv2d(rng.normal(0, .5, (4, 1, 3, 3)), rng.normal(0, .1, 4)), ReLU(), AvgPool2d(2),
        Conv2d(rng.normal(0, .3, (6, 4, 2, 2)), np.zeros(6)), ReLU(), Flatten(), Dense(rng.normal(0, .2, (5, 24)))])
    x = rng.random((40, 64))
    shared, explicit = convert(graph, x), convert(graph, x, shared=False)
    assert [type(p).__name__ for p in shared.network.projections] == [
        "ConvProjection", "Projection", "ConvProjection", "Projection"]
    a, b = compile_network(shared.network), compile_network(explicit.network)
    assert a.program.n_synapses * 10 < b.program.n_synapses
    inputs = rng.random((10, 16, 64)) < x[:10, None, :]
    ga, gb = golden.run_batch(a.program, inputs), golden.run_batch(b.program, inputs)
    assert np.array_equal(ga.spikes, gb.spikes) and ga.spikes.any()
    assert np.array_equal(simulate(shared.network, inputs)["output"], ga.spikes.sum(axis=1))


def test_shared_program_survives_its_image_directory(tmp_path):
    from neurocore.sw.image_dir import load_image_dir, write_image_dir

    compiled = compile_network(conv_net(np.random.default_rng(0)))
    write_image_dir(compiled, tmp_path / "img")
    loaded = load_image_dir(tmp_path / "img")
    p, q = compiled.program, loaded.program
    assert q.shared and all(np.array_equal(getattr(p.segments, f), getattr(q.segments, f))
                            for f in ("start", "length", "offset", "base", "count", "first"))
    assert np.array_equal(p.weight, q.weight) and loaded.projections[0]["conv"]["kernel_shape"] == [3, 2, 3, 2]
    assert (tmp_path / "img" / "segment.hex").is_file()
    # re-placing it: to_network() recovers the kernel from its words, the placement from the meta
    again = compile_network(loaded.to_network(), loaded.config)
    assert np.array_equal(again.program.weight, p.weight) and np.array_equal(again.program.ptr, p.ptr)
    assert all(np.array_equal(getattr(p.segments, f), getattr(again.program.segments, f))
               for f in ("start", "length", "offset", "base", "count", "first"))
    assert np.array_equal(again.program.neurons.threshold, p.neurons.threshold)


@pytest.mark.parametrize("seed, rowless", [(0, False), (1, True), (2, False), (3, True)])
def test_shared_programs_re_place_onto_other_cores_with_the_same_spikes(seed, rowless):
    """A conv network compiled with shared rows, brought back by to_network() and compiled
    onto another core (rows or none, other capacities) spikes identically."""
    from neurocore.sim import golden

    rng = np.random.default_rng(seed)
    net = conv_net(rng)
    first = compile_network(net, choose_config(net, tight=rowless))
    back = first.to_network()
    other = compile_network(back, choose_config(back, tight=not rowless))
    inputs = rng.random((8, 10, net.n_inputs)) < 0.4
    a, b = golden.run_batch(first.program, inputs), golden.run_batch(other.program, inputs)
    assert np.array_equal(a.spikes, b.spikes) and a.spikes.any()


def test_layers_keep_neuron_order_through_an_image(tmp_path):
    """Layer names that sort differently from their neuron order ("conv" before "avg"...)."""
    from neurocore.sw.image_dir import load_image_dir, write_image_dir

    rng = np.random.default_rng(2)
    k = rng.integers(1, 5, (2, 1, 3, 3))
    pops = [Population("zconv", NeuronParams.uniform(18, threshold=9)),
            Population("apool", NeuronParams.uniform(18, threshold=9), output=True)]
    net = SnnNetwork(n_inputs=25, populations=pops, projections=[
        ConvProjection(INPUT, "zconv", k, (1, 5, 5)), Projection("zconv", "apool", np.arange(18), np.arange(18),
                                                                 np.full(18, 3))])
    compiled = compile_network(net)
    write_image_dir(compiled, tmp_path / "img")
    loaded = load_image_dir(tmp_path / "img")
    assert list(loaded.layers) == ["zconv", "apool"] and loaded.layers == compiled.layers


@pytest.mark.parametrize("stride", [1, 2])
def test_pixels_share_their_segment_lists(stride):
    """Each input pixel's list is stored relative to its lowest target: the pixels of one
    channel away from the border (and of one stride phase) store one list, so the table
    holds far fewer entries than one per (pixel, kernel row); the uses are unchanged."""
    rng = np.random.default_rng(stride)
    net = conv_net(rng, stride=(stride, stride), channels=2, maps=3, size=(14, 14), kernel=(3, 3))
    compiled = compile_network(net)
    seg = compiled.program.segments
    per_pixel = int(seg.length.sum())                    # the CSR form: entries of its own per pixel
    assert len(seg) * 4 < per_pixel, (len(seg), per_pixel)
    assert compiled.config.segments >= len(seg) and network_needs(net)["segments"] == len(seg)
    # two interior pixels of channel 0 of one stride phase name the same entries, other offsets
    a0 = 0 * 14 * 14                                     # host axon of pixel (c, y, x) = (c*14 + y)*14 + x
    p, q = a0 + 6 * 14 + 6, a0 + 6 * 14 + 6 + stride
    assert seg.start[p] == seg.start[q] and seg.length[p] == seg.length[q] > 0
    assert seg.offset[p] != seg.offset[q]
    nib = compiled.config.neuron_index_bits
    _, entry, t0 = seg.listed(nib)
    csr = Segments.csr(np.concatenate([[0], np.cumsum(seg.length)]), base=seg.base[entry],
                       count=seg.count[entry], first=t0)
    assert [u.tolist() for u in csr.uses(nib)] == [u.tolist() for u in seg.uses(nib)]


def test_core_without_rows_runs_the_network_as_with_rows():
    """``rows = False`` (spec section 3): the dense readout's rows become one-entry segment
    lists, the pointer words lose their row fields, and every spike and SOP is the same."""
    rng = np.random.default_rng(7)
    net = conv_net(rng, stride=(2, 1), padding=(1, 1))
    with_rows = compile_network(net)
    cfg = dataclasses.replace(with_rows.config, rows=False,
                              segments=len(with_rows.program.segments) + with_rows.program.n_axons)
    rowless = compile_network(net, cfg)
    p, q = with_rows.program, rowless.program
    assert q.n_row_synapses == 0 and not q.ptr.any() and np.array_equal(q.weight, p.weight)
    row_axons = np.flatnonzero(np.diff(p.ptr) > 0)
    assert len(row_axons) > 0
    # each axon with a row lists it first: its first entry names the row's words and targets
    for a in row_axons:
        k = q.segments.start[a]
        assert q.segments.base[k] == p.ptr[a] and q.segments.count[k] == p.ptr[a + 1] - p.ptr[a]
        assert (q.segments.offset[a] + q.segments.first[k]) % (1 << cfg.neuron_index_bits) == p.row_first()[a]
    assert q.segments.length.sum() == p.segments.length.sum() + len(row_axons)
    x = rng.random((3, 12, net.n_inputs)) < 0.4
    a, b = golden.run_batch(p, x), golden.run_batch(q, x)
    assert np.array_equal(a.spikes, b.spikes) and a.spikes.any() and np.array_equal(a.sops, b.sops)
    r = reference.run(q, x[1])
    assert np.array_equal(r.spikes, b.spikes[1]) and r.sops == b.sops[1]
    # too small a table for the rows as lists: the capacity is named
    small = dataclasses.replace(cfg, segments=len(p.segments))
    with pytest.raises(ValueError, match=r"needs \d+ segments but the core has \d+"):
        compile_network(net, small)


def test_tight_config_drops_the_rows_of_a_conv_network():
    """A conv net's tight core keeps lists only when that stores fewer pointer bits; an MLP's
    keeps its rows."""
    rng = np.random.default_rng(3)
    conv = conv_net(rng, size=(12, 12), maps=4)
    cfg = choose_config(conv, tight=True)
    assert not cfg.rows and cfg.segments == len(compile_network(conv, cfg).program.segments)
    with_rows = dataclasses.replace(cfg, rows=True, segments=len(compile_network(conv).program.segments))
    bits = lambda c: c.axons * pointer_layout(c).size + c.segments * segment_layout(c).size
    assert bits(cfg) < bits(with_rows)
    dense = SnnNetwork(n_inputs=30, populations=[Population("out", NeuronParams.uniform(5, threshold=9),
                                                            output=True)],
                       projections=[Projection.dense(INPUT, "out", rng.integers(-3, 5, (5, 30)))])
    assert choose_config(dense, tight=True).rows


def test_rows_false_config_and_program_errors():
    with pytest.raises(ValueError, match=r"rows = false needs a segment table \(segments > 0\)"):
        CoreConfig(rows=False)
    with pytest.raises(ValueError, match=r"rows must be True or False"):
        CoreConfig(rows=0, segments=4)
    assert CoreConfig(segments=4).hash() != CoreConfig(segments=4, rows=False).hash()
    rng = np.random.default_rng(0)
    compiled = compile_network(conv_net(rng))
    cfg = dataclasses.replace(compiled.config, rows=False)
    with pytest.raises(ValueError, match=r"the core has no rows \(CoreConfig.rows = false\) but axon \d+ has a "
                                         r"row of \d+ synapses; store it as a one-entry segment list"):
        dataclasses.replace(compiled.program, config=cfg).validate()


def _positional_wta_net(rng, k=1, maps=3):
    net = conv_net(rng, maps=maps)
    conv = net.populations[0]
    pops = [Population("conv", conv.params, block_wta=(maps, k)), net.populations[1]]
    return SnnNetwork(n_inputs=net.n_inputs, populations=pops, projections=net.projections)


@pytest.mark.parametrize("k", [1, 2])
def test_block_wta_is_competition_between_the_maps_at_each_position(k):
    """``block_wta = (maps, k)`` on a conv target: one WTA block range over the layer, a block
    per position (the maps of a position are consecutive in core order); per step at most
    ``k`` maps fire at a position, and the reference agrees."""
    rng = np.random.default_rng(11 + k)
    net = _positional_wta_net(rng, k=k)
    compiled = compile_network(net)
    first, size = compiled.layers["conv"]
    blocks = compiled.program.wta_blocks
    assert (list(blocks.first), list(blocks.size), list(blocks.count), list(blocks.k)) == ([first], [3], [size // 3], [k])
    assert compiled.config.wta and compiled.config.wta_blocks >= 1
    assert compiled.summary()["layers"][0]["block_wta"] == [3, k]
    x = rng.random((12, net.n_inputs)) < 0.6
    g = golden.run(compiled.program, x, record_neurons=True)
    fired = g.neuron_spikes[:, first:first + size].reshape(12, size // 3, 3)
    assert fired.sum(axis=2).max() == k or fired.any()           # some position is contested ...
    assert fired.sum(axis=2).max() <= k                           # ... and never more than k win
    r = reference.run(compiled.program, x)
    assert np.array_equal(r.spikes, g.spikes)
    without = compile_network(conv_net(np.random.default_rng(11 + k), maps=3))
    wide = golden.run(without.program, x, record_neurons=True).neuron_spikes[:, first:first + size]
    assert wide.reshape(12, size // 3, 3).sum(axis=2).max() > k   # without it, more maps fire together
    tight = choose_config(net, tight=True)
    assert tight.wta and tight.wta_blocks == 1
    # an explicit lowering re-places with its blocks (neurocore compile)
    assert compile_network(net, shared=False).to_network().populations[0].block_wta == (3, k)


def test_block_wta_errors():
    params = NeuronParams.uniform(12, threshold=5)
    with pytest.raises(ValueError, match=r"block_wta size 5 must divide its 12 neurons"):
        Population("p", params, block_wta=(5, 1))
    with pytest.raises(ValueError, match=r"block_wta k = 3 must be in 1..2"):
        Population("p", params, block_wta=(2, 3))
    with pytest.raises(ValueError, match=r"wta=True and block_wta exclude each other"):
        Population("p", params, wta=True, block_wta=(3, 1))
    with pytest.raises(ValueError, match=r"block_wta must be a pair"):
        Population("p", params, block_wta=(3,))
    rng = np.random.default_rng(0)
    net = _positional_wta_net(rng)
    cfg = dataclasses.replace(compile_network(net).config, wta=False)
    with pytest.raises(ValueError, match=r"1 WTA block ranges but the core is configured without WTA"):
        compile_network(net, cfg)
    cfg = dataclasses.replace(compile_network(net).config, wta_blocks=0)
    with pytest.raises(ValueError, match=r"needs 1 WTA block ranges but the core has 0"):
        compile_network(net, cfg)


@pytest.mark.parametrize("seed", range(6))
def test_windows_of_a_conv_together_are_the_conv(seed):
    """Cut a convolution's output positions into windows: each window's synapses (explicit and
    as shared segments) are the whole conv's synapses onto those positions, and the windows'
    networks on one core each give the whole network's spikes, position by position."""
    from neurocore.sim import golden

    rng = np.random.default_rng(seed)
    stride = tuple(int(v) for v in rng.integers(1, 3, 2))
    net = conv_net(rng, stride=stride, padding=tuple(int(v) for v in rng.integers(0, 2, 2)))
    conv = net.projections[0]
    co, oh, ow = conv.out_shape
    cuts = np.unique(np.concatenate([[0, oh * ow], rng.integers(1, oh * ow, 2)]))
    whole = compile_network(SnnNetwork(n_inputs=net.n_inputs, populations=[net.populations[0]],
                                       projections=[conv]))
    inputs = rng.random((6, 8, net.n_inputs)) < 0.5
    want = golden.run_batch(dataclasses.replace(whole.program, outputs=np.arange(whole.program.n_neurons)), inputs).spikes
    for p0, p1 in zip(cuts[:-1], cuts[1:]):
        part = dataclasses.replace(conv, window=(int(p0), int(p1)))
        size = part.n_units
        pop = Population("conv", NeuronParams.uniform(size, threshold=12, reset_mode=1))   # conv_net's
        sub = SnnNetwork(n_inputs=net.n_inputs, populations=[pop], projections=[part])
        for shared in (True, False):
            c = compile_network(sub, choose_config(sub, shared=shared), shared=shared)
            got = golden.run_batch(dataclasses.replace(c.program, outputs=np.arange(size)), inputs).spikes
            assert np.array_equal(got, want[:, :, p0 * co:p1 * co]), (p0, p1, shared)
        whole_post = conv.placement()[conv.post]
        inside = (whole_post >= p0 * co) & (whole_post < p1 * co)
        assert sorted(zip(part.pre.tolist(), part.post.tolist(), part.weight.tolist())) == sorted(
            zip(conv.pre[inside].tolist(), (whole_post[inside] - p0 * co).tolist(), conv.weight[inside].tolist()))
    with pytest.raises(ValueError, match="window must be"):
        dataclasses.replace(conv, window=(3, 3))
