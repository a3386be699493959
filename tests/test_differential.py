"""Differential tests: the numba golden model against the pure-Python reference.

Both implement docs/core-spec.md; on random valid programs (tests/strategies.py) they must agree
bit for bit on output spikes, per-neuron spikes, SOP counts and every field of the final state.
When they do not, the failure message names the first step and the state fields that diverge.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocore.hw.program import CoreProgram, CoreState
from neurocore.sim import golden, reference

from strategies import programs, states

STATE_FIELDS = tuple(f.name for f in dataclasses.fields(CoreState))
EXAMPLES = settings(max_examples=250, deadline=None)


@pytest.fixture(scope="module", autouse=True)
def _compile_golden():
    golden.warmup()     # numba compiles (or loads from cache) once per session, not inside an example


def _diff_fields(a: CoreState, b: CoreState) -> list[str]:
    return [name for name in STATE_FIELDS if not np.array_equal(getattr(a, name), getattr(b, name))]


def first_divergence(program: CoreProgram, inputs, learn: bool, state: CoreState | None) -> str:
    """Re-run growing prefixes of ``inputs`` on both models; describe the first step that differs."""
    for t in range(1, len(inputs) + 1):
        g = golden.run(program, inputs[:t], learn=learn, state=state, record_neurons=True)
        r = reference.run(program, inputs[:t], learn=learn, state=state, record_neurons=True)
        fields = _diff_fields(g.state, r.state)
        if not np.array_equal(g.neuron_spikes, r.neuron_spikes):
            fields.append("neuron_spikes")
        if g.sops != r.sops:
            fields.append("sops")
        if fields:
            lines = [f"first divergence at step {t - 1}: {', '.join(fields)}"]
            for name in fields:
                if name in STATE_FIELDS:
                    gv, rv = getattr(g.state, name), getattr(r.state, name)
                    idx = np.flatnonzero(gv != rv)[:5].tolist()
                    lines.append(f"  state.{name} at {idx}: golden {gv[idx].tolist()} reference {rv[idx].tolist()}")
            lines.append(f"  neuron spikes of that step: golden {g.neuron_spikes[-1].astype(int).tolist()} "
                         f"reference {r.neuron_spikes[-1].astype(int).tolist()}")
            return "\n".join(lines)
    return "no divergence found step by step"


def assert_same_state(g: CoreState, r: CoreState, what: str = "state") -> None:
    for name in STATE_FIELDS:
        gv, rv = getattr(g, name), getattr(r, name)
        assert gv.shape == rv.shape, f"{what}.{name}: shape golden {gv.shape} reference {rv.shape}"
        assert np.array_equal(gv, rv), (
            f"{what}.{name} differs at {np.flatnonzero(gv != rv)[:10].tolist()}: "
            f"golden {gv.tolist()} reference {rv.tolist()}")
    assert g.equals(r) and r.equals(g)


def assert_same_run(g, r, program, inputs, learn, state) -> None:
    where = lambda: first_divergence(program, inputs, learn, state)  # noqa: E731 (only on failure)
    assert g.spikes.dtype == r.spikes.dtype == np.bool_
    assert g.spikes.shape == r.spikes.shape == (len(inputs), program.n_outputs)
    if not np.array_equal(g.spikes, r.spikes):
        pytest.fail(f"output spikes differ at (step, column) "
                    f"{np.argwhere(g.spikes != r.spikes)[:10].tolist()}\n{where()}")
    if not np.array_equal(g.neuron_spikes, r.neuron_spikes):
        pytest.fail(f"neuron spikes differ at (step, neuron) "
                    f"{np.argwhere(g.neuron_spikes != r.neuron_spikes)[:10].tolist()}\n{where()}")
    if g.sops != r.sops:
        pytest.fail(f"sops: golden {g.sops} reference {r.sops}\n{where()}")
    if not g.state.equals(r.state):
        pytest.fail(f"final state differs in {_diff_fields(g.state, r.state)}\n{where()}")
    assert_same_state(g.state, r.state)


def _run_both(program, inputs, learn, state):
    before = None if state is None else state.copy()
    g = golden.run(program, inputs, learn=learn, state=state, record_neurons=True)
    r = reference.run(program, inputs, learn=learn, state=state, record_neurons=True)
    if state is not None:
        assert state.equals(before), "run() modified the state it was given"
    assert isinstance(g.sops, int) and isinstance(r.sops, int)
    assert_same_run(g, r, program, inputs, learn, state)
    # every field stayed inside its width: the final state is one the program can start from
    assert g.state.checked(program).equals(g.state)
    # without record_neurons the result is the same and neuron_spikes is None
    g2 = golden.run(program, inputs, learn=learn, state=state)
    r2 = reference.run(program, inputs, learn=learn, state=state)
    assert g2.neuron_spikes is None and r2.neuron_spikes is None
    assert np.array_equal(g2.spikes, g.spikes) and np.array_equal(r2.spikes, r.spikes)


@EXAMPLES
@given(data=st.data(), case=programs(learning=True), from_state=st.booleans())
def test_run_learning(data, case, from_state):
    """STDP, traces and theta on (phase 4), from the initial state or a random one."""
    program, inputs = case
    state = data.draw(states(program)) if from_state else None
    _run_both(program, inputs, True, state)


@EXAMPLES
@given(data=st.data(), case=programs(), from_state=st.booleans())
def test_run_inference(data, case, from_state):
    """Learning off (phase 4 skipped), any configuration, from the initial state or a random one."""
    program, inputs = case
    state = data.draw(states(program)) if from_state else None
    _run_both(program, inputs, False, state)


@EXAMPLES
@given(data=st.data(), case=programs(batch=st.integers(1, 4), max_steps=12), learn=st.booleans(),
       from_state=st.booleans())
def test_run_batch(data, case, learn, from_state):
    """Batches: clear state before each sample; weights and theta carry over."""
    program, inputs = case
    learn = learn and program.config.learning
    state = data.draw(states(program)) if from_state else None
    g = golden.run_batch(program, inputs, learn=learn, state=state)
    r = reference.run_batch(program, inputs, learn=learn, state=state)
    B, T = inputs.shape[:2]
    assert g.spikes.shape == r.spikes.shape == (B, T, program.n_outputs)
    assert g.sops.shape == r.sops.shape == (B,)
    assert g.sops.dtype == r.sops.dtype == np.int64
    if not np.array_equal(g.spikes, r.spikes):
        b = int(np.argwhere(g.spikes != r.spikes)[0, 0])
        pytest.fail(f"output spikes differ in sample {b} at (sample, step, column) "
                    f"{np.argwhere(g.spikes != r.spikes)[:10].tolist()}")
    assert np.array_equal(g.sops, r.sops), f"sops: golden {g.sops.tolist()} reference {r.sops.tolist()}"
    assert g.state.checked(program).equals(g.state)          # every field inside its width
    assert_same_state(g.state, r.state, "batch final state")


def _serial_batch(program, inputs, state):
    """``run_batch`` spelled out with ``golden.run``: clear, run T steps, for each sample."""
    state = CoreState.initial(program) if state is None else state.copy()
    spikes, sops = [], []
    for sample in inputs:
        state.clear()
        result = golden.run(program, sample, state=state)
        spikes.append(result.spikes)
        sops.append(result.sops)
        state = result.state
    return np.array(spikes, bool).reshape(inputs.shape[:2] + (program.n_outputs,)), np.array(sops, np.int64), state


@EXAMPLES
@given(data=st.data(), case=programs(batch=st.integers(1, 8), max_steps=12), from_state=st.booleans())
def test_parallel_batch_equals_serial(data, case, from_state):
    """The golden model's parallel (learning-off) batch equals the serial loop of single runs."""
    program, inputs = case
    state = data.draw(states(program)) if from_state else None
    result = golden.run_batch(program, inputs, learn=False, state=state)
    spikes, sops, final = _serial_batch(program, inputs, state)
    assert np.array_equal(result.spikes, spikes)
    assert np.array_equal(result.sops, sops)
    assert_same_state(result.state, final, "parallel batch final state")
