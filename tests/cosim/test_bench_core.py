"""``neurocore bench core``, reduced: a small core and network, the cycle figures and the golden check."""
from __future__ import annotations

import pytest

from neurocore.hw.config import CoreConfig
from neurocore.sim.cosim import available_simulators
from neurocore.tools.bench_core import core_benchmark

SIMULATORS = available_simulators()
# Icarus builds in seconds; Verilator's C++ build alone takes about a minute.
SIMULATOR = "icarus" if "icarus" in SIMULATORS else "verilator"


@pytest.mark.skipif(not SIMULATORS, reason="no HDL simulator installed")
def test_bench_core_reduced(tmp_path):
    config = CoreConfig(neurons=128, axons=16, synapses=1024, wta_groups=4)   # rows of 64 need >= 64 neurons
    result = core_benchmark(SIMULATOR, fan_outs=(64,), config=config, steps=10, max_active=8,
                            work_dir=tmp_path)
    assert result["mismatches"] == 0, result["problems"]
    integration = result["integration"]["64"]
    # Fan-out 64 lists: one SOP per clock, the fixed fill/drain of a step included.
    assert integration["sop_per_clock"] >= 0.95, integration
    assert integration["cycles_per_sop_fit"] == pytest.approx(1.0, abs=1e-3), integration
    assert result["neuron_update"]["cycles_per_neuron"] == pytest.approx(1.0, abs=1e-3)
    learning = result["learning"]
    assert learning["ok"] and learning["ltp_updates"] > 0 and learning["weight_changes"] > 0
    # LTP: one cycle per axon visited (the LTP ranges of the fired neurons) and one per update
    # (its write-back owns the single-port synapse memory), plus fill and drain, less the 1..7
    # write-backs that land after the last synapse read: V + k + 6 .. V + k + 12
    assert learning["ltp_axons_visited"] >= learning["ltp_updates"]
    low, high = learning["ltp_minus_visits_updates"]
    assert 6 <= low <= high <= 12, learning
    # FEED: one cycle per SOP and per LTD write-back (plastic synapse visited), plus 8 .. 14,
    # less the write-backs (at most 10) that land after the last synapse read
    assert learning["ltd_writes"] > 0
    low, high = learning["feed_minus_sops_ltd_writes"]
    assert -1 <= low <= high <= 13, learning
    assert result["cosim"]["sim_cycles"] > 0 and result["cosim"]["cycles_per_s"] > 0
