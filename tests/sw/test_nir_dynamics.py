"""``from_nir(..., keep_dynamics=True)`` / ``neurocore convert --nir FILE --keep-dynamics``: the NIR
nodes' own leak, threshold and reset on the core; the snnTorch-exported fixture in both modes; the
one-line errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from neurocore.hw.program import RESET_BY_SUBTRACTION, RESET_TO_ZERO
from neurocore.tools import cli

nir = pytest.importorskip("nir")
from neurocore.sw.convert.frontends import (SNNTORCH_DT, DynamicGraph, convert_dynamics,  # noqa: E402
                                            from_nir, leak_shift_for_tau)

#: Written by benchmarks/snntorch_nir.py (snnTorch 1.0.0's export_to_nir of a 64-32-10 Leaky
#: network, beta 0.9, trained on digits): Affine - LIF - Affine - LIF.
FIXTURE = Path(__file__).resolve().parents[1] / "data" / "snntorch_digits.nir"
DT = SNNTORCH_DT


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def lif(n: int, tau: float, *, r=None, v_threshold=1.0, v_leak=0.0, v_reset=0.0):
    """A NIR LIF of ``n`` units; ``r`` defaults to snnTorch's ``tau / dt``."""
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT if r is None else r), v_leak=np.full(n, v_leak),
                   v_threshold=np.full(n, v_threshold), v_reset=np.full(n, v_reset))


def two_unit_graph(node, weight=((0.5, -0.25), (1.0, 0.0)), bias=(0.0, 0.0)):
    return nir.NIRGraph.from_list(nir.Affine(weight=np.array(weight), bias=np.array(bias)), node)


# -- (a) the documented leak_shift for known time constants ---------------------------------
@pytest.mark.parametrize("beta, shift", [
    (0.5, 1),          # tau/dt = 2: exactly 1 - 2^-1
    (0.75, 2),         # 4
    (0.875, 3),        # 8
    (0.9, 3),          # 10: log2 10 = 3.32 -> 3 (decay 0.875, tau 8 dt: -20 %)
    (0.9375, 4),       # 16
    (0.95, 4),         # 20: log2 20 = 4.32 -> 4
    (0.99, 7),         # 100: log2 100 = 6.64 -> 7 (decay 0.9921875)
])
def test_leak_shift_of_snntorch_beta(beta, shift):
    k, decay = leak_shift_for_tau(DT / (1 - beta), DT)
    assert k == shift and decay == 1 - 2.0 ** -shift


def test_leak_shift_rounds_in_log_tau():
    # the boundary between k = 2 and k = 3 is tau = dt 2^2.5 (the geometric mean of 4 dt and 8 dt),
    # not the arithmetic mean of the decays 0.75 and 0.875 (which is tau = 5.33 dt)
    assert leak_shift_for_tau(DT * 2 ** 2.49, DT)[0] == 2
    assert leak_shift_for_tau(DT * 2 ** 2.51, DT)[0] == 3
    assert leak_shift_for_tau(DT * 5.5, DT)[0] == 2
    # the range: tau/dt in 2^0.5 .. 2^15.5 for 16-bit membranes (leak_shift 1 .. 15)
    assert leak_shift_for_tau(DT * 2 ** 0.5, DT)[0] == 1
    assert leak_shift_for_tau(DT * 2 ** 15.49, DT)[0] == 15
    assert leak_shift_for_tau(DT * 2 ** 23.4, DT, membrane_bits=24)[0] == 23


@pytest.mark.parametrize("tau", [DT * 1.2, DT * 2 ** 15.5, 0.0, -1e-3, math.inf, math.nan])
def test_tau_outside_the_leak_range_is_refused(tau):
    with pytest.raises(ValueError, match=r"outside the core's leak range 0\.0001414 \.\. 4\.634 s") as info:
        leak_shift_for_tau(tau, DT)
    assert "leak_shift 1..15" in str(info.value) and "\n" not in str(info.value)


