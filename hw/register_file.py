"""The registers of region REG (docs/hw.md, "Registers"): the writable ones, the sticky
error flag and the statistics counters."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib.wiring import In, Out

from .component import CoreComponent
from .config import CoreConfig
from .counter import SaturatingCounter
from .host import WTA_BLOCK_FIELDS, Register, data_bits, wta_block_register
from .signatures import LearningSignature, WtaBlocksSignature
from .widths import AMPLITUDE_BITS, COUNTER_BITS, INDEX_BITS, LEARN_SHIFT_BITS, TRACE_DECAY_BITS

__all__ = ["RegisterFile", "register_widths", "block_register_widths"]

# Learning registers -> field of LearningSignature.
_LEARNING = {
    Register.A_PLUS: "a_plus", Register.A_MINUS: "a_minus", Register.SHIFT: "shift",
    Register.PRE_DECAY_SHIFT: "pre_decay_shift", Register.POST_DECAY_SHIFT: "post_decay_shift",
    Register.PRE_JUMP: "pre_jump", Register.POST_JUMP: "post_jump", Register.W_MIN: "w_min",
    Register.W_MAX: "w_max", Register.SOFT_BOUND: "soft_bound",
}
# Statistics counters whose reset value ``registers=`` may give (tests of saturation).
_COUNTERS = (Register.STEP_COUNT, Register.CYCLES, Register.SOPS, Register.ERRORS,
             Register.FEED_CYCLES, Register.UPDATE_CYCLES)


def register_widths(config: CoreConfig) -> dict[Register, int]:
    """Width of every writable register (a WRITE keeps the low bits of ``data``)."""
    abits, w = config.axon_index_bits, config.weight_bits
    return {
        Register.N_NEURONS: config.neuron_index_bits + 1,
        Register.N_AXONS: abits + 1,
        Register.N_INPUTS: abits + 1,
        Register.LEARN: 1,
        Register.A_PLUS: AMPLITUDE_BITS,
        Register.A_MINUS: AMPLITUDE_BITS,
        Register.SHIFT: LEARN_SHIFT_BITS,
        Register.PRE_DECAY_SHIFT: TRACE_DECAY_BITS,
        Register.POST_DECAY_SHIFT: TRACE_DECAY_BITS,
        Register.PRE_JUMP: config.trace_bits,
        Register.POST_JUMP: config.trace_bits,
        Register.W_MIN: w,            # two's complement
        Register.W_MAX: w,
        Register.SOFT_BOUND: 1,
        **block_register_widths(config),
    }


def block_register_widths(config: CoreConfig) -> dict[Register, int]:
    """The registers of the structural WTA block ranges (only with ``wta`` and ``wta_blocks``),
    as wide as the fields of :class:`WtaBlocksSignature`."""
    signature = WtaBlocksSignature(config)
    return {wta_block_register(slot, field): signature.members[field].shape.elem_shape.width
            for slot in range(signature.ranges) for field in WTA_BLOCK_FIELDS}


class RegisterFile(CoreComponent):
    """Region REG: writable registers, the error flag and the statistics counters.

    A register ``WRITE`` (``write`` high for one cycle, ``index``, ``write_data``) stores the
    low bits of the data in the writable register ``index``; writing STATUS with bit 0 set
    clears the error flag; any other index is an error (counted like ``error_cmd``). ``read_data`` is the value of register ``index``
    (combinational; 0 for an unknown number); STATUS reads ``error | busy << 1``.

    Counters (each a :class:`~neurocore.hw.counter.SaturatingCounter`, they never wrap):
    CYCLES counts every cycle; ERRORS counts the cycles with ``error_cmd`` or
    ``error_spike`` (which also set the sticky ``error``); ``step_start`` restarts the count
    of the step's cycles at 2 (the accepting cycle and FINISH) and FEED_CYCLES and
    UPDATE_CYCLES at 0; ``step_cycle``, ``feed_cycle``, ``update_cycle`` add one each;

    Two of these take effect one cycle late, unseen from outside, so that the command
    decode (where errors and ``step_start`` arise) is not in series with the counters:

    * ``step_start`` restarts the three step counters in the next cycle, counting that
      cycle's events (the accepting cycle counts none, and a step's counters cannot be read
      before it ends: no command is accepted during a step);
    * an error is registered (``error_q``) and then counted and made sticky; ``settling`` is
      high in that cycle, and the core accepts no command while it is (docs/hw.md), so a read
      of ERRORS or STATUS always sees every earlier error (``error`` reads ``error | error_q``).

    ``step_done`` (FINISH) adds one to STEP_COUNT and ``step_sops`` to SOPS, and loads
    LAST_STEP_CYCLES (the step's cycles) and LAST_STEP_SOPS (``step_sops``). LTP_UPDATES
    reads ``ltp_updates``.

    Parameters (keyword-only)
    -------------------------
    config : CoreConfig
    registers : dict mapping :class:`Register` to int, optional
        Reset values of the writable registers and of the counters STEP_COUNT, CYCLES,
        SOPS, ERRORS, FEED_CYCLES, UPDATE_CYCLES.

    Members
    -------
    index : In(INDEX_BITS); write : In(1); write_data : In(data_bits(config))
    read_data : Out(COUNTER_BITS); busy : In(1)
    error_cmd, error_spike : In(1); error : Out(1)
    settling : Out(1)
        An error of the previous cycle is being counted: accept no command (see above).
    step_start, step_cycle, feed_cycle, update_cycle, step_done : In(1)
    step_sops, ltp_updates : In(COUNTER_BITS); step_count : Out(COUNTER_BITS)
    n_neurons : Out(neuron_index_bits + 1); n_axons, n_inputs : Out(axon_index_bits + 1)
    learn : Out(1)
        The LEARN register; constant 0 without ``learning`` in the config.
    learning : Out(LearningSignature(config))
    wta_blocks : Out(WtaBlocksSignature(config))
        The block ranges, from registers WTA<r>_FIRST .. WTA<r>_K (no members without them).
    """

    def __init__(self, *, config: CoreConfig, registers=None):
        self._use_config(config)
        self._registers = dict(registers or {})
        for register, value in self._registers.items():
            if not isinstance(register, Register):
                raise ValueError(f"RegisterFile: registers keys must be Register members, "
                                 f"got {register!r}")
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"RegisterFile: the reset value of {register.name} must be an "
                                 f"int >= 0, got {value!r}")
        abits = config.axon_index_bits
        super().__init__({
            "index": In(INDEX_BITS),
            "write": In(1),
            "write_data": In(data_bits(config)),
            "read_data": Out(COUNTER_BITS),
            "busy": In(1),
            "error_cmd": In(1),
            "error_spike": In(1),
            "error": Out(1),
            "settling": Out(1),
            "step_start": In(1),
            "step_cycle": In(1),
            "feed_cycle": In(1),
            "update_cycle": In(1),
            "step_done": In(1),
            "step_sops": In(COUNTER_BITS),
            "ltp_updates": In(COUNTER_BITS),
            "step_count": Out(COUNTER_BITS),
            "n_neurons": Out(config.neuron_index_bits + 1),
            "n_axons": Out(abits + 1),
            "n_inputs": Out(abits + 1),
            "learn": Out(1),
            "learning": Out(LearningSignature(config)),
            "wta_blocks": Out(WtaBlocksSignature(config)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        # Writable registers: the registers themselves, with their reset values.
        regs = {}
        for register, width in register_widths(cfg).items():
            init = self._registers.get(register, 0) & ((1 << width) - 1)
            regs[register] = Signal(width, init=init, name=register.name.lower())
        m.d.comb += [self.n_neurons.eq(regs[Register.N_NEURONS]),
                     self.n_axons.eq(regs[Register.N_AXONS]),
                     self.n_inputs.eq(regs[Register.N_INPUTS])]
        if cfg.learning:
            m.d.comb += self.learn.eq(regs[Register.LEARN])
        for register, field in _LEARNING.items():
            m.d.comb += getattr(self.learning, field).eq(regs[register])
        for slot in range(WtaBlocksSignature(cfg).ranges):
            for field in WTA_BLOCK_FIELDS:
                m.d.comb += getattr(self.wta_blocks, field)[slot].eq(regs[wta_block_register(slot, field)])

        # Counters.
        def counter(name, register=None, *, amount_bits=1, restart_value=0):
            m.submodules[name] = ctr = SaturatingCounter(
                amount_bits=amount_bits, restart_value=restart_value,
                init=self._registers.get(register, 0))
            return ctr

        cycles = counter("cycles", Register.CYCLES)
        step_count = counter("step_count", Register.STEP_COUNT)
        sops = counter("sops", Register.SOPS, amount_bits=COUNTER_BITS)
        errors = counter("errors", Register.ERRORS)
        step_cycles = counter("step_cycles", restart_value=2)
        feed_cycles = counter("feed_cycles", Register.FEED_CYCLES)
        update_cycles = counter("update_cycles", Register.UPDATE_CYCLES)
        last_cycles = Signal(COUNTER_BITS, name="last_step_cycles")
        last_sops = Signal(COUNTER_BITS, name="last_step_sops")
        bad_write = Signal()
        error_now = self.error_cmd | self.error_spike | bad_write
        error_q = Signal()                     # error_now, one cycle late (see the docstring)
        step_restart = Signal()                # step_start, one cycle late
        error = Signal(name="error_flag")
        m.d.sync += [error_q.eq(error_now), step_restart.eq(self.step_start)]
        m.d.comb += [
            cycles.amount.eq(1),
            errors.amount.eq(error_q),
            step_count.amount.eq(self.step_done),
            sops.amount.eq(self.step_sops),
            sops.enable.eq(self.step_done),
            step_cycles.restart.eq(step_restart),
            step_cycles.amount.eq(self.step_cycle),
            feed_cycles.restart.eq(step_restart),
            feed_cycles.amount.eq(self.feed_cycle),
            update_cycles.restart.eq(step_restart),
            update_cycles.amount.eq(self.update_cycle),
            self.step_count.eq(step_count.count),
            self.error.eq(error | error_q),
            self.settling.eq(error_q),
        ]
        with m.If(self.step_done):
            m.d.sync += [last_cycles.eq(step_cycles.count), last_sops.eq(self.step_sops)]
        with m.If(error_q):
            m.d.sync += error.eq(1)

        # Host writes.
        with m.If(self.write):
            with m.Switch(self.index):
                for register, sig in regs.items():
                    with m.Case(register.value):
                        m.d.sync += sig.eq(self.write_data)
                with m.Case(Register.STATUS.value):
                    with m.If(self.write_data[0]):
                        m.d.sync += error.eq(0)
                with m.Default():
                    m.d.comb += bad_write.eq(1)

        # Host reads.
        readable = {**regs,
                    Register.STATUS: error | (self.busy << 1),
                    Register.STEP_COUNT: step_count.count, Register.CYCLES: cycles.count,
                    Register.SOPS: sops.count, Register.LAST_STEP_CYCLES: last_cycles,
                    Register.LAST_STEP_SOPS: last_sops, Register.ERRORS: errors.count,
                    Register.LTP_UPDATES: self.ltp_updates,
                    Register.FEED_CYCLES: feed_cycles.count,
                    Register.UPDATE_CYCLES: update_cycles.count}
        with m.Switch(self.index):
            for register, value in readable.items():
                with m.Case(register.value):
                    m.d.comb += self.read_data.eq(value)
        return m
