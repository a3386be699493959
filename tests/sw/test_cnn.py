"""The PyTorch CNN of ``neurocore convert --arch cnn`` (sw/convert/cnn.py): building, training,
the exact graph rewrites before the conversion, and the pipeline on digits.

Skipped without torch (pip install 'neurocore[torch]'), except the missing-torch error itself.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from neurocore.sw.convert import cnn
from neurocore.sw.convert.graph import AvgPool2d, Conv2d, Dense, Flatten, Graph, ReLU, SumPool2d


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def digits():
    from neurocore.sw.datasets import load_dataset
    return load_dataset("digits")


def test_missing_torch_names_the_extra(monkeypatch, digits):
    monkeypatch.setitem(sys.modules, "torch", None)      # `import torch` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'neurocore\[torch\]'"):
        cnn.require_torch()
    with pytest.raises(ImportError, match=r"pip install 'neurocore\[torch\]'"):
        cnn.train_cnn(digits, maps=(2,), epochs=1)
    from neurocore.sw.convert.pipeline import convert_dataset
    with pytest.raises(ImportError, match=r"pip install 'neurocore\[torch\]'"):
        convert_dataset("digits", arch="cnn", curve_steps=())


@pytest.mark.parametrize("maps, message", [((), "1 to 3 integers"), ((8, 0), r"got \[8, 0\]"),
                                           ((8, 65), r"got \[8, 65\]"), ((1, 2, 3, 4), "1 to 3"),
                                           ("ab", "got 'ab'")])
def test_check_maps(maps, message):
    with pytest.raises(ValueError, match=message):
        cnn.check_maps(maps)


@pytest.mark.parametrize("epochs", [0, 201, 2.5, True, "x", None])
def test_check_epochs(epochs):
    with pytest.raises(ValueError, match=r"epochs must be an integer in 1..200"):
        cnn.check_epochs(epochs)


def test_padding_and_shapes(torch):
    from neurocore.sw.convert import from_torch
    assert cnn.cnn_padding((1, 28, 28), 2) == 0      # 28 -> 24 -> 12 -> 8 -> 4
    assert cnn.cnn_padding((1, 8, 8), 2) == 2        # 8 -> 8 -> 4 -> 4 -> 2
    assert cnn.cnn_padding((1, 8, 8), 3) == 2        # ... -> 2 -> 1
    with pytest.raises(ValueError, match="a 4x4 image is too small for 3 conv blocks"):
        cnn.cnn_padding((1, 4, 4), 3)
    g = from_torch(cnn.build_cnn((1, 28, 28), 10), input_shape=(1, 28, 28))
    assert g.shapes[2] == (8, 12, 12) and g.shapes[5] == (16, 4, 4) and g.output_shape == (10,)
    assert [type(layer) for layer in g.layers] == [Conv2d, ReLU, AvgPool2d] * 2 + [Flatten, Dense]
    g = from_torch(cnn.build_cnn((3, 8, 8), 4, maps=(2,), dropout=0.5), input_shape=(3, 8, 8))
    assert g.layers[0].weight.shape == (2, 3, 5, 5) and g.output_shape == (4,)


def _pool_graph(rng, pool=AvgPool2d, size=8):
    return Graph((2, size, size), [
        Conv2d(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), padding=1), ReLU(), pool(2),
        Conv2d(rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)), ReLU(), pool(2),
        Flatten(), Dense(rng.normal(size=(5, 4 * ((size // 2 - 2) // 2) ** 2)), rng.normal(size=5))])


@pytest.mark.parametrize("pool", [AvgPool2d, SumPool2d])
def test_fold_pooling_is_exact(pool):
    rng = np.random.default_rng(0)
    g = _pool_graph(rng, pool)
    x = rng.random((6, 2 * 8 * 8))
    readout = cnn.fold_pooling(g, "readout")
    assert [type(layer) for layer in readout.layers] == [Conv2d, ReLU, pool, Conv2d, ReLU, Flatten, Dense]
    assert readout.layers[-1].weight.shape == (5, 4 * 2 * 2)       # 4 maps of 1x1 spread over 2x2
    everything = cnn.fold_pooling(g, "all")
    assert [type(layer) for layer in everything.layers] == [Conv2d, ReLU, Conv2d, ReLU, Flatten, Dense]
    assert everything.layers[2].weight.shape == (4, 3, 6, 6) and everything.layers[2].stride == (2, 2)
    for folded in (readout, everything):
        np.testing.assert_allclose(folded.forward(x), g.forward(x), rtol=1e-12, atol=1e-12)
    assert cnn.fold_pooling(g, "none").layers == g.layers
    with pytest.raises(ValueError, match="fold must be one of none, readout, all"):
        cnn.fold_pooling(g, "some")


def test_fold_pooling_leaves_a_lossy_window_alone():
    rng = np.random.default_rng(1)
    g = Graph((1, 5, 5), [Conv2d(rng.normal(size=(2, 1, 2, 2))), ReLU(), AvgPool2d(2), Flatten(),
                          Dense(rng.normal(size=(3, 8)))])     # 4x4 -> 2x2: exact, folded
    assert not any(isinstance(layer, AvgPool2d) for layer in cnn.fold_pooling(g).layers)
    g = Graph((1, 4, 4), [Conv2d(rng.normal(size=(2, 1, 2, 2))), ReLU(), AvgPool2d(2), Flatten(),
                          Dense(rng.normal(size=(3, 2)))])     # 3x3 -> 1x1 drops a row and a column
    assert [type(layer) for layer in cnn.fold_pooling(g).layers] == [type(layer) for layer in g.layers]


def test_lift_readout_keeps_the_argmax():
    rng = np.random.default_rng(2)
    g = Graph((4,), [Dense(rng.normal(size=(6, 4)), rng.normal(size=6) - 0.5), ReLU(),
                     Dense(rng.normal(size=(3, 6)), rng.normal(size=3) - 0.5)])
    bias = g.layers[-1].bias.copy()
    x = rng.random((200, 4))
    win = g.forward(x).max(axis=1)
    assert win.min() < 0                      # some samples would leave every output neuron silent
    lifted, shift = cnn.lift_readout(g, x, lift=0.5)
    assert shift == pytest.approx(0.5 * max(0.0, np.median(win)) - win.min())
    np.testing.assert_allclose(lifted.forward(x), g.forward(x) + shift)
    assert (lifted.predict(x) == g.predict(x)).all()
    assert np.median(win) > 0 and lifted.forward(x).max(axis=1).min() == pytest.approx(0.5 * np.median(win))
    assert (g.layers[-1].bias == bias).all()     # the input graph is not modified
    high, zero = cnn.lift_readout(lifted, x, lift=0.0)
    assert zero == 0.0 and high.layers[-1].bias.tolist() == lifted.layers[-1].bias.tolist()
    with pytest.raises(ValueError, match="needs a Dense last layer"):
        cnn.lift_readout(Graph((4,), [Dense(np.ones((2, 4))), ReLU()]), x)


def test_training_is_deterministic_and_restores_torch(torch, digits):
    threads = torch.get_num_threads()
    a, acc_a = cnn.train_cnn(digits, maps=(2, 4), epochs=2, seed=3)
    b, acc_b = cnn.train_cnn(digits, maps=(2, 4), epochs=2, seed=3)
    c, _ = cnn.train_cnn(digits, maps=(2, 4), epochs=2, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and acc_a == acc_b
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert acc_a == pytest.approx((cnn.predict_torch(a, digits.x_test, (1, 8, 8)) == digits.y_test).mean())
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
    assert not a.training


def test_ctrl_c_stops_the_training_and_the_pipeline(torch, monkeypatch, tmp_path):
    from neurocore.sw.convert.pipeline import convert_dataset
    calls = []
    real = torch.nn.functional.cross_entropy

    def loss(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", loss)
    with pytest.raises(KeyboardInterrupt):
        convert_dataset("digits", arch="cnn", maps=(2,), epochs=3, curve_steps=(), out=tmp_path / "img")
    assert len(calls) == 3 and not (tmp_path / "img").exists()
    assert not torch.are_deterministic_algorithms_enabled()


def test_pipeline_cnn_on_digits(torch):
    from neurocore.sw.convert.pipeline import convert_dataset
    res = convert_dataset("digits", arch="cnn", maps=(4, 8), epochs=8, steps=24, curve_steps=(8, 24))
    assert res["arch"] == "cnn" and res["ann"]["maps"] == [4, 8] and res["ann"]["epochs"] == 8
    assert res["ann_accuracy"] > 0.7 and res["snn_accuracy"] > 0.6
    assert [layer["kind"] for layer in res["layers"]] == ["conv", "avgpool", "conv", "dense"]   # readout folded
    assert res["neurons"] == 4 * 64 + 4 * 16 + 8 * 16 + 10
    # the kernels stored once (shared rows): far fewer words than the explicit lowering
    assert res["synapse_words"] == res["synapses"] and 3 * res["synapse_words"] < res["synapse_words_unshared"]
    assert res["synapse_words_unshared"] >= res["synapse_pairs"]
    assert res["synapse_pairs"] == sum(layer["synapses"] for layer in res["layers"])
    assert res["ann"]["readout_shift"] >= 0 and res["config"]["weight_bits"] == 8
    assert abs(res["ann"]["graph_accuracy"] - res["ann_accuracy"]) <= 2 / 540   # fold and lift are exact
    unfolded = convert_dataset("digits", arch="cnn", maps=(4, 8), epochs=8, steps=24, curve_steps=(),
                               fold="none", readout_lift=0.0)
    assert unfolded["ann_accuracy"] == res["ann_accuracy"]                  # same seed, same ANN
    assert unfolded["depth"] == 5 and unfolded["ann"]["fold"] == "none"
    assert unfolded["ann"]["readout_shift"] >= 0 and unfolded["ann"]["readout_lift"] == 0.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(arch="rnn"), "arch must be one of mlp, cnn"),
    (dict(maps=(8,)), "apply to arch 'cnn' only"),
    (dict(arch="cnn", maps=(0,)), "maps must be"),
    (dict(arch="cnn", epochs=0), "epochs must be"),
    (dict(arch="cnn", fold="x"), "fold must be one of"),
    (dict(arch="cnn", readout_lift=-1), "readout_lift must be >= 0"),
    (dict(arch="cnn", save_ann_path="m.joblib"), "apply to arch 'mlp' only"),
])
def test_pipeline_refuses_bad_cnn_arguments(torch, kwargs, message):
    from neurocore.sw.convert.pipeline import convert_dataset
    with pytest.raises(ValueError, match=message):
        convert_dataset("digits", curve_steps=(), **kwargs)


# -- strided blocks and the shift augmentation ------------------------------------------------
def test_strided_blocks_shapes_and_padding(torch):
    from neurocore.sw.convert import from_torch
    g = from_torch(cnn.build_cnn((1, 28, 28), 10, stride=2), input_shape=(1, 28, 28))
    assert [type(layer) for layer in g.layers] == [Conv2d, ReLU, Conv2d, ReLU, Flatten, Dense]
    assert g.shapes[0] == (8, 12, 12) and g.shapes[2] == (16, 4, 4)       # 28 -> 12 -> 4
    assert g.layers[0].stride == (2, 2) and g.layers[0].padding == (0, 0)
    assert sum(int(np.prod(s)) for s in (g.shapes[0], g.shapes[2])) + 10 == 1418
    assert cnn.cnn_padding((1, 8, 8), 2, stride=2) == 2       # 8 -> 2 valid is too small: 8 -> 4 -> 2 same
    g = from_torch(cnn.build_cnn((1, 8, 8), 3, maps=(2, 3), stride=2), input_shape=(1, 8, 8))
    assert g.shapes[0] == (2, 4, 4) and g.shapes[2] == (3, 2, 2)
    assert cnn.cnn_padding((1, 4, 4), 3, stride=3) == 2       # "same" strided blocks never go below 1x1
    g = from_torch(cnn.build_cnn((1, 4, 4), 3, maps=(2, 2, 2), stride=3), input_shape=(1, 4, 4))
    assert g.shapes[0] == (2, 2, 2) and g.shapes[-3] == (2, 1, 1) and g.output_shape == (3,)
    for bad in (0, 4, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"stride must be an integer in 1..3"):
            cnn.check_stride(bad)


def test_shift_batch_translates_each_image(torch):
    x = torch.arange(2 * 1 * 5 * 6, dtype=torch.float32).reshape(2, 1, 5, 6) + 1
    g = torch.Generator().manual_seed(3)
    out = cnn.shift_batch(x, 2, g)
    offsets = torch.randint(-2, 3, (2, 2), generator=torch.Generator().manual_seed(3)).tolist()
    for b, (dy, dx) in enumerate(offsets):
        expect = np.zeros((5, 6), np.float32)
        src = x[b, 0].numpy()
        for i in range(5):
            for j in range(6):
                if 0 <= i - dy < 5 and 0 <= j - dx < 6:
                    expect[i, j] = src[i - dy, j - dx]
        np.testing.assert_array_equal(out[b, 0].numpy(), expect)
    assert offsets != [[0, 0], [0, 0]]                      # the test moves something
    assert cnn.shift_batch(x, 0, g) is x
    assert cnn.default_shift((1, 28, 28)) == 2 and cnn.default_shift((3, 32, 32)) == 2
    assert cnn.default_shift((1, 8, 8)) == 0
    for bad in (-1, 5, 0.5, True):
        with pytest.raises(ValueError, match=r"shift must be an integer in 0..4"):
            cnn.check_shift(bad)


def test_shift_training_is_deterministic_and_differs(torch, digits):
    a, acc_a = cnn.train_cnn(digits, maps=(2,), epochs=2, seed=3, shift=1)
    b, acc_b = cnn.train_cnn(digits, maps=(2,), epochs=2, seed=3, shift=1)
    c, _ = cnn.train_cnn(digits, maps=(2,), epochs=2, seed=3)          # digits: default shift 0
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and acc_a == acc_b
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_strided_cnn_shared_lowering_spikes_like_the_explicit_one(torch):
    """A converted stride-2 CNN (5x5 kernels, no pooling): the kernels stored once give the
    same spikes on the golden model as the explicit per-position synapses."""
    from neurocore.sim import golden
    from neurocore.sw.compiler import compile_network
    from neurocore.sw.convert import convert, from_torch
    from neurocore.sw.evaluate import encode_samples
    from neurocore.sw.network import ConvProjection

    torch.manual_seed(0)
    shape = (1, 14, 14)
    model = cnn.build_cnn(shape, 4, maps=(3, 4), stride=2)      # 14 -> 5 -> 1
    graph = from_torch(model, input_shape=shape)
    rng = np.random.default_rng(0)
    x = rng.random((40, 14 * 14))
    shared = convert(graph, x, shared=True)
    explicit = convert(graph, x, shared=False)
    a, b = compile_network(shared.network), compile_network(explicit.network, shared=False)
    assert a.program.shared and not b.program.shared
    assert a.program.n_synapses < b.program.n_synapses
    def population_order(compiled, net, name):
        """Core neurons of layer ``name`` in population order: a conv target of the shared
        lowering is placed position-major (``ConvProjection.placement``), every other layer
        in order."""
        first, size = compiled.layers[name]
        convs = [pr for pr in net.projections if isinstance(pr, ConvProjection) and pr.target == name]
        return first + (convs[0].placement() if convs and compiled.program.shared else np.arange(size))

    first, size = a.layers["conv1"]
    assert not np.array_equal(population_order(a, shared.network, "conv1"), np.arange(first, first + size))
    inputs = encode_samples(x[:6], 12, "current", 0)
    for sample in inputs:
        ra = golden.run(a.program, sample, record_neurons=True)
        rb = golden.run(b.program, sample, record_neurons=True)
        assert ra.neuron_spikes.any() and np.array_equal(ra.spikes, rb.spikes)
        for name in a.layers:
            np.testing.assert_array_equal(ra.neuron_spikes[:, population_order(a, shared.network, name)],
                                          rb.neuron_spikes[:, population_order(b, explicit.network, name)])


def test_pipeline_strided_cnn_on_digits(torch):
    from neurocore.sw.convert.pipeline import convert_dataset
    res = convert_dataset("digits", arch="cnn", maps=(4, 8), epochs=8, steps=24, curve_steps=(), stride=2)
    assert res["ann"]["stride"] == 2 and res["ann"]["shift"] == 0
    assert [layer["kind"] for layer in res["layers"]] == ["conv", "conv", "dense"]
    assert res["neurons"] == 4 * 16 + 8 * 4 + 10                 # 8 -> 4 -> 2 ("same" padding)
    assert res["ann_accuracy"] > 0.6 and res["snn_accuracy"] > 0.5


@pytest.mark.parametrize("kwargs, message", [
    (dict(stride=2), "apply to arch 'cnn' only"),
    (dict(shift=1), "apply to arch 'cnn' only"),
    (dict(arch="cnn", stride=4), "stride must be an integer"),
    (dict(arch="cnn", shift=9), "shift must be an integer"),
])
def test_pipeline_refuses_bad_stride_and_shift(torch, kwargs, message):
    from neurocore.sw.convert.pipeline import convert_dataset
    with pytest.raises(ValueError, match=message):
        convert_dataset("digits", curve_steps=(), **kwargs)
