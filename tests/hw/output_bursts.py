"""A program whose output spikes outrun the 16-word output FIFO, for backpressure tests
(amaranth.sim in tests/hw/test_core.py, Verilator in tests/cosim/test_backpressure.py)."""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import CoreProgram, NeuronParams

BURST_CONFIG = CoreConfig(neurons=24, axons=4, synapses=8, wta_groups=2, learning=False,
                          adaptive_threshold=False)
NO_GROUP = [1, 3, 5, 6] + list(range(8, 24))
"""The neurons without WTA group; 2 wins group 2 = {2, 7} and 4 wins group 1 = {0, 4}."""


def burst_program(config: CoreConfig = BURST_CONFIG) -> CoreProgram:
    """24 output neurons that fire in every step (bias >= threshold, no leak): WTA group 1 is
    {0, 4} and group 2 is {2, 7}, where the larger bias wins; the 20 others have no group.
    22 spikes per step: more than the output FIFO holds."""
    n = 24
    group = np.zeros(n, np.int64)
    group[[0, 4]], group[[2, 7]] = 1, 2
    bias = np.full(n, 4, np.int64)
    bias[[2, 4]] = 6
    neurons = dataclasses.replace(NeuronParams.uniform(n, threshold=4), wta_group=group, bias=bias)
    return CoreProgram.from_synapses(config, n_inputs=1, n_axons=1, axon=[0], target=[0],
                                     weight=[0], neurons=neurons, outputs=list(range(n)))
