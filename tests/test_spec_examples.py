"""Hand-computed examples of every rule of docs/core-spec.md (sections 5 and 6).

Every expected number is worked out by hand in the comments, never by calling a model. Each
example runs on three engines: the golden model, the pure-Python reference and the RTL Core
under amaranth.sim (tests/hw/rtl_model.py: the host driver behind the models' API). Most
examples are also run one step at a time so the state can be checked after every step (the
models: feeding each step's final state into the next run; the RTL: reading the state back
between the steps of one simulation); the one-shot run must give the same result.

The RTL's ``pending`` spikes are not host visible (they live in its pending queue): on the RTL
a loaded state cannot hold them and a state read back does not show them; their effect, the
spikes and SOPs of the next step, is checked on every engine.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import CoreProgram, CoreState, LearningParams, NeuronParams
from neurocore.sim import golden, reference


def _import_rtl_model():
    """tests/hw/rtl_model.py, with tests/hw importable as it is for its own tests."""
    hw_tests = str(Path(__file__).with_name("hw"))
    if hw_tests not in sys.path:
        sys.path.insert(0, hw_tests)
    import rtl_model
    return rtl_model


rtl = _import_rtl_model()

MODELS = pytest.mark.parametrize("model", [golden, reference, rtl], ids=["golden", "reference", "rtl"])
SOFTWARE_MODELS = pytest.mark.parametrize("model", [golden, reference], ids=["golden", "reference"])


def shows_pending(model) -> bool:
    """Whether the model's states hold ``pending`` (not the RTL's: not host visible)."""
    return getattr(model, "PENDING_VISIBLE", True)

_NEURON_DEFAULTS = dict(threshold=None, leak_shift=0, reset_mode=0, refractory=0, bias=0,
                        theta_inc=0, theta_decay_shift=0, wta_group=0)


def make_program(*, neurons: list[dict], synapses=(), n_inputs: int, n_axons: int | None = None,
                 route=None, outputs=None, stdp: LearningParams | None = None, theta=None,
                 **config) -> CoreProgram:
    """A validated program. ``synapses`` are ``(axon, target, weight)`` or ``(axon, target, weight,
    plastic)``, listed axon by axon so synapse address ``i`` is the ``i``-th tuple. ``stdp`` is the
    program's ``LearningParams``; ``config`` holds ``CoreConfig`` fields (``learning=False``, ...)."""
    cfg = CoreConfig(**{**dict(neurons=8, axons=8, synapses=16), **config})
    params = NeuronParams(**{k: [d.get(k, v) for d in neurons] for k, v in _NEURON_DEFAULTS.items()})
    syn = [tuple(s) + (False,) * (4 - len(s)) for s in synapses]
    assert [s[0] for s in syn] == sorted(s[0] for s in syn), "list synapses in axon order"
    return CoreProgram.from_synapses(
        cfg, n_inputs=n_inputs, n_axons=n_inputs if n_axons is None else n_axons,
        axon=[s[0] for s in syn], target=[s[1] for s in syn], weight=[s[2] for s in syn],
        plastic=[s[3] for s in syn], neurons=params, route=route,
        outputs=range(len(neurons)) if outputs is None else outputs, learning=stdp, theta=theta)


def spikes_in(rows) -> np.ndarray:
    """Inputs from a list of strings of 0/1, one string per step."""
    return np.array([[c == "1" for c in row] for row in rows], bool).reshape(len(rows), -1)


def trajectory(model, program, inputs, *, learn=False, state=None):
    """Run step by step; returns (neuron spikes [T, N] as int, states after each step, total sops).

    Also checks that one run of all ``T`` steps gives the same spikes, sops and final state.
    """
    inputs = np.asarray(inputs, bool)
    whole = model.run(program, inputs, learn=learn, state=state, record_neurons=True)
    if hasattr(model, "run_steps"):      # the RTL: one simulation, the state read after every step
        steps, states, step_sops = model.run_steps(program, inputs, learn=learn, state=state)
        fired, sops = steps.neuron_spikes.astype(int), sum(step_sops)
    else:
        states, fired, sops = [], [], 0
        current = state
        for t in range(len(inputs)):
            result = model.run(program, inputs[t:t + 1], learn=learn, state=current, record_neurons=True)
            fired.append(result.neuron_spikes[0])
            states.append(result.state)
            sops += result.sops
            current = result.state
    fired = np.array(fired, int).reshape(len(inputs), program.n_neurons)
    assert np.array_equal(whole.neuron_spikes.astype(int), fired)
    assert whole.sops == sops
    if states:
        assert whole.state.equals(states[-1])
    return fired, states, sops


def column(states, field, index):
    return [int(getattr(s, field)[index]) for s in states]


def with_state(program, **fields) -> CoreState:
    state = CoreState.initial(program)
    for name, values in fields.items():
        getattr(state, name)[:] = values
    return state


