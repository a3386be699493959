"""``neurocore demo`` (the whole flow and its report folder) and the plots of ``neurocore.tools.plots``.

The full demo runs once, without the RTL (``--no-cosim``); the co-simulation stage is
checked with a stand-in for ``image_cosim`` (the real one is covered by
``tests/cosim/test_image_cosim.py``, and a full Verilator run takes minutes).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurocore.hw.program import NeuronParams
from neurocore.tools import cli, demo, plots
from neurocore.sw.compiler import compile_network
from neurocore.sw.network import Population, Projection, SnnNetwork

PNG = b"\x89PNG\r\n\x1a\n"
SUMMARY_KEYS = ("ann_accuracy", "snn_accuracy", "cosim_samples", "cosim_mismatches", "sop_per_cycle")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """One demo run without co-simulation: (report directory, parsed --json output)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo") / "report"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = cli.main(["demo", "--no-cosim", "--json", "--no-progress", "--out", str(out)])
    assert status == 0
    return out, json.loads(stdout.getvalue())


# -- the demo --------------------------------------------------------------------------------------
def test_demo_json_summary(report_dir):
    out, report = report_dir
    for key in SUMMARY_KEYS:
        assert key in report, key
    assert report["ann_accuracy"] > 0.95 and report["snn_accuracy"] > 0.95
    assert report["cosim_samples"] == 0
    assert report["cosim_mismatches"] is None and report["sop_per_cycle"] is None
    assert report["cosim"] is None
    assert report["steps"] == demo.DEFAULT_STEPS and report["n_test"] == 540
    assert report["network"]["sizes"] == [64, 128, 10]
    assert any(p["steps"] == demo.DEFAULT_STEPS for p in report["curve"])
    assert np.array(report["confusion_matrix"]).sum() == report["n_test"]
    timings = report["timings"]
    for key in ("load_s", "train_s", "evaluate_s", "verilog_s", "plots_s", "total_s"):
        assert timings[key] >= 0, key
    assert report["report"] == str(out)


def test_demo_report_folder(report_dir):
    out, report = report_dir
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == report["files"]
    image = out / "image"
    assert {"param.hex", "pointer.hex", "synapse.hex", "manifest.json", "program.npz"} <= \
        {p.name for p in image.iterdir()}
    assert json.loads((image / "manifest.json").read_text())["format"] == "neurocore-image"
    verilog = (out / "core.v").read_text()
    assert "module core" in verilog and "param_mem[0] = " in verilog   # the program is baked in
    for name in plots.PLOT_FILES.values():
        assert is_png(out / name), name
    assert set(report["plots"].values()) == set(plots.PLOT_FILES.values())
    assert demo.is_report_dir(out)
    assert json.loads((out / "report.json").read_text()) == report
    assert "SNN accuracy" in (out / "summary.txt").read_text()
    # built in a temporary sibling, nothing left over
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_demo_summary_table(report_dir):
    _, report = report_dir
    text = demo.format_summary(report)
    for row in ("ANN accuracy", "SNN accuracy", "co-sim agreement", "synaptic ops / clock", "time taken",
                "stage", "golden model", "plots"):
        assert row in text, row
    assert f"{100 * report['snn_accuracy']:.2f} %" in text
    assert "skipped" in text


def test_run_plot_on_the_demo_image(report_dir, capsys, tmp_path):
    out, _ = report_dir
    status, stdout, err = run_cli(capsys, "run", str(out / "image"), "--limit", "40", "--plot",
                                  str(tmp_path / "plots"), "--json")
    assert status == 0, err
    result = json.loads(stdout)
    assert set(result["plots"]) == {"raster", "membrane", "confusion"}
    for path in result["plots"].values():
        assert is_png(Path(path))
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {
        plots.PLOT_FILES["raster"], plots.PLOT_FILES["membrane"], plots.PLOT_FILES["confusion"]}


