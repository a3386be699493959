"""Ctrl-C stops a run: no output written, exit status 130, never a half-trained network.

scikit-learn's ``MLPClassifier`` catches the ``KeyboardInterrupt`` of its training loop and
only warns; :func:`neurocore.sw.convert.pipeline.train_mlp` turns it back into an
interrupt. The in-process tests raise the interrupt inside sklearn's loop (where a real
Ctrl-C lands); the last one sends a real SIGINT to ``neurocore convert``.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sklearn.neural_network import MLPClassifier

from neurocore.sw.convert.pipeline import convert_dataset, train_mlp
from neurocore.sw.datasets import load_dataset
from neurocore.tools import cli


@pytest.fixture()
def ctrl_c_in_training(monkeypatch):
    """A KeyboardInterrupt in the third epoch of every MLP training; returns the epochs seen."""
    epochs = []
    real = MLPClassifier._update_no_improvement_count

    def update(self, *args, **kwargs):
        epochs.append(self.n_iter_)
        if len(epochs) == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MLPClassifier, "_update_no_improvement_count", update)
    return epochs


def test_train_mlp_passes_the_interrupt_on(ctrl_c_in_training):
    data = load_dataset("digits")
    with pytest.raises(KeyboardInterrupt):
        train_mlp(data.x_train, data.y_train, hidden=(16,))
    assert ctrl_c_in_training == [1, 2, 3]      # stopped in the third epoch, not trained on


def test_train_mlp_keeps_other_warnings():
    import warnings
    data = load_dataset("digits")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        model = train_mlp(data.x_train[:50], data.y_train[:50], hidden=(4,), max_iter=2)
    assert model.n_iter_ == 2 and not [w for w in seen if "interrupted" in str(w.message)]


def test_convert_dataset_writes_nothing(tmp_path, ctrl_c_in_training):
    with pytest.raises(KeyboardInterrupt):
        convert_dataset("digits", steps=4, hidden=(16,), curve_steps=(), out=tmp_path / "img")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["convert", "--hidden", "16", "--no-curve", "--json", "--out", "{tmp}/img"],
    ["demo", "--no-cosim", "--no-progress", "--json", "--out", "{tmp}/report"],
])
def test_cli_exits_130_and_writes_nothing(tmp_path, capsys, ctrl_c_in_training, argv):
    status = cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    out, err = capsys.readouterr()
    assert status == 130 and out == ""
    assert err.splitlines()[-1] == "neurocore: interrupted"
    assert list(tmp_path.iterdir()) == []


def test_real_sigint_stops_neurocore_convert(tmp_path):
    """SIGINT while the (large, slow) MLP trains: exit 130 at once, no image, no leftovers."""
    script = Path(sys.executable).with_name("neurocore")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "neurocore.tools.cli"]
    out = tmp_path / "img"
    proc = subprocess.Popen(argv + ["convert", "--hidden", "1024,1024", "--no-curve", "--steps", "4",
                                    "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # the progress bar appears right before the training starts
        deadline, err = time.monotonic() + 60, b""
        while b"convert" not in err and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stderr], [], [], 1.0)[0]:
                err += os.read(proc.stderr.fileno(), 4096)
        assert b"convert" in err, err
        time.sleep(1.0)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err += rest
    assert proc.returncode == 130, err.decode(errors="replace")
    assert b"neurocore: interrupted" in err and stdout == b""
    assert took < 10                                   # stopped, not trained to the end
    assert list(tmp_path.iterdir()) == []
