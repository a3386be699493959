"""A chip: ``rows x cols`` identical cores joined by a spike network (docs/core-spec.md, section 9).

:class:`ChipConfig` is the grid and the one :class:`~neurocore.hw.config.CoreConfig` of its
cores; :class:`ChipProgram` is a :class:`~neurocore.hw.program.CoreProgram` per core, each
core's remote route table (:class:`Routes`: neuron -> destinations ``(core, axon)`` on
other cores, several per neuron: multicast) and the chip's host-input map (chip input ->
host axons ``(core, axon)``). Both validate on construction, naming the field, the limit
and the offending value.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from .config import CoreConfig
from .program import CoreProgram, check_count, int_array
from .widths import CHIP_RANGES

__all__ = ["ChipConfig", "Routes", "ChipProgram"]


@dataclasses.dataclass(frozen=True)
class ChipConfig:
    """The grid (``rows x cols``, core ``k = r * cols + c``), the cores' configuration, the
    depth of each core's remote route table and of each mesh link's FIFO (spec section 9)."""

    rows: int = 1
    cols: int = 1
    core: CoreConfig = dataclasses.field(default_factory=CoreConfig)
    routes: int = 4096
    link_fifo: int = 4

    def __post_init__(self):
        for name, (low, high) in CHIP_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ValueError(f"ChipConfig.{name} must be an integer in {low}..{high}, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.core, CoreConfig):
            raise ValueError(f"ChipConfig.core must be a CoreConfig, got {type(self.core).__name__}")

    @property
    def n_cores(self) -> int:
        return self.rows * self.cols

    def position(self, core: int) -> tuple[int, int]:
        """``(row, column)`` of core ``core``."""
        return divmod(int(core), self.cols)

    def hops(self, source: int, destination: int) -> int:
        """Links a packet crosses from ``source`` to ``destination`` (dimension order: the
        Manhattan distance)."""
        (r0, c0), (r1, c1) = self.position(source), self.position(destination)
        return abs(r0 - r1) + abs(c0 - c1)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "cols": self.cols, "core": self.core.to_dict(), "routes": self.routes,
                "link_fifo": self.link_fifo}

    @classmethod
    def from_dict(cls, data: dict) -> "ChipConfig":
        if not isinstance(data, dict):
            raise ValueError(f"ChipConfig: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ChipConfig: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        fields = dict(data)
        if "core" in fields:
            fields["core"] = CoreConfig.from_dict(fields["core"])
        return cls(**fields)

    def hash(self) -> str:
        """SHA-256 of the canonical JSON: the chip's fields, the core by its own hash."""
        fields = {"rows": self.rows, "cols": self.cols, "core": self.core.hash(), "routes": self.routes,
                  "link_fifo": self.link_fifo}
        return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclasses.dataclass
class Routes:
    """A CSR table over ``n`` sources: source ``i``'s entries are ``start[i] .. start[i+1]-1``,
    each a destination ``(core[e], axon[e])``. A core's remote routes (sources: its neurons)
    and the chip's host-input map (sources: chip inputs) are both one."""

    start: np.ndarray
    core: np.ndarray
    axon: np.ndarray

    def __post_init__(self):
        self.start = int_array(self.start, "start", 0, np.iinfo(np.int64).max)
        self.core = int_array(self.core, "core", 0, np.iinfo(np.int64).max)
        self.axon = int_array(self.axon, "axon", 0, np.iinfo(np.int64).max)

    @classmethod
    def empty(cls, n: int) -> "Routes":
        return cls(np.zeros(check_count(n, "n") + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))

    @classmethod
    def from_lists(cls, lists) -> "Routes":
        """From one list of ``(core, axon)`` pairs per source."""
        lists = [list(entries) for entries in lists]
        start = np.concatenate([[0], np.cumsum([len(e) for e in lists])]).astype(np.int64)
        pairs = np.array([pair for entries in lists for pair in entries], np.int64).reshape(-1, 2)
        return cls(start, pairs[:, 0], pairs[:, 1])

    @property
    def n_sources(self) -> int:
        return len(self.start) - 1

    def __len__(self) -> int:
        return len(self.core)

    def source(self) -> np.ndarray:
        """The source of every entry."""
        return np.repeat(np.arange(self.n_sources), np.diff(self.start))

    def check(self, what: str, n_sources: int) -> None:
        """A valid CSR table over ``n_sources`` sources, ``core`` and ``axon`` of one length."""
        if len(self.start) != n_sources + 1:
            raise ValueError(f"{what}: start has length {len(self.start)}, expected {n_sources + 1} "
                             "(one more than its sources)")
        if self.start[0] != 0 or (np.diff(self.start) < 0).any() or self.start[-1] != len(self.core):
            raise ValueError(f"{what}: start is not a CSR pointer array over its {len(self.core)} entries "
                             "(it must start at 0, never decrease and end at the entry count)")
        if len(self.axon) != len(self.core):
            raise ValueError(f"{what}: core has {len(self.core)} entries but axon has {len(self.axon)}")


