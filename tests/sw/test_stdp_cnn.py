"""The STDP-trained spiking CNN (neurocore.sw.stdp_cnn) and ``train-stdp --arch cnn``, on tiny runs."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from neurocore.sim import golden
from neurocore.sw.compiler import compile_network
from neurocore.sw import stdp_cnn
from neurocore.sw.datasets import Dataset, load_dataset
from neurocore.sw.encoders import latency_encode
from neurocore.sw.image_dir import load_image_dir
from neurocore.tools import cli

SMALL = stdp_cnn.CnnStdpParams(maps=(4,), kernel=(3,), steps=8, threshold=(3 * 4095,), eval_threshold=(3 * 4095,))


def random_images(rng, n, side=10, density=0.3):
    """Grey-scale-like DoG inputs: ``[n, 2*side*side]`` with about ``density`` non-zero."""
    x = rng.random((n, 2 * side * side)).astype(np.float32)
    x[rng.random(x.shape) > density] = 0.0
    return x


def compile(net):
    return compile_network(net, stdp_cnn.core_for(net))


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- the readout: the core's WTA evaluates argmax(w @ counts + b) ---------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_readout_fires_once_for_the_argmax_of_the_quantised_score(seed):
    """Random kernels, random images, random readout weights: exactly one readout spike per
    sample, in the go step, from argmax(w @ counts + b) (ties to the lowest class), where
    counts are the pool spike counts of the same network without readout."""
    rng = np.random.default_rng(seed)
    params = dataclasses.replace(SMALL, pool=int(rng.choice([2, 4])), readout_bits=int(rng.integers(3, 9)))
    shape = (10, 10) if params.pool == 4 else (12, 12)
    side = shape[0]
    kernel = [rng.integers(0, params.w_max + 1, (params.maps[0], 2, 3, 3))]
    x = random_images(rng, 40, side)
    enc = stdp_cnn.encoding(params, shape, "random")
    features = compile(stdp_cnn.inference_network(kernel, shape, params))
    counts = stdp_cnn.pool_counts(features, x, enc)
    assert counts.sum() > 0
    classes = int(rng.integers(2, 6))
    coef = rng.normal(size=(classes, counts.shape[1]))
    coef[:, rng.random(counts.shape[1]) < 0.3] = 0.0
    readout = stdp_cnn.quantise_readout(coef, rng.normal(size=classes) * 3, bits=params.readout_bits,
                                        max_count=params.pool ** 2)
    if seed % 2:                       # ties: two classes with the same weights and bias
        readout = dataclasses.replace(readout, weight=np.vstack([readout.weight[:1], readout.weight[:-1]]),
                                      bias=np.concatenate([readout.bias[:1], readout.bias[:-1]]))
        readout = stdp_cnn.quantise_readout(readout.weight, readout.bias, bits=16, max_count=params.pool ** 2)
    net = stdp_cnn.inference_network(kernel, shape, params, readout, n_classes=classes, encoding=enc)
    compiled = compile(net)
    spikes = golden.run_batch(compiled.program, stdp_cnn._spikes(x, enc)).spikes
    assert spikes.shape[1] == enc["steps"] == params.steps + params.pool ** 2 + 1
    assert (spikes.sum(axis=(1, 2)) == 1).all()                       # one spike per sample ...
    assert not spikes[:, :-1].any()                                    # ... in the go step
    score = counts @ readout.weight.T + readout.bias
    assert np.array_equal(compiled.decode(spikes), np.argmax(score, axis=1))


def test_pool_drains_before_the_go_step():
    """Every conv1 spike is counted by its pool neuron by step t_go - 1 (readout_step)."""
    rng = np.random.default_rng(7)
    params = dataclasses.replace(SMALL, pool=4, eval_threshold=4095)   # low threshold: busy windows
    shape = (10, 10)
    maps = params.maps[0]
    kernel = [np.full((maps, 2, 3, 3), params.w_max)]
    net = stdp_cnn.inference_network(kernel, shape, params)
    net.populations[0].output = True
    enc = stdp_cnn.encoding(params, shape, "random")
    compiled = compile(net)
    x = random_images(rng, 30, 10, density=0.6)
    spikes = golden.run_batch(compiled.program, stdp_cnn._spikes(x, enc)).spikes
    n_conv = maps * 8 * 8
    conv, pool = spikes[:, :, :n_conv], spikes[:, :-1, n_conv:]        # pool: before the go step
    m, y, xx = np.meshgrid(np.arange(maps), np.arange(8), np.arange(8), indexing="ij")
    window = ((m * 2 + y // 4) * 2 + xx // 4).reshape(-1)
    per_window = np.zeros((len(x), maps * 4), np.int64)
    np.add.at(per_window, (slice(None), window), conv.sum(axis=1))
    assert per_window.max() >= 8                                       # some window is crowded
    assert np.array_equal(pool.sum(axis=1), per_window)
    assert conv.sum(axis=1).max() == 1                                 # a conv1 neuron fires at most once


@pytest.mark.parametrize("seed", range(4))
def test_two_conv_layers_drain_before_the_go_step_and_read_out_the_argmax(seed):
    """conv1 -> max pool -> conv2 -> sum pool -> readout: no pool spike is left for the go
    step, and the one readout spike is the argmax of the score of the counts."""
    rng = np.random.default_rng(100 + seed)
    params = stdp_cnn.CnnStdpParams(maps=(3, 5), kernel=(3, 3), steps=6, pool=2,
                                    threshold=(3 * 4095, 2 * 4095), eval_threshold=(3 * 4095, 2 * 4095))
    shape = (10, 10)                                  # conv1 8x8 -> pool1 4x4 -> conv2 2x2 -> pool2 1x1
    geo = stdp_cnn.shapes(params, shape)
    assert geo.conv == ((3, 8, 8), (5, 2, 2)) and geo.pooled == ((3, 4, 4), (5, 1, 1))
    kernels = [rng.integers(0, 4096, (3, 2, 3, 3)), rng.integers(0, 4096, (5, 3, 3, 3))]
    enc = stdp_cnn.encoding(params, shape, "random")
    assert enc["steps"] == 6 + 2 + 4 + 1
    x = random_images(rng, 30, 10, density=0.5)
    features = compile(stdp_cnn.inference_network(kernels, shape, params))
    raw = golden.run_batch(features.program, stdp_cnn._spikes(x, enc)).spikes
    assert raw.sum() > 0 and not raw[:, -1].any()     # the pool is empty in the go step
    counts = raw.sum(axis=1)
    readout = stdp_cnn.quantise_readout(rng.normal(size=(4, counts.shape[1])), rng.normal(size=4),
                                        bits=6, max_count=4)
    net = stdp_cnn.inference_network(kernels, shape, params, readout, n_classes=4, encoding=enc)
    spikes = golden.run_batch(compile(net).program, stdp_cnn._spikes(x, enc)).spikes
    assert (spikes.sum(axis=(1, 2)) == 1).all() and not spikes[:, :-1].any()
    assert np.array_equal(np.argmax(spikes[:, -1], axis=1), np.argmax(counts @ readout.weight.T + readout.bias, axis=1))


def test_quantise_readout_scales_weights_and_keeps_the_go_signal_in_range():
    coef = np.array([[0.5, -2.0, 0.0], [1.0, 0.25, -0.5]])
    readout = stdp_cnn.quantise_readout(coef, np.array([10.0, -3.0]), bits=8, max_count=4)
    assert np.abs(readout.weight).max() == 127
    assert np.array_equal(readout.weight, np.rint(coef * 127 / 2.0).astype(np.int64))
    assert np.array_equal(readout.bias, np.rint(np.array([10.0, -3.0]) * 127 / 2.0).astype(np.int64))
    reach = max(np.clip(readout.weight, 0, None).sum(axis=1).max(), (-np.clip(readout.weight, None, 0)).sum(axis=1).max())
    assert readout.threshold == reach * 4 + 1
    assert (readout.go <= stdp_cnn.WEIGHT_LIMIT).all() and (readout.go >= 0).all()
    total = readout.go.sum(axis=0)
    # the smallest membrane before go plus the go signal reaches the threshold for every class
    assert (-(readout.threshold - 1) + total - readout.threshold >= 1).all()
    assert np.array_equal(total - readout.bias, np.full(2, total[0] - readout.bias[0]))


# -- training: per-map competition, the rule on shared kernels ----------------------------------
def test_training_spikes_give_every_input_one_spike():
    x = np.array([[0.0, 1.0, 0.5, 0.0]], np.float32)
    s = stdp_cnn.training_spikes(x, 5)
    assert (s.sum(axis=1) == 1).all()
    assert np.array_equal(np.argmax(s[0], axis=0), [4, 0, 2, 4])
    assert np.array_equal(s[:, :, 1:3], latency_encode(x, 5)[:, :, 1:3])


def test_map_wta_lets_one_neuron_per_map_fire_per_step_and_the_kernel_round_trips():
    rng = np.random.default_rng(1)
    shape = (10, 10)
    kernel = stdp_cnn.initial_kernel(SMALL, seed=2)
    compiled, program = stdp_cnn.training_program([kernel], shape, SMALL)
    assert np.array_equal(stdp_cnn.kernel_of(compiled, program.weight), kernel)
    x = random_images(rng, 20, 10, density=0.5)
    batch = golden.run_batch(program, stdp_cnn.training_spikes(x, SMALL.steps), learn=True)
    maps = batch.spikes.reshape(len(x), SMALL.steps, SMALL.maps[0], -1)        # population order: map-major
    per_map = maps.sum(axis=3)
    assert per_map.max() == 1 and per_map.sum() > len(x)                    # one winner per map and step
    learned = stdp_cnn.kernel_of(compiled, batch.state.weight)
    assert not np.array_equal(learned, kernel)
    assert (learned >= 0).all() and (learned <= SMALL.w_max).all()
    # without the per-map groups, several neurons of a map fire in one step
    free = golden.run_batch(compiled.program, stdp_cnn.training_spikes(x, SMALL.steps), learn=True)
    assert free.spikes.reshape(len(x), SMALL.steps, SMALL.maps[0], -1).sum(axis=3).max() > 1


def test_training_moves_the_kernel_towards_its_winners_inputs():
    """One map, one image, no competition: the winner's spiked taps grow, its silent taps shrink."""
    params = dataclasses.replace(SMALL, maps=1, a_plus=255, a_minus=255, shift=24)
    x = np.zeros((1, 2 * 5 * 5), np.float32)
    x[0, :25] = 1.0                                                     # ON channel bright, OFF silent
    kernel = np.full((1, 2, 3, 3), params.w_max // 2)
    compiled, program = stdp_cnn.training_program([kernel], (5, 5), dataclasses.replace(params, threshold=9 * 2047))
    state, _ = stdp_cnn.train_conv(program, x, params, seed=0, epoch=0)
    learned = stdp_cnn.kernel_of(compiled, state.weight)
    assert (learned[0, 0] > kernel[0, 0]).all() and (learned[0, 1] < kernel[0, 1]).all()


def test_second_layer_trains_with_the_first_fixed():
    rng = np.random.default_rng(3)
    params = stdp_cnn.CnnStdpParams(maps=(3, 4), kernel=(3, 3), steps=6, pool=2,
                                    threshold=(3 * 4095, 2 * 4095), eval_threshold=(3 * 4095, 2 * 4095))
    kernels = [stdp_cnn.initial_kernel(params, 0, layer) for layer in range(2)]
    assert kernels[1].shape == (4, 3, 3, 3)
    compiled, program = stdp_cnn.training_program(kernels, (10, 10), params, layer=1)
    assert np.array_equal(stdp_cnn.kernel_of(compiled, program.weight), kernels[1])
    first, size = compiled.layers["conv2"]
    assert np.array_equal(program.neurons.wta_group[first:first + size], 1 + np.arange(size) % 4)
    assert (program.neurons.wta_group[:first] == 0).all()       # conv1: per-position blocks
    x = random_images(rng, 20, 10, density=0.5)
    state, spikes = stdp_cnn.train_conv(program, x, params, seed=0, epoch=0, layer=1)
    assert spikes > 0
    learned = stdp_cnn.kernel_of(compiled, state.weight)
    assert not np.array_equal(learned, kernels[1])
    conv1_words = program.plastic == 0
    assert np.array_equal(state.weight[conv1_words], program.weight[conv1_words])   # conv1 fixed


def test_same_seed_same_network_and_history():
    data = load_dataset("digits")
    kw = dict(epochs=1, seed=5, params=dataclasses.replace(SMALL, maps=3), progress=False,
              limit_train=40, limit_test=20)
    a, b = stdp_cnn.train_stdp_cnn(data, **kw), stdp_cnn.train_stdp_cnn(data, **kw)
    assert np.array_equal(a.kernels[0], b.kernels[0]) and a.history == b.history
    assert not np.array_equal(a.kernels[0], a.initial_kernels[0])
    assert [(h["layer"], h["epoch"]) for h in a.history] == [(0, 0), (1, 1)]
    assert a.to_dict()["accuracy"] == a.history[-1]["accuracy"]


def test_errors_name_the_limit():
    data = load_dataset("digits")
    with pytest.raises(ValueError, match="does not fit the 8x8 images"):
        stdp_cnn.train_stdp_cnn(data, params=dataclasses.replace(SMALL, kernel=9), progress=False)
    with pytest.raises(ValueError, match="pool 4 must divide the 6x6 conv1 maps"):
        stdp_cnn.train_stdp_cnn(data, params=dataclasses.replace(SMALL, pool=4, kernel=3), progress=False)
    with pytest.raises(ValueError, match="exceeds the refractory period 255"):
        stdp_cnn.train_stdp_cnn(data, params=dataclasses.replace(SMALL, steps=252), progress=False)
    with pytest.raises(ValueError, match="can never be reached"):
        dataclasses.replace(SMALL, threshold=10 ** 6)
    grey = Dataset(name="rgb", x_train=np.zeros((2, 3 * 64), np.float32), y_train=np.array([0, 1]),
                   x_test=np.zeros((1, 3 * 64), np.float32), y_test=np.array([0]), n_classes=2,
                   image_shape=(8, 8), channels=3)
    with pytest.raises(ValueError, match="grey-scale"):
        stdp_cnn.train_stdp_cnn(grey, params=SMALL, progress=False)


# -- the CLI -------------------------------------------------------------------------------------
def test_cli_cnn_json_image_and_plot(capsys, tmp_path):
    out, png = tmp_path / "img", tmp_path / "kernels.png"
    status, stdout, _ = run_cli(capsys, "train-stdp", "--arch", "cnn", "--dataset", "digits", "--maps", "4",
                                "--kernel", "3", "--steps", "8", "--epochs", "1", "--limit", "40",
                                "--no-progress", "--json", "--out", str(out), "--plot", str(png))
    assert status == 0
    report = json.loads(stdout)
    for key in ("accuracy", "neurons", "synapse_words", "epochs", "history"):
        assert key in report
    assert report["epochs"] == 1 and len(report["history"]) == 2
    assert png.stat().st_size > 5000
    compiled = load_image_dir(out)
    assert compiled.encoding["window"] == 8 and compiled.encoding["kind"] == "latency"
    assert report["neurons"] == compiled.program.n_neurons
    # `neurocore run` encodes the image's inputs as training tested them (latency window)
    status, stdout, _ = run_cli(capsys, "run", str(out), "--limit", "40", "--json")
    assert status == 0
    assert json.loads(stdout)["accuracy"] == pytest.approx(report["accuracy"])


@pytest.mark.parametrize("argv, message", [
    (["--arch", "cnn", "--neurons", "5"], "--neurons applies to --arch fc, not --arch cnn"),
    (["--maps", "4"], "--maps applies to --arch cnn, not --arch fc"),
    (["--arch", "cnn", "--maps", "300"], "--maps: expected comma-separated integers in 1..256, got '300'"),
    (["--arch", "cnn", "--dataset", "mnist", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),
    (["--arch", "cnn", "--dataset", "digits", "--kernel", "9"], "does not fit the 8x8 images"),
    (["--arch", "cnn", "--dataset", "mnist-5k", "--maps", "128"], "neurons but the largest core has 65536"),
])
def test_cli_cnn_bad_arguments_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) if "invalid" in message else _no_raise():
        status = cli.main(["train-stdp", *argv, "--no-progress", "--epochs", "0"])
        assert status == 2
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert message in lines[-1], err
    assert "Traceback" not in err


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