# -- phase 2: leak, bias, saturation, compare, reset, refractory --------------------------------------
@MODELS
def test_leak_arithmetic_shift(model):
    # Threshold out of reach (V = 16: 32767), no input, no bias: only the leak acts.
    ks = [2, 2, 1, 1, 1, 0]
    program = make_program(neurons=[dict(threshold=32767, leak_shift=k) for k in ks], n_inputs=1,
                           membrane_bits=16)
    state = with_state(program, v=[100, -100, -1, 1, -3, 7])
    fired, states, _ = trajectory(model, program, spikes_in(["0"] * 3), state=state)
    assert fired.sum() == 0
    # v=100, k=2:   100 - 25 = 75;  75 - 18 = 57;  57 - 14 = 43
    assert column(states, "v", 0) == [75, 57, 43]
    # v=-100, k=2:  -100>>2 = -25 -> -75;  -75>>2 = -19 (floor of -18.75) -> -56;  -56>>2 = -14 -> -42
    assert column(states, "v", 1) == [-75, -56, -42]
    # v=-1, k=1:    -1>>1 = -1 -> 0, then stays 0
    assert column(states, "v", 2) == [0, 0, 0]
    # v=1, k=1:     1>>1 = 0 -> stays 1 forever (decay alone never reaches 0)
    assert column(states, "v", 3) == [1, 1, 1]
    # v=-3, k=1:    -3>>1 = -2 -> -1;  -1>>1 = -1 -> 0;  0
    assert column(states, "v", 4) == [-1, 0, 0]
    # k=0: no leak
    assert column(states, "v", 5) == [7, 7, 7]


@MODELS
def test_bias_and_integration(model):
    # n0: bias 5, threshold 12, reset to zero, no input.
    #   v: 5, 10, 15 >= 12 -> fires, v = 0;  5, 10, 15 -> fires
    # n1: bias -3, input axons 0 and 1 with weight 3 each (both active: acc = 6).
    #   step0 no input: -3; step1 input: -3 + 6 - 3 = 0; step2 input: 0 + 6 - 3 = 3; step3: 0
    # n2: threshold 32767 (V=16) and leak 1, bias 8: v1 = v - (v >> 1):
    #   0 + 8 = 8;  8 - 4 + 8 = 12;  12 - 6 + 8 = 14;  14 - 7 + 8 = 15;  15 - 7 + 8 = 16;  16 - 8 + 8 = 16
    program = make_program(
        neurons=[dict(threshold=12, bias=5), dict(threshold=100, bias=-3),
                 dict(threshold=32767, leak_shift=1, bias=8)],
        synapses=[(0, 1, 3), (1, 1, 3)], n_inputs=2, membrane_bits=16)
    fired, states, sops = trajectory(model, program, spikes_in(["00", "11", "11", "00", "00", "00"]))
    assert fired[:, 0].tolist() == [0, 0, 1, 0, 0, 1]
    assert column(states, "v", 0) == [5, 10, 0, 5, 10, 0]
    assert column(states, "v", 1) == [-3, 0, 3, 0, -3, -6]
    assert column(states, "v", 2) == [8, 12, 14, 15, 16, 16]
    assert fired[:, 1:].sum() == 0
    # SOPs: axons 0 and 1 (1 synapse each) active in 2 steps
    assert sops == 4


@MODELS
def test_saturation_high_and_low(model):
    # V = 8: v in -128..127. Thresholds 127 + theta 10 = 137 > 127: nobody fires.
    # n0: bias +100: 100; 200 -> 127; input (-100) at step 2: 127 - 100 + 100 = 127 formed at full
    #     precision (saturating after each addition would give sat(127 + 100) - 100 = 27).
    # n1: bias -100: -100; -200 -> -128; -128 + 100 - 100 = -128 (step 2, input +100).
    program = make_program(
        neurons=[dict(threshold=127, bias=100), dict(threshold=127, bias=-100)],
        synapses=[(0, 0, -100), (0, 1, 100)], n_inputs=1, membrane_bits=8, weight_bits=8,
        accumulator_bits=8, theta=[10, 10])
    fired, states, _ = trajectory(model, program, spikes_in(["0", "0", "1", "0"]))
    assert fired.sum() == 0
    assert column(states, "v", 0) == [100, 127, 127, 127]
    assert column(states, "v", 1) == [-100, -128, -128, -128]


@MODELS
def test_saturated_membrane_reaches_top_threshold(model):
    # V = 8, threshold 127 = 2^(V-1)-1, bias 127: v2 = 127 >= 127 fires every step (reset to zero).
    program = make_program(neurons=[dict(threshold=127, bias=127)], n_inputs=1, membrane_bits=8)
    fired, states, _ = trajectory(model, program, spikes_in(["0"] * 3))
    assert fired[:, 0].tolist() == [1, 1, 1]
    assert column(states, "v", 0) == [0, 0, 0]


