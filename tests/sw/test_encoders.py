"""Spike encoders: shapes, determinism, statistics, exact spike times and input checks."""
from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest

from neurocore.sw import encoders
from neurocore.sw.encoders import (
    ENCODERS,
    FIXED_POINT_BITS,
    constant_current_encode,
    encode,
    latency_encode,
    rate_encode,
)

X = np.array([[0.0, 0.25, 0.5, 1.0], [0.1, 0.3, 0.75, 0.9]], dtype=np.float32)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_shape_and_dtype(name):
    out = encode(name, X, 7, seed=3)
    assert out.shape == (2, 7, 4) and out.dtype == np.bool_


def test_encoder_names():
    assert set(ENCODERS) == {"rate", "current", "latency"}
    assert ENCODERS["rate"] is rate_encode
    assert ENCODERS["current"] is constant_current_encode
    assert ENCODERS["latency"] is latency_encode


# ---------------------------------------------------------------------------------------
# rate


def test_rate_deterministic_by_seed():
    a = rate_encode(X, 50, seed=5)
    np.testing.assert_array_equal(a, rate_encode(X, 50, seed=5))
    assert not np.array_equal(a, rate_encode(X, 50, seed=6))
    np.testing.assert_array_equal(a, encode("rate", X, 50, seed=5))


def test_rate_documented_draw_order():
    u = np.random.default_rng(11).random((2, 9, 4))
    expected = u < X.astype(np.float64)[:, None, :] * 0.8
    np.testing.assert_array_equal(rate_encode(X, 9, seed=11, max_rate=0.8), expected)


def test_rate_prefix_samples_unchanged():
    # Sample i depends only on the samples before it.
    full = rate_encode(X, 20, seed=2)
    np.testing.assert_array_equal(rate_encode(X[:1], 20, seed=2), full[:1])


def test_rate_chunking_does_not_change_result(monkeypatch):
    x = np.random.default_rng(0).random((9, 5))
    whole = rate_encode(x, 13, seed=4)
    monkeypatch.setattr(encoders, "_RATE_CHUNK", 1)  # one sample per chunk
    np.testing.assert_array_equal(rate_encode(x, 13, seed=4), whole)
    monkeypatch.setattr(encoders, "_RATE_CHUNK", 13 * 5 * 2)  # two samples per chunk
    np.testing.assert_array_equal(rate_encode(x, 13, seed=4), whole)


def test_rate_statistics():
    x = np.array([[0.0, 0.05, 0.2, 0.5, 0.8, 1.0]])
    steps = 20000
    for max_rate in (1.0, 0.5):
        rates = rate_encode(x, steps, seed=0, max_rate=max_rate).mean(axis=1)[0]
        p = x[0] * max_rate
        sigma = np.sqrt(p * (1 - p) / steps)
        assert np.all(np.abs(rates - p) <= 5 * sigma + 1e-12), (rates, p)
    out = rate_encode(x, 100, seed=1)
    assert not out[0, :, 0].any() and out[0, :, -1].all()


# ---------------------------------------------------------------------------------------
# constant current


def _if_reference(x: float, steps: int, threshold: float = 1.0) -> np.ndarray:
    """Exact IF neuron with reset by subtraction, in rational arithmetic."""
    q = Fraction(round(Fraction(x / threshold) * 2**FIXED_POINT_BITS), 2**FIXED_POINT_BITS)
    v, out = Fraction(0), []
    for _ in range(steps):
        v += q
        spike = v >= 1
        if spike:
            v -= 1
        out.append(spike)
    return np.array(out)


@pytest.mark.parametrize("x", [0.0, 1 / 3, 0.25, 0.5, 0.7, 0.999, 1.0, 2**-16, 0.1])
def test_current_matches_if_neuron(x):
    out = constant_current_encode(np.array([[x]]), 200)[0, :, 0]
    np.testing.assert_array_equal(out, _if_reference(x, 200))