def test_from_nir_keeps_each_lif_and_its_report():
    graph = from_nir(two_unit_graph(lif(2, DT / (1 - 0.9))), keep_dynamics=True, reset="subtract")
    assert isinstance(graph, DynamicGraph) and graph.dt == DT and graph.dt_source == "snnTorch default"
    ratio = from_nir(two_unit_graph(lif(2, DT / (1 - 0.9))))
    # the same float graph as without keep_dynamics: weights times r / (v_th - v_reset) = 10
    np.testing.assert_allclose(graph.layers[0].weight, ratio.layers[0].weight)
    np.testing.assert_allclose(ratio.layers[0].weight, [[5.0, -2.5], [10.0, 0.0]])
    (dyn,) = graph.dynamics
    # input_gain (dt/tau)(v_th - v_reset) = 0.1 undoes the folded r = 10: snnTorch's U = beta U + W x
    np.testing.assert_allclose(dyn.input_gain, [0.1, 0.1])
    np.testing.assert_array_equal(dyn.leak_shift, [3, 3])
    (entry,) = dyn.report()["entries"]
    assert entry["leak_shift"] == 3 and entry["units"] == 2
    assert entry["decay"] == pytest.approx(0.9) and entry["effective_decay"] == 0.875
    assert entry["decay_error"] == pytest.approx((0.875 - 0.9) / 0.9)
    assert entry["effective_tau"] == pytest.approx(8 * DT) and entry["tau_error"] == pytest.approx(-0.2)


def test_convert_dynamics_hand_computed_parameters():
    # dt 1/8, tau 1, r = tau/dt = 8 (snnTorch's beta 0.875, exact in binary): the folded weights 8 W times
    # the input gain dt/tau = 1/8 give back W = [[0.5, -0.25], [1.0, 0.0]]; v_th 1, q = 127, max|W| = 1:
    # S = 127, threshold 127, weights rint(127 W) = [[64, -32], [127, 0]] (63.5 -> 64, -31.75 -> -32;
    # the 0 is dropped), leak_shift log2(tau/dt) = 3
    converted = convert_dynamics(from_nir(two_unit_graph(lif(2, 1.0, r=8.0)), keep_dynamics=True, dt=0.125,
                                          reset="subtract"))
    (pop,) = converted.network.populations
    (proj,) = converted.network.projections
    np.testing.assert_array_equal(pop.params.threshold, [127, 127])
    np.testing.assert_array_equal(pop.params.leak_shift, [3, 3])
    np.testing.assert_array_equal(pop.params.reset_mode, [RESET_BY_SUBTRACTION] * 2)
    np.testing.assert_array_equal(pop.params.bias, [0, 0])
    assert sorted(zip(proj.post.tolist(), proj.pre.tolist(), proj.weight.tolist())) == \
        [(0, 0, 64), (0, 1, -32), (1, 0, 127)]
    assert converted.layers[0].scale == 127.0 and converted.layers[0].dropped == 1


def test_v_leak_v_reset_and_zero_reset():
    # dt 1/4, tau 1 (dt/tau = 1/4), r = 2, v_th = 3, v_reset = 1, v_leak = 2: gap 2, folded ratio r/gap = 1,
    # input_gain (1/4) 2 = 0.5, drive (1/4)(2 - 1) = 0.25. With W = [[1, 0.5], [0.25, 1]] and b = (0.2, 0):
    # g W max = 0.5 -> S = 127 / 0.5 = 254, threshold floor(254 * 2) = 508 (S stays 254),
    # weights rint(254 * 0.5 W) = [[127, 64 (63.5)], [32 (31.75), 127]], bias rint(254 (0.5 b + 0.25)) = (89, 64)
    node = lif(2, 1.0, r=2.0, v_threshold=3.0, v_leak=2.0, v_reset=1.0)
    graph = from_nir(two_unit_graph(node, weight=((1.0, 0.5), (0.25, 1.0)), bias=(0.2, 0.0)), keep_dynamics=True,
                     dt=0.25)
    (dyn,) = graph.dynamics
    np.testing.assert_allclose(dyn.input_gain, [0.5, 0.5])
    np.testing.assert_allclose(dyn.drive, [0.25, 0.25])
    np.testing.assert_array_equal(dyn.leak_shift, [2, 2])
    converted = convert_dynamics(graph)
    (pop,) = converted.network.populations
    (proj,) = converted.network.projections
    np.testing.assert_array_equal(pop.params.threshold, [508, 508])
    np.testing.assert_array_equal(pop.params.reset_mode, [RESET_TO_ZERO] * 2)
    np.testing.assert_array_equal(pop.params.bias, [89, 64])
    assert sorted(zip(proj.post.tolist(), proj.pre.tolist(), proj.weight.tolist())) == \
        [(0, 0, 127), (0, 1, 64), (1, 0, 32), (1, 1, 127)]
    with pytest.raises(ValueError, match="reset by subtraction needs v_reset = 0"):
        from_nir(two_unit_graph(node), keep_dynamics=True, dt=0.25, reset="subtract")