@MODELS
def test_threshold_compare_is_greater_or_equal(model):
    # input weight 10 to n0 (threshold 10): v2 = 10 >= 10 fires, margin 0.
    # input weight 9 to n1 (threshold 10): v2 = 9 does not fire; next input: 18 fires.
    program = make_program(neurons=[dict(threshold=10), dict(threshold=10)],
                           synapses=[(0, 0, 10), (0, 1, 9)], n_inputs=1)
    fired, states, _ = trajectory(model, program, spikes_in(["1", "1"]))
    assert fired.tolist() == [[1, 0], [1, 1]]
    assert column(states, "v", 1) == [9, 0]


@MODELS
def test_reset_to_zero_and_by_subtraction(model):
    # threshold 10, input weight 13 every step.
    # n0 reset to zero:        13 -> fires, v = 0;   13 -> fires, v = 0
    # n1 reset by subtraction: 13 -> fires, v = 3;   3 + 13 = 16 -> fires, v = 6;   6 + 13 = 19 -> v = 9
    program = make_program(neurons=[dict(threshold=10, reset_mode=0), dict(threshold=10, reset_mode=1)],
                           synapses=[(0, 0, 13), (0, 1, 13)], n_inputs=1)
    fired, states, _ = trajectory(model, program, spikes_in(["1", "1", "1"]))
    assert fired.tolist() == [[1, 1]] * 3
    assert column(states, "v", 0) == [0, 0, 0]
    assert column(states, "v", 1) == [3, 6, 9]


@MODELS
def test_refractory(model):
    # threshold 5, bias 1, input weight 10 every step, refractory 2.
    # n0 (reset to zero): step0 v2 = 11 fires, v = 0, refrac = 2;
    #   step1: refrac 2 -> 1, input and bias discarded, v held at 0;  step2: refrac 1 -> 0, v held;
    #   step3: fires again (refrac = 2);  step4: 1;  step5: 0;  step6: fires.
    # n1 (reset by subtraction, leak 1): step0: 11 fires, v = 11 - 5 = 6; steps 1, 2: v held at 6
    #   (no leak either); step3: v1 = 6 - 3 = 3, v2 = 3 + 10 + 1 = 14 fires, v = 9.
    program = make_program(
        neurons=[dict(threshold=5, bias=1, refractory=2),
                 dict(threshold=5, bias=1, refractory=2, reset_mode=1, leak_shift=1)],
        synapses=[(0, 0, 10), (0, 1, 10)], n_inputs=1)
    fired, states, _ = trajectory(model, program, spikes_in(["1"] * 7))
    assert fired[:, 0].tolist() == [1, 0, 0, 1, 0, 0, 1]
    assert fired[:, 1].tolist() == [1, 0, 0, 1, 0, 0, 1]
    assert column(states, "refrac", 0) == [2, 1, 0, 2, 1, 0, 2]
    assert column(states, "v", 0) == [0] * 7
    assert column(states, "v", 1)[:4] == [6, 6, 6, 9]


@MODELS
def test_refractory_255_and_loaded_countdown(model):
    # A state with refrac = 3 and v = 50: three steps held (v = 50 despite bias 7 and leak 1),
    # then the neuron integrates again: v1 = 50 - 25 = 25, v2 = 25 + 7 = 32.
    # n1: refractory 255 after one spike (bias 200 >= threshold 100 fires at step 0, v = 0):
    # refrac 255, 254, 253, 252 and no further spike.
    program = make_program(neurons=[dict(threshold=1000, bias=7, leak_shift=1),
                                    dict(threshold=100, bias=200, refractory=255)],
                           n_inputs=1, membrane_bits=16)
    state = with_state(program, v=[50, 0], refrac=[3, 0])
    fired, states, _ = trajectory(model, program, spikes_in(["0"] * 4), state=state)
    assert column(states, "refrac", 0) == [2, 1, 0, 0]
    assert column(states, "v", 0) == [50, 50, 50, 32]
    assert fired[:, 1].tolist() == [1, 0, 0, 0]
    assert column(states, "refrac", 1) == [255, 254, 253, 252]


