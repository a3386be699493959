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


# -- shared rows, structural WTA blocks, learning on shared words ---------------------------------
SHARED = ("shared_rows", "shared_learning", "structural_wta", "param_classes")


@EXAMPLES
@given(data=st.data(), case=programs(features=SHARED), learn=st.booleans(), from_state=st.booleans())
def test_run_shared_rows_and_blocks(data, case, learn, from_state):
    """Programs that may use segments over kernel words, WTA block ranges (k-WTA) and a core
    with parameter classes."""
    program, inputs = case
    state = data.draw(states(program)) if from_state else None
    _run_both(program, inputs, learn and program.config.learning, state)


def test_random_programs_draw_the_shared_features():
    """The generator behind the test above reaches every feature often."""
    from neurocore.sim.random_programs import program_features, random_program
    seen = {}
    for seed in range(300):
        for name, used in program_features(random_program(np.random.default_rng(seed), features=SHARED)[0]).items():
            seen[name] = seen.get(name, 0) + used
    assert min(seen["shared_rows"], seen["structural_wta"], seen["shared_learning"], seen["param_classes"],
               seen["shared_lists"]) >= 40, seen


def _conv_like(rng: np.random.Generator):
    """A program where many active axons share a few plastic kernel words (soft bound, small
    changes), so that the order of the sequential updates of phase 4 matters."""
    from neurocore.hw.config import CoreConfig
    from neurocore.hw.program import LearningParams, NeuronParams, Segments, WtaBlocks
    n, a, k = 8, 6, 4
    cfg = CoreConfig(neurons=n, axons=a, synapses=k, segments=4 * a, wta_blocks=1, adaptive_threshold=False)
    seg_axon, base, count, first = [], [], [], []
    for axon in range(a):
        start = 0
        while start < n and len(seg_axon) < 4 * a:
            c = int(rng.integers(1, min(k, n - start) + 1))
            b = int(rng.integers(0, k - c + 1))
            seg_axon.append(axon); base.append(b); count.append(c); first.append(start)
            start += c + int(rng.integers(0, 2))
    ptr = np.concatenate([[0], np.cumsum(np.bincount(seg_axon, minlength=a))])
    size = int(rng.integers(1, 4))
    program = CoreProgram(
        config=cfg, n_inputs=a, ptr=np.zeros(a + 1, np.int64), target=[], weight=rng.integers(0, 33, k),
        plastic=np.ones(k, bool),
        neurons=NeuronParams.uniform(n, threshold=int(rng.integers(20, 80)), reset_mode=1),
        route=np.full(n, -1), outputs=range(n),
        learning=LearningParams(a_plus=int(rng.integers(1, 4)), a_minus=int(rng.integers(1, 4)), shift=11,
                                pre_jump=20, post_jump=20, pre_decay_shift=1, post_decay_shift=1,
                                w_min=0, w_max=32, soft_bound=True),
        segments=Segments.csr(ptr, base=base, count=count, first=first),
        wta_blocks=WtaBlocks(first=[0], size=[size], count=[max(1, n // 2 // size)],
                             k=[int(rng.integers(1, size + 1))]))
    state = dataclasses.replace(CoreState.initial(program), weight=rng.integers(4, 29, k),
                                y=rng.integers(0, 40, n), x=rng.integers(0, 40, a))
    return program, rng.random((3, a)) < 0.6, state


_LTD_PASS = reference.ltd_pass


def _reversed_ltd(weight, active, uses, plastic, yd, lp):
    """Phase 4 (a) in decreasing axon order: what a wrong engine would do."""
    return _LTD_PASS(weight, active[::-1], uses[::-1], plastic, yd, lp)


def _index_order(fired, group, block):
    """Fired neurons in index order, not firing order: what a wrong engine would do."""
    return [n for n, f in enumerate(fired) if f]


def test_sequential_updates_of_shared_words(monkeypatch):
    """Golden and reference agree on programs where the update order matters; the test has
    power: the same programs with LTD in decreasing axon order, or LTP in neuron index order
    instead of firing order, give other weights in a good share of the cases."""
    mattered = {"ltd": 0, "ltp": 0}
    cases = 100
    for seed in range(cases):
        program, inputs, state = _conv_like(np.random.default_rng(seed))
        g = golden.run(program, inputs, learn=True, state=state, record_neurons=True)
        r = reference.run(program, inputs, learn=True, state=state, record_neurons=True)
        assert_same_run(g, r, program, inputs, True, state)
        for name, attr, wrong_rule in (("ltd", "ltd_pass", _reversed_ltd), ("ltp", "firing_order", _index_order)):
            with monkeypatch.context() as patch:
                patch.setattr(reference, attr, wrong_rule)
                wrong = reference.run(program, inputs, learn=True, state=state)
            mattered[name] += not np.array_equal(wrong.state.weight, r.state.weight)
    assert min(mattered.values()) >= cases // 10, f"the order mattered in too few of {cases} cases: {mattered}"
