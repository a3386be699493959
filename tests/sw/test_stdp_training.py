"""Unsupervised STDP training (neurocore.sw.stdp) and ``neurocore train-stdp``, on tiny runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import CoreState
from neurocore.sim import golden
from neurocore.sw import stdp
from neurocore.sw.compiler import compile_network
from neurocore.sw.datasets import load_dataset
from neurocore.sw.image_dir import load_image_dir
from neurocore.tools import cli

TINY = dict(neurons=8, epochs=2, limit_train=60, limit_test=30, eval_steps=8, progress=False)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def tiny(digits):
    return stdp.train_stdp(digits, seed=3, **TINY)


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- determinism and ranges ----------------------------------------------------------------
def test_same_seed_same_weights(digits, tiny):
    again = stdp.train_stdp(digits, seed=3, **TINY)
    assert np.array_equal(again.weights, tiny.weights)
    assert np.array_equal(again.theta, tiny.theta)
    assert np.array_equal(again.labels, tiny.labels)
    assert again.accuracy == tiny.accuracy
    other = stdp.train_stdp(digits, seed=4, **TINY)
    assert not np.array_equal(other.weights, tiny.weights)


def test_training_changes_weights_and_theta(tiny):
    assert not np.array_equal(tiny.weights, tiny.initial_weights)
    assert (tiny.weights >= tiny.initial_weights).all()        # a_minus = 0: LTP only
    assert (tiny.theta > 0).all()                               # every neuron won some steps
    assert [h["epoch"] for h in tiny.history] == [1, 2]
    # forced competition: exactly one spike per training step
    assert all(h["spikes_per_sample"] == tiny.params.steps for h in tiny.history)


@pytest.mark.parametrize("rule, overrides", [
    ("trace", dict(a_plus=200, shift=4, init_low=3, init_high=10)),        # big steps: hits w_max
    ("multiplicative", dict(a_plus=255, shift=12, init_low=4, init_high=89)),
])
def test_weights_stay_in_range(digits, rule, overrides):
    params = stdp.default_params(rule, w_min=3, w_max=90, **overrides)
    result = stdp.train_stdp(digits, rule=rule, params=params, seed=1, **TINY)
    assert result.weights.min() >= 3 and result.weights.max() <= 90
    assert not np.array_equal(result.weights, result.initial_weights)
    if rule == "trace":
        assert (result.weights == 90).any()      # the clamp was exercised
    assert result.network.learning.soft_bound is (rule == "multiplicative")


def test_parameters_fit_default_core():
    for rule in stdp.RULES:
        params = stdp.default_params(rule)
        n_inputs = 128 if params.complement else 64
        net = stdp.build_network(n_inputs, 256, params, np.full((256, n_inputs), params.init_low))
        compiled = compile_network(net, CoreConfig())
        assert compiled.program.n_synapses == 256 * n_inputs <= CoreConfig().synapses
        assert compiled.program.plastic.all()
    with pytest.raises(ValueError, match="does not fit"):
        stdp.train_stdp("digits", neurons=300, epochs=0, progress=False, limit_train=5, limit_test=5,
                        config=CoreConfig())
    # without a config the network goes to the default core with its capacities raised
    result = stdp.train_stdp("digits", neurons=300, epochs=0, progress=False, limit_train=5, limit_test=5)
    assert result.compiled.config.neurons == 512


# -- the training is the golden model's on-chip rule ----------------------------------------
def test_training_equals_manual_golden_runs(digits):
    params = stdp.default_params("trace", steps=5)
    xin = stdp.complement(digits.x_train[:3]) if params.complement else digits.x_train[:3]
    rng = np.random.default_rng(0)
    w0 = rng.integers(params.init_low, params.init_high + 1, (6, xin.shape[1]))
    program = compile_network(stdp.build_network(xin.shape[1], 6, params, w0)).program

    # one sample: train_program == golden.run(learn=True) on the same program and spikes
    state, _ = stdp.train_program(program, xin[:1], epochs=1, params=params, seed=7)
    _, spikes = stdp.epoch_inputs(xin[:1], params, 7, 0)
    ref = golden.run(program, spikes[0], learn=True).state
    assert np.array_equal(state.weight, ref.weight) and np.array_equal(state.theta, ref.theta)
    assert not np.array_equal(ref.weight, program.weight)

    # two epochs of three samples: clear state, run, carry weights and theta, in epoch order
    state, _ = stdp.train_program(program, xin, epochs=2, params=params, seed=7)
    manual = CoreState.initial(program)
    for epoch in range(2):
        order, spikes = stdp.epoch_inputs(xin, params, 7, epoch)
        assert sorted(order) == [0, 1, 2]
        for sample in spikes:
            manual.clear()
            manual = golden.run(program, sample, learn=True, state=manual).state
    assert np.array_equal(state.weight, manual.weight) and np.array_equal(state.theta, manual.theta)


def test_result_network_is_the_learned_program(tiny):
    program = tiny.compiled.program
    assert np.array_equal(stdp.weight_matrix(program, tiny.neurons, tiny.n_inputs), tiny.weights)
    assert np.array_equal(program.theta, tiny.theta)
    assert program.learning == tiny.params.learning()         # can keep learning on chip
    assert program.plastic.all()
    assert tiny.compiled.decoding == {"kind": "vote", "labels": tiny.labels.tolist(), "n_classes": 10}


# -- labelling and vote decoding ------------------------------------------------------------
def test_assign_labels_and_vote_hand_made():
    counts = np.array([[5, 0, 1, 0],      # class 0
                       [3, 1, 0, 0],      # class 0
                       [0, 4, 2, 0],      # class 1
                       [1, 2, 6, 0]])     # class 2
    y = np.array([0, 0, 1, 2])
    labels = stdp.assign_labels(counts, y, 3)
    # neuron 0: means (4, 0, 1) -> 0; neuron 1: (0.5, 4, 2) -> 1; neuron 2: (0.5, 2, 6) -> 2;
    # neuron 3 never fired -> -1
    assert labels.tolist() == [0, 1, 2, -1]
    tests = np.array([[9, 0, 0, 7],       # class 0 (neuron 3 is unlabelled: ignored)
                      [0, 1, 3, 0],       # class 2
                      [2, 2, 0, 0],       # tie 0/1 -> lowest class
                      [0, 0, 0, 0]])      # silent -> class 0
    assert stdp.vote(tests, labels, 3).tolist() == [0, 2, 0, 0]
    # mean (not sum) over a class's neurons; classes without neurons are never predicted
    labels2 = np.array([1, 1, 0, 0])
    assert stdp.vote(np.array([[3, 3, 4, 0]]), labels2, 3).tolist() == [1]   # 3 > 2
    assert stdp.vote(np.zeros((1, 4)), labels2, 3).tolist() == [0]
    # the compiler's "vote" decoding agrees on spike trains with these counts
    params = stdp.default_params()
    net = stdp.build_network(2, 4, params, np.zeros((4, 2), int), labels=labels, n_classes=3)
    compiled = compile_network(net)
    spikes = np.zeros((len(tests), 10, 4), bool)
    for b, row in enumerate(tests):
        for j, c in enumerate(row):
            spikes[b, :c, j] = True
    assert compiled.decode(spikes).tolist() == stdp.vote(tests, labels, 3).tolist()


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown STDP rule"):
        stdp.train_stdp(rule="hebb", progress=False)
    with pytest.raises(ValueError, match="neurons"):
        stdp.train_stdp(neurons=0, progress=False)
    with pytest.raises(ValueError, match="soft_bound"):
        stdp.train_stdp(rule="multiplicative", params=stdp.default_params("trace"), progress=False)
    with pytest.raises(ValueError, match="initial weights"):
        stdp.default_params(init_low=0, init_high=200)
    with pytest.raises(ValueError, match="max_rate"):
        stdp.StdpParams(max_rate=0.0)


# -- the command line -------------------------------------------------------------------------
def test_cli_help(capsys):
    status, out, err = run_cli(capsys, "train-stdp", "--help")
    assert status == 0 and err == ""
    assert out.startswith("usage: neurocore train-stdp")
    assert "\nexamples:\n  neurocore train-stdp" in out
    for option in ("--dataset", "--neurons", "--epochs", "--steps", "--rule", "--seed", "--out",
                   "--plot", "--json"):
        assert option in out


@pytest.mark.parametrize("argv", [
    ["--neurons", "0"],
    ["--neurons", "x"],
    ["--epochs", "-1"],
    ["--steps", "-2"],
    ["--rule", "hebb"],
    ["--seed", "-1"],
    ["--dataset", "cifar", "--epochs", "1"],
    ["--dataset", "mnist", "--epochs", "1"],                  # needs --data-dir
    ["--plot", "/nonexistent-dir/w.png"],
    ["extra"],
])
def test_cli_bad_arguments(capsys, argv):
    status, out, err = run_cli(capsys, "train-stdp", "--no-progress", *argv)
    assert status == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurocore: error: "), err


def test_cli_out_exists(capsys, tmp_path):
    status, out, err = run_cli(capsys, "train-stdp", "--out", str(tmp_path), "--no-progress")
    assert status == 2 and "already exists" in err


def test_cli_force_refuses_a_folder_of_other_files_before_training(capsys, tmp_path, monkeypatch):
    """--force replaces only an earlier output of the toolkit, and says so before it trains."""
    import neurocore.sw.stdp as stdp

    def no_training(**kwargs):
        raise AssertionError("trained before checking --out")
    monkeypatch.setattr(stdp, "train_stdp", no_training)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    status, out, err = run_cli(capsys, "train-stdp", "--out", str(mine), "--force", "--no-progress")
    assert status == 2 and err.count("\n") == 1 and "not an earlier neurocore output" in err, err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_cli_end_to_end(capsys, tmp_path):
    out_dir, png = tmp_path / "img", tmp_path / "w.png"
    status, out, err = run_cli(capsys, "train-stdp", "--dataset", "digits", "--neurons", "10",
                               "--epochs", "1", "--limit", "40", "--eval-steps", "8", "--seed", "2",
                               "--out", str(out_dir), "--plot", str(png), "--json")
    assert status == 0, err
    report = json.loads(out)
    for key in ("accuracy", "neurons", "epochs", "seconds", "train_accuracy", "rule", "steps",
                "labelled_neurons", "params", "history"):
        assert key in report, key
    assert report["neurons"] == 10 and report["epochs"] == 1 and report["rule"] == "trace"
    assert 0.0 <= report["accuracy"] <= 1.0 and report["seconds"] > 0
    assert "epoch 1/1" in err                                      # progress goes to stderr
    compiled = load_image_dir(out_dir)
    assert compiled.program.n_neurons == 10 and compiled.program.plastic.all()
    assert compiled.decoding["kind"] == "vote" and len(compiled.decoding["labels"]) == 10
    assert compiled.program.learning.a_plus == report["params"]["a_plus"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # `neurocore run` on the written image reproduces the test accuracy (same encoder seed)
    status, out, err = run_cli(capsys, "run", str(out_dir), "--limit", "40", "--seed", "2", "--json")
    assert status == 0, err
    assert json.loads(out)["accuracy"] == report["accuracy"]
    # the text report
    status, out, err = run_cli(capsys, "train-stdp", "--neurons", "4", "--epochs", "1", "--limit", "20",
                               "--eval-steps", "4", "--no-progress")
    assert status == 0 and err == ""
    assert "accuracy" in out and "seconds" in out
