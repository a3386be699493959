"""The compiler: placement, validity, golden-model behaviour, capacity and bound errors, decoding."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import NO_ROUTE, CoreProgram, LearningParams, NeuronParams
from neurocore.sim import golden
from neurocore.sw.compiler import (CLASS_SAVING, CompiledNetwork, choose_config, compile_network, freeze_network,
                                   network_needs)
from neurocore.sw.network import Population, Projection, SnnNetwork

LEARNING = LearningParams(a_plus=4, a_minus=2, shift=2, pre_decay_shift=1, post_decay_shift=1,
                          pre_jump=16, post_jump=16, w_min=0, w_max=20)


def small_net(**kw) -> SnnNetwork:
    """4 inputs -> hidden (3, routed) -> out (2, WTA, output, plastic, adaptive) ; + a side layer."""
    rng = np.random.default_rng(1)
    hidden = Population("hidden", NeuronParams.uniform(3, threshold=6, leak_shift=2))
    out = Population("out", NeuronParams.uniform(2, threshold=5, theta_inc=1, theta_decay_shift=4),
                     output=True, wta=True, theta=[3, 0])
    side = Population("side", NeuronParams.uniform(2, threshold=4), wta=True)
    projections = [
        Projection.dense("input", "hidden", rng.integers(-3, 6, (3, 4))),
        Projection.dense("hidden", "out", rng.integers(0, 10, (2, 3)), plastic=True),
        Projection("input", "side", [0, 3], [1, 0], [4, 4]),
        Projection("side", "out", [0, 1], [0, 1], [-2, -3]),
    ]
    return SnnNetwork(n_inputs=4, populations=[hidden, out, side], projections=projections,
                      learning=LEARNING, encoding={"kind": "rate", "steps": 10}, **kw)


def flat_synapses(net: SnnNetwork, compiled: CompiledNetwork):
    """Expected (axon, target, weight, plastic) of every synapse, straight from the placement rule."""
    axon_base = {"input": 0} | {k: v[0] for k, v in compiled.layer_axons.items()}
    rows = []
    for pr in net.projections:
        for pre, post, w in zip(pr.pre, pr.post, pr.weight):
            rows.append((axon_base[pr.source] + pre, compiled.layers[pr.target][0] + post, w, pr.plastic))
    return rows


def test_placement():
    net = small_net()
    c = compile_network(net)
    p = c.program
    assert c.config == CoreConfig()
    assert c.layers == {"hidden": (0, 3), "out": (3, 2), "side": (5, 2)}
    # hidden and side are sources -> internal axons after the 4 inputs, in population order
    assert c.layer_axons == {"hidden": (4, 3), "side": (7, 2)}
    assert c.input_axons == p.n_inputs == 4 and p.n_axons == 9 and p.n_neurons == 7
    assert p.route.tolist() == [4, 5, 6, NO_ROUTE, NO_ROUTE, 7, 8]
    assert p.outputs.tolist() == [3, 4] and c.output_layers == ["out"] and c.output_layer == "out"
    assert c.wta_groups == {"out": 1, "side": 2}
    assert p.neurons.wta_group.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert p.theta.tolist() == [0, 0, 0, 3, 0, 0, 0]
    assert p.neurons.theta_inc.tolist() == [0, 0, 0, 1, 1, 0, 0]
    assert p.neurons.threshold.tolist() == [6, 6, 6, 5, 5, 4, 4]
    assert p.learning == LEARNING
    assert c.encoding == {"kind": "rate", "steps": 10}
    assert c.decoding == {"kind": "count", "n_classes": 2}
    # synapses: rows of consecutive targets, axon-major, gaps filled with fixed zero weights
    expected = flat_synapses(net, c)
    proj_ids = [i for i, pr in enumerate(net.projections) for _ in pr.pre]
    listed = {(a, n): (w, pl, proj_ids[j]) for j, (a, n, w, pl) in enumerate(expected)}
    assert len(listed) == len(expected)
    rows = []
    for a in range(p.n_axons):
        targets = [n for (b, n) in listed if b == a]
        for n in range(min(targets), max(targets) + 1) if targets else ():
            w, pl, proj = listed.get((a, n), (0, False, -1))
            rows.append((a, n, int(w), bool(pl), proj))
    axon = p.synapse_axon()
    got = list(zip(axon.tolist(), p.target.tolist(), p.weight.tolist(), p.plastic.tolist(),
                   c.synapse_projection.tolist()))
    assert got == rows
    assert sum(r[4] == -1 for r in rows) > 0          # the example has gaps
    assert p.n_synapses == network_needs(net)["synapses"] == len(rows)
    # the same as CoreProgram.from_synapses with the flat list
    a, t, w, pl = map(np.array, zip(*expected))
    ref = CoreProgram.from_synapses(c.config, n_inputs=4, n_axons=9, axon=a, target=t, weight=w,
                                    plastic=pl, neurons=p.neurons, route=p.route, outputs=p.outputs,
                                    learning=LEARNING, theta=p.theta)
    for name in ("ptr", "target", "weight", "plastic"):
        assert np.array_equal(getattr(ref, name), getattr(p, name)), name
    p.validate()


def test_utilisation_and_summary():
    c = compile_network(small_net())
    u = c.utilisation()
    assert u["neurons"] == {"used": 7, "capacity": 256, "percent": round(700 / 256, 2)}
    assert u["axons"]["used"] == 9 and u["synapses"]["used"] == c.program.n_synapses
    assert u["wta_groups"] == {"used": 2, "capacity": 16, "percent": 12.5}
    s = c.summary()
    assert [layer["name"] for layer in s["layers"]] == ["hidden", "out", "side"]
    assert sum(layer["synapses_in"] for layer in s["layers"]) == s["synapses"]
    assert s["layers"][1]["plastic_synapses_in"] == 6 == s["plastic_synapses"]
    assert s["layers"][0]["axons"] == [4, 6] and s["layers"][1]["axons"] is None


def test_to_network_recompiles_identically():
    c = compile_network(small_net())
    again = compile_network(c.to_network(), c.config)
    for name in ("ptr", "target", "weight", "plastic", "route", "outputs", "theta"):
        assert np.array_equal(getattr(c.program, name), getattr(again.program, name)), name
    for name in ("threshold", "leak_shift", "theta_inc", "wta_group"):
        assert np.array_equal(getattr(c.program.neurons, name), getattr(again.program.neurons, name))
    assert again.meta() == c.meta()
    # re-placement onto another core keeps the behaviour
    smaller = compile_network(c.to_network(), CoreConfig(neurons=8, axons=16, synapses=64))
    inputs = np.random.default_rng(0).random((3, 12, 4)) < 0.5
    a = golden.run_batch(c.program, inputs)
    b = golden.run_batch(smaller.program, inputs)
    assert np.array_equal(a.spikes, b.spikes) and np.array_equal(a.sops, b.sops)


def chain_net() -> SnnNetwork:
    """in0 -> a0 -> b0, in1 -> a1 -> b1; b is one WTA group. Thresholds 5 / 3."""
    a = Population("a", NeuronParams.uniform(2, threshold=5))
    b = Population("b", NeuronParams.uniform(2, threshold=3), output=True, wta=True)
    return SnnNetwork(2, [a, b], [Projection("input", "a", [0, 1], [0, 1], [5, 5]),
                                  Projection("a", "b", [0, 1], [0, 1], [5, 3])])


def test_golden_spikes_on_compiled_program():
    c = compile_network(chain_net())
    inputs = np.zeros((5, 2), bool)
    inputs[0, 0] = True                  # a0 fires at 0 -> b0 fires at 1
    inputs[2] = True                     # a0, a1 fire at 2 -> b0 (margin 2) beats b1 (margin 0) at 3
    result = golden.run(c.program, inputs, record_neurons=True)
    assert result.spikes.astype(int).tolist() == [[0, 0], [1, 0], [0, 0], [1, 0], [0, 0]]
    assert result.neuron_spikes[:, :2].astype(int).tolist() == [[1, 0], [0, 0], [1, 1], [0, 0], [0, 0]]
    assert result.sops == 1 + 1 + 2 + 2
    assert c.decode(result.spikes).tolist() == [0]


def test_plastic_projection_learns_within_bounds():
    c = compile_network(small_net())
    inputs = np.random.default_rng(3).random((40, 4)) < 0.6
    result = golden.run(c.program, inputs, learn=True)
    w = result.state.weight
    plastic = c.program.plastic
    assert not np.array_equal(w[plastic], c.program.weight[plastic])
    assert (w[plastic] >= LEARNING.w_min).all() and (w[plastic] <= LEARNING.w_max).all()
    assert np.array_equal(w[~plastic], c.program.weight[~plastic])


# -- choosing and checking the core --------------------------------------------------------------
def big_net(neurons=10, inputs=4, synapses_per_neuron=1, wta_pops=0, plastic=False) -> SnnNetwork:
    pops = [Population("big", NeuronParams.uniform(neurons, threshold=1000))]
    pops += [Population(f"w{i}", NeuronParams.uniform(1, threshold=10), wta=True) for i in range(wta_pops)]
    k = synapses_per_neuron
    pre = np.tile(np.arange(k) % inputs, neurons)
    post = np.repeat(np.arange(neurons), k)
    return SnnNetwork(inputs, pops, [Projection("input", "big", pre, post, np.ones(len(pre), int), plastic)],
                      learning=LearningParams(w_max=1) if plastic else LearningParams())


def test_default_config_when_it_fits():
    assert choose_config(small_net()) == CoreConfig()


def test_capacities_raised_to_powers_of_two():
    net = big_net(neurons=300, inputs=600, synapses_per_neuron=240, wta_pops=17)
    cfg = compile_network(net).config
    default = CoreConfig()
    assert (cfg.neurons, cfg.axons, cfg.synapses, cfg.wta_groups) == (512, 1024, 131072, 17)
    # 300 neurons of 17 WTA populations: 17 parameter classes (one group id each) <= 300 / 4
    assert cfg.param_classes == 32
    assert dataclasses.replace(cfg, neurons=256, axons=256, synapses=65536, wta_groups=16,
                               param_classes=0) == default


def test_param_classes_only_where_they_save():
    """A big network gets a class table when its neurons share parameter sets (one class per
    at least CLASS_SAVING neurons); neurons with their own parameters keep a word each."""
    shared = big_net(neurons=300)
    compiled = compile_network(shared)
    classes = compiled.program.param_classes()
    assert len(classes) <= compiled.config.param_classes < 2 * len(classes)
    assert len(classes) <= 300 // CLASS_SAVING
    own = big_net(neurons=300)
    own.populations[0].params.bias[:] = np.arange(300) % 200       # 200 distinct parameter sets
    assert compile_network(own).config.param_classes == 0
    small = compile_network(small_net())
    assert small.config.param_classes == 0                          # fits the default core


def test_param_classes_of_a_conv_network():
    """A conv layer's neurons: one class per map (its bias), one route offset for the layer."""
    from neurocore.sw.network import INPUT, ConvProjection, Population, Projection, SnnNetwork
    rng = np.random.default_rng(0)
    kernel = rng.integers(-3, 4, size=(4, 1, 3, 3))
    conv = ConvProjection(INPUT, "c1", kernel, (1, 10, 10))
    n = int(np.prod(conv.out_shape))                    # 4 maps x 8 x 8 = 256, + 10 readout
    bias = np.repeat(np.arange(4), n // 4)              # population order: map-major
    pops = [Population("c1", NeuronParams(**{**{f: np.zeros(n, np.int64) for f in
                       ("leak_shift", "reset_mode", "refractory", "theta_inc", "theta_decay_shift",
                        "wta_group")}, "threshold": np.full(n, 9), "bias": bias})),
            Population("out", NeuronParams.uniform(10, threshold=20), output=True)]
    net = SnnNetwork(n_inputs=100, populations=pops,
                     projections=[conv, Projection.dense("c1", "out", rng.integers(-2, 3, (10, n)))])
    compiled = compile_network(net)
    classes = compiled.program.param_classes()
    assert len(classes) == 5 and compiled.config.param_classes == 8   # 4 maps + the readout
    first, size = compiled.layers["c1"]
    k = np.arange(size)
    assert (classes.index[first + k] == k % 4).all()    # position-major: the maps interleave
    assert classes.route_valid.tolist() == [1, 1, 1, 1, 0]



@pytest.mark.parametrize("net, config, pattern", [
    (big_net(neurons=300), CoreConfig(), r"300 neurons but the core has 256 \(overflow by 44\)"),
    (big_net(inputs=600), CoreConfig(), r"600 axons but the core has 256 \(overflow by 344\)"),
    (big_net(neurons=100, synapses_per_neuron=3), CoreConfig(synapses=250),
     r"300 synapses but the core has 250 \(overflow by 50\)"),
    (big_net(wta_pops=3), CoreConfig(wta_groups=2), r"3 WTA groups but the core has 2 \(overflow by 1\)"),
    (big_net(wta_pops=1), CoreConfig(wta=False), r"WTA groups but the core is configured without WTA"),
    (big_net(neurons=70000), None, r"does not fit any core.*70000 neurons but the largest core has 65536 "
                                   r"\(overflow by 4464\)"),
])
def test_capacity_errors(net, config, pattern):
    with pytest.raises(ValueError, match=pattern):
        compile_network(net, config)


def test_all_overflows_reported_at_once():
    with pytest.raises(ValueError) as info:
        compile_network(big_net(neurons=20, inputs=20, synapses_per_neuron=2),
                        CoreConfig(neurons=10, axons=10, synapses=30))
    msg = str(info.value)
    assert "20 neurons" in msg and "20 axons" in msg and "40 synapses" in msg and "\n" not in msg


def test_feature_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"projection input->big is plastic .* without learning"):
        compile_network(big_net(plastic=True), CoreConfig(learning=False))
    with pytest.raises(ValueError, match=r"layer 'out' uses an adaptive threshold"):
        compile_network(small_net(), CoreConfig(adaptive_threshold=False))
    net = small_net()
    net.projections[0].weight[5] = 300
    with pytest.raises(ValueError, match=r"projection input->hidden: weight\[5\] = 300 is outside the "
                                         r"8-bit weight range -128..127"):
        compile_network(net)
    net = small_net()
    net.projections[1].weight[0] = 25
    with pytest.raises(ValueError, match=r"plastic projection hidden->out: weight\[0\] = 25 .* 0..20"):
        compile_network(net)
    net = small_net()
    net.population("side").params.threshold[1] = 0
    with pytest.raises(ValueError, match=re.escape("neurons.threshold[6] (layer 'side' neuron 1) = 0")):
        compile_network(net)


