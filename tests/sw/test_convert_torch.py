"""The PyTorch frontend of the converter (skipped without torch: pip install 'neurocore[torch]')."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from neurocore.sim import golden  # noqa: E402
from neurocore.sw.compiler import compile_network  # noqa: E402
from neurocore.sw.convert import AvgPool2d, Conv2d, Dense, Flatten, ReLU, convert, from_torch  # noqa: E402
from neurocore.sw.encoders import encode  # noqa: E402


def torch_out(model, x):
    with torch.no_grad():
        return model.double()(torch.from_numpy(x)).numpy()


def test_mlp_matches_torch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Dropout(0.5), nn.Linear(9, 3, bias=False)).eval()
    g = from_torch(model)
    assert g.input_shape == (6,)
    assert [type(layer) for layer in g.layers] == [Dense, ReLU, Dense]
    x = np.random.default_rng(0).random((5, 6))
    np.testing.assert_allclose(g.forward(x), torch_out(model, x), atol=1e-10)


def test_conv_net_matches_torch():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Sequential(nn.Conv2d(4, 3, 2, stride=2, padding="valid", bias=False), nn.ReLU()),
                          nn.Flatten(), nn.Linear(3 * 2 * 2, 5), nn.Identity())
    g = from_torch(model, input_shape=(2, 8, 8))
    assert [type(layer) for layer in g.layers] == [Conv2d, ReLU, AvgPool2d, Conv2d, ReLU, Flatten, Dense]
    assert g.shapes[-1] == (5,)
    x = np.random.default_rng(1).random((4, 2, 8, 8))
    np.testing.assert_allclose(g.forward(x), torch_out(model, x), atol=1e-10)
    np.testing.assert_allclose(g.forward(x.reshape(4, -1)), torch_out(model, x), atol=1e-10)


@pytest.mark.parametrize("module, name", [(nn.MaxPool2d(2), "MaxPool2d"), (nn.BatchNorm2d(1), "BatchNorm2d"),
                                          (nn.Sigmoid(), "Sigmoid")])
def test_unsupported_modules_are_named(module, name):
    model = nn.Sequential(nn.Conv2d(1, 1, 3), module, nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=rf"module 1 \({name}\) is not supported; supported modules: "
                                         r"Linear, Conv2d, ReLU, AvgPool2d, Flatten"):
        from_torch(model, input_shape=(1, 4, 4))


def test_other_torch_errors():
    with pytest.raises(ValueError, match="give input_shape"):
        from_torch(nn.Sequential(nn.Conv2d(1, 1, 3)))
    with pytest.raises(ValueError, match="needs a torch.nn.Sequential"):
        from_torch(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="groups=2"):
        from_torch(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), input_shape=(2, 5, 5))
    with pytest.raises(ValueError, match="padding=1 is not supported"):
        from_torch(nn.Sequential(nn.AvgPool2d(2, padding=1)), input_shape=(1, 4, 4))
    with pytest.raises(ValueError, match=r"module 1 \(Linear\).*expects 5 inputs, got 4"):
        from_torch(nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)))


def test_trained_conv_net_converts_on_digits():
    """A small CNN trained for a few epochs on digits keeps its accuracy on the core."""
    from neurocore.sw.datasets import load_dataset
    from neurocore.sw.evaluate import evaluate

    data = load_dataset("digits")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10))
    x = torch.from_numpy(data.x_train).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(data.y_train)
    # plain SGD with momentum by hand: constructing a torch.optim optimizer imports
    # torch._dynamo, which alone takes seconds
    params = list(model.parameters())
    velocity = [torch.zeros_like(p) for p in params]
    for _ in range(10):
        for idx in torch.randperm(len(x)).split(32):
            model.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            with torch.no_grad():
                for p, v in zip(params, velocity):
                    v.mul_(0.9).add_(p.grad)
                    p.sub_(0.02 * v)
    g = from_torch(model, input_shape=(1, 8, 8))
    ann = (g.predict(data.x_test) == data.y_test).mean()
    assert ann > 0.9
    conv = convert(g, data.x_train)
    assert [layer.kind for layer in conv.layers] == ["conv", "avgpool", "dense", "dense"]
    compiled = compile_network(conv.network)
    snn = evaluate(compiled, data.x_test, data.y_test, steps=32, encoder="current")["accuracy"]
    assert snn > ann - 0.03
    # spot check: the golden model and the converted network agree on one sample's output
    res = golden.run(compiled.program, encode("current", data.x_test[:1], 32)[0])
    assert res.spikes.shape == (32, 10)