# -- theta (phase 2 compare, phase 4 update) -------------------------------------------------------
@MODELS
def test_theta_increase_decay_and_start_of_step_value(model):
    # threshold 10, theta_inc 5, theta_decay_shift 2, input weight 12 every step, learn on.
    # step0: thr = 10 + 0 = 10, v2 = 12 fires (v = 0). theta: 0 - 0 + 5 = 5.
    #        (the compare used theta at the start of the step, 0, not 5)
    # step1: thr = 15, v2 = 12 no.  theta: 5 - (5 >> 2 = 1) = 4
    # step2: thr = 14, v2 = 24 fires. theta: 4 - 1 + 5 = 8
    # step3: thr = 18, v2 = 12 no.  theta: 8 - 2 = 6
    # step4: thr = 16, v2 = 24 fires. theta: 6 - 1 + 5 = 10
    program = make_program(neurons=[dict(threshold=10, theta_inc=5, theta_decay_shift=2)],
                           synapses=[(0, 0, 12)], n_inputs=1)
    fired, states, _ = trajectory(model, program, spikes_in(["1"] * 5), learn=True)
    assert fired[:, 0].tolist() == [1, 0, 1, 0, 1]
    assert column(states, "theta", 0) == [5, 4, 8, 6, 10]


@MODELS
def test_theta_frozen_without_learn(model):
    # Same program, learn=False: phase 4 is skipped, theta stays 0, so thr = 10 and v2 = 12 every step.
    program = make_program(neurons=[dict(threshold=10, theta_inc=5, theta_decay_shift=2)],
                           synapses=[(0, 0, 12)], n_inputs=1)
    fired, states, _ = trajectory(model, program, spikes_in(["1"] * 5), learn=False)
    assert fired[:, 0].tolist() == [1] * 5
    assert column(states, "theta", 0) == [0] * 5


@MODELS
def test_theta_loaded_without_learning_engine(model):
    # adaptive_threshold without learning: the loaded theta 3 is a fixed offset, thr = 13.
    # input 12 every step: 12 no; 24 fires (v = 0); 12 no; 24 fires.
    program = make_program(neurons=[dict(threshold=10, theta_decay_shift=1)], synapses=[(0, 0, 12)],
                           n_inputs=1, theta=[3], learning=False, adaptive_threshold=True)
    fired, states, _ = trajectory(model, program, spikes_in(["1"] * 4))
    assert fired[:, 0].tolist() == [0, 1, 0, 1]
    assert column(states, "theta", 0) == [3, 3, 3, 3]


@MODELS
def test_theta_saturation(model):
    # V = 8: theta_max = 127. theta 120, theta_inc 20, no decay, threshold 1, bias 127.
    # step0: thr = 121, v2 = 127 fires; theta = usat_7(120 + 20) = 127.
    # step1: thr = 128 > 127 = largest v: no more spikes; theta stays 127.
    program = make_program(neurons=[dict(threshold=1, bias=127, theta_inc=20)], n_inputs=1,
                           membrane_bits=8, theta=[120])
    fired, states, _ = trajectory(model, program, spikes_in(["0"] * 3), learn=True)
    assert fired[:, 0].tolist() == [1, 0, 0]
    assert column(states, "theta", 0) == [127, 127, 127]


@MODELS
def test_theta_decays_while_refractory(model):
    # theta is updated for every neuron, refractory or not: theta 16, shift 1 -> 8, 4, 2, 1, 1
    program = make_program(neurons=[dict(threshold=1000, theta_decay_shift=1, theta_inc=9)],
                           n_inputs=1, membrane_bits=16, theta=[16])
    state = with_state(program, refrac=[3])
    fired, states, _ = trajectory(model, program, spikes_in(["0"] * 5), learn=True, state=state)
    assert fired.sum() == 0
    assert column(states, "theta", 0) == [8, 4, 2, 1, 1]
    assert column(states, "refrac", 0) == [2, 1, 0, 0, 0]


# -- winner-take-all ---------------------------------------------------------------------------
@MODELS
def test_winner_take_all(model):
    # One input axon drives every neuron; refractory 3 and theta_inc 4 for all; learn on.
    # group 1: n0 thr 10 acc 12 -> margin 2 (largest v2, but not the largest margin): loser, v = 0
    #          n1 thr 5  acc 12 -> margin 7, reset by subtraction: winner, v = 7, refrac 3, theta 4
    #          n2 thr 1  acc 8  -> margin 7, tie with n1: the lower index (n1) wins; loser, v = 0,
    #                                no refractory, no theta increment
    #          n3 thr 20 acc 12 -> not a candidate: untouched, v = 12
    # group 2: n4 thr 5  acc 6  -> margin 1, alone: fires
    # group 3: n5 thr 50 acc 12 -> no candidate, nothing fires, v = 12
    # group 0: n6, n7 thr 5 acc 12 -> both fire (no group: every candidate fires)
    common = dict(refractory=3, theta_inc=4)
    program = make_program(
        neurons=[dict(threshold=10, wta_group=1, **common), dict(threshold=5, wta_group=1, reset_mode=1, **common),
                 dict(threshold=1, wta_group=1, **common), dict(threshold=20, wta_group=1, **common),
                 dict(threshold=5, wta_group=2, **common), dict(threshold=50, wta_group=3, **common),
                 dict(threshold=5, **common), dict(threshold=5, **common)],
        synapses=[(0, 0, 12), (0, 1, 12), (0, 2, 8), (0, 3, 12), (0, 4, 6), (0, 5, 12), (0, 6, 12),
                  (0, 7, 12)],
        n_inputs=1, wta_groups=3)
    fired, states, _ = trajectory(model, program, spikes_in(["1"]), learn=True)
    assert fired[0].tolist() == [0, 1, 0, 0, 1, 0, 1, 1]
    assert states[0].v.tolist() == [0, 7, 0, 12, 0, 12, 0, 0]
    assert states[0].refrac.tolist() == [0, 3, 0, 0, 3, 0, 3, 3]
    assert states[0].theta.tolist() == [0, 4, 0, 0, 4, 0, 4, 4]