def test_if_nodes_and_dt_sources():
    node = nir.IF(r=np.full(2, 1.0), v_threshold=np.full(2, 1.0), v_reset=np.zeros(2))
    graph = from_nir(two_unit_graph(node), keep_dynamics=True, dt=1e-3)
    assert graph.dt == 1e-3 and graph.dt_source == "argument"
    (dyn,) = graph.dynamics
    np.testing.assert_array_equal(dyn.leak_shift, [0, 0])          # IF: no leak
    np.testing.assert_allclose(dyn.input_gain, [1e-3, 1e-3])       # v += r dt I
    assert dyn.report()["entries"][0]["effective_decay"] == 1.0
    with_metadata = two_unit_graph(lif(2, 0.02, r=1.0))
    with_metadata.metadata = {"dt": 5e-3}                          # tau/dt = 4: leak_shift 2
    graph = from_nir(with_metadata, keep_dynamics=True)
    assert graph.dt == 5e-3 and graph.dt_source == "graph metadata"
    np.testing.assert_array_equal(graph.dynamics[0].leak_shift, [2, 2])


@pytest.mark.parametrize("build, message", [
    (lambda: two_unit_graph(lif(2, 1.2 * DT)), r"NIR node '[^']+' \(LIF\): tau 0\.00012 s .* outside the core's leak range"),
    (lambda: nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2))),
     "is not followed by an IF or LIF node"),
    (lambda: nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2)), lif(2, 8 * DT), lif(2, 8 * DT)),
     "does not follow an Affine, Linear or Conv2d node"),
    (lambda: nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2)),
                                    nir.Affine(weight=np.eye(2), bias=np.zeros(2)), lif(2, 8 * DT)),
     "without an IF or LIF node between them"),
])
def test_keep_dynamics_structure_errors(build, message):
    with pytest.raises(ValueError, match=message):
        from_nir(build(), keep_dynamics=True)


def test_default_still_drops_the_leak():
    graph = from_nir(two_unit_graph(lif(2, 1.2 * DT)))     # no range check, no dynamics
    assert type(graph).__name__ == "Graph"
    with pytest.raises(ValueError, match="non-zero v_leak is not supported"):
        from_nir(two_unit_graph(lif(2, 8 * DT, v_leak=0.1)))


# -- (b) the snnTorch-exported fixture, both modes -------------------------------------------
@pytest.mark.skipif(not FIXTURE.is_file(), reason="tests/data/snntorch_digits.nir is missing")
@pytest.mark.parametrize("extra", [[], ["--keep-dynamics", "--reset", "subtract"]])
def test_snntorch_fixture_converts_in_both_modes(capsys, extra):
    status, out, err = run_cli(capsys, "convert", "--nir", str(FIXTURE), "--dataset", "digits", "--steps", "16",
                               "--no-curve", "--encoder", "rate", "--json", *extra)
    assert status == 0, err
    report = json.loads(out)
    assert report["arch"] == "nir" and report["neurons"] == 42
    assert report["snn_accuracy"] > 0.85          # chance is 0.1
    if not extra:
        assert "dynamics" not in report and report["percentile"] == 99.9
        return
    assert report["keep_dynamics"] and report["reset"] == "subtract" and report["dt"] == DT
    for layer, dyn in zip(report["layers"], report["dynamics"]):
        (entry,) = dyn["entries"]
        assert dyn["kind"] == "LIF" and entry["leak_shift"] == 3            # beta 0.9 -> 0.875
        assert entry["decay"] == pytest.approx(0.9, abs=1e-6) and entry["effective_decay"] == 0.875
        assert entry["decay_error"] == pytest.approx(-0.025 / 0.9, abs=1e-6)
        assert dyn["threshold"] == layer["threshold"] and 100 < layer["max_weight"] <= 127   # the 8-bit range


@pytest.mark.skipif(not FIXTURE.is_file(), reason="tests/data/snntorch_digits.nir is missing")
def test_snntorch_fixture_text_report(capsys):
    status, out, err = run_cli(capsys, "convert", "--nir", str(FIXTURE), "--steps", "8", "--no-curve",
                               "--keep-dynamics", "--reset", "subtract")
    assert status == 0, err
    assert "dt 0.0001 s (snnTorch default), reset subtract" in out
    assert out.count("leak_shift 3 decay 0.8750 (-2.78 %, tau -20 %)") == 2