def test_demo_refuses_a_directory_that_is_not_a_report(capsys, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    for force in ([], ["--force"]):     # --force replaces only an earlier output of neurocore
        status, out, err = run_cli(capsys, "demo", "--no-cosim", "--out", str(target), *force)
        assert status == 2 and out == ""
        assert err.startswith("neurocore: error: ") and len(err.splitlines()) == 1
        assert "not an earlier neurocore output" in err and "--force" not in err
        assert (target / "notes.txt").read_text() == "keep me"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_demo_missing_simulator_is_a_usage_error(capsys, monkeypatch, tmp_path):
    import neurocore.sim.cosim as cosim

    monkeypatch.setattr(cosim, "available_simulators", lambda: [])
    status, out, err = run_cli(capsys, "demo", "--out", str(tmp_path / "r"))
    assert status == 2 and out == ""
    assert "not installed" in err and "--no-cosim" in err
    assert not (tmp_path / "r").exists()


def test_check_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert demo.check_out_dir("new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert demo.check_out_dir("empty") == tmp_path / "empty"
    report = tmp_path / "old-report"
    report.mkdir()
    (report / demo.REPORT_JSON).write_text(json.dumps({"kind": demo.REPORT_KIND, "files": ["a.png"]}))
    (report / "a.png").write_bytes(PNG)
    assert demo.check_out_dir(report) == report
    (report / "b.txt").write_text("added by the user")      # a file the report does not list
    with pytest.raises(ValueError, match="not part of the report .b.txt"):
        demo.check_out_dir(report, force=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / demo.REPORT_JSON).write_text(json.dumps({"kind": "something else", "files": []}))
    for force in (False, True):
        with pytest.raises(ValueError, match="not an earlier neurocore output"):
            demo.check_out_dir(other, force=force)
    image = tmp_path / "image"
    from neurocore.sw.image_dir import write_image_dir
    write_image_dir(tiny_compiled(), image)
    with pytest.raises(ValueError, match="image directory; pass --force"):
        demo.check_out_dir(image)
    assert demo.check_out_dir(image, force=True) == image
    (tmp_path / "file").write_text("x")
    for force in (False, True):
        with pytest.raises(ValueError, match="not a directory"):
            demo.check_out_dir("file", force=force)
    (tmp_path / "link").symlink_to(report)
    with pytest.raises(ValueError, match="symbolic link"):
        demo.check_out_dir("link", force=True)
    with pytest.raises(ValueError, match="current directory"):
        demo.check_out_dir(".", force=True)
    with pytest.raises(ValueError, match="current directory"):
        demo.check_out_dir("..", force=True)
    assert demo.check_out_dir("missing/report") == tmp_path / "missing" / "report"


def test_demo_cosim_stage_and_mismatch_exit_status(capsys, monkeypatch, tmp_path):
    """The co-simulation's verdict reaches the summary, the JSON and the exit status."""
    import neurocore.hw.verilog as verilog
    import neurocore.sim.cosim as cosim
    import neurocore.sw.image_cosim as image_cosim

    calls = []

    def fake_image_cosim(compiled, x, y, *, steps, encoder, seed, simulator, work_dir):
        calls.append((len(x), steps, encoder, simulator))
        build = Path(work_dir) / f"{simulator}-image"
        build.mkdir(parents=True)
        (build / "sim.log").write_text("simulated\n")
        return {"simulator": simulator, "samples": len(x), "steps": steps, "encoder": encoder,
                "mismatches": 1, "problems": ["sample 0 step 3 neuron 130: RTL spiked, golden silent"],
                "samples_with_equal_spike_counts": len(x) - 1, "output_spikes": 10,
                "rtl_accuracy": 1.0, "golden_accuracy": 1.0, "predictions_equal": True, "sops": 900,
                "cycles": 1000, "sop_per_cycle": 0.9, "cycles_per_sample": 1000 / len(x),
                "build_seconds": 0.1, "sim_seconds": 0.1, "work_dir": str(work_dir)}

    def fake_write_verilog(config, path, *, program=None, learn=False):
        Path(path).write_text("module core;\nendmodule\n")
        return Path(path)

    monkeypatch.setattr(cosim, "available_simulators", lambda: ["verilator", "icarus"])
    monkeypatch.setattr(image_cosim, "image_cosim", fake_image_cosim)
    monkeypatch.setattr(verilog, "write_verilog", fake_write_verilog)
    out = tmp_path / "report"
    status, stdout, err = run_cli(capsys, "demo", "--simulator", "icarus", "--samples", "3", "--steps", "12",
                                  "--no-progress", "--json", "--out", str(out))
    assert status == 1, err
    assert calls == [(3, 12, "current", "icarus")]
    report = json.loads(stdout)
    assert report["cosim_samples"] == 3 and report["cosim_mismatches"] == 1
    assert report["sop_per_cycle"] == 0.9 and report["cosim_agreement"] is False
    assert report["simulator"] == "icarus" and "work_dir" not in report["cosim"]
    assert (out / "cosim" / "sim.log").read_text() == "simulated\n"
    assert "MISMATCHES" in demo.format_summary(report)
    # an earlier report is replaced without --force, and the staging folder a killed run left is removed
    import subprocess
    import sys
    from neurocore.sw import output_dir
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    killed = tmp_path / ".report.tmp-0123456789ab"
    (killed / "image").mkdir(parents=True)
    (killed / output_dir.STAGING_MARKER).write_text(output_dir._MARKER_TEXT.format(pid=dead))
    monkeypatch.setattr(image_cosim, "image_cosim", lambda *a, **k: {**fake_image_cosim(*a, **k), "mismatches": 0})
    status, stdout, err = run_cli(capsys, "demo", "--simulator", "icarus", "--samples", "2", "--steps", "12",
                                  "--no-progress", "--out", str(out))
    assert status == 0, err
    assert "2/2 bit-exact" in stdout
    assert json.loads((out / "report.json").read_text())["cosim_samples"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


# -- plots on a tiny network -----------------------------------------------------------------------
def tiny_compiled():
    """3 inputs -> 4 hidden -> 2 outputs, strong enough weights to spike."""
    hidden = Population("hidden", NeuronParams.uniform(4, threshold=6, leak_shift=3))
    out = Population("out", NeuronParams.uniform(2, threshold=8), output=True)
    projections = [
        Projection("input", "hidden", [0, 1, 2, 0, 1, 2], [0, 1, 2, 3, 3, 3], [7, 5, 4, 3, 3, 3]),
        Projection("hidden", "out", [0, 1, 2, 3], [0, 0, 1, 1], [5, 5, 9, -3]),
    ]
    return compile_network(SnnNetwork(n_inputs=3, populations=[hidden, out], projections=projections))


def tiny_inputs(steps=12, seed=0):
    return np.random.default_rng(seed).random((steps, 3)) < 0.6


def test_sample_activity_steps_match_one_run():
    from neurocore.sim import golden

    compiled = tiny_compiled()
    inputs = tiny_inputs()
    activity = plots.sample_activity(compiled.program, inputs)
    whole = golden.run(compiled.program, inputs, record_neurons=True)
    assert np.array_equal(activity.spikes, whole.neuron_spikes)
    assert activity.spikes.any()
    assert activity.v.shape == (12, compiled.program.n_neurons)
    assert np.array_equal(activity.v[-1], whole.state.v)
    assert activity.sops == whole.sops and activity.steps == 12


def test_pick_neurons():
    compiled = tiny_compiled()
    activity = plots.sample_activity(compiled.program, tiny_inputs())
    chosen = plots.pick_neurons(compiled, activity, count=4)
    assert len(chosen) == len(set(chosen)) == 4
    assert set(chosen[:2]) == {4, 5}          # both outputs first
    assert all(0 <= n < 6 for n in chosen)


def test_plots_write_pngs(tmp_path):
    compiled = tiny_compiled()
    files = plots.sample_plots(compiled, tiny_inputs(), tmp_path / "a", label=1)
    assert set(files) == {"raster", "membrane"}
    assert all(is_png(p) for p in files.values())
    activity = plots.sample_activity(compiled.program, tiny_inputs(5, seed=1))
    assert is_png(plots.membrane_traces(compiled, activity, tmp_path / "m.png", neurons=[0]))
    assert is_png(plots.spike_raster(compiled, activity, tmp_path / "r.png", title="tiny"))
    assert is_png(plots.confusion_matrix([[3, 1], [0, 4]], tmp_path / "c.png", labels=["a", "b"]))
    result = {"dataset": "tiny", "weight_bits": 8, "encoder": "current", "n_test": 8, "ann_accuracy": 0.9,
              "curve": [{"steps": t, "snn_accuracy": a} for t, a in ((4, 0.5), (8, 0.8), (16, 0.9))]}
    assert is_png(plots.accuracy_curve(result, tmp_path / "acc.png"))


def test_plot_input_errors(tmp_path):
    with pytest.raises(ValueError, match="square"):
        plots.confusion_matrix([[1, 2, 3]], tmp_path / "c.png")
    with pytest.raises(ValueError, match="curve"):
        plots.accuracy_curve({"curve": []}, tmp_path / "a.png")
    compiled = tiny_compiled()
    activity = plots.sample_activity(compiled.program, tiny_inputs(4))
    with pytest.raises(ValueError, match="no neurons"):
        plots.membrane_traces(compiled, activity, tmp_path / "m.png", neurons=[])
