"""Parameter classes (docs/core-spec.md, section 2): the storage form of a core with
``param_classes > 0``, worked out by hand, and a program whose outputs depend on the route
offsets and the class words running on the golden model, the reference and the RTL."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.host import Region, word_shape
from neurocore.hw.images import program_images, unpack
from neurocore.hw.program import NO_ROUTE, CoreProgram, NeuronParams
from neurocore.sim import golden, reference

from test_spec_shared import _import_rtl_model

MODELS = pytest.mark.parametrize("model", [golden, reference, _import_rtl_model()],
                                 ids=["golden", "reference", "rtl"])


def _params(**columns) -> NeuronParams:
    n = len(columns["threshold"])
    fields = dict(leak_shift=0, reset_mode=0, refractory=0, bias=0, theta_inc=0, theta_decay_shift=0,
                  wta_group=0)
    return NeuronParams(**{k: columns.get(k, [v] * n) for k, v in fields.items()},
                        threshold=columns["threshold"])


def two_layers(param_classes: int) -> CoreProgram:
    """Outputs 0..2 first, then a hidden layer 3..5 that routes backwards to axons 2..4.

    Hidden: input axon 0 drives 3, 4, 5 with weight 1 (threshold 1); 3 is in no WTA group,
    4 and 5 share group 1. Routes 3 -> 2, 4 -> 3, 5 -> 4: one offset, (2 - 3) mod 8 = 7 (8
    axons, 3 index bits). Outputs: axon 2 -> 0, axon 3 -> 1, axon 4 -> 2, weight 1, threshold 1.
    """
    cfg = CoreConfig(neurons=8, axons=8, synapses=16, wta_groups=2, learning=False, adaptive_threshold=False,
                     param_classes=param_classes)
    return CoreProgram.from_synapses(
        cfg, n_inputs=2, n_axons=5, axon=[0, 0, 0, 2, 3, 4], target=[3, 4, 5, 0, 1, 2], weight=[1] * 6,
        neurons=_params(threshold=[1] * 6, wta_group=[0, 0, 0, 0, 1, 1]),
        route=[NO_ROUTE, NO_ROUTE, NO_ROUTE, 2, 3, 4], outputs=[0, 1, 2])


def test_classes_by_hand():
    # keys: 0-2 (group 0, no route, output) -> class 0; 3 (group 0, offset 7) -> class 1;
    # 4 and 5 (group 1, offset 7) -> class 2
    classes = two_layers(4).param_classes()
    assert classes.index.tolist() == [0, 0, 0, 1, 2, 2]
    assert classes.route_valid.tolist() == [0, 1, 1]
    assert classes.route_offset.tolist() == [0, 7, 7]
    assert classes.output.tolist() == [1, 0, 0]
    assert classes.params["wta_group"].tolist() == [0, 0, 1]


def test_images_hold_the_class_table():
    program = two_layers(4)
    images = program_images(program)
    cfg = program.config
    words = [unpack(word_shape(cfg, Region.PARAM), w) for w in images[Region.PARAM]]
    assert [(w["route_valid"], w["route"], w["output"], w["wta_group"]) for w in words] == \
        [(0, 0, 1, 0), (1, 7, 0, 0), (1, 7, 0, 1)]
    assert images[Region.NCLASS] == [0, 0, 0, 1, 2, 2]
    assert Region.NCLASS not in program_images(two_layers(0))
    assert len(program_images(two_layers(0))[Region.PARAM]) == 6        # a word per neuron


def test_too_many_classes_is_one_clear_error():
    with pytest.raises(ValueError, match=r"3 parameter classes, more than the core's param_classes = 2 "
                                         r"\(neuron 4 starts class 2\)"):
        two_layers(2)


@MODELS
@pytest.mark.parametrize("param_classes", [0, 3])
def test_routes_through_the_offset(model, param_classes):
    # step 0: the hidden neurons reach v = 1 >= 1; 3 fires in the scan; 4 and 5 tie in
    # group 1 (margin 0), the lower index wins: 4 fires in the commit, 5 is reset to 0.
    # step 1: axons 2 (from 3) and 3 (from 4) are active: outputs 0 and 1 fire, 2 does not.
    program = two_layers(param_classes)
    result = model.run(program, np.array([[1, 0], [0, 0]], bool))
    assert result.spikes.astype(int).tolist() == [[0, 0, 0], [1, 1, 0]]


def test_modular_offset_reaches_every_axon():
    """(n + offset) mod 2^aib gives back each routed neuron's axon, forwards and backwards."""
    rng = np.random.default_rng(0)
    cfg = CoreConfig(neurons=64, axons=32, synapses=64, param_classes=64, learning=False,
                     adaptive_threshold=False, wta=False)
    route = np.full(64, NO_ROUTE, np.int64)
    route[rng.choice(64, 30, replace=False)] = rng.permutation(np.arange(2, 32))
    program = CoreProgram.from_synapses(cfg, n_inputs=2, n_axons=32, axon=[0], target=[0], weight=[1],
                                        neurons=_params(threshold=[1] * 64), route=route, outputs=[])
    classes = program.param_classes()
    n = np.arange(64)
    routed = classes.route_valid[classes.index] == 1
    assert (routed == (route != NO_ROUTE)).all()
    assert ((n + classes.route_offset[classes.index])[routed] % 32 == route[routed]).all()


def test_hash_of_a_core_without_classes_is_unchanged():
    cfg = CoreConfig()
    assert cfg.hash() == dataclasses.replace(cfg, param_classes=0).hash()
    assert cfg.hash() != dataclasses.replace(cfg, param_classes=4).hash()
