"""``neurocore convert --arch cnn``: end to end on digits, determinism, and its usage errors."""
from __future__ import annotations

import json
import sys

import pytest

from neurocore.tools import cli

TINY = ["convert", "--arch", "cnn", "--dataset", "digits", "--maps", "4,8", "--epochs", "8",
        "--steps", "24", "--curve", "8,24"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def test_cnn_end_to_end_json_and_deterministic(torch, capsys):
    status, out, err = run_cli(capsys, *TINY, "--json")
    assert status == 0, err
    report = json.loads(out)
    assert "train cnn" in err                   # the training's progress bar, on stderr
    for key in ("ann_accuracy", "snn_accuracy", "steps", "neurons", "synapse_words", "synapse_words_unshared",
                "config", "curve", "layers", "rate_limit_accuracy"):
        assert key in report
    assert report["arch"] == "cnn" and report["steps"] == 24 and report["dataset"] == "digits"
    assert report["ann"]["maps"] == [4, 8] and report["ann"]["epochs"] == 8
    assert report["ann_accuracy"] > 0.7
    assert report["snn_accuracy"] > 0.6                        # chance is 0.1
    assert [p["steps"] for p in report["curve"]] == [8, 24]
    assert report["neurons"] == sum(layer["neurons"] for layer in report["layers"]) == 458
    assert 0 < report["synapse_words"] < report["synapse_words_unshared"]     # kernels stored once
    assert report["config"]["synapses"] >= report["synapse_words"]
    assert report["config"]["neurons"] >= report["neurons"]
    rates = report["spike_rates"]                # every population's activity, at the largest T
    assert rates["steps"] == 24 and [r["name"] for r in rates["layers"]] == [x["name"] for x in report["layers"]]
    assert sum(r["neurons"] for r in rates["layers"]) == report["neurons"]
    assert rates["layers"][-1]["spikes_per_sample"] == \
        pytest.approx(report["curve"][-1]["mean_output_spikes"])
    status, again, _ = run_cli(capsys, *TINY, "--json")
    assert status == 0
    second = json.loads(again)
    for key in ("ann_accuracy", "snn_accuracy", "curve", "layers", "synapse_words"):
        assert second[key] == report[key]


def test_cnn_text_report(torch, capsys):
    status, out, err = run_cli(capsys, "convert", "--arch", "cnn", "--maps", "2", "--epochs", "2", "--steps", "8",
                               "--no-curve")
    assert status == 0, err
    assert "CNN 64-conv5x5x2-pool2-dense10" in out and "synapse words" in out and "accuracy : ANN" in out
    assert "(shifts up to 0 px)" in out and "rates    : spikes per neuron per step at T=8: input " in out
    status, out, err = run_cli(capsys, "convert", "--arch", "cnn", "--maps", "2", "--epochs", "2", "--steps", "8",
                               "--no-curve", "--cnn-stride", "2", "--shift", "1")
    assert status == 0, err
    assert "CNN 64-conv5x5x2/2-dense10" in out and "(shifts up to 1 px); no pooling, readout lifted" in out


@pytest.mark.parametrize("argv, message", [
    (["--arch", "cnn", "--maps", "0,8"], "--maps: expected comma-separated positive integers, each at most 64"),
    (["--arch", "cnn", "--maps", "8,65"], "each at most 64"),
    (["--arch", "cnn", "--maps", "x"], "--maps: expected comma-separated"),
    (["--arch", "cnn", "--maps", "4,4,4,4"], "--maps: 4 conv layers given, at most 3"),
    (["--arch", "cnn", "--epochs", "0"], "--epochs: expected an integer in 1..200, got 0"),
    (["--arch", "cnn", "--epochs", "201"], "--epochs: expected an integer in 1..200, got 201"),
    (["--arch", "cnn", "--epochs", "two"], "--epochs: expected an integer in 1..200"),
    (["--maps", "8,16"], "--maps applies to --arch cnn"),
    (["--epochs", "3"], "--epochs applies to --arch cnn"),
    (["--arch", "cnn", "--hidden", "32"], "--hidden applies to --arch mlp"),
    (["--arch", "cnn", "--ann", "m.joblib"], "--ann applies to --arch mlp"),
    (["--arch", "cnn", "--fold", "some"], "invalid choice"),
    (["--arch", "cnn", "--cnn-stride", "4"], "--cnn-stride: expected an integer in 1..3, got 4"),
    (["--arch", "cnn", "--shift", "5"], "--shift: expected an integer in 0..4, got 5"),
    (["--cnn-stride", "2"], "--cnn-stride applies to --arch cnn"),
    (["--shift", "1"], "--shift applies to --arch cnn"),
])
def test_cnn_usage_errors(argv, message, capsys):
    """Refused before torch is imported or anything is trained."""
    status, out, err = run_cli(capsys, "convert", *argv)
    assert status == 2 and out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_cli_bounds_are_the_libraries():
    from neurocore.sw.convert import cnn
    from neurocore.tools import cmd_convert
    assert (cmd_convert.MAX_MAPS, cmd_convert.MAX_CONV_LAYERS, cmd_convert.MAX_EPOCHS, cmd_convert.FOLD_CHOICES) \
        == (cnn.MAX_MAPS, cnn.MAX_CONV_LAYERS, cnn.MAX_EPOCHS, cnn.FOLD_CHOICES)
    assert (cmd_convert.MAX_STRIDE, cmd_convert.MAX_SHIFT) == (cnn.MAX_STRIDE, cnn.MAX_SHIFT)
    from neurocore.tools.plots import CONVERT_PLOT_FILES
    assert cmd_convert.PLOT_NAMES == CONVERT_PLOT_FILES


def test_cnn_without_torch_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)      # `import torch` raises ImportError
    status, out, err = run_cli(capsys, "convert", "--arch", "cnn", "--epochs", "1")
    assert status == 2 and out == ""
    assert err.strip() == ("neurocore: error: --arch cnn trains with PyTorch, which is not installed: "
                           "pip install 'neurocore[torch]'")