def test_accumulator_bound_names_layer_and_neuron():
    # 64 inputs x weight 100 into 'h' neuron 2 only: 6400 > 2^11 - 1 with a 12-bit accumulator
    cfg = CoreConfig(accumulator_bits=12)
    w = np.zeros((4, 64), int)
    w[2] = 100
    net = SnnNetwork(64, [Population("first", NeuronParams.uniform(3, threshold=9)),
                          Population("h", NeuronParams.uniform(4, threshold=9))],
                     [Projection.dense("input", "h", w)])
    with pytest.raises(ValueError, match=r"accumulator overflow: layer 'h' neuron 2 \(core neuron 5\) can "
                                         r"receive 6400 .* 12-bit accumulator range -2048..2047"):
        compile_network(net, cfg)
    net.projections[0].weight[:] = -100
    with pytest.raises(ValueError, match=r"layer 'h' neuron 2 .* -6400 .*negative"):
        compile_network(net, cfg)
    # plastic synapses count at w_max, even when their weight is 0 now
    net = SnnNetwork(64, [Population("p", NeuronParams.uniform(1, threshold=9))],
                     [Projection.dense("input", "p", np.zeros((1, 64), int), plastic=True)],
                     learning=LearningParams(w_max=100))
    with pytest.raises(ValueError, match=r"layer 'p' neuron 0 .* 6400"):
        compile_network(net, cfg)
    compile_network(net, CoreConfig(accumulator_bits=14))   # 6400 <= 8191: fits


