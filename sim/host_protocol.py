"""The host side of the core's interface, independent of the simulator that drives it.

A testbench (amaranth.sim or cocotb) sends the packed ``cmd`` words and ``spike_in``
axon ids produced here and hands the ``rsp`` words it reads back to :func:`decode_readback`.
docs/hw.md describes the protocol; the packing comes from :mod:`neurocore.hw.host`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..hw.config import CoreConfig
from ..hw.host import Opcode, Region, Register, command_layout
from ..hw.images import pack, program_images, program_registers, state_from_images
from ..hw.program import CoreProgram, CoreState

__all__ = ["Command", "load_commands", "clear_command", "step_command", "readback_plan",
           "decode_readback", "input_axons", "output_spike_order"]


@dataclasses.dataclass(frozen=True)
class Command:
    op: Opcode
    region: Region = Region.REG
    index: int = 0
    data: int = 0

    def packed(self, config: CoreConfig) -> int:
        """The ``cmd.payload`` word."""
        return pack(command_layout(config), op=self.op.value, region=self.region.value,
                    index=self.index, data=self.data)


def load_commands(program: CoreProgram, *, learn: bool = False,
                  state: CoreState | None = None) -> list[Command]:
    """Writes that load ``program`` (and ``state``, when given) into a core after reset."""
    from ..hw.images import state_images

    commands = [Command(Opcode.WRITE, Region.REG, r.value, v)
                for r, v in program_registers(program, learn=learn).items()]
    images = program_images(program)
    if state is not None:
        images.update(state_images(program.config, state))
        images[Region.SYNAPSE] = program_images(_with_weights(program, state.weight))[Region.SYNAPSE]
    for region, words in images.items():
        commands += [Command(Opcode.WRITE, region, i, w) for i, w in enumerate(words)]
    return commands


def _with_weights(program: CoreProgram, weight) -> CoreProgram:
    return dataclasses.replace(program, weight=np.asarray(weight, np.int64))


def clear_command() -> Command:
    return Command(Opcode.CLEAR)


def step_command() -> Command:
    return Command(Opcode.STEP)


def input_axons(row) -> list[int]:
    """The host axon ids of one step's input row (bool ``[n_inputs]``)."""
    return np.flatnonzero(np.asarray(row)).tolist()


def output_spike_order(program: CoreProgram, spikes, *, first_step: int = 0) -> list[tuple[int, int]]:
    """The ``(neuron, step)`` pairs the core emits on ``spike_out``, in the order it emits them,
    for the output spikes ``spikes`` (bool ``[samples, T, n_outputs]``, as the golden model
    reports them) run one sample after the other from step ``first_step`` on.

    docs/core-spec.md section 5, phase 3: within a step, first the output neurons in no WTA group
    or block in increasing index, then the WTA winners in increasing index; ``step`` counts every
    STEP since reset (CLEAR does not reset it).
    """
    spikes = np.asarray(spikes, bool)
    outputs = np.asarray(program.outputs, np.int64)
    if outputs.size == 0:
        return []
    # emission rank of each output column within a step: (in a WTA group or block, neuron index)
    block, _ = program.wta_blocks.block_of(program.n_neurons)
    in_group = (np.asarray(program.neurons.wta_group, np.int64)[outputs] != 0) | (block[outputs] >= 0)
    columns = sorted(range(len(outputs)), key=lambda j: (bool(in_group[j]), int(outputs[j])))
    order = []
    for k, row in enumerate(spikes.reshape(-1, len(outputs))):
        order += [(int(outputs[j]), first_step + k) for j in columns if row[j]]
    return order


def readback_plan(program: CoreProgram) -> list[tuple[Region, int]]:
    """(region, index) of every word :func:`decode_readback` needs, in order."""
    cfg = program.config
    regions = [(Region.STATE, program.n_neurons), (Region.SYNAPSE, program.n_synapses)]
    if cfg.adaptive_threshold:
        regions.append((Region.THETA, program.n_neurons))
    if cfg.learning:
        regions += [(Region.POST, program.n_neurons), (Region.PRE, program.n_axons)]
    return [(region, i) for region, count in regions for i in range(count)]


def decode_readback(program: CoreProgram, words: list[int]) -> CoreState:
    """The :class:`CoreState` from the words read in :func:`readback_plan` order."""
    plan = readback_plan(program)
    if len(words) != len(plan):
        raise ValueError(f"read back {len(words)} words, expected {len(plan)}")
    images: dict[Region, list[int]] = {}
    for (region, _), word in zip(plan, words):
        images.setdefault(region, []).append(word)
    images.setdefault(Region.SYNAPSE, [])
    return state_from_images(program, images)


REGISTER_READS = (Register.LAST_STEP_CYCLES, Register.LAST_STEP_SOPS, Register.CYCLES,
                  Register.SOPS, Register.ERRORS, Register.STATUS)
