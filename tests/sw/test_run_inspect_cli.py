"""``neurocore run``, ``inspect`` and ``compile`` on tiny image directories, and ``evaluate``."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import NeuronParams
from neurocore.sim import golden
from neurocore.sw.compiler import compile_network
from neurocore.sw.evaluate import encode_samples, evaluate
from neurocore.sw.image_dir import load_image_dir, write_image_dir
from neurocore.sw.network import Population, Projection, SnnNetwork
from neurocore.tools import cli

SMALL = {"neurons": 64, "axons": 128, "synapses": 2048, "learning": False}


def digits_net(seed: int = 0) -> SnnNetwork:
    """64 pixel inputs -> 24 hidden -> 10 outputs (WTA), random integer weights."""
    rng = np.random.default_rng(seed)
    hidden = Population("hidden", NeuronParams.uniform(24, threshold=30, leak_shift=3))
    out = Population("out", NeuronParams.uniform(10, threshold=12, refractory=1), output=True, wta=True)
    return SnnNetwork(64, [hidden, out],
                      [Projection.dense("input", "hidden", rng.integers(-6, 10, (24, 64))),
                       Projection.dense("hidden", "out", rng.integers(-4, 12, (10, 24)))],
                      encoding={"kind": "rate", "steps": 12, "dataset": "digits"})


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return write_image_dir(compile_network(digits_net()), tmp_path_factory.mktemp("cli") / "img")


@pytest.fixture()
def image_copy(tmp_path, image):
    return shutil.copytree(image, tmp_path / "copy")


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_inspect_text(capsys, image):
    status, out, err = run_cli(capsys, "inspect", image)
    assert status == 0, err
    for text in ("checksums OK", "core config", "256 neurons", "hidden", "out", "0..23", "24..33",
                 "64..87", "input -> hidden", "SYNAPSE", "utilisation", "learning    : off", "rate"):
        assert text in out, text


def test_inspect_json(capsys, image):
    status, out, err = run_cli(capsys, "inspect", image, "--json")
    assert status == 0, err
    info = json.loads(out)
    assert info["checksums_ok"] is True and info["config"] == CoreConfig().to_dict()
    assert info["config_hash"] == CoreConfig().hash()
    assert [(layer["name"], layer["neurons"], layer["wta_group"], layer["output"]) for layer in info["layers"]] \
        == [("hidden", [0, 23], 0, False), ("out", [24, 33], 1, True)]
    assert info["utilisation"]["neurons"] == {"used": 34, "capacity": 256, "percent": 13.28}
    assert info["memories"]["SYNAPSE"]["words"] == info["utilisation"]["synapses"]["used"]
    assert info["learning"]["on"] is False and info["decoding"]["kind"] == "count"
    assert set(info["files"]) >= {"param.hex", "synapse.hex", "program.npz"}


def test_run_json(capsys, image):
    status, out, err = run_cli(capsys, "run", image, "--dataset", "digits", "--limit", "30", "--steps", "8",
                               "--json")
    assert status == 0, err
    r = json.loads(out)
    assert r["samples"] == 30 and r["steps"] == 8 and r["dataset"] == "digits" and r["encoder"] == "rate"
    assert 0.0 <= r["accuracy"] <= 1.0 and r["correct"] == round(r["accuracy"] * 30)
    assert r["mean_output_spikes"] >= 0 and r["mean_sops"] > 0 and r["mean_input_spikes"] > 0
    assert 0.0 <= r["silent_fraction"] <= 1.0
    cm = np.array(r["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 30 and np.trace(cm) == r["correct"]


def test_run_text_uses_image_defaults(capsys, image):
    status, out, err = run_cli(capsys, "run", image, "--limit", "12")
    assert status == 0, err
    assert "accuracy" in out and "digits test split, 12 samples, rate encoding, 12 steps" in out
    assert "SOPs" in out and "silent" in out


def test_run_and_inspect_with_matching_config(capsys, image):
    cfg = json.dumps(CoreConfig().to_dict())
    assert run_cli(capsys, "inspect", image, "--config", cfg)[0] == 0
    assert run_cli(capsys, "run", image, "--limit", "4", "--steps", "4", "--config", cfg)[0] == 0


def test_compile_to_another_config(capsys, tmp_path, image):
    out_dir = tmp_path / "small"
    status, out, err = run_cli(capsys, "compile", image, "-o", out_dir, "--config", json.dumps(SMALL))
    assert status == 0, err
    assert "wrote" in out and "34/64 neurons" in out
    small = load_image_dir(out_dir, config=CoreConfig(**SMALL))
    original = load_image_dir(image)
    assert small.layers == original.layers and small.meta() == original.meta()
    inputs = encode_samples(np.random.default_rng(0).random((5, 64)), 10, "rate", 0)
    a, b = golden.run_batch(original.program, inputs), golden.run_batch(small.program, inputs)
    assert np.array_equal(a.spikes, b.spikes)
    # OUT exists: refused, then replaced with --force; from program.npz keeps the source config
    status, out, err = run_cli(capsys, "compile", image / "program.npz", "-o", out_dir)
    assert status == 2 and "already exists" in err and len(err.splitlines()) == 1
    status, out, err = run_cli(capsys, "compile", image / "program.npz", "-o", out_dir, "--force", "--json")
    assert status == 0, err
    assert json.loads(out)["config"] == CoreConfig().to_dict()
    assert load_image_dir(out_dir).config == CoreConfig()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small"]


def test_compile_freeze(capsys, tmp_path, image):
    cfg = json.dumps({"learning": False, "adaptive_threshold": False})
    status, out, err = run_cli(capsys, "compile", image, "-o", tmp_path / "infer", "--freeze", "--config", cfg)
    assert status == 0, err
    frozen = load_image_dir(tmp_path / "infer")
    assert not frozen.config.learning and sorted(p.name for p in (tmp_path / "infer").glob("*.hex")) == [
        "param.hex", "pointer.hex", "synapse.hex"]


def corrupt_hex(path):
    data = bytearray((path / "param.hex").read_bytes())
    data[1] = ord("0") if data[1] != ord("0") else ord("1")
    (path / "param.hex").write_bytes(bytes(data))


def bad_hex_with_checksum(path):
    (path / "pointer.hex").write_text("xyz\n")
    m = json.loads((path / "manifest.json").read_text())
    m["files"]["pointer.hex"]["sha256"] = hashlib.sha256(b"xyz\n").hexdigest()
    (path / "manifest.json").write_text(json.dumps(m))


def bad_checksum(path):
    m = json.loads((path / "manifest.json").read_text())
    m["files"]["synapse.hex"]["sha256"] = "0" * 64
    (path / "manifest.json").write_text(json.dumps(m))


def remove_manifest(path):
    (path / "manifest.json").unlink()


@pytest.mark.parametrize("damage, pattern", [
    (corrupt_hex, "param.hex: checksum mismatch"),
    (bad_hex_with_checksum, "pointer.hex line 1: expected"),
    (bad_checksum, "synapse.hex: checksum mismatch"),
    (remove_manifest, "no manifest.json"),
], ids=["corrupt-hex", "bad-hex-line", "bad-checksum", "no-manifest"])
@pytest.mark.parametrize("command", ["inspect", "run", "compile"])
def test_damaged_image_is_one_line_error(capsys, tmp_path, image_copy, damage, pattern, command):
    damage(image_copy)
    extra = {"inspect": [], "run": ["--limit", "2"], "compile": ["-o", tmp_path / "out"]}[command]
    status, out, err = run_cli(capsys, command, image_copy, *extra)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("neurocore: error: ")
    assert pattern in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, pattern", [
    (["inspect", "{tmp}/missing"], "no such image directory"),
    (["run", "{tmp}/missing"], "no such image directory"),
    (["compile", "{tmp}/missing", "-o", "{tmp}/out"], "no such image directory or program file"),
    (["run", "{img}", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["run", "{img}", "--encoder", "morse"], "unknown encoder 'morse'"),
    (["run", "{img}", "--dataset", "mnist"], "--data-dir"),
    (["run", "{img}", "--config", '{"neurons": 128}'], "config mismatch: the image was compiled for another "
                                                       "core (neurons: image 256, requested 128)"),
    (["inspect", "{img}", "--config", '{"neurons": 128'], "--config: invalid JSON"),
    (["compile", "{img}", "-o", "{tmp}/out", "--config", '{"neurons": 16}'],
     "34 neurons but the core has 16 (overflow by 18)"),
    (["compile", "{img}", "-o", "{tmp}/out", "--config", '{"weight_bits": 3}'],
     "weight range -4..3"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_inputs_are_one_line_errors(capsys, tmp_path, image, argv, pattern):
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{img}", str(image)) for a in argv]
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("neurocore: error: ")
    assert pattern in err, err
    assert not (tmp_path / "out").exists()


def test_feature_count_mismatch(capsys, tmp_path):
    net = SnnNetwork(4, [Population("o", NeuronParams.uniform(2, threshold=1), output=True)],
                     [Projection("input", "o", [0, 1], [0, 1], [1, 1])])
    path = write_image_dir(compile_network(net), tmp_path / "four")
    status, out, err = run_cli(capsys, "run", path, "--dataset", "digits")
    assert status == 2 and "64 features per sample but the image has 4 input axons" in err


# -- evaluate (API) --------------------------------------------------------------------------------
def test_evaluate_matches_manual_pipeline_and_ignores_batching(image):
    compiled = load_image_dir(image)
    rng = np.random.default_rng(5)
    x = rng.random((23, 64)).astype(np.float32)
    y = rng.integers(0, 10, 23)
    a = evaluate(compiled, x, y, steps=9, seed=3, batch_size=256)
    b = evaluate(compiled, x, y, steps=9, seed=3, batch_size=5, progress=True)
    assert a == b
    inputs = encode_samples(x, 9, "rate", 3)
    result = golden.run_batch(compiled.program, inputs)
    predicted = compiled.decode(result.spikes)
    assert a["predictions"] == predicted.tolist()
    assert a["accuracy"] == float(np.mean(predicted == y)) and a["n_samples"] == 23
    assert a["mean_sops"] == float(result.sops.mean())
    assert a["mean_output_spikes"] == float(result.spikes.sum() / 23)
    assert a["silent_fraction"] == float(np.mean(result.spikes.sum(axis=(1, 2)) == 0))
    assert np.array(a["confusion_matrix"]).sum() == 23
    assert not np.array_equal(encode_samples(x, 9, "rate", 4), inputs)      # the seed matters
    assert np.array_equal(encode_samples(x[7:9], 9, "rate", 3, first_index=7), inputs[7:9])
    latency = evaluate(compiled, x, y, steps=9, encoder="latency")
    assert latency["encoder"] == "latency" and latency["n_samples"] == 23


def test_evaluate_rejects_bad_inputs(image):
    compiled = load_image_dir(image)
    x = np.zeros((3, 64), np.float32)
    with pytest.raises(ValueError, match="64 input axons"):
        evaluate(compiled, np.zeros((3, 10)), [0, 1, 2], steps=4)
    with pytest.raises(ValueError, match="3 samples but 2 labels"):
        evaluate(compiled, x, [0, 1], steps=4)
    with pytest.raises(ValueError, match="steps"):
        evaluate(compiled, x, [0, 1, 2], steps=0)
    with pytest.raises(ValueError, match="unknown encoder"):
        evaluate(compiled, x, [0, 1, 2], steps=4, encoder="morse")


def test_inspect_names_the_tables_of_a_tight_conv_core(capsys, tmp_path):
    """A conv net on its tight core (parameter classes, a segment table, no rows): every
    memory with its depth, and the tables on the config line."""
    from neurocore.sw.compiler import choose_config
    from neurocore.sw.network import INPUT, ConvProjection

    rng = np.random.default_rng(2)
    conv = ConvProjection(INPUT, "conv", rng.integers(-5, 8, (4, 1, 3, 3)), (1, 12, 12), (1, 1), (0, 0))
    n_conv = int(np.prod(conv.out_shape))
    net = SnnNetwork(144, [Population("conv", NeuronParams.uniform(n_conv, threshold=14)),
                           Population("out", NeuronParams.uniform(3, threshold=30), output=True)],
                     [conv, Projection.dense("conv", "out", rng.integers(-3, 6, (3, n_conv)))])
    cfg = choose_config(net, tight=True)
    assert cfg.param_classes and cfg.segments and not cfg.rows
    path = write_image_dir(compile_network(net, cfg), tmp_path / "conv")
    status, out, _ = run_cli(capsys, "inspect", path, "--json")
    assert status == 0
    memories = json.loads(out)["memories"]
    assert memories["PARAM"]["depth"] == cfg.param_classes and memories["NCLASS"]["depth"] == n_conv + 3
    assert memories["SEGMENT"]["depth"] == cfg.segments and memories["POINTER"]["depth"] == cfg.axons
    status, out, _ = run_cli(capsys, "inspect", path)
    assert status == 0 and f"{cfg.param_classes} parameter classes" in out and "no rows" in out