# -- decoding ------------------------------------------------------------------------------------
def _spikes(rows):
    """[B][T] strings of output columns ('01' = column 1 spikes) -> bool [B, T, n]."""
    return np.array([[[c == "1" for c in step] for step in sample] for sample in rows], bool)


def test_count_decoding_ties():
    c = compile_network(small_net())
    spikes = _spikes([
        ["10", "10", "01"],   # 2 vs 1 -> 0
        ["00", "01", "11"],   # 1 vs 2 -> 1
        ["00", "01", "10"],   # tie 1-1, column 1 spiked first -> 1
        ["00", "11", "00"],   # tie, same first step -> lowest column 0
        ["00", "00", "00"],   # silent -> 0
    ])
    assert c.decode(spikes).tolist() == [0, 1, 1, 0, 0]
    assert c.decode(spikes[2]).tolist() == [1]
    with pytest.raises(ValueError, match="shape"):
        c.decode(np.zeros((1, 3, 5), bool))


def test_vote_decoding():
    net = small_net(decoding={"kind": "vote", "labels": np.array([1, 0]), "n_classes": np.int64(3)})
    c = compile_network(net)
    assert c.n_classes == 3 and c.decoding == {"kind": "vote", "labels": [1, 0], "n_classes": 3}
    spikes = _spikes([["10", "10"], ["01", "11"], ["00", "00"]])
    # column 0 is class 1, column 1 is class 0; class 2 has no neuron and is never chosen
    assert c.decode(spikes).tolist() == [1, 0, 0]
    # mean, not sum: class 0 has two neurons
    net = SnnNetwork(1, [Population("o", NeuronParams.uniform(3, threshold=1), output=True)], [],
                     decoding={"kind": "vote", "labels": [0, 0, 1], "n_classes": 2})
    c = compile_network(net)
    assert c.decode(_spikes([["110", "001", "001"]])).tolist() == [1]   # class 0 mean 1 < class 1 mean 2
    assert c.decode(_spikes([["110", "110", "001", "001"]])).tolist() == [0]   # tie (mean 2) -> lowest
    for bad, pattern in [({"kind": "vote", "labels": [0, 1]}, "needs 'labels'"),
                         ({"kind": "vote", "labels": [0, 1], "n_classes": 2}, "labels must be 3 integers"),
                         ({"kind": "vote", "labels": [0, 1, 5], "n_classes": 2}, r"-1..1"),
                         ({"kind": "max"}, "unknown decoding kind"),
                         ({"kind": "count", "n_classes": 4}, "one output neuron per class"),
                         ({"kind": "count", "fn": print}, "JSON data"),
                         ({"kind": "count", "n_classes": 3.0},
                          re.escape("decoding: n_classes must be a non-negative integer, got 3.0")),
                         ({"kind": "vote", "labels": [0, 0, 1], "n_classes": "2"},
                          re.escape("decoding 'vote': n_classes must be a non-negative integer, got '2'")),
                         ({"kind": "vote", "labels": [0, 0, 1], "n_classes": -3},
                          re.escape("decoding 'vote': n_classes must be a non-negative integer, got -3"))]:
        net.decoding = bad
        with pytest.raises(ValueError, match=pattern):
            compile_network(net)


