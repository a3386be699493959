"""Partition a network over a chip and compile every core (docs/core-spec.md, section 9).

Method (greedy, in network order, one pass)
--------------------------------------------

The populations are taken in the network's order and the cores in index order (row-major).
Each population is cut into contiguous slices: the current core takes the longest slice
that still fits it (binary search on the slice end; the fit test compiles nothing, it
places the core's sub-network and compares what it needs with the core's capacities:
neurons, axons, synapse words, segments, WTA groups and block ranges), then the next core
continues. A population in one WTA group (``wta=True``) is never cut: it moves whole to the
next core if it does not fit the current one; a structural-WTA population (``block_wta``)
is cut only between blocks. The target of a convolution goes whole where a core holds it
(the current one, else the next, empty, one); else it is cut between output positions
(all maps of a position together, so per-position WTA blocks stay whole), and every core
with a slice holds the kernel once with the segments of its window
(``ConvProjection.window``). So populations stay together where they fit, consecutive
layers share cores, and only the synapses across a cut become packets.

The sub-network of core ``k`` holds its slices, and as its inputs (in this order) the
network inputs its neurons use and a *copy* of every other-core neuron they listen to. The
core program is compiled from it by :func:`~neurocore.sw.compiler.compile_network` on the
chip's core config: the copies are host axons of the core, and the route table of the core
that holds the original neuron gets an entry ``(k, copy axon)`` (one packet per step it
fires; multicast when several cores listen). The chip's input map sends network input
``i`` to every core that uses it.

Cost: one placement of a sub-network per binary-search probe, ``O(log n)`` probes per
slice, each linear in the synapses of that core. Recurrent connections to a population
placed earlier are counted only once both ends are placed, so such a network can still
overflow a core at the final compile, which then names the core and the capacity.

A convolution stays a shared kernel (a window of it) on a core when its source is the network
input (the core then takes every network input, in order) or a population whole on the same
core that is not itself a conv target; otherwise its synapses are listed one by one (copies
of remote neurons, and a conv target's positions in core order, have no image geometry).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..hw.chip import ChipConfig, ChipProgram, Routes
from ..hw.program import NeuronParams
from .compiler import _normalise_decoding, compile_network, decode_spikes, decoding_classes, overflows
from .network import INPUT, ConvProjection, Population, Projection, SnnNetwork

__all__ = ["CompiledChip", "partition", "compile_chip", "IDLE"]

IDLE = "(idle)"     # the one silent neuron of a core the partition leaves unused


@dataclasses.dataclass
class CompiledChip:
    """A network placed on a chip: the chip program, each core's compiled sub-network, the
    slices (``slices[population] = [(core, first, stop), ...]``, population indices), and the
    network's encoding and decoding. ``output_order[j]`` is the chip output column of the
    network's output column ``j``."""

    chip: ChipProgram
    cores: list
    slices: dict
    encoding: dict
    decoding: dict
    output_order: np.ndarray

    @property
    def config(self) -> ChipConfig:
        return self.chip.config

    @property
    def n_outputs(self) -> int:
        return self.chip.n_outputs

    @property
    def input_axons(self) -> int:
        """The network's inputs (the chip's input map fans them out to the cores)."""
        return self.chip.n_inputs

    @property
    def n_classes(self) -> int:
        return decoding_classes(self.decoding, self.n_outputs)

    def decode(self, spikes) -> np.ndarray:
        """Class per sample from the chip's output spikes ``bool [B, T, n_outputs]`` (the
        network's decoding, on its output columns)."""
        spikes = np.asarray(spikes)
        if spikes.ndim == 2:
            spikes = spikes[None]
        return decode_spikes(self.decoding, spikes[:, :, self.output_order])

    def utilisation(self) -> list[dict]:
        """Per core: used capacities (neurons, axons, synapses, segments) and route entries."""
        out = []
        for k, compiled in enumerate(self.cores):
            use = {name: v["used"] for name, v in compiled.utilisation().items()}
            use["route_entries"] = len(self.chip.remote[k])
            use["layers"] = {name: size for name, (_, size) in compiled.layers.items()}
            out.append(use)
        return out

    def remote_entries(self) -> int:
        """Route entries of the chip: the packets of a step in which every neuron fires."""
        return sum(len(t) for t in self.chip.remote)