@dataclasses.dataclass
class ChipProgram:
    """A core program per core, each core's remote routes and the chip's host inputs (spec
    section 9): remote entries and chip inputs both drive host axons of the cores, each host
    axon at most one source. Validated on construction (:meth:`validate`)."""

    config: ChipConfig
    cores: list
    remote: list
    inputs: Routes
    to_host: list | None = None      # per core: bool per output column (None: every output)

    def __post_init__(self):
        self.cores = list(self.cores)
        self.remote = list(self.remote)
        if self.to_host is None:
            self.to_host = [np.ones(p.n_outputs, bool) if isinstance(p, CoreProgram) else None for p in self.cores]
        self.to_host = [np.asarray(t, bool).reshape(-1) if t is not None else t for t in self.to_host]
        self.validate()

    @classmethod
    def single(cls, program: CoreProgram, **chip_fields) -> "ChipProgram":
        """The 1x1 chip of one core program: chip input ``i`` is host axon ``i``."""
        n = program.n_inputs
        config = ChipConfig(core=program.config, **chip_fields)
        return cls(config, [program], [Routes.empty(program.n_neurons)],
                   Routes(np.arange(n + 1), np.zeros(n, np.int64), np.arange(n)))

    @property
    def n_inputs(self) -> int:
        return self.inputs.n_sources

    @property
    def n_outputs(self) -> int:
        return int(sum(t.sum() for t in self.to_host))

    def core_inputs(self, inputs: np.ndarray) -> list[np.ndarray]:
        """The host-axon spikes of every core, ``bool [..., T, cores[k].n_inputs]``, from the
        chip's input spikes ``bool [..., T, n_inputs]`` (spec section 9: input ``i`` drives the
        host axons of its entries; an axon no input drives is never active)."""
        inputs = np.asarray(inputs, bool)
        source = self.inputs.source()
        out = []
        for k, program in enumerate(self.cores):
            x = np.zeros(inputs.shape[:-1] + (program.n_inputs,), bool)
            mine = self.inputs.core == k
            x[..., self.inputs.axon[mine]] = inputs[..., source[mine]]
            out.append(x)
        return out

    def output_columns(self) -> list[tuple[int, int]]:
        """``(core, neuron)`` of every chip output column."""
        return [(k, int(n)) for k, p in enumerate(self.cores) for n in p.outputs[self.to_host[k]]]

    def validate(self) -> None:
        """Raise ``ValueError`` (one line) for anything section 9 refuses; each core program
        validates itself (section 7)."""
        cfg = self.config
        if not isinstance(cfg, ChipConfig):
            raise ValueError(f"config must be a ChipConfig, got {type(cfg).__name__}")
        if len(self.cores) != cfg.n_cores or len(self.remote) != cfg.n_cores:
            raise ValueError(f"a {cfg.rows}x{cfg.cols} chip needs {cfg.n_cores} core programs and route tables, "
                             f"got {len(self.cores)} and {len(self.remote)}")
        for k, program in enumerate(self.cores):
            if not isinstance(program, CoreProgram):
                raise ValueError(f"cores[{k}] must be a CoreProgram, got {type(program).__name__}")
            if program.config != cfg.core:
                raise ValueError(f"cores[{k}] is built for config {program.config.hash()[:12]}, the chip's cores "
                                 f"are {cfg.core.hash()[:12]}")
        host = [np.zeros(p.n_inputs, bool) for p in self.cores]     # host axons driven so far
        if not isinstance(self.inputs, Routes):
            raise ValueError(f"inputs must be a Routes table, got {type(self.inputs).__name__}")
        self.inputs.check("inputs", self.inputs.n_sources)
        self._check_destinations(self.inputs, "inputs", source_core=None, driven=host)
        for k, table in enumerate(self.remote):
            what = f"remote[{k}]"
            if not isinstance(table, Routes):
                raise ValueError(f"{what} must be a Routes table, got {type(table).__name__}")
            table.check(what, self.cores[k].n_neurons)
            if len(table) > cfg.routes:
                raise ValueError(f"{what}: {len(table)} route entries, more than the core's route table "
                                 f"holds (routes = {cfg.routes})")
            self._check_destinations(table, what, source_core=k, driven=host)
            senders = np.flatnonzero(np.diff(table.start) > 0)
            loose = np.setdiff1d(senders, self.cores[k].outputs)
            if len(loose):
                raise ValueError(f"{what}: neuron {int(loose[0])} has remote entries but is not an output of core "
                                 f"{k} (its spikes leave a core only as output spikes; make it an output with "
                                 f"to_host false)" + (f"; {len(loose)} such neurons" if len(loose) > 1 else ""))
        if len(self.to_host) != cfg.n_cores:
            raise ValueError(f"to_host: one flag array per core ({cfg.n_cores}), got {len(self.to_host)}")
        for k, (program, flags) in enumerate(zip(self.cores, self.to_host)):
            if flags is None or len(flags) != program.n_outputs:
                raise ValueError(f"to_host[{k}]: one flag per output column of core {k} ({program.n_outputs}), "
                                 f"got {None if flags is None else len(flags)}")

    def _check_destinations(self, table: Routes, what: str, *, source_core, driven) -> None:
        """Every entry names an existing core (not ``source_core``) and one of its host axons,
        and no host axon is driven twice (``driven[j]`` marks core ``j``'s host axons already
        driven, by chip inputs or remote entries; updated)."""
        n_cores = self.config.n_cores
        j, a = table.core, table.axon

        def fail(mask, why):
            if mask.any():
                e = int(np.flatnonzero(mask)[0])
                source = int(np.searchsorted(table.start, e, side="right") - 1)
                raise ValueError(f"{what}: entry {e} (source {source}) -> (core {int(j[e])}, axon {int(a[e])}): {why(e)}")

        fail(j >= n_cores, lambda e: f"the chip has cores 0..{n_cores - 1}")
        fail(j == (-1 if source_core is None else source_core),
             lambda e: "a remote route to its own core (use the neuron's local route)")
        n_in = np.array([p.n_inputs for p in self.cores], np.int64)[j]
        fail(a >= n_in, lambda e: f"core {int(j[e])}'s host axons are 0..{int(n_in[e]) - 1}")
        offset = np.concatenate([[0], np.cumsum([len(d) for d in driven])])
        flat = np.concatenate(driven) if driven else np.zeros(0, bool)
        key = offset[j] + a
        first = np.zeros(len(key), bool)
        first[np.unique(key, return_index=True)[1]] = True
        fail(flat[key] | ~first, lambda e: "that host axon is already driven (by a chip input or a remote "
                                           "entry; each has one source)")
        flat[key] = True
        for k in range(len(driven)):
            driven[k][:] = flat[offset[k]:offset[k + 1]]
