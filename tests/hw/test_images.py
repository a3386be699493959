"""Memory-image packing: vectorised words equal the per-word reference packing."""
import pytest

from neurocore.hw.host import Region, word_shape
from neurocore.hw.images import pack, pack_many, program_images, unpack
from neurocore.hw.program import NO_ROUTE
from neurocore.sim.random_programs import random_program


@pytest.mark.parametrize("seed", range(40))
def test_program_images_match_per_word_packing(seed):
    program, _ = random_program(seed)
    cfg, p = program.config, program.neurons
    images = program_images(program)
    outputs = set(program.outputs.tolist())
    want = [pack(word_shape(cfg, Region.PARAM), threshold=p.threshold[n], leak_shift=p.leak_shift[n],
                 reset_mode=p.reset_mode[n], refractory=p.refractory[n], bias=p.bias[n],
                 theta_inc=p.theta_inc[n], theta_decay_shift=p.theta_decay_shift[n],
                 wta_group=p.wta_group[n], route_valid=int(program.route[n] != NO_ROUTE),
                 route=max(int(program.route[n]), 0), output=int(n in outputs))
            for n in range(program.n_neurons)]
    assert images[Region.PARAM] == want
    want = [pack(word_shape(cfg, Region.SYNAPSE), target=program.target[s], weight=program.weight[s],
                 plastic=int(program.plastic[s])) for s in range(program.n_synapses)]
    assert images[Region.SYNAPSE] == want
    for word, w in zip(images[Region.SYNAPSE], program.weight):
        assert unpack(word_shape(cfg, Region.SYNAPSE), word)["weight"] == w


def test_pack_many_rejects_values_that_do_not_fit():
    shape = word_shape(random_program(0)[0].config, Region.SYNAPSE)
    with pytest.raises(ValueError, match=r"field weight\[1\] = .* does not fit"):
        pack_many(shape, target=[0, 0], weight=[0, 1 << 20], plastic=[0, 0])
    with pytest.raises(ValueError, match="does not fit"):
        pack(shape, target=-1)
