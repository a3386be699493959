"""ANN-to-SNN conversion: IR, sklearn frontend, lowering, quantisation, pipeline and CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import RESET_BY_SUBTRACTION
from neurocore.sim import golden
from neurocore.sw.compiler import compile_network
from neurocore.sw.convert import (AvgPool2d, Conv2d, Dense, Flatten, Graph, ReLU, SumPool2d, convert,
                                  from_sklearn, lower, simulate)
from neurocore.sw.convert.pipeline import convert_dataset, plot_curve, rate_limit_predict, save_ann
from neurocore.sw.encoders import encode
from neurocore.tools.cli import main


# -- helpers -------------------------------------------------------------------------------
def naive_conv(x, w, b, stride, padding):
    """Direct loops: x [C, H, W], w [oc, ic, kh, kw] -> [oc, H', W'] (independent of the IR)."""
    c, h, wd = x.shape
    oc, ic, kh, kw = w.shape
    ph, pw = padding
    sh, sw = stride
    xp = np.zeros((c, h + 2 * ph, wd + 2 * pw))
    xp[:, ph:ph + h, pw:pw + wd] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((oc, oh, ow))
    for o in range(oc):
        for y in range(oh):
            for z in range(ow):
                out[o, y, z] = (xp[:, y * sh:y * sh + kh, z * sw:z * sw + kw] * w[o]).sum() + b[o]
    return out


def mlp(rng, sizes):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in)), rng.normal(0, 0.1, n_out)))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Graph((sizes[0],), layers)


@pytest.fixture(scope="module")
def digits():
    from neurocore.sw.datasets import load_dataset
    return load_dataset("digits")


@pytest.fixture(scope="module")
def small_mlp(digits):
    from neurocore.sw.convert.pipeline import train_mlp
    return train_mlp(digits.x_train, digits.y_train, hidden=(32,), seed=0, max_iter=300)


@pytest.fixture(scope="module")
def ann_file(small_mlp, tmp_path_factory):
    return save_ann(small_mlp, tmp_path_factory.mktemp("ann") / "mlp.joblib")


# -- graph IR ------------------------------------------------------------------------------
def test_graph_tracks_and_checks_shapes():
    rng = np.random.default_rng(0)
    g = Graph((2, 8, 8), [Conv2d(rng.normal(size=(4, 2, 3, 3)), stride=1, padding=1), ReLU(),
                          AvgPool2d(2), Conv2d(rng.normal(size=(3, 4, 3, 3)), stride=2), ReLU(),
                          SumPool2d(1), Flatten(), Dense(rng.normal(size=(5, 3))), ReLU()])
    assert g.shapes == [(4, 8, 8), (4, 8, 8), (4, 4, 4), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3,), (5,), (5,)]
    assert g.forward(rng.random((7, 128))).shape == (7, 5)
    with pytest.raises(ValueError, match=r"layer 1 \(Dense\).*expects 10 inputs, got 4"):
        Graph((6,), [Dense(np.ones((4, 6))), Dense(np.ones((2, 10)))])
    with pytest.raises(ValueError, match="Dense needs a vector input"):
        Graph((1, 4, 4), [Dense(np.ones((2, 16)))])
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        Graph((1, 4, 4), [Conv2d(np.ones((2, 3, 3, 3)))])
    with pytest.raises(ValueError, match="does not fit"):
        Graph((1, 2, 2), [AvgPool2d(3)])
    with pytest.raises(ValueError, match="unsupported layer type"):
        Graph((2,), [object()])


def test_conv_and_pool_forward_match_naive_loops():
    rng = np.random.default_rng(1)
    x = rng.random((3, 2, 7, 6))
    w, b = rng.normal(size=(4, 2, 3, 2)), rng.normal(size=4)
    conv = Conv2d(w, b, stride=(2, 1), padding=(1, 0))
    got = conv.forward(x)
    for i in range(3):
        np.testing.assert_allclose(got[i], naive_conv(x[i], w, b, (2, 1), (1, 0)), atol=1e-12)
    pooled = AvgPool2d(2).forward(x)
    np.testing.assert_allclose(pooled[0, 1, 1, 2], x[0, 1, 2:4, 4:6].mean())
    np.testing.assert_allclose(SumPool2d((2, 3), (1, 3)).forward(x)[2, 0, 3, 1], x[2, 0, 3:5, 3:6].sum())


# -- sklearn frontend ----------------------------------------------------------------------
def test_from_sklearn_reproduces_the_classifier(small_mlp, digits):
    g = from_sklearn(small_mlp)
    assert g.input_shape == (64,) and g.output_shape == (10,)
    assert [type(layer).__name__ for layer in g.layers] == ["Dense", "ReLU", "Dense"]
    assert g.layers[0].weight.shape == (32, 64)
    np.testing.assert_array_equal(g.predict(digits.x_test), small_mlp.predict(digits.x_test))
    probs = small_mlp.predict_proba(digits.x_test[:20])
    logits = g.forward(digits.x_test[:20])
    soft = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(soft / soft.sum(1, keepdims=True), probs, atol=1e-5)


def test_from_sklearn_rejects_other_activations_and_unfitted_models():
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    x = np.random.default_rng(0).random((40, 4))
    y = (x[:, 0] > 0.5).astype(int)
    with pytest.warns(Warning):
        tanh = MLPClassifier(hidden_layer_sizes=(3,), activation="tanh", max_iter=20).fit(x, y)
    with pytest.raises(ValueError, match="activation='tanh'.*only 'relu'"):
        from_sklearn(tanh)
    with pytest.raises(ValueError, match="not fitted"):
        from_sklearn(MLPClassifier())
    with pytest.raises(ValueError, match="MLPClassifier"):
        from_sklearn(LogisticRegression().fit(x, y))


# -- lowering ------------------------------------------------------------------------------
def test_conv_lowering_equals_numpy_convolution():
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    g = Graph((2, 6, 5), [Conv2d(w, b, stride=2, padding=1), ReLU(), SumPool2d(2, 1), AvgPool2d((1, 2))])
    stages = lower(g)
    assert [s.kind for s in stages] == ["conv", "sumpool", "avgpool"]
    x = rng.random((4, 2, 6, 5))
    # synapse-level matvec (pre -> post lists) == the convolution, image by image
    got = stages[0].forward(x.reshape(4, -1))
    for i in range(4):
        np.testing.assert_allclose(got[i], naive_conv(x[i], w, b, (2, 2), (1, 1)).reshape(-1), atol=1e-12)
    # every synapse lies inside the unpadded input: 3 channels x 3 x 3 outputs, border taps dropped
    assert len(stages[0].pre) < 3 * 2 * 9 * 9 and stages[0].pre.max() < 2 * 6 * 5
    # the pooling stages chain to the graph's own forward pass
    a = np.maximum(got, 0)
    for stage in stages[1:]:
        a = stage.forward(a)
    np.testing.assert_allclose(a, g.forward(x).reshape(4, -1), atol=1e-12)


def test_lowering_requires_a_relu_between_weighted_layers():
    with pytest.raises(ValueError, match=r"follows dense1 without a ReLU"):
        lower(Graph((4,), [Dense(np.ones((3, 4))), Dense(np.ones((2, 3)))]))
    with pytest.raises(ValueError, match="nothing to convert"):
        lower(Graph((4,), [ReLU(), Flatten()]))


# -- quantisation --------------------------------------------------------------------------
def test_quantisation_preserves_weight_threshold_bias_ratios():
    rng = np.random.default_rng(3)
    g = mlp(rng, [12, 20, 5])
    x = rng.random((200, 12))
    conv = convert(g, x, weight_bits=8, percentile=99.9)
    acts = g.forward(x, return_all=True)
    lam1 = np.percentile(acts[1][acts[1] > 0], 99.9)
    lam2 = np.percentile(acts[2][acts[2] > 0], 99.9)
    assert conv.layers[0].scale == pytest.approx(lam1) and conv.layers[1].scale == pytest.approx(lam2)
    for pop, proj, layer, lam_prev, lam in zip(conv.network.populations, conv.network.projections,
                                              g.layers[::2], (1.0, lam1), (lam1, lam2)):
        theta = int(pop.params.threshold[0])
        assert (pop.params.threshold == theta).all() and (pop.params.leak_shift == 0).all()
        assert (pop.params.reset_mode == RESET_BY_SUBTRACTION).all() and (pop.params.refractory == 0).all()
        w_norm = layer.weight * lam_prev / lam
        assert np.abs(proj.weight).max() <= 127
        assert theta == int(np.floor(127 / np.abs(w_norm).max()))          # the largest exact scale
        dense = np.zeros(layer.weight.shape)
        dense[proj.post, proj.pre] = proj.weight
        assert np.abs(dense / theta - w_norm).max() <= 0.5 / theta + 1e-12
        assert np.abs(pop.params.bias / theta - layer.bias / lam).max() <= 0.5 / theta + 1e-12
    assert conv.network.outputs[0].name == "output" and conv.network.decoding["kind"] == "count"


def test_pooling_is_exact_and_narrow_weights_work():
    rng = np.random.default_rng(4)
    g = Graph((1, 4, 4), [Conv2d(rng.normal(size=(2, 1, 3, 3)), padding=1), ReLU(), AvgPool2d(2), Flatten(),
                          Dense(rng.normal(size=(3, 8)))])
    conv = convert(g, rng.random((50, 16)), weight_bits=4)
    pool = conv.network.population("avgpool1")
    assert (pool.params.threshold == 4).all()
    assert (conv.network.projections[1].weight == 1).all() and len(conv.network.projections[1].pre) == 32
    for proj in conv.network.projections:
        assert proj.weight.min() >= -8 and proj.weight.max() <= 7
    compile_network(conv.network, CoreConfig(weight_bits=4))


def test_huge_weights_are_clipped_and_reported():
    g = Graph((2,), [Dense(np.array([[1000.0, 1.0]]), np.zeros(1))])
    conv = convert(g, np.array([[0.001, 1.0], [0.0, 0.5]]), weight_bits=4, percentile=100)
    assert conv.layers[0].threshold == 1 and conv.layers[0].clipped == 1
    assert conv.network.projections[0].weight.max() == 7


# -- SNN dynamics --------------------------------------------------------------------------
def test_spike_rates_approximate_relu_activations():
    """At large T the count rates of both layers approach the normalised ReLU activations."""
    rng = np.random.default_rng(5)
    g = mlp(rng, [10, 16, 4])
    x = rng.random((12, 10))
    conv = convert(g, x, percentile=100)            # no clipping: every rate stays <= 1
    compiled = compile_network(conv.network)
    steps = 400
    spikes = encode("current", x, steps)
    hidden_first, _ = compiled.layers["dense1"]
    out_first, _ = compiled.layers["output"]
    acts = g.forward(x, return_all=True)
    lam1, lam2 = conv.layers[0].scale, conv.layers[1].scale
    for i in range(len(x)):
        res = golden.run(compiled.program, spikes[i], record_neurons=True)
        hidden = res.neuron_spikes[:, hidden_first:hidden_first + 16].sum(0) / steps
        output = res.neuron_spikes[:, out_first:out_first + 4].sum(0) / steps
        np.testing.assert_allclose(hidden, acts[1][i] / lam1, atol=0.02)
        np.testing.assert_allclose(output, np.maximum(acts[2][i], 0) / lam2, atol=0.03)


def test_numpy_simulator_matches_the_golden_model():
    rng = np.random.default_rng(6)
    g = Graph((1, 5, 5), [Conv2d(rng.normal(size=(3, 1, 3, 3)), rng.normal(0, .1, 3), padding=1), ReLU(),
                          SumPool2d(2, 1), Flatten(), Dense(rng.normal(size=(20, 48)), rng.normal(0, .1, 20)),
                          ReLU(), Dense(rng.normal(size=(6, 20)))])
    x = rng.random((30, 25))
    conv = convert(g, x, percentile=99)
    compiled = compile_network(conv.network)
    spikes = encode("rate", x, 24, seed=3)
    ref = simulate(conv.network, spikes, record=True)["output"]
    gold = golden.run_batch(compiled.program, spikes).spikes
    assert ref.any()
    np.testing.assert_array_equal(ref, gold)


# -- pipeline ------------------------------------------------------------------------------
def test_convert_dataset_end_to_end(ann_file, digits, small_mlp, tmp_path):
    res = convert_dataset("digits", steps=8, ann_path=ann_file, curve_steps=(2, 16), out=tmp_path / "img")
    for key in ("ann_accuracy", "snn_accuracy", "steps", "weight_bits", "curve", "layers", "neurons",
                "synapses", "rate_limit_accuracy"):
        assert key in res
    assert res["steps"] == 8 and res["weight_bits"] == 8 and res["neurons"] == 42
    assert res["ann_accuracy"] == pytest.approx(small_mlp.score(digits.x_test, digits.y_test))
    assert res["ann_accuracy"] > 0.9 and res["snn_accuracy"] > 0.85
    assert [p["steps"] for p in res["curve"]] == [2, 8, 16]
    assert res["curve"][1]["snn_accuracy"] == res["snn_accuracy"]
    assert res["curve"][2]["snn_accuracy"] > 0.9
    assert res["curve"][0]["silent_fraction"] == 1.0     # T=2: the output layer got one step of input
    assert (tmp_path / "img" / "manifest.json").is_file()
    json.dumps(res)
    png = plot_curve(res, tmp_path / "curve.png")
    assert png.stat().st_size > 1000


def test_training_path_rate_encoder_and_rate_limit(tmp_path):
    res = convert_dataset("digits", steps=16, hidden=(32,), max_iter=300, encoder="rate", curve_steps=(),
                          weight_bits=6, save_ann_path=tmp_path / "mlp.joblib")
    assert res["ann"]["source"] == "trained" and res["ann"]["hidden"] == [32]
    assert (tmp_path / "mlp.joblib").is_file()
    assert res["curve"] == [] and res["encoder"] == "rate" and res["weight_bits"] == 6
    assert res["snn_accuracy"] > 0.8 and res["rate_limit_accuracy"] > 0.9
    assert all(abs(layer["max_weight"]) <= 31 for layer in res["layers"])


def test_rate_limit_of_a_fine_network_matches_the_ann():
    rng = np.random.default_rng(7)
    g = mlp(rng, [8, 30, 3])
    x = rng.random((300, 8))
    conv = convert(g, x, weight_bits=16, percentile=100)
    assert (rate_limit_predict(conv, x) == g.predict(x)).mean() > 0.97


# -- CLI -----------------------------------------------------------------------------------
def test_cli_convert_json(ann_file, capsys):
    assert main(["convert", "--ann", str(ann_file), "--steps", "8", "--no-curve", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["steps"] == 8 and report["weight_bits"] == 8
    assert report["snn_accuracy"] > 0.85 and report["ann_accuracy"] > 0.9


def test_cli_convert_text(ann_file, capsys):
    assert main(["convert", "--ann", str(ann_file), "--steps", "8", "--curve", "4,8"]) == 0
    out = capsys.readouterr().out
    assert "accuracy : ANN" in out and "curve" in out and "MLP 64-32-10" in out


@pytest.mark.parametrize("argv, message", [
    (["--weight-bits", "1"], "--weight-bits must be in 2..16"),
    (["--ann", "x.joblib", "--hidden", "64"], "cannot be combined with --ann"),
    (["--hidden", "0"], "expected comma-separated positive integers"),
    (["--encoder", "latency"], "invalid choice"),
    (["--ann", "/nonexistent/mlp.joblib"], "no such file"),
    (["--dataset", "cifar"], "unknown dataset"),
])
def test_cli_convert_errors(argv, message, capsys):
    assert main(["convert", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_convert_refuses_existing_out_before_training(tmp_path, capsys):
    assert main(["convert", "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