@pytest.mark.parametrize("config, message", [
    # a conv layer whose neurons exceed the core
    ('{"neurons": 16, "axons": 512, "segments": 256}', "it needs 42 neurons but the core has 16 (overflow by 26)"),
    # kernels that do not fit: the kernel store, then the segment table
    ('{"neurons": 256, "axons": 512, "synapses": 100, "segments": 256}', "needs 370 synapses but the core has 100 (overflow by 270)"),
    ('{"neurons": 256, "axons": 512, "segments": 3}', "segments but the core has 3"),
])
def test_cnn_onto_a_core_that_cannot_hold_it(torch, capsys, config, message):
    """``--config``: one line naming the capacity and the shortfall, exit 2, nothing written."""
    status, out, err = run_cli(capsys, "convert", "--arch", "cnn", "--maps", "2", "--epochs", "1", "--steps", "4",
                               "--no-curve", "--config", config)
    lines = [line for line in err.splitlines() if line.startswith("neurocore: error:")]
    assert status == 2 and out == "" and len(lines) == 1, err
    assert "network does not fit the core" in lines[0] and message in lines[0], lines[0]


def test_cnn_onto_a_given_core(torch, capsys):
    """``--config`` that holds the network: it is compiled onto exactly that core."""
    config = {"neurons": 256, "axons": 512, "synapses": 4096, "segments": 256, "learning": False}
    status, out, err = run_cli(capsys, "convert", "--arch", "cnn", "--maps", "2", "--epochs", "1", "--steps", "4",
                               "--no-curve", "--json", "--config", json.dumps(config))
    assert status == 0, err
    report = json.loads(out)
    assert {k: report["config"][k] for k in config} == config
    status, _, err = run_cli(capsys, "convert", "--arch", "cnn", "--config", json.dumps(config), "--tight")
    assert status == 2 and "--config and --tight exclude each other" in err