def test_freeze_for_inference_only_cores():
    net = small_net()
    c = compile_network(net)
    with pytest.raises(ValueError, match="without learning"):
        compile_network(net, CoreConfig(learning=False, adaptive_threshold=False))
    frozen = compile_network(freeze_network(net), CoreConfig(learning=False, adaptive_threshold=False))
    assert not frozen.program.plastic.any() and not frozen.program.theta.any()
    assert frozen.program.neurons.threshold.tolist() == [6, 6, 6, 8, 5, 4, 4]   # 'out' neuron 0: 5 + theta 3
    inputs = np.random.default_rng(2).random((6, 30, 4)) < 0.5
    a, b = golden.run_batch(c.program, inputs), golden.run_batch(frozen.program, inputs)
    assert np.array_equal(a.spikes, b.spikes)
    assert np.array_equal(a.sops, b.sops)
    # a folded threshold beyond the V-1 bit range is named
    net.population("out").theta = np.array([(1 << 23) - 2, 0])
    with pytest.raises(ValueError, match=r"neurons.threshold\[3\] \(layer 'out' neuron 0\)"):
        compile_network(freeze_network(net))


def test_choose_config_widens_the_accumulator_when_the_bound_needs_it():
    # 300 inputs x weight 127 into one neuron: 38,100 needs 17 signed bits
    pop = Population("out", NeuronParams.uniform(1, threshold=10))
    net = SnnNetwork(n_inputs=300, populations=[pop],
                     projections=[Projection.dense("input", "out", np.full((1, 300), 127))])
    default = CoreConfig()
    cfg = choose_config(net)
    needed = max(default.accumulator_bits, 17)
    assert cfg.accumulator_bits == needed and cfg.membrane_bits == max(default.membrane_bits, needed)
    compile_network(net, cfg)                       # the bound holds on the chosen core
    if default.accumulator_bits < 17:
        with pytest.raises(ValueError, match="accumulator overflow"):
            compile_network(net, dataclasses.replace(cfg, accumulator_bits=default.accumulator_bits))


