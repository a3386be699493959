"""Hand-computed examples of shared rows (segments over kernel words), structural k-WTA blocks
and learning on shared words (docs/core-spec.md, sections 3, 5 and 7).

Every expected number is worked out by hand in the comments, never by calling a model; each
example runs on the golden model, the pure-Python reference and the RTL (tests/hw/rtl_model.py).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import CoreProgram, CoreState, LearningParams, NeuronParams, Segments, WtaBlocks
from neurocore.sim import golden, reference

def _import_rtl_model():
    """tests/hw/rtl_model.py (the RTL Core under amaranth.sim behind the models' API)."""
    hw_tests = str(Path(__file__).with_name("hw"))
    if hw_tests not in sys.path:
        sys.path.insert(0, hw_tests)
    import rtl_model
    return rtl_model


MODELS = pytest.mark.parametrize("model", [golden, reference, _import_rtl_model()],
                                 ids=["golden", "reference", "rtl"])

_NEURON_DEFAULTS = dict(leak_shift=0, reset_mode=0, refractory=0, bias=0, theta_inc=0,
                        theta_decay_shift=0, wta_group=0)


def program(*, n: int, threshold, n_inputs: int, rows=(), kernel=(), segments=(), blocks=(),
            stdp: LearningParams | None = None, plastic_kernel: bool = False, **neuron) -> CoreProgram:
    """``rows``: ``(axon, target, weight)``; ``kernel``: the kernel words after the rows;
    ``segments``: ``(axon, base, count, first)`` with ``base`` counted from the first kernel word;
    ``blocks``: ``(first, size, count, k)``."""
    cfg = CoreConfig(neurons=8, axons=4, synapses=16, segments=8, wta_blocks=2,
                     learning=stdp is not None, adaptive_threshold=False)
    thresholds = threshold if isinstance(threshold, (list, tuple)) else [threshold] * n
    params = NeuronParams(threshold=thresholds,
                          **{k: [neuron.get(k, v)] * n for k, v in _NEURON_DEFAULTS.items()})
    base = CoreProgram.from_synapses(
        cfg, n_inputs=n_inputs, n_axons=n_inputs, axon=[r[0] for r in rows], target=[r[1] for r in rows],
        weight=[r[2] for r in rows], neurons=params, outputs=range(n), learning=stdp)
    rows_used = base.n_row_synapses
    seg_axon = np.array([s[0] for s in segments], np.int64)
    seg_ptr = np.concatenate([[0], np.cumsum(np.bincount(seg_axon, minlength=n_inputs))])
    return dataclasses.replace(
        base, weight=np.concatenate([base.weight, np.array(kernel, np.int64)]),
        plastic=np.concatenate([base.plastic, np.full(len(kernel), plastic_kernel)]),
        segments=Segments.csr(seg_ptr, base=[rows_used + s[1] for s in segments],
                          count=[s[2] for s in segments], first=[s[3] for s in segments]),
        wta_blocks=WtaBlocks(*(np.array(c, np.int64) for c in zip(*blocks))) if blocks else None)


def one_step(model, prog, inputs: str, *, learn=False, state=None):
    return model.run(prog, np.array([[c == "1" for c in inputs]]), learn=learn, state=state,
                     record_neurons=True)


@MODELS
def test_shared_words_integrate_once_per_use(model):
    # Kernel words [3, 5]. Axon 0: segment (0, 2, first 0) -> neurons 0, 1 get 3, 5.
    # Axon 1: segment (0, 2, first 1) -> neurons 1, 2 get 3, 5; its row gives neuron 0 -2.
    # Both active: acc = [3 - 2, 5 + 3, 5] = [1, 8, 5]; uses = 2 + 2 + 1 = 5 SOPs.
    prog = program(n=3, threshold=100, n_inputs=2, rows=[(1, 0, -2)], kernel=[3, 5],
                   segments=[(0, 0, 2, 0), (1, 0, 2, 1)])
    assert prog.n_synapses == 3 and prog.n_row_synapses == 1
    result = one_step(model, prog, "11")
    assert result.state.v.tolist() == [1, 8, 5]
    assert result.sops == 5
    # Only axon 1: acc = [-2, 3, 5], 3 SOPs.
    result = one_step(model, prog, "01")
    assert result.state.v.tolist() == [-2, 3, 5] and result.sops == 3


def _listed(prog: CoreProgram, *, start, length, offset, first) -> CoreProgram:
    """``prog`` with its kernel words used by shared lists: one table entry per ``first``
    (``base`` 0, ``count`` 2), axon ``a`` listing ``start[a] .. start[a]+length[a]-1``."""
    return dataclasses.replace(prog, segments=Segments(start=start, length=length, offset=offset,
                                                       base=[0] * len(first), count=[2] * len(first), first=first))


@MODELS
def test_shared_lists_with_offsets(model):
    # One table entry (words 0..1 = [3, 5], first 6) named by three axons with offsets 0, 3, 5:
    # 8 neurons, so targets are mod 8: axon 0 -> 6, 7; axon 1 -> (3 + 6) mod 8 = 1, 2;
    # axon 2 -> (5 + 6) mod 8 = 3, 4. All three active: v = [0, 3, 5, 3, 5, 0, 3, 5], 6 SOPs.
    base = program(n=8, threshold=100, n_inputs=3, kernel=[3, 5])
    prog = _listed(base, start=[0, 0, 0], length=[1, 1, 1], offset=[0, 3, 5], first=[6])
    result = one_step(model, prog, "111")
    assert result.state.v.tolist() == [0, 3, 5, 3, 5, 0, 3, 5] and result.sops == 6
    result = one_step(model, prog, "010")
    assert result.state.v.tolist() == [0, 3, 5, 0, 0, 0, 0, 0] and result.sops == 2


@MODELS
def test_learning_through_shared_lists(model):
    # The list above, plastic; threshold 4: the neurons that get word 1 (5) fire: 2 (axon 1),
    # 4 (axon 2) and 7 (axon 0). No LTD (a_minus 0); LTP dw = (1 * xn) >> 0 = 1 with xn = 1
    # (pre_jump 1): word 1 gets +1 for each of its three uses, 5 -> 8; word 0 (3 < 4) stays.
    stdp = LearningParams(a_plus=1, a_minus=0, shift=0, pre_jump=1, post_jump=0, w_min=0, w_max=16)
    base = program(n=8, threshold=4, n_inputs=3, kernel=[3, 5], stdp=stdp, plastic_kernel=True)
    prog = _listed(base, start=[0, 0, 0], length=[1, 1, 1], offset=[0, 3, 5], first=[6])
    result = one_step(model, prog, "111", learn=True)
    assert result.neuron_spikes[0].astype(int).tolist() == [0, 0, 1, 0, 1, 0, 0, 1]
    assert result.state.weight.tolist() == [3, 8]


def test_bad_shared_lists():
    base = program(n=8, threshold=100, n_inputs=3, kernel=[3, 5])
    with pytest.raises(ValueError, match=r"axon 1's segment \(entry 0, offset 1\) drives neurons 7..8, "
                                         r"beyond n_neurons = 8"):
        _listed(base, start=[0, 0, 0], length=[1, 1, 0], offset=[0, 1, 0], first=[6])
    with pytest.raises(ValueError, match=r"axon 2's segment list 1..1 leaves the table of 1 entries"):
        _listed(base, start=[0, 0, 1], length=[1, 1, 1], offset=[0, 3, 5], first=[6])
    with pytest.raises(ValueError, match=r"axon 2 has no segments \(segments.length 0\) but segments.start "
                                         r"0 / offset 4; both must be 0"):
        _listed(base, start=[0, 0, 0], length=[1, 1, 0], offset=[0, 3, 4], first=[6])


@MODELS
def test_structural_k_wta(model):
    # Axon 0's row drives neurons 0..7 with [12, 15, 15, 14, 14, 9, 13, 13]; threshold 10,
    # reset by subtraction, so a winner keeps v = margin = v2 - 10.
    # Blocks: range (0, size 3, count 2, k 2): {0, 1, 2} and {3, 4, 5}; range (6, 2, 1, k 1): {6, 7}.
    # {0,1,2}: margins [2, 5, 5]: the best two are 1 and 2 (5 = 5: both), 0 loses (v = 0).
    # {3,4,5}: 5 is no candidate (9 < 10) and is untouched (v = 9); 3 and 4 (margins 4, 4) fire.
    # {6,7}: margins [3, 3], k = 1: the tie goes to 6; 7 loses (v = 0).
    prog = program(n=8, threshold=10, n_inputs=1, reset_mode=1,
                   rows=[(0, i, w) for i, w in enumerate([12, 15, 15, 14, 14, 9, 13, 13])],
                   blocks=[(0, 3, 2, 2), (6, 2, 1, 1)])
    result = one_step(model, prog, "1")
    assert result.neuron_spikes[0].astype(int).tolist() == [0, 1, 1, 1, 1, 0, 1, 0]
    assert result.state.v.tolist() == [0, 5, 5, 4, 4, 9, 3, 0]


def _soft(**kw) -> LearningParams:
    # w in 0..16 (R = 16), dw = (A * trace * u * (16 - u)) >> 7 with u = w.
    return LearningParams(w_min=0, w_max=16, soft_bound=True, shift=7, **kw)


@MODELS
def test_ltd_on_a_shared_word_is_sequential_in_axon_order(model):
    # Kernel word 0 = 8 (plastic), used by axon 0 -> neuron 0 and axon 1 -> neuron 1.
    # y = [4, 12], no decay, so yd = [4, 12]; a_minus = 1, a_plus = 0; thresholds 100 (no spike).
    # Axon 0 first: u = 8: dw = (4*8*8) >> 7 = 256 >> 7 = 2 -> 6.
    # Then axon 1:  u = 6: dw = (12*6*10) >> 7 = 720 >> 7 = 5 -> 1.
    # (The other order would give 8 - (12*64 >> 7) = 2, then 2 - (4*2*14 >> 7) = 2.)
    prog = program(n=2, threshold=100, n_inputs=2, kernel=[8], plastic_kernel=True,
                   segments=[(0, 0, 1, 0), (1, 0, 1, 1)], stdp=_soft(a_minus=1))
    state = dataclasses.replace(CoreState.initial(prog), y=np.array([4, 12]))
    result = one_step(model, prog, "11", learn=True, state=state)
    assert result.state.weight.tolist() == [1]


@MODELS
def test_ltp_on_a_shared_word_follows_the_firing_order(model):
    # Kernel word 0 = 8 (plastic): axon 0 -> neuron 0, axon 1 -> neuron 1; threshold 5, so
    # both fire (acc = 8). Neuron 0 is the only member of a WTA block, neuron 1 in no group:
    # firing order = [1, 0] (no group first, then the WTA winners).
    # x = [0, 8], pre_jump 4, no decay: xn = [4, 12]; a_plus = 1, a_minus = 0.
    # Neuron 1 (axon 1) first: u = 8:  dw = (12*8*8) >> 7 = 768 >> 7 = 6 -> 14.
    # Then neuron 0 (axon 0):  u = 14: dw = (4*14*2) >> 7 = 112 >> 7 = 0 -> 14.
    # (Index order would give 8 + (4*64 >> 7) = 10, then 10 + (12*10*6 >> 7) = 15.)
    prog = program(n=2, threshold=5, n_inputs=2, kernel=[8], plastic_kernel=True,
                   segments=[(0, 0, 1, 0), (1, 0, 1, 1)], blocks=[(0, 1, 1, 1)],
                   stdp=_soft(a_plus=1, pre_jump=4))
    state = dataclasses.replace(CoreState.initial(prog), x=np.array([0, 8]))
    result = one_step(model, prog, "11", learn=True, state=state)
    assert result.neuron_spikes[0].tolist() == [True, True]
    assert result.state.weight.tolist() == [14]


def test_validation_of_segments_and_blocks():
    ok = program(n=3, threshold=100, n_inputs=2, rows=[(1, 0, -2)], kernel=[3, 5],
                 segments=[(0, 0, 2, 0), (1, 0, 2, 1)], blocks=[(0, 1, 3, 1)])

    def bad(message, **changes):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(ok, **changes)

    seg = ok.segments
    bad("segment 1 uses words 2..3, beyond the 3 weight words",
        segments=dataclasses.replace(seg, base=np.array([1, 2])))
    bad(r"segments.base\[0\] = 0 is outside 1..2",
        segments=dataclasses.replace(seg, base=np.array([0, 1])))
    bad("drives neurons 2..3, beyond n_neurons = 3",
        segments=dataclasses.replace(seg, first=np.array([0, 2])))
    bad("axon 1 reaches neuron 0 through two uses",
        segments=Segments.csr([0, 0, 2], base=[1, 1], count=[2, 1], first=[0, 1]))
    bad("exceed the core's segment table of 1",
        config=dataclasses.replace(ok.config, segments=1))
    bad("neuron 0 is in a WTA block and in WTA group 1",
        neurons=dataclasses.replace(ok.neurons, wta_group=np.array([1, 0, 0])))
    bad("WTA block ranges 0 and 1 overlap",
        wta_blocks=WtaBlocks(first=np.array([0, 1]), size=np.array([2, 1]), count=np.array([1, 1]),
                             k=np.array([1, 1])))
    bad(r"wta_blocks.k\[0\] = 2 exceeds its block size 1",
        wta_blocks=dataclasses.replace(ok.wta_blocks, k=np.array([2])))
    bad("WTA block range 0 holds neurons 1..3, beyond n_neurons = 3",
        wta_blocks=dataclasses.replace(ok.wta_blocks, first=np.array([1])))
    bad("exceed the core's 0", config=dataclasses.replace(ok.config, wta_blocks=0))
