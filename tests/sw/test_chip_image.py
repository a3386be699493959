"""Chip images (neurocore.sw.chip_image) and the chip path of ``compile``, ``run``, ``inspect``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurocore.hw.chip import ChipConfig
from neurocore.hw.config import CoreConfig
from neurocore.sim import golden_chip
from neurocore.sw.chip_image import load_chip_image, load_image, write_chip_image
from neurocore.sw.image_dir import ImageDirError, load_image_dir
from neurocore.sw.partition import compile_chip
from neurocore.tools import cli

from test_partition import layered


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def chip_and_net():
    rng = np.random.default_rng(8)
    net = layered(rng, [24, 6], n_inputs=12, density=0.8)
    config = ChipConfig(rows=2, cols=2, core=CoreConfig(neurons=10, axons=64, synapses=2048))
    return compile_chip(net, config), net


def test_a_chip_image_round_trips(tmp_path, chip_and_net):
    compiled, _ = chip_and_net
    write_chip_image(compiled, tmp_path / "chip")
    loaded = load_image(tmp_path / "chip")
    assert loaded.slices == compiled.slices and np.array_equal(loaded.output_order, compiled.output_order)
    x = np.random.default_rng(1).random((5, 8, 12)) < 0.4
    a = golden_chip.run_chip_batch(compiled.chip, x)
    b = golden_chip.run_chip_batch(loaded.chip, x)
    assert np.array_equal(a.spikes, b.spikes) and np.array_equal(compiled.decode(a.spikes), loaded.decode(b.spikes))
    with pytest.raises(ImageDirError, match="is a chip image \\(2x2 cores\\)"):
        load_image_dir(tmp_path / "chip")


def test_a_corrupt_core_file_is_named(tmp_path, chip_and_net):
    compiled, _ = chip_and_net
    write_chip_image(compiled, tmp_path / "chip")
    target = tmp_path / "chip" / "core01" / "synapse.hex"
    target.write_text(target.read_text().replace("0", "1", 1))
    with pytest.raises(ImageDirError, match="core01/synapse.hex: checksum mismatch"):
        load_chip_image(tmp_path / "chip")


def test_cli_compile_chip_run_inspect(capsys, tmp_path):
    img, chip = tmp_path / "img", tmp_path / "chip"
    assert run_cli(capsys, "convert", "--dataset", "digits", "--hidden", "40", "--steps", "8", "--no-curve",
                   "--out", img, "--json")[0] == 0
    status, out, _ = run_cli(capsys, "compile", img, "-o", chip, "--chip", "2x2", "--config",
                             '{"neurons": 16, "axons": 128, "synapses": 4096}', "--json")
    assert status == 0
    report = json.loads(out)
    assert report["route_entries"] > 0 and len(report["cores"]) == 4
    single = json.loads(run_cli(capsys, "run", img, "--json")[1])
    on_chip = json.loads(run_cli(capsys, "run", chip, "--json")[1])
    assert on_chip["accuracy"] == single["accuracy"]
    assert on_chip["confusion_matrix"] == single["confusion_matrix"]
    assert on_chip["chip"]["grid"] == [2, 2] and on_chip["chip"]["mean_packets"] > 0
    assert on_chip["chip"]["packets_per_step"] == pytest.approx(on_chip["chip"]["mean_packets"] / 8)
    status, out, _ = run_cli(capsys, "inspect", chip)
    assert status == 0 and "2x2 cores of 16 neurons" in out and "core  3" in out
    status, _, err = run_cli(capsys, "cosim", "--image", chip, "--samples", "2")
    assert status == 2 and "chip image" in err and "not built yet" in err


@pytest.mark.parametrize("argv, message", [
    (["--chip", "0x2"], "expected RxC with R and C in 1..16"),
    (["--chip", "3"], "expected RxC"),
    (["--chip", "1x2", "--config", '{"neurons": 8, "axons": 128, "synapses": 4096}'],
     "network does not fit the 1x2 chip"),
])
def test_cli_compile_chip_bad_arguments(capsys, tmp_path, argv, message):
    img = tmp_path / "img"
    assert run_cli(capsys, "convert", "--dataset", "digits", "--hidden", "40", "--steps", "4", "--no-curve",
                   "--out", img, "--json")[0] == 0
    status, out, err = run_cli(capsys, "compile", img, "-o", tmp_path / "chip", *argv)
    assert status == 2 and message in err, err
    assert not (tmp_path / "chip").exists()