# -- a program's metadata must account for every synapse -----------------------------------------------
def rebuilt(c: CompiledNetwork, synapse_projection) -> CompiledNetwork:
    return CompiledNetwork.from_meta(c.program, c.meta(), synapse_projection)


def test_synapse_projection_must_name_existing_projections():
    # once: ids of a projection that does not exist lost those synapses in to_network(), and
    # `neurocore compile` wrote an image with 0 synapses
    c = compile_network(small_net())
    ids = c.synapse_projection.copy()
    first = int(np.flatnonzero(ids == 0)[0])
    ids[ids == 0] = 7
    with pytest.raises(ValueError, match=re.escape(
            f"network metadata does not match the program: synapse_projection[{first}] = 7 is outside -1..3")):
        rebuilt(c, ids)
    with pytest.raises(ValueError, match=re.escape(f"synapse_projection[{first}] = 7 is outside -1..3")):
        dataclasses.replace(c, synapse_projection=ids).to_network()


def test_synapse_projection_must_match_the_program():
    c = compile_network(small_net())
    ids = c.synapse_projection
    s = int(np.flatnonzero((ids >= 0) & (c.program.weight != 0))[0])
    gap = ids.copy()
    gap[s] = -1
    with pytest.raises(ValueError, match=re.escape(
            f"synapse_projection[{s}] = -1 marks a gap (zero weight, fixed), but synapse {s} has weight "
            f"{int(c.program.weight[s])}")):
        rebuilt(c, gap)
    moved = ids.copy()
    moved[s] = (ids[s] + 1) % len(c.projections)
    with pytest.raises(ValueError, match=r"projection \d \(\w+->\w+\) has \d+ synapses but synapse_projection "
                                         r"gives it \d+"):
        rebuilt(c, moved)
    with pytest.raises(ValueError, match=re.escape(f"synapse_projection has {len(ids) - 1} entries, the program "
                                                   f"has {len(ids)} synapses")):
        rebuilt(c, ids[:-1])
    with pytest.raises(ValueError, match=re.escape("synapse_projection must be a 1-D integer array, got shape "
                                                   f"({len(ids)},) dtype float64")):
        rebuilt(c, ids.astype(float))
    assert np.array_equal(rebuilt(c, ids).synapse_projection, ids)      # the real one passes
    assert rebuilt(c, None).synapse_projection is None


