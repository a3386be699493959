#!/usr/bin/env bash
# Create (or refresh) the virtualenv .venv in the repository root and install neurocore into it.
#
#   bash tools/setup-venv.sh           # the package and its runtime dependencies
#   bash tools/setup-venv.sh --test    # also PyTorch (CPU) and the test extras
#
# Idempotent: a stamp file in .venv records a hash of pyproject.toml and of this script;
# when it matches, pip is not run at all, so re-running takes a fraction of a second.
# Delete .venv (or edit pyproject.toml) to force a reinstall. PYTHON selects the interpreter
# that creates the venv (default: python3; Python >= 3.11 is required).
set -euo pipefail

# PyTorch is an optional dependency of later features. This exact version is a CPU build
# that pip takes from this machine's local wheel directory; any other torch request pulls
# a multi-GB CUDA build. It is installed first, before the extras that may depend on it.
TORCH_SPEC="torch==2.13.0"

mode=base
for arg in "$@"; do
    case "$arg" in
        --test) mode=test ;;
        -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "setup-venv.sh: error: unknown argument '$arg' (use --test or nothing)" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
python="${PYTHON:-python3}"

# Recreate the venv when it is missing or broken (e.g. its interpreter was removed).
if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "setup-venv.sh: error: neurocore needs Python >= 3.11; '$python' is $("$python" --version 2>&1 || echo missing)" >&2
        exit 1
    fi
    echo "setup-venv.sh: creating $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

hash="$(cat pyproject.toml tools/setup-venv.sh | sha256sum | cut -d' ' -f1)"
stamp="$venv/.neurocore-setup-$mode"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    exit 0   # already set up for this pyproject.toml
fi

pip=("$venv/bin/python" -m pip install --quiet)
if [[ "$mode" == test ]]; then
    echo "setup-venv.sh: installing $TORCH_SPEC and neurocore[test,torch] into .venv" >&2
    "${pip[@]}" "$TORCH_SPEC"
    "${pip[@]}" -e ".[test,torch]"
else
    echo "setup-venv.sh: installing neurocore into .venv" >&2
    "${pip[@]}" -e .
fi

# A test setup includes everything of the base setup.
echo "$hash" > "$stamp"
if [[ "$mode" == test ]]; then
    echo "$hash" > "$venv/.neurocore-setup-base"
fi
