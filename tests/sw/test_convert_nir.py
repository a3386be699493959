"""The NIR frontend of the converter: chains of Input/Affine/Linear/Conv2d/Flatten/SumPool2d/IF/LIF."""
from __future__ import annotations

import nir
import numpy as np
import pytest

from neurocore.sim import golden
from neurocore.sw.compiler import compile_network
from neurocore.sw.convert import Conv2d, Dense, Flatten, ReLU, SumPool2d, convert, from_nir
from neurocore.sw.convert.graph import conv2d_forward, pool2d_forward
from neurocore.sw.encoders import encode


def chain(*nodes, input_shape):
    """A NIRGraph input -> nodes... -> output with explicit edges (names n0, n1, ...)."""
    names = ["input"] + [f"n{i}" for i in range(len(nodes))] + ["output"]
    objs = [nir.Input(input_type={"input": np.array(input_shape)})] + list(nodes) + \
        [nir.Output(output_type={"output": np.array([1])})]
    return nir.NIRGraph(nodes=dict(zip(names, objs)), edges=list(zip(names[:-1], names[1:])), type_check=False)


def test_mlp_with_if_and_lif_nodes():
    rng = np.random.default_rng(0)
    w1, b1, w2 = rng.normal(size=(6, 4)), rng.normal(size=6), rng.normal(size=(3, 6))
    r1, th1 = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    graph = chain(nir.Affine(weight=w1, bias=b1), nir.IF(r=r1, v_threshold=th1),
                  nir.Linear(weight=w2),
                  nir.LIF(tau=np.full(3, 5.0), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.full(3, 4.0)),
                  input_shape=[4])
    g = from_nir(graph)
    assert g.input_shape == (4,)
    assert [type(layer) for layer in g.layers] == [Dense, ReLU, Dense, ReLU]
    x = rng.random((5, 4))
    # IF/LIF -> ReLU of the input scaled by r / (v_threshold - v_reset), folded into the layer before
    hidden = np.maximum((x @ w1.T + b1) * r1 / th1, 0)
    np.testing.assert_allclose(g.forward(x), np.maximum(hidden @ w2.T * 0.5, 0), atol=1e-12)
    conv = convert(g, x)
    assert [p.name for p in conv.network.populations] == ["dense1", "output"]


def test_from_list_graph_and_v_reset():
    w = np.array([[1.0, -1.0], [0.5, 0.5]])
    node = nir.IF(r=np.ones(2), v_threshold=np.full(2, 3.0), v_reset=np.full(2, 1.0))
    g = from_nir(nir.NIRGraph.from_list(nir.Affine(weight=w, bias=np.zeros(2)), node))
    np.testing.assert_allclose(g.forward(np.array([[1.0, 0.0]])), [[0.5, 0.25]])   # scale 1 / (3 - 1)


def test_conv_sumpool_flatten_chain():
    rng = np.random.default_rng(1)
    wc, bc = rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3)
    wd = rng.normal(size=(4, 3 * 3 * 3))
    graph = chain(nir.Conv2d(input_shape=(6, 6), weight=wc, stride=1, padding=1, dilation=1, groups=1, bias=bc),
                  nir.IF(r=np.ones((3, 6, 6)), v_threshold=np.ones((3, 6, 6))),
                  nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
                  nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0),
                  nir.Affine(weight=wd, bias=np.zeros(4)),
                  input_shape=[1, 6, 6])
    g = from_nir(graph)
    assert [type(layer) for layer in g.layers] == [Conv2d, ReLU, SumPool2d, Flatten, Dense]
    assert g.shapes == [(3, 6, 6), (3, 6, 6), (3, 3, 3), (27,), (4,)]
    x = rng.random((2, 1, 6, 6))
    a = pool2d_forward(np.maximum(conv2d_forward(x, wc, bc, (1, 1), (1, 1)), 0), (2, 2), (2, 2))
    np.testing.assert_allclose(g.forward(x), a.reshape(2, -1) @ wd.T, atol=1e-12)
    # the whole chain converts and runs on the core; sum pooling has threshold k^2 = 4
    conv = convert(g, rng.random((40, 36)))
    assert (conv.network.population("sumpool1").params.threshold == 4).all()
    compiled = compile_network(conv.network)
    res = golden.run(compiled.program, encode("current", x.reshape(2, -1)[:1], 16)[0])
    assert res.spikes.shape == (16, 4)


def test_conv_if_scale_per_channel():
    wc = np.ones((2, 1, 1, 1))
    graph = chain(nir.Conv2d(input_shape=(2, 2), weight=wc, stride=1, padding=0, dilation=1, groups=1,
                             bias=np.zeros(2)),
                  nir.IF(r=np.array([1.0, 2.0]).repeat(4).reshape(2, 2, 2), v_threshold=np.ones((2, 2, 2))),
                  input_shape=[1, 2, 2])
    out = from_nir(graph).forward(np.full((1, 4), 0.25))
    np.testing.assert_allclose(out.reshape(2, 4), [[0.25] * 4, [0.5] * 4])
    bad = chain(nir.Conv2d(input_shape=(2, 2), weight=wc, stride=1, padding=0, dilation=1, groups=1,
                           bias=np.zeros(2)),
                nir.IF(r=np.arange(1.0, 9.0).reshape(2, 2, 2), v_threshold=np.ones((2, 2, 2))),
                input_shape=[1, 2, 2])
    with pytest.raises(ValueError, match="same for all positions of a channel"):
        from_nir(bad)


@pytest.mark.parametrize("node, kind", [
    (nir.CubaLIF(tau_syn=np.ones(2), tau_mem=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                 v_threshold=np.ones(2)), "CubaLIF"),
    (nir.Delay(delay=np.ones(2)), "Delay"),
    (nir.Scale(scale=np.ones(2)), "Scale"),
])
def test_unsupported_node_types_are_named(node, kind):
    graph = chain(nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)), node, input_shape=[2])
    with pytest.raises(ValueError, match=rf"NIR node 'n1' has type {kind}, which is not supported; supported "
                                         r"node types: Input, Output, Affine, Linear, Conv2d, Flatten, SumPool2d"):
        from_nir(graph)


def test_non_chain_graphs_are_rejected():
    a = nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2))
    b = nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2))
    nodes = {"in": nir.Input(input_type={"input": np.array([2])}), "a": a, "b": b,
             "out": nir.Output(output_type={"output": np.array([2])})}
    branch = nir.NIRGraph(nodes=nodes, edges=[("in", "a"), ("in", "b"), ("a", "out"), ("b", "out")],
                          type_check=False)
    with pytest.raises(ValueError, match="not a chain: node 'in' has 2 outgoing edges"):
        from_nir(branch)
    island = nir.NIRGraph(nodes=nodes, edges=[("in", "a"), ("a", "out")], type_check=False)
    with pytest.raises(ValueError, match=r"not a chain: nodes \['b'\] are not on the path"):
        from_nir(island)
    two_inputs = dict(nodes, in2=nir.Input(input_type={"input": np.array([2])}))
    with pytest.raises(ValueError, match="exactly one Input node, found 2"):
        from_nir(nir.NIRGraph(nodes=two_inputs, edges=[("in", "a"), ("a", "out"), ("in2", "b")],
                              type_check=False))


def test_lif_with_leak_voltage_is_rejected():
    lif = nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.full(2, 0.1), v_threshold=np.ones(2))
    with pytest.raises(ValueError, match="non-zero v_leak is not supported"):
        from_nir(chain(nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)), lif, input_shape=[2]))