# -- networks refuse what would be truncated or wrapped ------------------------------------------------
U64_MAX = int(np.iinfo(np.uint64).max)


@pytest.mark.parametrize("make,message", [
    (lambda: Projection("input", "a", [0, 1], [0, 1], [0.5, 1.0]),
     "projection input->a: weight must be a 1-D integer array, got shape (2,) dtype float64"),
    (lambda: Projection("input", "a", [0], [0], np.array([U64_MAX], np.uint64)),
     f"projection input->a: weight[0] = {U64_MAX} is outside -32768..32767"),
    (lambda: Projection("input", "a", [[0, 1]], [0, 1], [1, 1]),
     "projection input->a: pre must be a 1-D integer array, got shape (1, 2) dtype int64"),
    (lambda: Projection("input", "a", [0], [0], [1], plastic="no"),
     "projection input->a: plastic must be True or False, got 'no'"),
    (lambda: Population("a", NeuronParams.uniform(2, threshold=5), theta=[0.5, 1]),
     "population a: theta must be a 1-D integer array, got shape (2,) dtype float64"),
    (lambda: Population("a", NeuronParams.uniform(2, threshold=5), output=1),
     "population a: output must be True or False, got 1"),
    (lambda: SnnNetwork(n_inputs=64.7, populations=[], projections=[]),
     "n_inputs must be a non-negative integer, got 64.7"),
    (lambda: SnnNetwork(n_inputs="64", populations=[], projections=[]),
     "n_inputs must be a non-negative integer, got '64'"),
], ids=["float weight", "uint64 weight", "2-D pre", "plastic str", "float theta", "output int", "n_inputs float",
        "n_inputs str"])