@MODELS
def test_winner_take_all_tie_lowest_index_equal_neurons(model):
    # Three identical neurons in group 2 with identical input: n0 wins every time it is not
    # refractory. refractory 1: step0 n0 fires (n1, n2 lose, v = 0); step1 n0 refractory, so the
    # candidates are n1, n2 (v2 = 4 each, margin 0): n1 wins; step2: n0 back, n2 loses... n0 wins.
    program = make_program(neurons=[dict(threshold=4, refractory=1, wta_group=2)] * 3,
                           synapses=[(0, 0, 4), (0, 1, 4), (0, 2, 4)], n_inputs=1, wta_groups=2)
    fired, _, _ = trajectory(model, program, spikes_in(["1"] * 3))
    assert fired.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]


# -- phase 3: routing and outputs ------------------------------------------------------------------
@MODELS
def test_routing_delay_and_output_columns(model):
    # chain: input axon 0 -> n0 (route axon 1) -> n1 (route axon 2) -> n2 (no route)
    # input at step 0 only: n0 fires at 0, its spike reaches axon 1 at step 1 -> n1 fires at 1,
    # n2 at 2. outputs [2, 0]: column 0 is n2, column 1 is n0.
    # SOPs: one synapse visited per step 0, 1, 2 -> 3.
    program = make_program(
        neurons=[dict(threshold=1), dict(threshold=5), dict(threshold=5)],
        synapses=[(0, 0, 1), (1, 1, 5), (2, 2, 5)], n_inputs=1, n_axons=3, route=[1, 2, -1],
        outputs=[2, 0])
    inputs = spikes_in(["1", "0", "0", "0"])
    fired, states, sops = trajectory(model, program, inputs)
    assert fired.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    if shows_pending(model):
        assert [s.pending.tolist() for s in states] == [[False, True, False], [False, False, True],
                                                        [False, False, False]] + [[False] * 3]
    assert sops == 3
    result = model.run(program, inputs)
    assert result.spikes.astype(int).tolist() == [[0, 1], [0, 0], [1, 0], [0, 0]]
    assert result.neuron_spikes is None


def _pending_program():
    return make_program(
        neurons=[dict(threshold=1), dict(threshold=5)],
        synapses=[(0, 0, 1), (1, 1, 5)], n_inputs=1, n_axons=2, route=[1, -1])


@SOFTWARE_MODELS
def test_pending_in_state_is_delivered(model):
    # A loaded state with pending[1] set delivers on axon 1 in the first step (n1 fires).
    # (The RTL cannot load a pending spike: see the next test; test_routing_delay_and_output_columns
    # shows its pending spikes delivered.)
    program = _pending_program()
    state = with_state(program, pending=[False, True])
    fired, states, sops = trajectory(model, program, spikes_in(["0", "0"]), state=state)
    assert fired.tolist() == [[0, 1], [0, 0]]
    assert sops == 1


def test_rtl_refuses_a_loaded_pending_spike():
    # Not host visible: loading it would silently drop it, so the RTL engine refuses the state.
    program = _pending_program()
    state = with_state(program, pending=[False, True])
    with pytest.raises(ValueError, match="pending"):
        rtl.run(program, spikes_in(["0", "0"]), state=state)


# -- section 6: clear state, batches ----------------------------------------------------------------
def _batch_program():
    # n0: plastic synapse from input axon 0 (w = 4), threshold 4, theta_inc 2, route -> axon 1.
    # n1: bias 1, threshold 100; axon 1 -> n1 with weight 50 (fixed).
    # STDP: a_plus 1, a_minus 0, shift 0, pre_jump 3, post_jump 0, no decay, w in 0..15.
    return make_program(
        neurons=[dict(threshold=4, theta_inc=2), dict(threshold=100, bias=1)],
        synapses=[(0, 0, 4, True), (1, 1, 50)], n_inputs=1, n_axons=2, route=[0 + 1, -1],
        outputs=[0], stdp=LearningParams(a_plus=1, pre_jump=3, w_min=0, w_max=15))


