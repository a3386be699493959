"""The reports of the FPGA flow: what Yosys and nextpnr say, as figures and a verdict.

* Yosys: the cell counts (:func:`parse_yosys_stat`) and the RAM blocks each memory took
  (:func:`ram_blocks_by_memory`); the design's own memories (:func:`memory_inventory`);
* nextpnr: utilisation and Fmax from its ``--report`` JSON (:func:`parse_nextpnr_report`,
  with the :func:`critical_path`) or, when placement stops, from its log
  (:func:`parse_nextpnr_log`);
* the verdict: the used and available cells per resource, nextpnr's figure or an estimate
  from Yosys's counts (:func:`collect_cells`), what overflows (:func:`check_fit`), Fmax
  against the clock (:func:`summarise`);
* the text report of a :func:`neurocore.tools.synth_flow.synthesise` result
  (:func:`format_report`; ``--json`` prints the result itself), with the memories given to
  SPRAM and those the host must load at boot (:func:`host_loaded_line`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .synth_harness import CORE_TOP, HARNESS_TOP

if TYPE_CHECKING:
    from .synth_flow import Resource, Target

__all__ = ["module_prefix", "memory_inventory", "parse_yosys_stat", "ram_blocks_by_memory", "parse_nextpnr_report",
           "critical_path", "parse_nextpnr_log", "collect_cells", "check_fit", "summarise",
           "host_loaded_line", "format_report"]


# ---- the design's memories -----------------------------------------------------------------

_RTLIL_MEMORY = re.compile(r"^\s*memory\s+width\s+(\d+)\s+size\s+(\d+)(?:\s+offset\s+-?\d+)?\s+\\(\S+)")
_VERILOG_MEMORY = re.compile(r"^\s*reg\s+(?:\[(\d+):(\d+)\]\s*)?(\S+)\s*\[(\d+):(\d+)\]\s*;")


def module_prefix(line: str) -> str:
    """The prefix of the memory names of the module a ``module ...`` line opens: "" for the
    core's top module, ``"neuron_unit.wta."`` for ``core.neuron_unit.wta`` (RTLIL or Verilog)."""
    name = line.split(None, 1)[1].strip().lstrip("\\").split("(")[0].strip()
    return "" if name == CORE_TOP else name.removeprefix(CORE_TOP + ".") + "."


def memory_inventory(text: str, fmt: str = "rtlil") -> list[dict]:
    """Every memory of the design: ``{name, width, depth, bits}``, largest first."""
    memories, module = [], ""
    for line in text.splitlines():
        if line.startswith("module "):
            module = module_prefix(line)
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


# ---- Yosys and nextpnr output --------------------------------------------------------------

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


# ---- text report ---------------------------------------------------------------------------

def _kbit(bits) -> str:
    return "?" if bits is None else (f"{bits / 1024:.0f} kbit" if bits < 1 << 20 else f"{bits / (1 << 20):.2f} Mbit")


def _spram_lines(result: dict) -> list[str]:
    """The SPRAM lines of the text report: what the allocator chose (and the block RAMs it
    estimated to save), what Yosys put in SPRAM, and what the host must write at boot
    because SPRAM has no initial contents."""
    lines = []
    if result.get("spram"):
        lines.append("  allocated to SPRAM: " + ", ".join(
            f"{m['name']} ({m['sprams']} SPRAM{'s' if m['sprams'] != 1 else ''} for ~{m['brams']} block RAMs)"
            for m in result["spram"]))
    in_spram = [m["name"] for m in result["memories"] if "SB_SPRAM256KA" in (m.get("blocks") or {})]
    if in_spram:
        lines.append(f"  in SPRAM (power-up contents undefined; the host writes them): {', '.join(in_spram)}")
    if result.get("host_loaded"):
        lines.append(host_loaded_line(result["host_loaded"]))
    if result.get("logic_spill"):
        lines.append("  in flip-flops (a first pass overflowed the block RAMs; second pass): " + ", ".join(
            f"{m['name']} ({m['width']} x {m['depth']}, was {m['blocks']} block RAM{'s' if m['blocks'] != 1 else ''})"
            for m in result["logic_spill"]))
    return lines


def host_loaded_line(loaded: list[dict]) -> str:
    """The report line naming the memories whose contents the host writes at boot."""
    return ("  host-loaded at boot (SPRAM has no initial contents): "
            + ", ".join(f"{m['name']} {m['words']} words" for m in loaded))


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
    lines += _spram_lines(result)
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