# -- (c) one-line errors and a non-zero exit through the CLI ---------------------------------
@pytest.fixture
def bad_files(tmp_path):
    def write(name, graph):
        path = tmp_path / f"{name}.nir"
        nir.write(str(path), graph)
        return str(path)

    weight = np.full((10, 64), 0.1)
    return {
        "short": write("short", nir.NIRGraph.from_list(nir.Affine(weight=weight, bias=np.zeros(10)),
                                                       lif(10, 1.2 * DT))),
        "long": write("long", nir.NIRGraph.from_list(nir.Affine(weight=weight, bias=np.zeros(10)), lif(10, 10.0))),
        "pool": write("pool", nir.NIRGraph.from_list(
            nir.Conv2d(input_shape=(8, 8), weight=np.ones((1, 1, 3, 3)), bias=np.zeros(1), stride=1, padding=0,
                       dilation=1, groups=1),
            nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            nir.LIF(tau=np.full((1, 3, 3), 8 * DT), r=np.full((1, 3, 3), 8.0), v_leak=np.zeros((1, 3, 3)),
                    v_threshold=np.ones((1, 3, 3))),
            nir.Flatten(input_type={"input": np.array([1, 3, 3])}, start_dim=0), nir.Affine(weight=np.ones((10, 9)), bias=np.zeros(10)), lif(10, 8 * DT))),
        "readout": write("readout", nir.NIRGraph.from_list(nir.Affine(weight=weight, bias=np.zeros(10)))),
    }


@pytest.mark.parametrize("args, message", [
    (["--nir", "{short}", "--keep-dynamics"],
     "(LIF): tau 0.00012 s (= 1.2 dt at dt 0.0001 s, decay 1 - dt/tau = 0.1667) is outside the core's leak range "
     "0.0001414 .. 4.634 s"),
    (["--nir", "{long}", "--keep-dynamics"], "(LIF): tau 10 s (= 1e+05 dt"),
    (["--nir", "{short}", "--keep-dynamics", "--dt", "0.01"], "(= 0.012 dt at dt 0.01 s"),
    (["--nir", "{pool}", "--keep-dynamics"], "(SumPool2d) is not supported with keep_dynamics"),
    (["--nir", "{readout}", "--keep-dynamics"], "is not followed by an IF or LIF node"),
    (["--keep-dynamics"], "--keep-dynamics applies to --nir FILE"),
    (["--nir", "{short}", "--reset", "subtract"], "--reset describes the dynamics of the NIR nodes: it needs "
                                                 "--keep-dynamics"),
    (["--nir", "{short}", "--dt", "1e-3"], "--dt describes the dynamics"),
    (["--nir", "{short}", "--keep-dynamics", "--percentile", "99"], "--keep-dynamics does not normalise"),
])
def test_keep_dynamics_cli_errors(bad_files, capsys, args, message):
    status, out, err = run_cli(capsys, "convert", "--no-curve", *[a.format(**bad_files) for a in args])
    assert status == 2 and out == ""
    lines = [line for line in err.strip().splitlines() if line.startswith("neurocore: error:")]
    assert len(lines) == 1 and message in lines[0], err
    if "{long}" in args:
        assert "leak_shift 1..15" in lines[0] and "long.nir: NIR node" in lines[0]


@pytest.mark.parametrize("reset, spike_steps", [
    # one input spiking every step, w = 127, threshold 254, leak_shift 3 (docs/core-spec.md phase 2):
    # v = 127, 239 (127 - 15 + 127), 337 (239 - 29 + 127) fires at step 2; to zero: the same again
    ("zero", [2, 5, 8]),
    # by subtraction: 337 - 254 = 83; 83 - 10 + 127 = 200; 200 - 25 + 127 = 302 fires (48);
    # 48 - 6 + 127 = 169; 169 - 21 + 127 = 275 fires (21); 21 - 2 + 127 = 146; 146 - 18 + 127 = 255 fires
    ("subtract", [2, 4, 6, 8]),
])
def test_the_leak_reaches_the_golden_model(reset, spike_steps):
    # dt 1/8, tau 1 (beta 0.875, leak_shift 3), r 8, v_th 1, W = 0.5: g W = 0.5, S = 254
    from neurocore.sim import golden
    from neurocore.sw.compiler import compile_network

    graph = nir.NIRGraph.from_list(nir.Affine(weight=np.array([[0.5]]), bias=np.zeros(1)), lif(1, 1.0, r=8.0))
    converted = convert_dynamics(from_nir(graph, keep_dynamics=True, dt=0.125, reset=reset))
    pop = converted.network.populations[0]
    assert (pop.params.threshold[0], pop.params.leak_shift[0]) == (254, 3)
    assert converted.network.projections[0].weight.tolist() == [127]
    result = golden.run(compile_network(converted.network).program, np.ones((9, 1), bool))
    assert np.flatnonzero(result.spikes[:, 0]).tolist() == spike_steps