@MODELS
def test_clear_state_keeps_weights_and_theta(model):
    # Sample 1, inputs [0, 1]:
    #   step0: nothing for n0; n1 v = 1.
    #   step1: acc0 = 4 >= 4 + 0: n0 fires; x0 = 0 + 3 = 3; LTP w = 4 + (1 * 3 >> 0) = 7;
    #          theta0 = 2; pending[1] = True; n1 v = 2.
    # Clear: v, refrac, x, y, pending -> 0; weight 7 and theta 2 kept.
    # Sample 2, inputs [0, 1]:
    #   step0: pending was cleared, so axon 1 is not active (n1 gets no 50): n1 v = 1; 0 SOPs.
    #   step1: acc0 = 7 >= 4 + 2: fires; x0 = 0 + 3 = 3 (x was cleared; else 6 and w = 13);
    #          w = 7 + 3 = 10; theta0 = 4; pending[1] = True; n1 v = 2.
    program = _batch_program()
    inputs = np.array([spikes_in(["0", "1"]), spikes_in(["0", "1"])])
    result = model.run_batch(program, inputs, learn=True)
    assert result.spikes.astype(int).tolist() == [[[0], [1]], [[0], [1]]]
    assert result.sops.tolist() == [1, 1]
    s = result.state
    assert s.weight.tolist() == [10, 50]
    assert s.theta.tolist() == [4, 0]
    assert s.x.tolist() == [3, 0]
    assert s.v.tolist() == [0, 2]
    if shows_pending(model):
        assert s.pending.tolist() == [False, True]
    assert s.y.tolist() == [0, 0] and s.refrac.tolist() == [0, 0]


@MODELS
def test_batch_without_learning_returns_state_after_last_sample(model):
    # Learning off: weights and theta never change; every sample gives the same result:
    #   step1: n0 fires (4 >= 4); pending[1] set; n1 v = 2.
    # The final state is the state after the last sample's last step (not a cleared state).
    program = _batch_program()
    inputs = np.array([spikes_in(["0", "1"])] * 3)
    result = model.run_batch(program, inputs, learn=False)
    assert result.spikes.astype(int).tolist() == [[[0], [1]]] * 3
    assert result.sops.tolist() == [1, 1, 1]
    s = result.state
    assert s.weight.tolist() == [4, 50] and s.theta.tolist() == [0, 0]
    assert s.v.tolist() == [0, 2]
    if shows_pending(model):
        assert s.pending.tolist() == [False, True]


@MODELS
def test_batch_clears_loaded_state_first(model):
    # The given state's v, refrac and pending are cleared before sample 1; its theta and weights kept.
    program = _batch_program()
    state = with_state(program, v=[3, 90], refrac=[5, 5], pending=[False, True], theta=[1, 0],
                       weight=[6, 50])
    # step0: nothing; n1 v = 1.  step1: acc0 = 6 >= 4 + 1 -> fires; n1 v = 2.
    result = model.run_batch(program, np.array([spikes_in(["0", "1"])]), learn=False, state=state)
    assert result.spikes.astype(int).tolist() == [[[0], [1]]]
    assert result.sops.tolist() == [1]
    assert result.state.v.tolist() == [0, 2]
    assert result.state.theta.tolist() == [1, 0] and result.state.weight.tolist() == [6, 50]


# -- phase 4: traces and STDP ------------------------------------------------------------------------
@MODELS
def test_trace_decay_jump_and_saturation(model):
    # X = 4: traces 0..15. pre_decay_shift 1, pre_jump 12; post_decay_shift 2, post_jump 10.
    # axon 0, spikes [1,1,1,0,0,1]:  xd, xn:
    #   0 -> 12;  12 - 6 = 6 + 12 = 18 -> 15;  15 - 7 = 8 + 12 -> 15;  15 - 7 = 8;  8 - 4 = 4;  4 - 2 = 2 + 12 = 14
    # axon 1 (host, never active), x loaded 1: 1 >> 1 = 0, so it stays 1.
    # axon 2 (host, never active), x loaded 3: 3 - 1 = 2;  2 - 1 = 1;  then 1 forever.
    # n0: threshold 1, bias 1, refractory 1 -> fires at steps 0, 2, 4. y:
    #   0 -> 10;  10 - 2 = 8;  8 - 2 = 6 + 10 = 16 -> 15;  15 - 3 = 12;  12 - 3 = 9 + 10 = 19 -> 15;  15 - 3 = 12
    program = make_program(
        neurons=[dict(threshold=1, bias=1, refractory=1)], n_inputs=3, trace_bits=4,
        stdp=LearningParams(pre_decay_shift=1, pre_jump=12, post_decay_shift=2, post_jump=10))
    state = with_state(program, x=[0, 1, 3])
    fired, states, _ = trajectory(model, program, spikes_in(["100", "100", "100", "000", "000", "100"]),
                                  learn=True, state=state)
    assert fired[:, 0].tolist() == [1, 0, 1, 0, 1, 0]
    assert column(states, "x", 0) == [12, 15, 15, 8, 4, 14]
    assert column(states, "x", 1) == [1] * 6
    assert column(states, "x", 2) == [2, 1, 1, 1, 1, 1]
    assert column(states, "y", 0) == [10, 8, 15, 12, 15, 12]


