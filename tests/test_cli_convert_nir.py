"""``neurocore convert --nir FILE``: a trained network imported from a NIR file, calibrated,
converted and evaluated on a dataset; and its usage errors, one line each."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurocore.tools import cli

nir = pytest.importorskip("nir")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def digits_nir(tmp_path_factory):
    """A 64-32-10 MLP trained on digits with scikit-learn, written as NIR (Affine, IF, Affine)."""
    from sklearn.neural_network import MLPClassifier

    from neurocore.sw.datasets import load_dataset

    data = load_dataset("digits")
    mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=1000, random_state=0).fit(data.x_train, data.y_train)
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=mlp.coefs_[0].T, bias=mlp.intercepts_[0]),
        nir.IF(r=np.ones(32), v_threshold=np.ones(32), v_reset=np.zeros(32)),
        nir.Affine(weight=mlp.coefs_[1].T, bias=mlp.intercepts_[1]))
    path = tmp_path_factory.mktemp("nir") / "digits.nir"
    nir.write(str(path), graph)
    return path, float(mlp.score(data.x_test, data.y_test))


def test_nir_network_is_converted_and_evaluated(digits_nir, capsys):
    path, sklearn_accuracy = digits_nir
    status, out, err = run_cli(capsys, "convert", "--nir", str(path), "--dataset", "digits", "--steps", "16",
                               "--curve", "8,16", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["arch"] == "nir" and report["ann"]["source"] == str(path)
    assert abs(report["ann_accuracy"] - sklearn_accuracy) < 1e-9       # the float graph is the MLP
    assert report["snn_accuracy"] > report["ann_accuracy"] - 0.03
    assert report["neurons"] == 42 and [c["steps"] for c in report["curve"]] == [8, 16]


@pytest.mark.parametrize("args, message", [
    (["--nir", "{missing}"], "no such file"),
    (["--nir", "{garbage}"], "not a readable NIR file"),
    (["--nir", "{net}", "--arch", "cnn"], "cannot be combined with --arch cnn"),
    (["--nir", "{net}", "--hidden", "16"], "cannot be combined with --hidden"),
    (["--nir", "{net}", "--dataset", "mnist-5k"], "takes 64 inputs but dataset 'mnist-5k' has 784"),
])
def test_nir_usage_errors(digits_nir, tmp_path, capsys, args, message):
    garbage = tmp_path / "garbage.nir"
    garbage.write_text("not hdf5")
    names = {"missing": str(tmp_path / "none.nir"), "garbage": str(garbage), "net": str(digits_nir[0])}
    status, out, err = run_cli(capsys, "convert", *[a.format(**names) for a in args])
    assert status == 2 and out == ""
    lines = [line for line in err.strip().splitlines() if line.startswith("neurocore: error:")]
    assert len(lines) == 1 and message in lines[0], err


def test_unsupported_nir_node_is_one_line(tmp_path, capsys):
    """A graph with a node type the frontend does not support: the node and its type named."""
    graph = nir.NIRGraph.from_list(nir.Affine(weight=np.ones((10, 64)), bias=np.zeros(10)),
                                   nir.Delay(delay=np.ones(10)))
    path = tmp_path / "delay.nir"
    nir.write(str(path), graph)
    status, out, err = run_cli(capsys, "convert", "--nir", str(path), "--no-curve")
    lines = [line for line in err.strip().splitlines() if line.startswith("neurocore: error:")]
    assert status == 2 and out == "" and len(lines) == 1, err
    assert "has type Delay, which is not supported; supported node types:" in lines[0], lines[0]
