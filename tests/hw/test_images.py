"""Memory-image packing: vectorised words equal the per-word reference packing."""
import numpy as np
import pytest

from neurocore.hw.host import Region, word_shape
from neurocore.hw.images import pack, pack_many, program_images, state_from_images, state_images, unpack
from neurocore.hw.program import NO_ROUTE
from neurocore.sim.random_programs import random_program, random_state


@pytest.mark.parametrize("seed", range(40))
def test_program_images_match_per_word_packing(seed):
    program, _ = random_program(seed)
    cfg, p = program.config, program.neurons
    images = program_images(program)
    outputs = set(program.outputs.tolist())
    def param_word(n):
        # the theta fields exist only with the adaptive threshold, the WTA group only with WTA
        theta = dict(theta_inc=p.theta_inc[n], theta_decay_shift=p.theta_decay_shift[n]) \
            if cfg.adaptive_threshold else {}
        group = dict(wta_group=p.wta_group[n]) if cfg.wta else {}
        return pack(word_shape(cfg, Region.PARAM), threshold=p.threshold[n], leak_shift=p.leak_shift[n],
                    reset_mode=p.reset_mode[n], refractory=p.refractory[n], bias=p.bias[n], **theta, **group,
                    route_valid=int(program.route[n] != NO_ROUTE), route=max(int(program.route[n]), 0),
                    output=int(n in outputs))
    want = [param_word(n) for n in range(program.n_neurons)]
    assert any(not c.adaptive_threshold or not c.wta
               for c in (random_program(s)[0].config for s in range(40)))     # both forms are drawn
    assert images[Region.PARAM] == want
    want = [pack(word_shape(cfg, Region.SYNAPSE), weight=program.weight[s], plastic=int(program.plastic[s]))
            for s in range(program.n_synapses)]
    assert images[Region.SYNAPSE] == want
    for word, w in zip(images[Region.SYNAPSE], program.weight):
        assert unpack(word_shape(cfg, Region.SYNAPSE), word)["weight"] == w
    # POINTER: the row of axon a holds synapses base .. base+count-1, the j-th targeting first + j
    assert len(images[Region.POINTER]) == program.n_axons
    for a, word in enumerate(images[Region.POINTER]):
        row = unpack(word_shape(cfg, Region.POINTER), word)
        lo, hi = int(program.ptr[a]), int(program.ptr[a + 1])
        assert row["count"] == hi - lo
        if hi > lo:
            assert row["base"] == lo
            assert program.target[lo:hi].tolist() == list(range(row["first"], row["first"] + hi - lo))
        else:
            assert row == {"base": 0, "count": 0, "first": 0}
    # LTP_RANGE: the axon range of every neuron covers exactly its plastic synapses' axons
    if cfg.learning:
        axon = program.synapse_axon()
        for n, word in enumerate(images[Region.LTP_RANGE]):
            rng = unpack(word_shape(cfg, Region.LTP_RANGE), word)
            axons = axon[program.plastic & (program.target == n)]
            if axons.size:
                assert (rng["first"], rng["count"]) == (axons.min(), axons.max() - axons.min() + 1)
            else:
                assert rng == {"first": 0, "count": 0}
    else:
        assert Region.LTP_RANGE not in images


def test_pack_many_rejects_values_that_do_not_fit():
    shape = word_shape(random_program(0)[0].config, Region.SYNAPSE)
    with pytest.raises(ValueError, match=r"field weight\[1\] = .* does not fit"):
        pack_many(shape, weight=[0, 1 << 20], plastic=[0, 0])
    with pytest.raises(ValueError, match="does not fit"):
        pack(shape, plastic=2)


def test_pack_rejects_a_field_the_word_does_not_have():
    shape = word_shape(random_program(0)[0].config, Region.SYNAPSE)     # weight, plastic: no target
    with pytest.raises(ValueError, match=r"word has no field\(s\) target \(fields: weight, plastic\)"):
        pack(shape, target=1, weight=0)
    with pytest.raises(ValueError, match=r"word has no field\(s\) target"):
        pack_many(shape, target=[1], weight=[0], plastic=[0])


def test_packing_refuses_what_would_wrap_or_truncate():
    shape = word_shape(random_program(0)[0].config, Region.SYNAPSE)
    huge = np.iinfo(np.uint64).max                      # -1 after a plain int64 conversion
    with pytest.raises(ValueError, match=rf"field weight\[0\] = {huge} does not fit"):
        pack_many(shape, weight=np.array([huge], np.uint64), plastic=[0])
    with pytest.raises(ValueError, match=r"field weight must hold integers, got dtype float64"):
        pack_many(shape, weight=[0.5], plastic=[0])
    with pytest.raises(ValueError, match=r"field weight must be an integer, got 0.5"):
        pack(shape, weight=0.5)
    with pytest.raises(ValueError, match=rf"field weight = {huge} does not fit"):
        pack(shape, weight=np.uint64(huge))


def test_state_images_check_every_width():
    program, _ = random_program(3, learning=True, adaptive_threshold=True, trace_bits=4, membrane_bits=8)
    state = random_state(4, program)
    images = state_images(program.config, state)
    assert images[Region.THETA] == state.theta.tolist() and images[Region.PRE] == state.x.tolist()
    assert state_from_images(program, program_images(program) | images).theta.tolist() == state.theta.tolist()
    for name, region, bad in (("theta", "THETA", 128), ("y", "POST", 16), ("x", "PRE", -1)):
        broken = state.copy()
        getattr(broken, name)[0] = bad
        with pytest.raises(ValueError, match=rf"field value\[0\] = {bad} does not fit"):
            state_images(program.config, broken)