@MODELS
def test_traces_frozen_without_learn(model):
    program = make_program(neurons=[dict(threshold=1, bias=1)], n_inputs=1,
                           stdp=LearningParams(pre_decay_shift=1, pre_jump=5, post_decay_shift=1, post_jump=5))
    state = with_state(program, x=[8], y=[8])
    fired, states, _ = trajectory(model, program, spikes_in(["1", "1"]), learn=False, state=state)
    assert fired[:, 0].tolist() == [1, 1]
    assert column(states, "x", 0) == [8, 8] and column(states, "y", 0) == [8, 8]


@MODELS
def test_ltp_uses_post_jump_pre_trace(model):
    # synapse 0: axon 0 -> n0 plastic, w = 0; synapse 1: axon 1 -> n0 fixed, w = 1.
    # n0: threshold 1, reset by subtraction. a_plus 2, a_minus 0, shift 1, pre_jump 5, no decay.
    # step0 (axons 0, 1): acc = 0 + 1 = 1 fires, v = 0. xn0 = 5 (this step's pre spike counts):
    #        w = 0 + (2 * 5 >> 1) = 5
    # step1 (axon 1): acc = 1 fires, v = 0. xn0 = 5 (no decay): w = 5 + 5 = 10
    # step2 (axons 0, 1): acc = 10 (weight at the start of the step) + 1 = 11 fires, v = 10.
    #        xn0 = 5 + 5 = 10: w = 10 + 10 = 20
    program = make_program(
        neurons=[dict(threshold=1, reset_mode=1)], synapses=[(0, 0, 0, True), (1, 0, 1)], n_inputs=2,
        stdp=LearningParams(a_plus=2, shift=1, pre_jump=5, w_min=0, w_max=100))
    fired, states, _ = trajectory(model, program, spikes_in(["11", "01", "11"]), learn=True)
    assert fired[:, 0].tolist() == [1, 1, 1]
    assert column(states, "weight", 0) == [5, 10, 20]
    assert column(states, "v", 0) == [0, 0, 10]
    assert column(states, "x", 0) == [5, 5, 10]


@MODELS
def test_ltd_uses_decayed_post_trace_before_jump(model):
    # synapse 0: axon 0 -> n0 plastic, w = 50; synapse 1: axon 1 -> n0 fixed, w = 1000 = threshold.
    # a_minus 3, a_plus 0, shift 2, post_jump 8, post_decay_shift 1. V = 16, W = 12.
    # step0 (axon 1): n0 fires; yd = 0, y = 8. No LTD (axon 0 idle).
    # step1 (axon 0): acc = 50, v = 50, no spike. yd = 8 - 4 = 4: w = 50 - (3 * 4 >> 2 = 3) = 47; y = 4
    # step2 (axons 0, 1): acc = 47 + 1000: v2 = 1097 fires, v = 0. yd = 4 - 2 = 2 (before this
    #        step's jump): w = 47 - (3 * 2 >> 2 = 1) = 46; y = 2 + 8 = 10
    #        (with the post-jump trace it would have been 47 - (30 >> 2 = 7) = 40)
    # step3 (axon 0): acc = 46, v = 46. yd = 10 - 5 = 5: w = 46 - (15 >> 2 = 3) = 43; y = 5
    program = make_program(
        neurons=[dict(threshold=1000)], synapses=[(0, 0, 50, True), (1, 0, 1000)], n_inputs=2,
        membrane_bits=16, weight_bits=12, accumulator_bits=16,
        stdp=LearningParams(a_minus=3, shift=2, post_jump=8, post_decay_shift=1, w_min=0, w_max=100))
    fired, states, _ = trajectory(model, program, spikes_in(["01", "10", "11", "10"]), learn=True)
    assert fired[:, 0].tolist() == [1, 0, 1, 0]
    assert column(states, "weight", 0) == [50, 47, 46, 43]
    assert column(states, "y", 0) == [8, 4, 10, 5]
    assert column(states, "v", 0) == [0, 50, 0, 46]