def test_leak_floor_is_reported_and_flagged(tmp_path, capsys):
    # beta 0.999: tau/dt = 1000, leak_shift 10 (log2 1000 = 9.97), leak floor 1023; snnTorch's r = tau/dt makes
    # g W = W, whose largest entry 0.2 gives S = 127 / 0.2 = 635 and so an 8-bit threshold of 634 or 635: below
    # the floor, so a membrane under the threshold never leaks
    rng = np.random.default_rng(0)
    weight = rng.uniform(-0.2, 0.2, (10, 64))
    weight[0, 0] = 0.2
    path = tmp_path / "slow.nir"
    nir.write(str(path), nir.NIRGraph.from_list(nir.Affine(weight=weight, bias=np.zeros(10)), lif(10, DT * 1000)))
    status, out, err = run_cli(capsys, "convert", "--nir", str(path), "--keep-dynamics", "--steps", "4",
                               "--no-curve", "--json")
    assert status == 0, err
    (dyn,) = json.loads(out)["dynamics"]
    (entry,) = dyn["entries"]
    assert entry["leak_shift"] == 10 and entry["leak_floor"] == 1023 and dyn["threshold"] in (634, 635)
    status, out, err = run_cli(capsys, "convert", "--nir", str(path), "--keep-dynamics", "--steps", "4",
                               "--no-curve")
    assert status == 0, err
    assert "[leak floor 1023 >= threshold: the leak hardly acts]" in out
    # the fixture's leak_shift 3 (floor 7) is far below its thresholds: no flag
    status, out, err = run_cli(capsys, "convert", "--nir", str(FIXTURE), "--keep-dynamics", "--steps", "4",
                               "--no-curve")
    assert status == 0 and "leak floor" not in out


def test_conv_layers_keep_a_shared_kernel():
    # Conv2d 1 -> 2 maps, 3x3 on 5x5, then a LIF per map (beta 0.875 exactly: dt 1/8, tau 1, r 8), Flatten,
    # Affine 18 -> 3, LIF. g W = W: the kernel's largest |w| = 1 gives S = 127 and the kernel rint(127 W)
    from neurocore.sw.compiler import compile_network
    from neurocore.sw.network import ConvProjection

    rng = np.random.default_rng(1)
    kernel = rng.uniform(-1, 1, (2, 1, 3, 3))
    kernel[0, 0, 0, 0] = 1.0
    maps = nir.LIF(tau=np.ones((2, 3, 3)), r=np.full((2, 3, 3), 8.0), v_leak=np.zeros((2, 3, 3)),
                   v_threshold=np.ones((2, 3, 3)), v_reset=np.zeros((2, 3, 3)))
    graph = nir.NIRGraph.from_list(
        nir.Conv2d(input_shape=(5, 5), weight=kernel, bias=np.zeros(2), stride=1, padding=0, dilation=1, groups=1),
        maps, nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0),
        nir.Affine(weight=rng.uniform(-1, 1, (3, 18)), bias=np.zeros(3)), lif(3, 1.0, r=8.0))
    converted = convert_dynamics(from_nir(graph, input_shape=(1, 5, 5), keep_dynamics=True, dt=0.125))
    conv = converted.network.projections[0]
    assert isinstance(conv, ConvProjection)
    np.testing.assert_array_equal(conv.kernel, np.rint(127 * kernel).astype(int))
    first = converted.network.populations[0]
    assert first.size == 18 and (first.params.leak_shift == 3).all() and (first.params.threshold == 127).all()
    assert compile_network(converted.network).program.n_neurons == 21
