"""A converted digits network runs identically on the RTL and on the golden model."""
from __future__ import annotations

import pytest

from neurocore.sim.cosim import available_simulators
from neurocore.sw.convert.pipeline import convert_dataset
from neurocore.sw.datasets import load_dataset
from neurocore.sw.image_cosim import image_cosim
from neurocore.sw.image_dir import load_image_dir


def test_converted_digits_network_matches_golden_on_rtl(tmp_path):
    simulators = available_simulators()
    simulator = "icarus" if "icarus" in simulators else "verilator"
    if simulator not in simulators:
        pytest.skip("no HDL simulator installed")
    image = tmp_path / "img"
    result = convert_dataset("digits", steps=8, hidden=(16,), curve_steps=(), out=image)
    assert result["snn_accuracy"] > 0.7
    compiled = load_image_dir(image)
    data = load_dataset("digits")
    summary = image_cosim(compiled, data.x_test[:6], data.y_test[:6], steps=8, encoder="current",
                          simulator=simulator, work_dir=tmp_path / "cosim")
    assert summary["mismatches"] == 0, summary["problems"]
    assert summary["samples_with_equal_spike_counts"] == 6
    assert summary["output_spikes"] > 0 and summary["sops"] > 0
    assert summary["predictions_equal"]


def test_stdp_trained_cnn_image_matches_golden_on_rtl(tmp_path, capsys):
    """`train-stdp --arch cnn` writes an image whose 10 test samples run identically on the RTL
    (latency window, per-position WTA, sum pooling, the go-step readout)."""
    import json

    from neurocore.tools import cli

    simulators = available_simulators()
    simulator = "icarus" if "icarus" in simulators else "verilator"
    if simulator not in simulators:
        pytest.skip("no HDL simulator installed")
    image = tmp_path / "cnn"
    assert cli.main(["train-stdp", "--arch", "cnn", "--dataset", "digits", "--maps", "4", "--kernel", "3",
                     "--steps", "8", "--epochs", "1", "--limit", "60", "--no-progress", "--json",
                     "--out", str(image)]) == 0
    capsys.readouterr()
    status = cli.main(["cosim", "--image", str(image), "--samples", "10", "--simulator", simulator,
                       "--work-dir", str(tmp_path / "cosim"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0 and summary["mismatches"] == 0, summary["problems"]
    assert summary["samples"] == 10 and summary["output_spikes"] == 10     # one readout spike each
    assert summary["predictions_equal"] and summary["sops"] > 0