@MODELS
def test_same_step_ltd_then_ltp_each_clamped(model):
    # synapse 0: axon 0 -> n0 plastic, w = 2, range 0..10; synapse 1: axon 1 -> n0 fixed, 100.
    # threshold 100; a_minus 4, a_plus 4, shift 0, pre_jump 1, post_jump 2, no decay.
    # step0 (axon 1): n0 fires: no LTD (axon 0 idle), LTP with xn0 = 0: +0; y = 2.
    # step1 (axons 0, 1): n0 fires (acc 102). LTD: 2 - 4 * 2 = -6 -> clamped to w_min 0;
    #        then LTP with xn0 = 1: 0 + 4 = 4.
    #        (LTP first would give 6 - 8 -> 0; one clamp at the end would give max(-2, 0) = 0)
    # step2 (axon 1): fires; LTP xn0 = 1: 4 + 4 = 8
    # step3 (axon 1): fires; 8 + 4 = 12 -> clamped to w_max 10
    program = make_program(
        neurons=[dict(threshold=100)], synapses=[(0, 0, 2, True), (1, 0, 100)], n_inputs=2,
        stdp=LearningParams(a_plus=4, a_minus=4, pre_jump=1, post_jump=2, w_min=0, w_max=10))
    fired, states, _ = trajectory(model, program, spikes_in(["01", "11", "01", "01"]), learn=True)
    assert fired[:, 0].tolist() == [1, 1, 1, 1]
    assert column(states, "weight", 0) == [2, 4, 8, 10]
    assert column(states, "weight", 1) == [100] * 4     # fixed synapses never change


@MODELS
def test_soft_bound(model):
    # w_min -4, w_max 12: R = 16, u = w + 4. a_plus 3, a_minus 1, shift 5, pre_jump 2, post_jump 3.
    # synapses (axon order): 0,1,2: axons 0, 1, 2 -> n0 plastic w = 0, -4, 4;  3: axon 3 -> n0 fixed 100;
    #   4: axon 4 -> n1 plastic w = 4;  5: axon 5 -> n1 fixed 100. thresholds 50.
    # step0 (axons 0, 1, 2, 3, 5): n0 and n1 fire. yd = 0, so LTD changes nothing. xn = 2 on axons 0-2:
    #   s0: u 4,  R-u 12: 3*2*4*12 = 288 >> 5 = 9   -> 9
    #   s1: u 0:  dw = 0                              -> -4 (at w_min: no longer moves)
    #   s2: u 8,  R-u 8:  3*2*8*8 = 384 >> 5 = 12    -> 16 -> clamped 12
    #   s4: xn4 = 0: dw = 0                           -> 4.   y = 3 for both.
    # step1 (axons 3, 4): n0 fires (100), n1 does not (acc 4 < 50).
    #   LTD s4 (axon 4 active), yd1 = 3: u 8, R-u 8: 1*3*8*8 = 192 >> 5 = 6 -> 4 - 6 = -2
    #   LTP n0, xn0 = 2: s0: u 13, R-u 3: 3*2*13*3 = 234 >> 5 = 7 -> 16 -> 12; s1 -4; s2: u 16: 12
    # step2 (axon 3): n0 fires: every n0 weight sits at w_min or w_max and does not move.
    program = make_program(
        neurons=[dict(threshold=50), dict(threshold=50)],
        synapses=[(0, 0, 0, True), (1, 0, -4, True), (2, 0, 4, True), (3, 0, 100), (4, 1, 4, True),
                  (5, 1, 100)],
        n_inputs=6,
        stdp=LearningParams(a_plus=3, a_minus=1, shift=5, pre_jump=2, post_jump=3, w_min=-4,
                                w_max=12, soft_bound=True))
    fired, states, _ = trajectory(model, program, spikes_in(["111101", "000110", "000100"]), learn=True)
    assert fired.tolist() == [[1, 1], [1, 0], [1, 0]]
    assert [s.weight.tolist() for s in states] == [[9, -4, 12, 100, 4, 100],
                                                   [12, -4, 12, 100, -2, 100],
                                                   [12, -4, 12, 100, -2, 100]]


@MODELS
def test_hard_bound_ltd_clamps_at_w_min(model):
    # w = -3 in -4..4, a_minus 255, shift 0, post trace loaded 1: LTD 255 -> -258 -> clamped to -4.
    # n0 does not fire (threshold 100), so no LTP.
    program = make_program(
        neurons=[dict(threshold=100)], synapses=[(0, 0, -3, True)], n_inputs=1, weight_bits=4,
        stdp=LearningParams(a_minus=255, w_min=-4, w_max=4))
    state = with_state(program, y=[1])
    _, states, _ = trajectory(model, program, spikes_in(["1"]), learn=True, state=state)
    assert states[0].weight.tolist() == [-4]


@MODELS
def test_learn_requires_learning_engine(model):
    program = make_program(neurons=[dict(threshold=1)], n_inputs=1, learning=False)
    with pytest.raises(ValueError, match="learn"):
        model.run(program, spikes_in(["1"]), learn=True)
    with pytest.raises(ValueError, match="learn"):
        model.run_batch(program, np.array([spikes_in(["1"])]), learn=True)
