"""Backpressure on the generated Verilog: a consumer of spike_out that is mostly busy fills the
output FIFO, the core stalls, and no output spike is lost, duplicated or reordered."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from neurocore.sim import golden
from neurocore.sim.cosim import available_simulators, build, compare, run_cases
from neurocore.sim.host_protocol import output_spike_order

sys.path.insert(0, str(Path(__file__).parents[1] / "hw"))   # the test programs of tests/hw
from output_bursts import BURST_CONFIG, NO_GROUP, burst_program  # noqa: E402


@pytest.mark.skipif("verilator" not in available_simulators(), reason="Verilator not installed")
def test_full_output_fifo_stalls_the_core_and_loses_no_spike(tmp_path):
    program = burst_program()
    steps = 6
    inputs = np.zeros((2, steps, 1), bool)              # two samples: CLEAR between them
    case = (program, inputs, False)
    runner = build(BURST_CONFIG, "verilator", tmp_path)
    free, = run_cases(runner, BURST_CONFIG, [case], tmp_path)
    stalled = run_cases(runner, BURST_CONFIG, [case, case], tmp_path, stall=0.9, seeds=[1, 2])
    expected = output_spike_order(program, golden.run_batch(program, inputs).spikes)
    assert expected[:22] == [(n, 0) for n in NO_GROUP + [2, 4]] and len(expected) == 2 * steps * 22
    for raw in (free, *stalled):
        report = compare(*case, raw)                     # compares the exact ordered stream too
        assert report.ok, report.mismatches
        assert [(s["neuron"], s["step"]) for s in raw["spikes"]] == expected
    assert free["spike_out_stall_cycles"] == 0
    for raw in stalled:
        assert raw["spike_out_stall_cycles"] > len(expected)
        # the FIFO filled up: every step took longer than with a consumer that never stalls
        assert all(s > f for s, f in zip(raw["step_cycles"], free["step_cycles"])), \
            (raw["step_cycles"], free["step_cycles"])
