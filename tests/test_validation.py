"""Bad configurations and bad programs are rejected with a ValueError naming the field and limit.

docs/core-spec.md, section 1 (``CoreConfig``) and section 7 (``CoreProgram.validate()``); also the
argument checks of the models' ``run`` / ``run_batch``.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import CoreProgram, CoreState, LearningParams, NeuronParams
from neurocore.sim import golden, reference

MODELS = pytest.mark.parametrize("model", [golden, reference], ids=["golden", "reference"])


def exact(text: str) -> str:
    return re.escape(text)


# -- section 1: CoreConfig -------------------------------------------------------------------------
CONFIG_RANGES = [
    ("neurons", 1, 65536), ("axons", 1, 65536), ("synapses", 1, 1 << 24), ("weight_bits", 2, 16),
    ("membrane_bits", 8, 32), ("trace_bits", 2, 16), ("wta_groups", 1, 256),
]


@pytest.mark.parametrize("field,low,high", CONFIG_RANGES, ids=[r[0] for r in CONFIG_RANGES])
def test_config_field_out_of_range(field, low, high):
    for bad in (low - 1, high + 1):
        with pytest.raises(ValueError, match=exact(f"CoreConfig.{field} must be in {low}..{high}, got {bad}")):
            CoreConfig(**{field: bad})
    CoreConfig(**{field: low})     # the ends are allowed
    CoreConfig(**{field: high})


@pytest.mark.parametrize("field", [r[0] for r in CONFIG_RANGES] + ["accumulator_bits"])
@pytest.mark.parametrize("bad", [8.0, "8", True, None], ids=["float", "str", "bool", "none"])
def test_config_field_wrong_type(field, bad):
    with pytest.raises(ValueError, match=rf"CoreConfig\.{field} must be an integer in \d+\.\.\d+, got {re.escape(repr(bad))}"):
        CoreConfig(**{field: bad})


@pytest.mark.parametrize("field", ["learning", "wta", "adaptive_threshold"])
@pytest.mark.parametrize("bad", [1, 0, "yes", None, np.bool_(True)], ids=["one", "zero", "str", "none", "npbool"])
def test_config_feature_not_bool(field, bad):
    with pytest.raises(ValueError, match=rf"CoreConfig\.{field} must be True or False"):
        CoreConfig(**{field: bad})


def test_config_accumulator_bits():
    # W .. 32: at least weight_bits
    with pytest.raises(ValueError, match=exact("CoreConfig.accumulator_bits must be in 12..32, got 11")):
        CoreConfig(weight_bits=12, accumulator_bits=11)
    with pytest.raises(ValueError, match=r"CoreConfig\.accumulator_bits must be in \d+\.\.32, got 33"):
        CoreConfig(accumulator_bits=33)
    with pytest.raises(ValueError, match=r"CoreConfig\.accumulator_bits must be in \d+\.\.32"):
        CoreConfig(weight_bits=2, accumulator_bits=1)
    assert CoreConfig(weight_bits=12, accumulator_bits=12).accumulator_bits == 12
    assert CoreConfig(weight_bits=16, accumulator_bits=32).accumulator_bits == 32


def test_config_from_dict_unknown_field():
    with pytest.raises(ValueError, match="unknown field.*neuronz"):
        CoreConfig.from_dict({"neuronz": 3})


# -- section 7: CoreProgram.validate() ---------------------------------------------------------------
# V = 8: theta/threshold 1..127, bias -128..127; W = 8: weights -128..127; X = 4: traces 0..15;
# C = 12: accumulator -2048..2047; G = 2.
CONFIG = CoreConfig(neurons=4, axons=6, synapses=8, weight_bits=8, membrane_bits=8, accumulator_bits=12,
                    trace_bits=4, wta_groups=2)
LEARNING = LearningParams(a_plus=1, a_minus=1, shift=0, pre_jump=1, post_jump=1, w_min=-10, w_max=10)


def base(config: CoreConfig = CONFIG, **changes) -> CoreProgram:
    """A valid program: 3 neurons, 2 host inputs, 2 internal axons (routes of n0, n1), 5 synapses."""
    args = dict(n_inputs=2, n_axons=4, axon=[0, 0, 1, 2, 3], target=[0, 1, 2, 0, 1],
                weight=[5, -5, 3, 1, 2], plastic=[False, False, True, False, False],
                neurons=NeuronParams(threshold=[10, 10, 10], leak_shift=[0, 1, 2], reset_mode=[0, 1, 0],
                                     refractory=[0, 1, 2], bias=[0, 0, 0], theta_inc=[1, 0, 0],
                                     theta_decay_shift=[0, 0, 0], wta_group=[1, 1, 0]),
                route=[2, 3, -1], outputs=[0, 2], learning=LEARNING, theta=[0, 5, 0])
    args.update(changes)
    return CoreProgram.from_synapses(config, **args)


def test_base_is_valid():
    program = base()
    assert program.validate() is program
    assert program.ptr.tolist() == [0, 2, 3, 4, 5]


def bad_program(mutate) -> CoreProgram:
    program = base()
    mutate(program)
    return program


def raises(program: CoreProgram, message: str, *, regex: bool = False):
    with pytest.raises(ValueError, match=message if regex else exact(message)):
        program.validate()


def test_capacities():
    small = dataclasses.replace(CONFIG, neurons=2)
    with pytest.raises(ValueError, match=exact("n_neurons = 3 is outside 1..2")):
        base(small)
    with pytest.raises(ValueError, match=exact("n_axons = 4 is outside 1..3")):
        base(dataclasses.replace(CONFIG, axons=3))
    with pytest.raises(ValueError, match=exact("n_synapses = 5 is outside 0..4")):
        base(dataclasses.replace(CONFIG, synapses=4))
    with pytest.raises(ValueError, match=exact("n_inputs = 5 is outside 0..4")):
        base(n_inputs=5, route=None)


def test_ptr_rules():
    def set_ptr(values):
        return lambda p: setattr(p, "ptr", np.array(values, np.int64))
    raises(bad_program(set_ptr([1, 2, 3, 4, 5])), "ptr[0] = 1, must be 0")
    raises(bad_program(set_ptr([0, 2, 3, 4, 4])), "ptr[4] = 4, must equal the row synapse count 5 (the length of target)")
    raises(bad_program(set_ptr([0, 3, 2, 4, 5])), "ptr must be non-decreasing: ptr[2] = 2 < ptr[1] = 3")


def test_array_lengths():
    raises(bad_program(lambda p: setattr(p, "weight", p.weight[:4])), "target has 5 row synapses but weight only 4 words")
    raises(bad_program(lambda p: setattr(p, "plastic", p.plastic[:4])), "plastic has length 4, expected 5 (one per weight word)")
    raises(bad_program(lambda p: setattr(p, "theta", p.theta[:2])), "theta has length 2, expected 3")
    raises(bad_program(lambda p: setattr(p, "route", p.route[:2])), "route has length 2, expected 3")
    with pytest.raises(ValueError, match=exact("neurons.bias has length 2, expected 3")):
        NeuronParams(threshold=[1, 1, 1], leak_shift=[0, 0, 0], reset_mode=[0, 0, 0], refractory=[0, 0, 0],
                     bias=[0, 0], theta_inc=[0, 0, 0], theta_decay_shift=[0, 0, 0], wta_group=[0, 0, 0])
    with pytest.raises(ValueError, match="synapse arrays differ in length"):
        base(weight=[1, 2, 3])
    with pytest.raises(ValueError, match="must be a 1-D integer array"):
        base(weight=[1.5, 2, 3, 4, 5])


# (parameter, bad value, low, high) with V = 8, G = 2
NEURON_LIMITS = [
    ("threshold", 0, 1, 127), ("threshold", 128, 1, 127),
    ("leak_shift", -1, 0, 7), ("leak_shift", 8, 0, 7),
    ("reset_mode", -1, 0, 1), ("reset_mode", 2, 0, 1),
    ("refractory", -1, 0, 255), ("refractory", 256, 0, 255),
    ("bias", -129, -128, 127), ("bias", 128, -128, 127),
    ("theta_inc", -1, 0, 127), ("theta_inc", 128, 0, 127),
    ("theta_decay_shift", -1, 0, 7), ("theta_decay_shift", 8, 0, 7),
    ("wta_group", -1, 0, 2), ("wta_group", 3, 0, 2),
]


@pytest.mark.parametrize("name,value,low,high", NEURON_LIMITS,
                         ids=[f"{n}={v}" for n, v, _, _ in NEURON_LIMITS])
def test_neuron_parameter_ranges(name, value, low, high):
    def mutate(p):
        getattr(p.neurons, name)[2] = value
    raises(bad_program(mutate), f"neurons.{name}[2] = {value} is outside {low}..{high}")


def test_weight_and_target_ranges():
    def weight(p):
        p.weight[1] = -129
    raises(bad_program(weight), "weight[1] = -129 is outside -128..127")

    def weight_hi(p):
        p.weight[0] = 128
    raises(bad_program(weight_hi), "weight[0] = 128 is outside -128..127")

    def target(p):
        p.target[4] = 3
    raises(bad_program(target), "target[4] = 3 is outside 0..2")

    def negative(p):
        p.target[0] = -1
    raises(bad_program(negative), "target[0] = -1 is outside 0..2")


def test_row_targets_must_be_consecutive():
    # base(): axon 0 drives neurons 0, 1 (synapses 0, 1)
    def gap(p):
        p.target[1] = 2
    raises(bad_program(gap), "target[1] = 2, must be target[0] + 1 = 1: a row (axon 0) drives "
                             "consecutive neurons")

    def backwards(p):
        p.target[:2] = [1, 0]
    raises(bad_program(backwards), "target[1] = 0, must be target[0] + 1 = 2: a row (axon 0) drives "
                                   "consecutive neurons")
    # a new row may start anywhere
    program = base()
    program.target[2] = 0
    program.validate()


def test_from_synapses_builds_rows():
    # axon 0 -> neurons 2 and 0 (listed out of order): one row 0, 1, 2 with a zero gap at 1
    program = base(axon=[0, 0, 1], target=[2, 0, 1], weight=[7, -7, 3], plastic=[True, False, False])
    assert program.ptr.tolist() == [0, 3, 4, 4, 4]
    assert program.target.tolist() == [0, 1, 2, 1]
    assert program.weight.tolist() == [-7, 0, 7, 3]
    assert program.plastic.tolist() == [False, False, True, False]
    assert program.row_first().tolist() == [0, 1, 0, 0]
    # LTP visits, per neuron, the axons with a plastic synapse to it: only n2 has one (axon 0)
    first, count = program.ltp_ranges()
    assert first.tolist() == [0, 0, 0] and count.tolist() == [0, 0, 1]


def test_from_synapses_rejects_a_pair_listed_twice():
    with pytest.raises(ValueError, match=exact(
            "axon 1 is connected to neuron 2 twice (synapses 1 and 3); a row reaches each neuron once: "
            "merge the weights")):
        base(axon=[0, 1, 2, 1], target=[0, 2, 1, 2], weight=[1, 2, 3, 4], plastic=None)


def test_ltp_ranges_span_plastic_synapses_only():
    # n0: plastic from axons 1 and 3, fixed from 0 and 2: range 1..3
    program = base(axon=[0, 1, 2, 3], target=[0, 0, 0, 0], weight=[1, 2, 3, 4],
                   plastic=[False, True, False, True])
    first, count = program.ltp_ranges()
    assert first.tolist() == [1, 0, 0] and count.tolist() == [3, 0, 0]


# (field, bad value, message) with X = 4 (traces 0..15), W = 8, w_min = -10
LEARNING_LIMITS = [
    ("a_plus", 256, "learning.a_plus = 256 is outside 0..255"),
    ("a_plus", -1, "learning.a_plus = -1 is outside 0..255"),
    ("a_minus", 256, "learning.a_minus = 256 is outside 0..255"),
    ("a_minus", -1, "learning.a_minus = -1 is outside 0..255"),
    ("shift", 48, "learning.shift = 48 is outside 0..47"),
    ("shift", -1, "learning.shift = -1 is outside 0..47"),
    ("pre_decay_shift", 16, "learning.pre_decay_shift = 16 is outside 0..15"),
    ("post_decay_shift", 16, "learning.post_decay_shift = 16 is outside 0..15"),
    ("post_decay_shift", -1, "learning.post_decay_shift = -1 is outside 0..15"),
    ("pre_jump", 16, "learning.pre_jump = 16 is outside 0..15"),
    ("post_jump", 16, "learning.post_jump = 16 is outside 0..15"),
    ("post_jump", -1, "learning.post_jump = -1 is outside 0..15"),
    ("w_min", -129, "learning.w_min = -129 is outside -128..127"),
    ("w_max", 128, "learning.w_max = 128 is outside -10..127"),
    ("w_max", -11, "learning.w_max = -11 is outside -10..127"),     # w_max < w_min
    ("a_plus", 1.0, "learning.a_plus must be an integer in 0..255, got 1.0"),
    ("shift", True, "learning.shift must be an integer in 0..47, got True"),
    ("soft_bound", 1, "learning.soft_bound must be True or False, got 1"),
]


@pytest.mark.parametrize("name,value,message", LEARNING_LIMITS, ids=[f"{n}={v!r}" for n, v, _ in LEARNING_LIMITS])
def test_learning_parameter_ranges(name, value, message):
    # refused by LearningParams itself where the range needs no config, else by validate()
    program = base()
    with pytest.raises(ValueError, match=exact(message)):
        program.learning = dataclasses.replace(LEARNING, **{name: value})
        program.validate()


def test_features_left_out():
    # plastic synapses without learning
    with pytest.raises(ValueError, match=exact("plastic[2] is set but the core is configured without learning")):
        base(dataclasses.replace(CONFIG, learning=False))
    # a WTA group without wta (groups must be 0)
    with pytest.raises(ValueError, match=exact("neurons.wta_group[0] = 1 is outside 0..0")):
        base(dataclasses.replace(CONFIG, wta=False))
    # theta_inc > 0 without adaptive_threshold
    no_theta = dataclasses.replace(CONFIG, adaptive_threshold=False)
    with pytest.raises(ValueError, match=exact("neurons.theta_inc[0] = 1 is outside 0..0")):
        base(no_theta, theta=None)
    with pytest.raises(ValueError, match=exact("theta[1] = 5 is outside 0..0")):      # where it enters
        base(no_theta)
    # initial theta without adaptive_threshold
    program = base()
    program.neurons.theta_inc[0] = 0
    program.config = no_theta
    raises(program, "theta[1] = 5 is outside 0..0")


def test_wta_group_above_g():
    # a wta_group > G
    program = base(dataclasses.replace(CONFIG, wta_groups=1), neurons=NeuronParams.uniform(3, threshold=5),
                   theta=None)
    program.neurons.wta_group[1] = 2
    raises(program, "neurons.wta_group[1] = 2 is outside 0..1")


def test_routes():
    raises(bad_program(lambda p: p.route.__setitem__(2, 1)),
           "route[2] = 1 is outside the internal axons 2..3 (or -1 for none)")       # a host axon
    raises(bad_program(lambda p: p.route.__setitem__(2, 4)),
           "route[2] = 4 is outside the internal axons 2..3 (or -1 for none)")       # beyond n_axons
    raises(bad_program(lambda p: p.route.__setitem__(2, -2)),
           "route[2] = -2 is outside the internal axons 2..3 (or -1 for none)")
    raises(bad_program(lambda p: p.route.__setitem__(2, 3)),
           "axon 3 is the route of more than one neuron (neurons [1, 2])")


def test_outputs():
    raises(bad_program(lambda p: setattr(p, "outputs", np.array([0, 3]))), "outputs[1] = 3 is outside 0..2")
    raises(bad_program(lambda p: p.outputs.__setitem__(0, -1)), "outputs[0] = -1 is outside 0..2")
    with pytest.raises(ValueError, match=exact("outputs[0] = -1 is outside 0..65535")):   # where it enters
        base().outputs = np.array([-1])
    raises(bad_program(lambda p: setattr(p, "outputs", np.array([2, 0, 2]))), "outputs lists neuron 2 more than once")


def test_plastic_weight_outside_plastic_range():
    raises(bad_program(lambda p: p.weight.__setitem__(2, 11)), "plastic weight[0] = 11 is outside -10..10")
    raises(bad_program(lambda p: p.weight.__setitem__(2, -11)), "plastic weight[0] = -11 is outside -10..10")


def test_initial_theta_range():
    raises(bad_program(lambda p: p.theta.__setitem__(0, 128)), "theta[0] = 128 is outside 0..127")
    raises(bad_program(lambda p: p.theta.__setitem__(2, -1)), "theta[2] = -1 is outside 0..127")


def test_accumulator_bound():
    # C = 8: -128..127. Three synapses of 100 from different axons to n0: 300 > 127.
    config = dataclasses.replace(CONFIG, accumulator_bits=8)
    with pytest.raises(ValueError, match=exact("neuron 0 can receive 300 in one step, beyond the 8-bit "
                                               "accumulator range -128..127")):
        base(config, axon=[0, 1, 2], target=[0, 0, 0], weight=[100, 100, 100], plastic=None)
    with pytest.raises(ValueError, match=exact("neuron 1 can receive -200 in one step, beyond the 8-bit "
                                               "accumulator range -128..127")):
        base(config, axon=[0, 1, 2], target=[0, 1, 1], weight=[100, -100, -100], plastic=None)
    # exactly at the bound is fine: 127 = 100 + 27 and -128 = -100 - 28
    base(config, axon=[0, 1, 2, 3], target=[0, 0, 1, 1], weight=[100, 27, -100, -28], plastic=None)
    # plastic synapses count with w_max (upper) and w_min (lower), whatever their current weight
    wide = dataclasses.replace(LEARNING, w_min=-100, w_max=100)
    with pytest.raises(ValueError, match=exact("neuron 0 can receive 200 in one step")):
        base(config, axon=[0, 1], target=[0, 0], weight=[0, 0], plastic=[True, True], learning=wide)
    with pytest.raises(ValueError, match=exact("neuron 0 can receive -200 in one step")):
        base(config, axon=[0, 1], target=[0, 0], weight=[0, 0], plastic=[True, True],
             learning=dataclasses.replace(wide, w_max=0))


# -- arguments of run / run_batch ------------------------------------------------------------------
@MODELS
def test_run_rejects_bad_inputs(model):
    program = base()
    with pytest.raises(ValueError, match="inputs.*shape"):
        model.run(program, np.zeros((3, 3), bool))            # 3 columns, n_inputs = 2
    with pytest.raises(ValueError, match="inputs.*shape"):
        model.run(program, np.zeros(2, bool))                 # 1-D
    with pytest.raises(ValueError, match="inputs.*shape"):
        model.run(program, np.zeros((1, 3, 2), bool))         # a batch given to run
    with pytest.raises(ValueError, match="inputs"):
        model.run(program, np.full((3, 2), 2))                # not spikes
    with pytest.raises(ValueError, match="inputs"):
        model.run(program, np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="inputs.*shape"):
        model.run_batch(program, np.zeros((3, 2), bool))      # not a batch
    with pytest.raises(ValueError, match="inputs.*shape"):
        model.run_batch(program, np.zeros((2, 3, 1), bool))
    # 0/1 integers are spikes too
    assert model.run(program, np.ones((2, 2), np.int64)).spikes.shape == (2, 2)


@MODELS
def test_run_rejects_state_of_another_program(model):
    program = base()
    state = CoreState.initial(program)
    state.v = state.v[:2]
    with pytest.raises(ValueError, match=r"state\.v"):
        model.run(program, np.zeros((1, 2), bool), state=state)


# -- fields refused where they enter (section 7): nothing wraps, nothing is truncated -------------
U64_MAX = int(np.iinfo(np.uint64).max)     # wraps to -1 in a plain int64 conversion


def set_field(name, value):
    return lambda p: setattr(p, name, value)


# (id, action on a valid program, exact message)
ENTRY_CASES = [
    ("uint64 weight", set_field("weight", np.full(5, U64_MAX, np.uint64)),
     f"weight[0] = {U64_MAX} is outside -128..127 (5 values out of range)"),
    ("uint64 route", set_field("route", np.array([U64_MAX, 3, 2], np.uint64)),
     f"route[0] = {U64_MAX} is outside -1..65535"),
    ("uint64 target", set_field("target", np.array([0, 1, 2, 0, U64_MAX], np.uint64)),
     f"target[4] = {U64_MAX} is outside 0..65535"),
    ("uint64 theta", set_field("theta", np.array([U64_MAX, 0, 0], np.uint64)),
     f"theta[0] = {U64_MAX} is outside 0..127"),
    ("uint64 bias", lambda p: setattr(p.neurons, "bias", np.full(3, U64_MAX, np.uint64)),
     f"neurons.bias[0] = {U64_MAX} is outside -2147483648..2147483647 (3 values out of range)"),
    ("float weight", set_field("weight", np.array([5.0, -5, 3, 1, 2])),
     "weight must be a 1-D integer array, got shape (5,) dtype float64"),
    ("float threshold", lambda p: setattr(p.neurons, "threshold", np.full(3, 10.5)),
     "neurons.threshold must be a 1-D integer array, got shape (3,) dtype float64"),
    ("string ptr", set_field("ptr", np.array(["0", "2", "3", "4", "5"])),
     "ptr must be a 1-D integer array, got shape (5,) dtype <U1"),
    ("2-D plastic", set_field("plastic", np.zeros((1, 5), bool)),
     "plastic must be a 1-D array of flags (bool or 0/1), got shape (1, 5)"),
    ("plastic 2", set_field("plastic", [2, 0, 0, 0, 0]), "plastic[0] = 2 is not a flag (0/1 or bool)"),
    ("float plastic", set_field("plastic", [0.5, 0, 0, 0, 0]),
     "plastic must be a 1-D array of flags (bool or 0/1), got dtype float64"),
    ("2-D outputs", set_field("outputs", np.array([[0, 2]])),
     "outputs must be a 1-D integer array, got shape (1, 2) dtype int64"),
    ("n_inputs 64.7", set_field("n_inputs", 64.7), "n_inputs must be an integer in 0..65536, got 64.7"),
    ("n_inputs '64'", set_field("n_inputs", "64"), "n_inputs must be an integer in 0..65536, got '64'"),
    ("n_inputs True", set_field("n_inputs", True), "n_inputs must be an integer in 0..65536, got True"),
    ("config dict", set_field("config", {"neurons": 4}), "config must be a CoreConfig, got dict"),
    ("learning dict", set_field("learning", {"a_plus": 1}), "learning must be a LearningParams, got dict"),
    ("neurons list", set_field("neurons", [1, 2, 3]), "neurons must be a NeuronParams, got list"),
]


@pytest.mark.parametrize("action,message", [c[1:] for c in ENTRY_CASES], ids=[c[0] for c in ENTRY_CASES])
def test_fields_refused_where_they_enter(action, message):
    program = base()
    before = {name: getattr(program, name) for name in ("weight", "route", "ptr", "plastic")}
    with pytest.raises(ValueError, match=exact(message)):
        action(program)
    for name, value in before.items():                       # nothing half-assigned
        assert getattr(program, name) is value


def test_construction_refuses_what_entry_refuses():
    with pytest.raises(ValueError, match=exact(f"weight[0] = {U64_MAX} is outside -128..127")):
        base(weight=np.array([U64_MAX, 0, 0, 0, 0], np.uint64))
    with pytest.raises(ValueError, match=exact("n_inputs must be an integer in 0..65536, got 64.7")):
        base(n_inputs=64.7)
    with pytest.raises(ValueError, match=exact("plastic must be a 1-D array of flags (bool or 0/1), "
                                               "got shape (1, 5)")):
        base(plastic=[[False, False, True, False, False]])
    with pytest.raises(ValueError, match=exact("n_axons must be an integer in 1..65536, got 4.0")):
        base(n_axons=4.0)
    with pytest.raises(ValueError, match=exact("neurons.threshold must be an integer in 0..2147483647, got 10.5")):
        NeuronParams.uniform(3, threshold=10.5)
    with pytest.raises(ValueError, match=exact("NeuronParams.uniform: n must be a non-negative integer, got 3.0")):
        NeuronParams.uniform(3.0, threshold=10)
    # numpy integers are integers; they become plain int
    assert base(n_inputs=np.int64(2)).n_inputs == 2 and type(base(n_inputs=np.uint8(2)).n_inputs) is int
    assert base(n_inputs=np.array(2)).n_inputs == 2                   # a 0-d array, as from numpy.load
    with pytest.raises(ValueError, match=exact("n_inputs must be an integer in 0..65536, got np.float64(64.7)")):
        base(n_inputs=np.array(64.7))


def test_program_validates_on_construction():
    program = base()
    fields = {f.name: getattr(program, f.name) for f in dataclasses.fields(program)}
    target = program.target.copy()
    target[4] = 3                                            # n_neurons = 3
    with pytest.raises(ValueError, match=exact("target[4] = 3 is outside 0..2")):
        CoreProgram(**{**fields, "target": target})
    with pytest.raises(ValueError, match=exact("target[4] = 3 is outside 0..2")):
        dataclasses.replace(program, target=target)
    with pytest.raises(ValueError, match=exact("neurons.bias has length 2, expected 3")):
        program.neurons.bias = np.zeros(2, np.int64)         # accepted by the field, refused as a whole
        program.validate()


LEARNING_ENTRY = [
    ("a_plus", 0.9, "learning.a_plus must be an integer in 0..255, got 0.9"),
    ("a_minus", np.float64(2.0), "learning.a_minus must be an integer in 0..255, got np.float64(2.0)"),
    ("shift", "3", "learning.shift must be an integer in 0..47, got '3'"),
    ("pre_decay_shift", 16, "learning.pre_decay_shift = 16 is outside 0..15"),
    ("pre_jump", 1.5, "learning.pre_jump must be an integer, got 1.5"),
    ("w_max", U64_MAX + 0.0, f"learning.w_max must be an integer, got {float(U64_MAX)!r}"),
    ("w_min", None, "learning.w_min must be an integer, got None"),
    ("soft_bound", "no", "learning.soft_bound must be True or False, got 'no'"),
]


@pytest.mark.parametrize("name,value,message", LEARNING_ENTRY, ids=[f"{n}={v!r}" for n, v, _ in LEARNING_ENTRY])
def test_learning_parameters_refused_on_construction(name, value, message):
    with pytest.raises(ValueError, match=exact(message)):
        LearningParams(**{name: value})


def test_learning_parameters_become_plain_values():
    lp = LearningParams(a_plus=np.int64(3), w_min=np.int16(-4), w_max=np.uint64(4), soft_bound=np.bool_(True))
    assert (lp.a_plus, lp.w_min, lp.w_max, lp.soft_bound) == (3, -4, 4, True)
    assert type(lp.a_plus) is int and type(lp.w_max) is int and type(lp.soft_bound) is bool


# -- the models refuse what the spec does not allow, before the first step ---------------------------
# Each of these once crashed the golden model's kernel (segfault, out-of-bounds write or read,
# a wrapped weight); both models now refuse them with the same message.
IN_PLACE_CASES = [
    ("target 100000", lambda p: p.target.__setitem__(4, 100000), "target[4] = 100000 is outside 0..2"),
    ("ptr", lambda p: p.ptr.__setitem__(1, 50), "ptr must be non-decreasing: ptr[2] = 3 < ptr[1] = 50"),
    ("route", lambda p: p.route.__setitem__(2, 70000),
     "route[2] = 70000 is outside the internal axons 2..3 (or -1 for none)"),
    ("wta_group", lambda p: p.neurons.wta_group.__setitem__(0, 200), "neurons.wta_group[0] = 200 is outside 0..2"),
    ("outputs", lambda p: p.outputs.__setitem__(0, -7), "outputs[0] = -7 is outside 0..2"),
    ("short bias", lambda p: setattr(p.neurons, "bias", np.zeros(2, np.int64)),
     "neurons.bias has length 2, expected 3"),
]


@MODELS
@pytest.mark.parametrize("mutate,message", [c[1:] for c in IN_PLACE_CASES], ids=[c[0] for c in IN_PLACE_CASES])
def test_run_validates_the_program(model, mutate, message):
    program = base()
    mutate(program)                        # arrays changed in place after construction
    with pytest.raises(ValueError, match=exact(message)):
        model.run(program, np.ones((2, 2), bool))
    with pytest.raises(ValueError, match=exact(message)):
        model.run_batch(program, np.ones((1, 2, 2), bool))


def set_state(name, value):
    return lambda s: setattr(s, name, value)


def set_item(name, index, value):
    return lambda s: getattr(s, name).__setitem__(index, value)


# V = 8, refractory 8 bits, X = 4, W = 8, n_inputs = 2 of 4 axons; synapse 2 is plastic (w -10..10)
STATE_CASES = [
    ("short theta", set_state("theta", np.zeros(2, np.int64)), "state.theta has shape (2,), expected (3,)"),
    ("2-D v", set_state("v", np.zeros((3, 1), np.int64)), "state.v has shape (3, 1), expected (3,)"),
    ("weight 40000", set_item("weight", 0, 40000), "state.weight[0] = 40000 is outside -128..127"),
    ("uint64 weight", set_state("weight", np.full(5, U64_MAX, np.uint64)),
     f"state.weight[0] = {U64_MAX} is outside -128..127 (5 values out of range)"),
    ("float v", set_state("v", np.zeros(3)), "state.v must be a 1-D integer array, got shape (3,) dtype float64"),
    ("v", set_item("v", 1, 128), "state.v[1] = 128 is outside -128..127"),
    ("refrac", set_item("refrac", 0, 256), "state.refrac[0] = 256 is outside 0..255"),
    ("theta", set_item("theta", 0, 128), "state.theta[0] = 128 is outside 0..127"),
    ("y", set_item("y", 2, 16), "state.y[2] = 16 is outside 0..15"),
    ("x", set_item("x", 0, -1), "state.x[0] = -1 is outside 0..15"),
    ("pending 2", set_state("pending", np.array([0, 0, 2, 0])), "state.pending[2] = 2 is not a flag (0/1 or bool)"),
    ("pending host", set_item("pending", 1, True),
     "state.pending[1] is set on host axon 1: only internal axons 2..3 can be pending"),
    ("plastic weight", set_item("weight", 2, 11),
     "state.weight[2] = 11 is a plastic weight outside w_min..w_max = -10..10"),
]


@MODELS
@pytest.mark.parametrize("mutate,message", [c[1:] for c in STATE_CASES], ids=[c[0] for c in STATE_CASES])
def test_run_checks_the_state(model, mutate, message):
    program = base()
    state = CoreState.initial(program)
    mutate(state)
    with pytest.raises(ValueError, match=exact(message)):
        model.run(program, np.ones((2, 2), bool), state=state)
    with pytest.raises(ValueError, match=exact(message)):
        model.run_batch(program, np.ones((1, 2, 2), bool), state=state)


@MODELS
def test_run_checks_the_accumulator_bound_of_the_live_weights(model):
    # C = 8: neuron 0 gets exactly 127 from its fixed synapses; one more in the state breaks the bound
    program = base(dataclasses.replace(CONFIG, accumulator_bits=8), axon=[0, 1, 2, 3], target=[0, 0, 1, 1],
                   weight=[100, 27, -100, -28], plastic=None)
    state = CoreState.initial(program)
    state.weight[1] = 28
    with pytest.raises(ValueError, match=exact("state.weight: neuron 0 can receive 128 in one step, beyond "
                                               "the 8-bit accumulator range -128..127")):
        model.run(program, np.ones((1, 2), bool), state=state)


@MODELS
def test_run_accepts_a_valid_state_and_leaves_it_alone(model):
    program = base()
    state = CoreState.initial(program)
    state.v = np.array([-128, 127, 3], np.int16)             # any integer type within the width
    state.pending = np.array([0, 0, 1, 0], np.uint8)         # 0/1 flags; internal axon 2
    state.weight[2] = 10
    before = state.copy()
    result = model.run(program, np.zeros((1, 2), bool), state=state)
    assert state.equals(before) and state.v.dtype == np.int16
    assert result.state.v.dtype == np.int64 and result.state.pending.dtype == bool


@MODELS
def test_run_refuses_bad_arguments(model):
    program = base()
    inputs = np.ones((2, 2), bool)
    with pytest.raises(ValueError, match=exact("program must be a CoreProgram, got str")):
        model.run("program.npz", inputs)
    with pytest.raises(ValueError, match=exact("state must be a CoreState, got dict")):
        model.run(program, inputs, state={"v": [0, 0, 0]})
    with pytest.raises(ValueError, match=exact("learn must be True or False, got 'yes'")):
        model.run(program, inputs, learn="yes")
    with pytest.raises(ValueError, match=exact("learn=True needs a core configured with learning "
                                               "(CoreConfig.learning is False)")):
        model.run(base(dataclasses.replace(CONFIG, learning=False), plastic=None), inputs, learn=True)
    with pytest.raises(ValueError, match=exact("inputs[1, 0] = 2 is not a spike (bool or 0/1)")):
        model.run(program, np.array([[0, 1], [2, 0]]))
    with pytest.raises(ValueError, match=exact("inputs must be spikes: a bool array or integers 0/1, "
                                               "got dtype float64")):
        model.run_batch(program, np.full((1, 3, 2), 0.5))
    with pytest.raises(ValueError, match=exact("inputs must have shape [B, T, n_inputs] with n_inputs = 2, "
                                               "got shape (3, 2)")):
        model.run_batch(program, np.zeros((3, 2), bool))
    assert model.run(program, np.zeros((0, 2))).spikes.shape == (0, 2)     # no steps: any dtype