def test_network_refuses_bad_values(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_program_npz_naming_a_missing_projection_is_refused(tmp_path):
    # once: passed inspect and run, and `neurocore compile` wrote an image with 0 synapses, exit 0
    from neurocore.sw.image_dir import ImageDirError, load_program_npz, write_image_dir

    c = compile_network(small_net())
    write_image_dir(c, tmp_path / "img")
    arrays = dict(np.load(tmp_path / "img" / "program.npz"))
    arrays["synapse_projection"] = np.where(arrays["synapse_projection"] >= 0, 9, -1)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ImageDirError, match=re.escape("bad.npz: network metadata does not match the program: "
                                                      "synapse_projection[0] = 9 is outside -1..3")):
        load_program_npz(tmp_path / "bad.npz")
    assert load_program_npz(tmp_path / "img" / "program.npz").program.n_synapses == c.program.n_synapses


def test_freeze_names_the_layer_of_a_threshold_no_core_holds():
    top = (1 << 31) - 1                                      # the largest threshold (V = 32)
    pop = Population("big", NeuronParams.uniform(2, threshold=top), output=True, theta=[0, 5])
    net = SnnNetwork(n_inputs=1, populations=[pop], projections=[Projection("input", "big", [0], [0], [1])])
    with pytest.raises(ValueError, match=re.escape(
            f"layer 'big' (threshold + theta folded): neurons.threshold[1] = {top + 5} is outside 0..{top}")):
        freeze_network(net)


@pytest.mark.parametrize("key,value,message", [
    ("layers", {"hidden": [0, 2.5], "out": [3, 2], "side": [5, 2]},
     "layers['hidden'] size must be a non-negative integer, got 2.5"),
    ("layers", {"hidden": [0, 3, 1], "out": [3, 2], "side": [5, 2]},
     "layers['hidden'] must be [first, size], got [0, 3, 1]"),
    ("input_axons", "4", "input_axons must be a non-negative integer, got '4'"),
    ("layer_axons", {"hidden": [4.0, 3], "side": [7, 2]},
     "layer_axons['hidden'] first must be a non-negative integer, got 4.0"),
    ("wta_groups", {"out": True, "side": 2}, "wta_groups['out'] must be a non-negative integer, got True"),
], ids=["float size", "three numbers", "str inputs", "float first", "bool group"])
def test_metadata_numbers_are_not_truncated(key, value, message):
    c = compile_network(small_net())
    with pytest.raises(ValueError, match=re.escape(f"network metadata is incomplete or malformed (ValueError: "
                                                   f"{message})")):
        CompiledNetwork.from_meta(c.program, c.meta() | {key: value}, c.synapse_projection)


def test_tight_config_is_the_smallest_core():
    """``tight``: every capacity exactly what the network needs, only the features it uses."""
    net = big_net(neurons=300, inputs=600, synapses_per_neuron=3)
    needs = network_needs(net)
    cfg = choose_config(net, tight=True)
    assert (cfg.neurons, cfg.axons, cfg.synapses) == (needs["neurons"], needs["axons"], needs["synapses"])
    assert not cfg.learning and not cfg.adaptive_threshold and not cfg.wta
    assert cfg.param_classes == len(compile_network(net, cfg).program.param_classes()) <= 300 // CLASS_SAVING
    loose = compile_network(net).config
    assert loose.neurons == 512 and loose.learning            # the default core, raised
    plastic = big_net(neurons=300, plastic=True)
    assert choose_config(plastic, tight=True).learning
    # the tight core runs the network as the loose one does
    x = np.random.default_rng(0).random((2, 5, net.n_inputs)) < 0.5
    a = golden.run_batch(compile_network(net, cfg).program, x)
    b = golden.run_batch(compile_network(net).program, x)
    assert np.array_equal(a.spikes, b.spikes) and np.array_equal(a.state.v, b.state.v) and a.state.v.any()
