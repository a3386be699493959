"""The import direction of the subpackages: hw, then sim, then sw, then tools.

A module may import its own layer and the layers before it, never one after it, not even
inside a function (a function-local import is still a dependency, only a hidden one):

* ``neurocore.hw``: the core's description (configs, programs, images, the Amaranth RTL,
  its Verilog);
* ``neurocore.sim``: the golden model, the reference, random programs, co-simulation;
* ``neurocore.sw``: datasets, encoders, conversion, STDP, the compiler, image directories,
  evaluation (and co-simulation of a compiled image);
* ``neurocore.tools``: the command line, the demo, benchmarks, synthesis.

Every module of the four folders is parsed with :mod:`ast` (every ``import`` and
``from ... import`` anywhere in it, and ``importlib.import_module``/``__import__`` with a
literal name), relative imports resolved against the module's package.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("hw", "sim", "sw", "tools")          # in this order: each may import those before it
RANK = {name: i for i, name in enumerate(LAYERS)}


def module_name(path: Path) -> str:
    """``neurocore.<layer>.<...>`` of a file under one of the layer folders."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["neurocore", *parts])


def imported_modules(source: str, module: str, *, is_package: bool = False):
    """``(line, imported module)`` for every import in ``source``, the module ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[:-(node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            if not node.module:                   # ``from .. import sw`` imports a subpackage
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__"):
                yield node.lineno, node.args[0].value


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "neurocore" and parts[1] in RANK:
        return parts[1]
    return None


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The imports of ``source`` that go against the direction, as ``module:line -> target``."""
    own = layer_of(module)
    found = []
    for line, target in imported_modules(source, module, is_package=is_package):
        other = layer_of(target)
        if own is not None and other is not None and RANK[other] > RANK[own]:
            found.append(f"{module}:{line} imports {target} ({own} must not import {other})")
    return found


def layer_files():
    for layer in LAYERS:
        yield from sorted((ROOT / layer).rglob("*.py"))


def test_every_layer_folder_has_modules():
    counts = {layer: len(list((ROOT / layer).rglob("*.py"))) for layer in LAYERS}
    assert all(counts.values()), counts


def test_no_import_goes_against_the_direction():
    found = []
    for path in layer_files():
        found += violations(path.read_text(), module_name(path), is_package=path.name == "__init__.py")
    assert not found, "imports against hw -> sim -> sw -> tools:\n" + "\n".join(found)


@pytest.mark.parametrize("module, source", [
    ("neurocore.sim.cosim", "def f():\n    from ..sw.evaluate import encode_samples\n"),
    ("neurocore.sim.cosim", "from .. import sw\n"),
    ("neurocore.hw.core", "import neurocore.sim.golden as golden\n"),
    ("neurocore.hw.core", "class C:\n    def m(self):\n        from neurocore.tools import cli\n"),
    ("neurocore.sw.convert.pipeline", "from ...tools.plots import accuracy_curve\n"),
    ("neurocore.sw.evaluate", "import importlib\nm = importlib.import_module('neurocore.tools.cli')\n"),
])
def test_an_import_against_the_direction_is_found(module, source):
    assert len(violations(source, module)) == 1


@pytest.mark.parametrize("module, source", [
    ("neurocore.sw.evaluate", "def f():\n    from ..sim import golden\n"),
    ("neurocore.sw.convert.pipeline", "from ..compiler import compile_network\n"),
    ("neurocore.sw.convert.pipeline", "from ...sim.golden import run_batch\n"),
    ("neurocore.tools.demo", "from ..hw.verilog import write_verilog\nfrom ..sw import evaluate\n"),
    ("neurocore.hw.core", "from .images import program_images\nimport numpy\n"),
])
def test_an_import_along_the_direction_is_allowed(module, source):
    assert violations(source, module) == []


def test_neurocore_verilog_loads_no_simulation_code(tmp_path):
    """``neurocore verilog`` needs the hardware description only: it imports nothing of sim/
    (the co-simulation runner, the models) and of sw/ only ``sw.output_dir``, the light,
    numpy-free module of output-folder rules that the CLI's argument checks use."""
    script = (
        "import sys\n"
        "from neurocore.tools import cli\n"
        f"status = cli.main(['verilog', '-o', {str(tmp_path / 'core.v')!r}, '--config',"
        " '{\"neurons\": 8, \"axons\": 8, \"synapses\": 16, \"learning\": false}'])\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('neurocore.sim', 'neurocore.sw'))\n"
        "                and m not in ('neurocore.sw', 'neurocore.sw.output_dir'))\n"
        "print(loaded)\n"
        "sys.exit(status)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert (tmp_path / "core.v").read_text().count("module core(") == 1