def test_current_spike_counts():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.random(200), [0.0, 1.0, 0.5, 0.125, 1 / 3, 2 / 3]])[None, :]
    for steps in (1, 7, 100, 1000, 4096):
        counts = constant_current_encode(x, steps).sum(axis=1)[0]
        ideal = np.floor(steps * x[0])
        assert np.all(np.abs(counts - ideal) <= 1)
    # exact for multiples of 2**-16
    xq = np.array([[0.0, 0.5, 0.125, 0.375, 3 / 1024, 1.0]])
    for steps in (1, 8, 1000, 65536):
        counts = constant_current_encode(xq, steps).sum(axis=1)[0]
        np.testing.assert_array_equal(counts, np.floor(steps * xq[0]))


def test_current_known_trains():
    out = constant_current_encode(np.array([[0.5, 1.0, 0.0, 0.25]]), 8)[0].T.astype(int)
    np.testing.assert_array_equal(out[0], [0, 1, 0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(out[1], [1] * 8)
    np.testing.assert_array_equal(out[2], [0] * 8)
    np.testing.assert_array_equal(out[3], [0, 0, 0, 1, 0, 0, 0, 1])


def test_current_no_drift_long_train():
    # 0.1 is not representable; the fixed-point count is floor(T * q / 2**16) exactly.
    steps = 100_000
    q = round(0.1 * 2**16)
    count = int(constant_current_encode(np.array([[0.1]]), steps).sum())
    assert count == (steps * q) >> 16
    assert abs(count - math.floor(steps * 0.1)) <= 1


def test_current_threshold():
    x = np.array([[0.5, 1.0]])
    out = constant_current_encode(x, 12, threshold=2.0)
    np.testing.assert_array_equal(out, constant_current_encode(x / 2, 12))
    np.testing.assert_array_equal(out[0, :, 1], _if_reference(1.0, 12, 2.0))
    np.testing.assert_array_equal(
        constant_current_encode(np.array([[0.3]]), 10, threshold=0.5)[0, :, 0], _if_reference(0.3, 10, 0.5)
    )
    with pytest.raises(ValueError, match=re.escape("x / threshold must be <= 1 (at most one spike per step), got max x 0.6")):
        constant_current_encode(np.array([[0.6]]), 5, threshold=0.5)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="threshold must be a positive finite number"):
            constant_current_encode(x, 5, threshold=bad)


def test_current_seed_ignored_by_dispatcher():
    np.testing.assert_array_equal(encode("current", X, 9, seed=1), encode("current", X, 9, seed=2))


# ---------------------------------------------------------------------------------------
# latency


def test_latency_times():
    x = np.array([[1.0, 0.5, 0.25, 0.01, 0.0, 0.9]])
    out = latency_encode(x, 11)
    assert out.sum(axis=1).tolist() == [[1, 1, 1, 1, 0, 1]]
    times = out[0].argmax(axis=0)
    assert times[[0, 1, 2, 3, 5]].tolist() == [0, 5, 8, 10, 1]  # round((1 - x) * 10)


def test_latency_rounding_half_to_even():
    # (1 - 0.5) * (steps - 1): 1.5 -> 2, 2.5 -> 2, 3.5 -> 4
    for steps, t in ((4, 2), (6, 2), (8, 4)):
        assert latency_encode(np.array([[0.5]]), steps)[0, :, 0].argmax() == t


def test_latency_t_min():
    x = np.array([[1.0, 0.5, 1e-6, 0.0]])
    out = latency_encode(x, 11, t_min=4)
    assert out[0].sum(axis=0).tolist() == [1, 1, 1, 0]
    assert out[0, :, :3].argmax(axis=0).tolist() == [4, 7, 10]
    assert latency_encode(x, 1)[0, 0].tolist() == [True, True, True, False]
    with pytest.raises(ValueError, match=re.escape("t_min must be within 0..window-1 = 0..10, got 11")):
        latency_encode(x, 11, t_min=11)
    with pytest.raises(ValueError, match="t_min must be within"):
        latency_encode(x, 11, t_min=-1)
    with pytest.raises(TypeError, match="t_min must be an int"):
        latency_encode(x, 11, t_min=1.5)


# ---------------------------------------------------------------------------------------
# bad inputs and dispatch


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize(
    "x, exc, message",
    [
        (np.array([[0.5, 1.01]]), ValueError, "x values must be within [0, 1], got min 0.5, max 1.01"),
        (np.array([[-0.1, 0.5]]), ValueError, "x values must be within [0, 1], got min -0.1"),
        (np.array([[np.nan, 0.5]]), ValueError, "x contains NaN"),
        (np.array([0.5, 0.2]), ValueError, "x must be 2-D [n_samples, n_features], got shape (2,)"),
        (np.zeros((1, 2, 3)), ValueError, "x must be 2-D"),
        (np.array([["a"]]), TypeError, "x must be a real numeric array"),
        (np.array([[1j]]), TypeError, "x must be a real numeric array"),
    ],
)
def test_bad_x(name, x, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        encode(name, x, 5)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_bad_steps(name):
    with pytest.raises(ValueError, match=re.escape("steps must be >= 1, got 0")):
        encode(name, X, 0)
    with pytest.raises(ValueError, match="steps must be >= 1, got -3"):
        encode(name, X, -3)
    for bad in (2.0, "5", True, None):
        with pytest.raises(TypeError, match="steps must be an int"):
            encode(name, X, bad)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_accepts_ints_bools_and_empty(name):
    a = encode(name, np.array([[0, 1]]), np.int64(4))
    b = encode(name, np.array([[False, True]]), 4)
    np.testing.assert_array_equal(a, b)
    assert encode(name, np.zeros((0, 3)), 4).shape == (0, 4, 3)


def test_rate_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("max_rate must be within [0, 1], got 1.5")):
        rate_encode(X, 5, seed=0, max_rate=1.5)
    with pytest.raises(ValueError, match="max_rate must be within"):
        rate_encode(X, 5, seed=0, max_rate=float("nan"))
    for bad in (-1, None, 1.5, True):
        with pytest.raises(ValueError, match="seed must be a non-negative int"):
            rate_encode(X, 5, seed=bad)
    with pytest.raises(TypeError):
        rate_encode(X, 5)  # seed is required


def test_encode_unknown_name():
    with pytest.raises(ValueError, match=re.escape("unknown encoder 'poisson'; choose one of rate, current, latency")):
        encode("poisson", X, 5)
    with pytest.raises(ValueError, match="unknown encoder"):
        encode(["rate"], X, 5)  # type: ignore[arg-type]


def test_encode_forwards_keywords():
    np.testing.assert_array_equal(encode("latency", X, 9, t_min=2), latency_encode(X, 9, t_min=2))
    np.testing.assert_array_equal(
        encode("rate", X, 9, seed=4, max_rate=0.5), rate_encode(X, 9, seed=4, max_rate=0.5)
    )
    with pytest.raises(TypeError):
        encode("latency", X, 9, bogus=1)


def test_latency_window_leaves_the_last_steps_silent():
    x = np.array([[1.0, 0.5, 0.01, 0.0]], np.float32)
    s = latency_encode(x, 10, window=4)
    assert s.shape == (1, 10, 4)
    assert not s[:, 4:].any()
    assert np.array_equal(s[:, :4], latency_encode(x, 4))
    with pytest.raises(ValueError, match="window must be within 1..steps = 1..10, got 11"):
        latency_encode(x, 10, window=11)
    with pytest.raises(ValueError, match="t_min must be within 0..window-1 = 0..3, got 4"):
        latency_encode(x, 10, window=4, t_min=4)
    with pytest.raises(TypeError, match="window must be an int"):
        latency_encode(x, 10, window=2.0)


def test_encoding_kwargs_come_from_the_image_when_the_encoder_is_its_own():
    from neurocore.sw.encoders import encoding_kwargs

    enc = {"kind": "latency", "steps": 33, "window": 16, "t_min": 0, "dataset": "mnist-5k:dog"}
    assert encoding_kwargs(enc, "latency") == {"window": 16, "t_min": 0}
    assert encoding_kwargs(enc, "rate") == {}
    assert encoding_kwargs({"kind": "rate", "max_rate": 0.5, "complement": True}, "rate") == {"max_rate": 0.5}