def _shared_conv(net: SnnNetwork) -> dict[str, ConvProjection]:
    return {pr.target: pr for pr in net.projections if isinstance(pr, ConvProjection)}


def _uncut(net: SnnNetwork, pop: Population) -> int:
    """The slice unit of a population: its size if it may not be cut (one WTA group), its
    block size (structural WTA), a position's maps for a conv target (with its blocks: the
    least common multiple), else 1."""
    if pop.wta:
        return pop.size
    unit = pop.block_wta[0] if pop.block_wta is not None else 1
    conv = _shared_conv(net).get(pop.name)
    if conv is not None:
        unit = int(np.lcm(unit, conv.kernel.shape[0]))
    return unit


class _Builder:
    """Builds the sub-network of a core from the slices placed so far.

    Slices are ranges of a population's *order*: its neuron index, except for a conv target,
    whose order is its core placement (position-major: the maps of a position together), so
    a slice of it is a window of output positions (``ConvProjection.window``) and keeps the
    per-position WTA blocks whole. A sub-network's populations list their neurons in order."""

    def __init__(self, net: SnnNetwork):
        self.net = net
        self.pops = {p.name: p for p in net.populations}
        self.conv = _shared_conv(net)
        self.order = {p.name: (self.conv[p.name].placement() if p.name in self.conv else np.arange(p.size))
                      for p in net.populations}
        self.inverse = {name: np.argsort(order) for name, order in self.order.items()}   # order -> neuron
        self.explicit = []          # (projection index, source, target, pre, post, weight, plastic)
        for i, pr in enumerate(net.projections):
            self.explicit.append((i, pr.source, pr.target, np.asarray(pr.pre), np.asarray(pr.post),
                                  np.asarray(pr.weight), bool(pr.plastic)))

    def _shared(self, pr: ConvProjection, local: dict):
        """The part of conv ``pr`` this core holds as a shared kernel (a window), or None: its
        target has a slice here and its source is the network input or a population whole
        here in neuron order (not itself a conv target, whose order is its placement)."""
        if pr.target not in local:
            return None
        source_ok = pr.source == INPUT or (pr.source in local and pr.source not in self.conv
                                           and local[pr.source] == (0, self.pops[pr.source].size))
        if not source_ok:
            return None
        maps = pr.kernel.shape[0]
        lo, hi = local[pr.target]
        return dataclasses.replace(pr, window=(lo // maps, hi // maps))

    def network(self, core: int, content: list, where: dict, senders=frozenset()):
        """``(sub-network, host inputs used, copies [(population, index)])`` of ``core``
        holding ``content`` (``[(population, first, stop)]``, ranges of order); ``where[pop]``
        is an int array of the core of every neuron of the placed populations (-1: not yet
        placed). The populations named in ``senders`` (slices other cores listen to) become
        outputs of the core: a neuron's spikes leave its core only as output spikes (spec
        section 9). Copies are ``(population, neuron index)``."""
        net = self.net
        local = {name: (lo, hi) for name, lo, hi in content}
        shared = {}                                   # projection index -> the windowed ConvProjection
        for i, pr in enumerate(net.projections):
            if isinstance(pr, ConvProjection):
                part = self._shared(pr, local)
                if part is not None:
                    shared[i] = part
        take_all_inputs = any(pr.source == INPUT for pr in shared.values())
        used_inputs, copies = set(), set()
        kept = []                                     # (i, source, target, pre, post, weight, plastic), post local
        for i, source, target, pre, post, weight, plastic in self.explicit:
            if i in shared or target not in local:
                continue
            lo, hi = local[target]
            rank = self.order[target][post]
            mask = (rank >= lo) & (rank < hi)
            if not mask.any():
                continue
            pre_m, post_m, w_m = pre[mask], rank[mask] - lo, weight[mask]
            if source == INPUT:
                used_inputs.update(pre_m.tolist())
            else:
                placed = where[source][pre_m]
                if (placed < 0).any():
                    keep = placed >= 0                 # a source not placed yet: counted once it is
                    pre_m, post_m, w_m, placed = pre_m[keep], post_m[keep], w_m[keep], placed[keep]
                remote = placed != core
                copies.update((source, int(v)) for v in pre_m[remote].tolist())
            kept.append((i, source, target, pre_m, post_m, w_m, plastic))
        hosts = list(range(net.n_inputs)) if take_all_inputs else sorted(used_inputs)
        copies = sorted(copies, key=lambda c: (list(self.pops).index(c[0]), c[1]))
        host_index = {v: j for j, v in enumerate(hosts)}
        copy_index = {c: len(hosts) + j for j, c in enumerate(copies)}
        projections = list(shared.values())
        for i, source, target, pre, post, weight, plastic in kept:
            if source == INPUT:
                projections.append(Projection(INPUT, target, np.array([host_index[v] for v in pre.tolist()], np.int64),
                                              post, weight, plastic))
                continue
            is_local = (where[source][pre] == core) if source in local else np.zeros(len(pre), bool)
            if is_local.any():
                local_pre = self.order[source][pre[is_local]] - local[source][0]
                projections.append(Projection(source, target, local_pre, post[is_local], weight[is_local], plastic))
            if (~is_local).any():
                projections.append(Projection(INPUT, target,
                                              np.array([copy_index[(source, v)] for v in pre[~is_local].tolist()],
                                                       np.int64), post[~is_local], weight[~is_local], plastic))
        populations = []
        for name, lo, hi in content:
            pop = self.pops[name]
            neurons = self.inverse[name][lo:hi]
            params = dataclasses.replace(pop.params, **{f.name: getattr(pop.params, f.name)[neurons]
                                                        for f in dataclasses.fields(pop.params)})
            populations.append(Population(name, params, output=pop.output or name in senders, wta=pop.wta,
                                          theta=None if pop.theta is None else pop.theta[neurons],
                                          block_wta=pop.block_wta))
        sub = SnnNetwork(n_inputs=len(hosts) + len(copies), populations=populations, projections=projections,
                         learning=net.learning, encoding=net.encoding)
        return sub, hosts, copies


def partition(net: SnnNetwork, config: ChipConfig) -> dict[str, list[tuple[int, int, int]]]:
    """The slices of every population: ``{name: [(core, first, stop), ...]}`` (see the module
    docstring). Raises ``ValueError`` naming the population, the core and the capacity when
    the network does not fit the chip."""
    builder = _Builder(net)
    where = {p.name: np.full(p.size, -1, np.int64) for p in net.populations}
    slices = {p.name: [] for p in net.populations}
    content = [[] for _ in range(config.n_cores)]
    core = 0

    def problems(k, trial):
        sub, _, _ = builder.network(k, trial, where)
        return overflows(sub, config.core)

    conv_targets = _shared_conv(net)
    for pop in net.populations:
        unit = _uncut(net, pop)
        lo = 0
        if pop.name in conv_targets:                  # whole where a core holds it
            whole = [(pop.name, 0, pop.size)]
            if problems(core, content[core] + whole) and content[core] and core + 1 < config.n_cores \
                    and not problems(core + 1, whole):
                core += 1
            if not problems(core, content[core] + whole):
                content[core].append(whole[0])
                slices[pop.name].append((core, 0, pop.size))
                where[pop.name][:] = core
                continue                              # else: cut between positions, below
        while lo < pop.size:
            units = (pop.size - lo) // unit
            best, low, high = 0, 1, units
            while low <= high:                         # the most units that still fit this core
                mid = (low + high) // 2
                if not problems(core, content[core] + [(pop.name, lo, lo + mid * unit)]):
                    best, low = mid, mid + 1
                else:
                    high = mid - 1
            if best == 0 and not content[core]:
                why = "; ".join(problems(core, [(pop.name, lo, lo + unit)]))
                what = (f"population {pop.name} (it cannot be cut: {unit} neurons)" if unit == pop.size and unit > 1
                        else f"population {pop.name}, neurons {lo}..{lo + unit - 1}")
                raise ValueError(f"{what} does not fit an empty core of the chip: it needs {why}")
            if best:
                stop = lo + best * unit
                content[core].append((pop.name, lo, stop))
                slices[pop.name].append((core, lo, stop))
                where[pop.name][builder.inverse[pop.name][lo:stop]] = core
                lo = stop
            if lo < pop.size:                          # this core is full: the rest goes on
                core += 1
                if core == config.n_cores:
                    raise ValueError(f"network does not fit the {config.rows}x{config.cols} chip: population "
                                     f"{pop.name} neurons {lo}..{pop.size - 1} remain after the last core "
                                     f"({config.n_cores - 1}); use a larger grid or larger cores")
    return slices


def compile_chip(net: SnnNetwork, config: ChipConfig) -> CompiledChip:
    """Partition ``net`` over ``config`` (:func:`partition`), compile every core, build the
    route tables and the input map. Raises ``ValueError`` (one line) if it does not fit."""
    if not isinstance(config, ChipConfig):
        raise ValueError(f"config must be a ChipConfig, got {type(config).__name__}")
    slices = partition(net, config)
    builder = _Builder(net)
    where = {p.name: np.full(p.size, -1, np.int64) for p in net.populations}
    content = [[] for _ in range(config.n_cores)]
    for name, parts in slices.items():
        for core, lo, hi in parts:
            content[core].append((name, lo, hi))
            where[name][builder.inverse[name][lo:hi]] = core
    order = {name: i for i, name in enumerate(slices)}
    senders = [set() for _ in range(config.n_cores)]       # per core: populations others listen to
    for k in range(config.n_cores):
        content[k].sort(key=lambda c: order[c[0]])
        for name, i in builder.network(k, content[k], where)[2]:
            senders[int(where[name][i])].add(name)
    compiled, hosts, copies = [], [], []
    for k in range(config.n_cores):
        sub, host, copy = builder.network(k, content[k], where, senders[k])
        if not content[k]:                            # an unused core runs one silent neuron
            sub = SnnNetwork(n_inputs=0, populations=[Population(IDLE, NeuronParams.uniform(1, threshold=1))],
                             projections=[], learning=net.learning)
        try:
            c = compile_network(sub, config.core)
        except ValueError as exc:
            raise ValueError(f"core {k}: {exc}") from None
        compiled.append(c)
        hosts.append(host)
        copies.append(copy)
    # route tables: the core of each original neuron gets an entry per copy
    lists = [[[] for _ in range(c.program.n_neurons)] for c in compiled]
    for j, copy in enumerate(copies):
        for c_index, (name, i) in enumerate(copy):
            k = int(where[name][i])
            lo = next(lo for core, lo, hi in slices[name] if core == k)
            neuron = compiled[k].layers[name][0] + int(builder.order[name][i]) - lo   # populations in order
            lists[k][neuron].append((j, len(hosts[j]) + c_index))
    remote = [Routes.from_lists(lst) for lst in lists]
    inputs = [[] for _ in range(net.n_inputs)]
    for k, host in enumerate(hosts):
        for axon, i in enumerate(host):
            inputs[i].append((k, axon))
    pops = {p.name: p for p in net.populations}
    to_host = [np.concatenate([np.full(c.layers[name][1], pops[name].output if name in pops else False)
                               for name in c.output_layers]).astype(bool) if c.output_layers else np.zeros(0, bool)
               for c in compiled]
    chip = ChipProgram(config, [c.program for c in compiled], remote, Routes.from_lists(inputs), to_host)
    # output columns: chip columns in core order -> network columns (output populations in order)
    offset, start = {}, 0
    for pop in net.populations:
        if pop.output:
            offset[pop.name] = start
            start += pop.size
    network_col = []
    for k, c in enumerate(compiled):
        for name in c.output_layers:
            if name not in pops or not pops[name].output:      # a sender slice: not a chip output
                continue
            lo = next(lo for core, lo, hi in slices[name] if core == k)
            network_col.extend(offset[name] + builder.inverse[name][lo + np.arange(c.layers[name][1])])
    output_order = np.argsort(np.array(network_col, np.int64), kind="stable")
    decoding = _normalise_decoding(net.decoding, start)
    return CompiledChip(chip=chip, cores=compiled, slices=slices, encoding=dict(net.encoding),
                        decoding=decoding, output_order=output_order)
