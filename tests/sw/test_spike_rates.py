"""Per-layer spike rates of ``evaluate(..., layer_rates=True)`` (counted in the evaluation's own
golden-model run) and the PNGs of ``neurocore convert --plot-dir``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurocore.hw.program import NeuronParams
from neurocore.sim import golden
from neurocore.sw import evaluate as evaluate_mod
from neurocore.sw.compiler import compile_network
from neurocore.sw.evaluate import encode_samples, evaluate
from neurocore.sw.network import Population, Projection, SnnNetwork
from neurocore.tools import cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def three_layer_net(seed: int = 0) -> SnnNetwork:
    """12 inputs -> 9 hidden -> 7 hidden -> 3 outputs (WTA), random integer weights; some
    neurons are inhibited enough to stay silent."""
    rng = np.random.default_rng(seed)
    pops = [Population("h1", NeuronParams.uniform(9, threshold=20, leak_shift=4)),
            Population("h2", NeuronParams.uniform(7, threshold=9)),
            Population("out", NeuronParams.uniform(3, threshold=7, refractory=1), output=True, wta=True)]
    w1 = rng.integers(-5, 10, (9, 12))
    w1[4] = -8                                       # h1 neuron 4 never fires
    return SnnNetwork(12, pops, [Projection.dense("input", "h1", w1),
                                 Projection.dense("h1", "h2", rng.integers(-3, 8, (7, 9))),
                                 Projection.dense("h2", "out", rng.integers(-2, 9, (3, 7)))],
                      encoding={"kind": "rate", "steps": 10})


def direct_counts(compiled, x, steps, seed):
    """Spikes of every core neuron summed over the samples, one ``golden.run`` per sample."""
    inputs = encode_samples(x, steps, "rate", seed)
    counts = np.zeros(compiled.program.n_neurons, np.int64)
    for sample in inputs:
        counts += golden.run(compiled.program, sample, record_neurons=True).neuron_spikes.sum(axis=0)
    return counts, int(inputs.sum())


@pytest.mark.parametrize("budget", [None, 1])      # 1: every batch cut to one sample
def test_layer_rates_match_a_direct_count(monkeypatch, budget):
    if budget is not None:
        monkeypatch.setattr(evaluate_mod, "RECORD_BUDGET", budget)
    compiled = compile_network(three_layer_net())
    rng = np.random.default_rng(1)
    x = rng.random((17, 12))
    y = rng.integers(0, 3, 17)
    steps = 11
    plain = evaluate(compiled, x, y, steps=steps, seed=4)
    counted = evaluate(compiled, x, y, steps=steps, seed=4, layer_rates=True)
    rates = counted.pop("spike_rates")
    assert counted == plain                       # recording every neuron changes nothing else
    counts, input_spikes = direct_counts(compiled, x, steps, 4)
    assert rates["steps"] == steps and rates["n_samples"] == 17
    assert rates["input"] == input_spikes / (17 * steps * 12)
    assert [layer["name"] for layer in rates["layers"]] == ["h1", "h2", "out"]
    for layer in rates["layers"]:
        first, size = compiled.layers[layer["name"]]
        c = counts[first:first + size]
        assert layer["neurons"] == size
        assert layer["rate"] == pytest.approx(c.sum() / (17 * steps * size), rel=1e-12)
        assert layer["spikes_per_sample"] == pytest.approx(c.sum() / 17, rel=1e-12)
        assert layer["silent_fraction"] == float((c == 0).mean())
        assert layer["rate"] > 0                  # the test network is active in every layer
    assert rates["layers"][2]["spikes_per_sample"] == pytest.approx(plain["mean_output_spikes"])
    assert rates["layers"][0]["silent_fraction"] >= 1 / 9        # the inhibited neuron


def digits_report(tmp_path, capsys, *extra):
    plots = tmp_path / "plots"
    status = cli.main(["convert", "--dataset", "digits", "--hidden", "24", "--steps", "8",
                       "--plot-dir", str(plots), "--json", *(extra or ("--curve", "4,8"))])
    out, err = capsys.readouterr()
    assert status == 0, err
    return json.loads(out), plots


def test_convert_plot_dir_writes_pngs_and_rates(tmp_path, capsys):
    report, plots = digits_report(tmp_path, capsys)
    assert report["plots"] == {"accuracy": str(plots / "accuracy-vs-steps.png"),
                               "spike_rates": str(plots / "spike-rates.png")}
    for path in report["plots"].values():
        with open(path, "rb") as f:
            data = f.read()
        assert data.startswith(PNG_MAGIC) and 5_000 < len(data) < 200_000
    rates = report["spike_rates"]
    assert rates["steps"] == 8 and rates["n_samples"] == report["n_test"]
    assert [layer["name"] for layer in rates["layers"]] == [layer["name"] for layer in report["layers"]]
    assert [layer["neurons"] for layer in rates["layers"]] == [24, 10]
    out = rates["layers"][-1]
    # the output layer's spikes per sample is the curve's mean output spikes at the same T
    assert out["spikes_per_sample"] == pytest.approx(report["curve"][-1]["mean_output_spikes"])
    assert 0 < rates["input"] <= 1 and all(0 < layer["rate"] <= 1 for layer in rates["layers"])


def test_convert_plot_dir_without_curve_draws_the_rates(tmp_path, capsys):
    report, plots = digits_report(tmp_path, capsys, "--no-curve")
    assert list(report["plots"]) == ["spike_rates"] and report["spike_rates"]["steps"] == 8
    assert sorted(p.name for p in plots.iterdir()) == ["spike-rates.png"]


def test_convert_plot_dir_bad_path(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    status = cli.main(["convert", "--dataset", "digits", "--plot-dir", str(afile)])
    _, err = capsys.readouterr()
    assert status == 2 and "--plot-dir" in err and "not a directory" in err
    status = cli.main(["convert", "--dataset", "digits", "--plot-dir", str(tmp_path / "no" / "such")])
    _, err = capsys.readouterr()
    assert status == 2 and "does not exist" in err
