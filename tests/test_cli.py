"""The ``neurocore`` command line: help, version, error reporting, ``demo``'s options and ``bench golden``."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from neurocore.tools import cli, cmd_demo
from neurocore.tools.cli_common import UsageError

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def command_paths(parser: argparse.ArgumentParser | None = None, prefix: tuple[str, ...] = ()):
    """Every (sub)command path of the parser, e.g. ('demo',), ('bench',), ('bench', 'golden')."""
    parser = parser or cli.build_parser()
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append(prefix + (name,))
                paths.extend(command_paths(sub, prefix + (name,)))
    return paths


def test_commands_registered():
    paths = command_paths()
    assert ("demo",) in paths and ("bench", "golden") in paths
    assert [p[0] for p in paths if len(p) == 1] == list(cli.COMMANDS)


def test_top_level_help(capsys):
    status, out, err = run_cli(capsys, "--help")
    assert status == 0 and err == ""
    assert "usage: neurocore" in out and "examples:" in out
    for name in cli.COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", out, re.M), f"{name} missing from --help"
        assert f"neurocore {name}" in out


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_subcommand_help_has_example(capsys, path):
    status, out, err = run_cli(capsys, *path, "--help")
    assert status == 0 and err == ""
    assert out.startswith(f"usage: neurocore {' '.join(path)}")
    examples = out.split("\nexamples:\n", 1)
    assert len(examples) == 2, f"'neurocore {' '.join(path)} --help' has no examples section"
    assert re.search(rf"^  neurocore {re.escape(' '.join(path))}\b", examples[1], re.M), examples[1]


def test_version(capsys):
    status, out, err = run_cli(capsys, "--version")
    assert status == 0 and err == ""
    assert out.strip() == f"neurocore {metadata.version('neurocore')}"


@pytest.mark.parametrize("argv", [
    [],
    ["bogus"],
    ["--bogus-option"],
    ["demo", "--steps", "0"],
    ["demo", "--steps", "x"],
    ["demo", "--seed", "-1"],
    ["demo", "--nope"],
    ["demo", "extra"],
    ["demo", "--samples", "0"],
    ["demo", "--simulator", "modelsim"],
    ["bench"],
    ["bench", "nothing"],
    ["bench", "golden", "--repeats", "0"],
    ["bench", "golden", "--steps", "1.5"],
], ids=lambda argv: " ".join(argv) or "<none>")
def test_bad_arguments_exit_2_with_one_line(capsys, argv):
    status, out, err = run_cli(capsys, *argv)
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("neurocore: error: ")


@pytest.mark.parametrize("exc, message", [
    (ValueError("steps must be positive\n(got 0)"), "neurocore: error: steps must be positive (got 0)"),
    (UsageError("no such network 'foo'"), "neurocore: error: no such network 'foo'"),
    (FileNotFoundError(2, "No such file or directory", "net.json"),
     "neurocore: error: No such file or directory: net.json"),
])
def test_command_errors_are_one_line(capsys, monkeypatch, exc, message):
    def fail(args):
        raise exc
    monkeypatch.setattr(cmd_demo, "run", fail)
    monkeypatch.delenv("NEUROCORE_DEBUG", raising=False)
    status, out, err = run_cli(capsys, "demo")
    assert status == 2
    assert out == ""
    assert err == message + "\n"


def test_bugs_keep_their_traceback(monkeypatch):
    """Only user errors are shortened; anything else is a bug and propagates."""
    def fail(args):
        raise RuntimeError("internal")
    monkeypatch.setattr(cmd_demo, "run", fail)
    with pytest.raises(RuntimeError, match="internal"):
        cli.main(["demo"])


def test_demo_help_describes_the_report(capsys):
    """The demo itself runs in tests/test_demo.py (it trains, converts and writes a report)."""
    status, out, err = run_cli(capsys, "demo", "--help")
    assert status == 0 and err == ""
    for option in ("--out", "--force", "--samples", "--steps", "--simulator", "--no-cosim", "--json",
                   "--seed"):
        assert option in out, option
    assert "neurocore-report" in out


def test_bench_golden_json(capsys):
    status, out, err = run_cli(capsys, "bench", "golden", "--json", "--steps", "5", "--repeats", "1")
    assert status == 0, err
    result = json.loads(out)
    assert result["steps"] == 5
    assert result["sops_per_s"] > 0
    assert result["neuron_updates_per_s"] > 0


def test_console_script_exit_status():
    """The installed entry point returns main()'s status to the shell."""
    script = Path(sys.executable).with_name("neurocore")
    assert script.exists(), f"console script not installed next to {sys.executable}"
    ok = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("neurocore ")
    bad = subprocess.run([str(script), "demo", "--steps", "zero"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2
    assert bad.stdout == "" and len(bad.stderr.splitlines()) == 1
    assert "Traceback" not in bad.stderr


def readme_code_blocks() -> list[list[str]]:
    blocks, current = [], None
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append([text for text in current if text.strip()])
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0].startswith("# ")
    # title, blank, one-sentence description, blank, then the first block
    assert lines[3] == "" and lines[4].startswith("```")
    main_job, tests = readme_code_blocks()[:2]
    assert len(main_job) == 1 and len(tests) == 1
    assert "neurocore demo" in main_job[0] and "torch" not in main_job[0]
    assert "setup-venv.sh --test" in tests[0] and "pytest" in tests[0]
    assert "|| true" not in tests[0]
    # CI runs exactly this block
    assert "README.md" in (ROOT / ".ci" / "run").read_text()


def test_commands_import_no_other_command():
    """Shared CLI code lives in cli_common / cli_io, never in another command's module."""
    import ast

    for path in sorted((ROOT / "tools").glob("cmd_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
                assert not any(name.startswith("cmd_") for name in names), f"{path.name} imports {names}"
