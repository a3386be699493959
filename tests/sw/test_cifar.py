"""CIFAR-10 binary batches: the reader and loader on small files written here (never real CIFAR)."""
from __future__ import annotations

import os
import pickle
import re

import numpy as np
import pytest

from neurocore.sw.datasets import (
    CIFAR10_FILES,
    CIFAR10_RECORD_BYTES,
    load_cifar10,
    load_dataset,
    read_cifar10_batch,
)


def pixel(record: int, channel: int, row: int, col: int) -> int:
    """The test pattern: different in every channel, row and column."""
    return (7 * record + 80 * channel + 3 * row + 5 * col) % 256


def record_bytes(record: int, label: int) -> bytes:
    """One record as the format says: the label byte, then the R, G and B planes, each row-major."""
    planes = b"".join(bytes(pixel(record, c, r, k) for r in range(32) for k in range(32)) for c in range(3))
    return bytes([label]) + planes


def write_batch(path, records: list[tuple[int, int]]) -> str:
    """Write ``records`` ((pattern id, label) pairs) to ``path``."""
    with open(path, "wb") as f:
        f.write(b"".join(record_bytes(i, lbl) for i, lbl in records))
    return str(path)


# The synthetic distribution: batch sizes 2, 1, 3, 1, 2 and a test batch of 2; pattern ids 0..10.
BATCHES = {
    "data_batch_1.bin": [(0, 3), (1, 9)],
    "data_batch_2.bin": [(2, 0)],
    "data_batch_3.bin": [(3, 1), (4, 2), (5, 8)],
    "data_batch_4.bin": [(6, 4)],
    "data_batch_5.bin": [(7, 5), (8, 6)],
    "test_batch.bin": [(9, 7), (10, 0)],
}


def make_cifar_dir(root) -> str:
    directory = os.path.join(root, "cifar-10-batches-bin")
    os.makedirs(directory, exist_ok=True)
    for name, records in BATCHES.items():
        write_batch(os.path.join(directory, name), records)
    return directory


def test_record_layout():
    assert CIFAR10_RECORD_BYTES == 3073 == len(record_bytes(0, 0))
    assert CIFAR10_FILES == ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                             "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin")


def test_read_batch_decodes_channels_and_pixel_order(tmp_path):
    path = write_batch(tmp_path / "b.bin", [(4, 6), (9, 0), (2, 9)])
    images, labels = read_cifar10_batch(path)
    assert images.dtype == np.uint8 and images.shape == (3, 3, 32, 32)
    assert labels.dtype == np.uint8 and labels.tolist() == [6, 0, 9]
    for i, record in enumerate((4, 9, 2)):
        for c, r, k in ((0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0), (2, 31, 31), (1, 17, 5), (2, 3, 30)):
            assert images[i, c, r, k] == pixel(record, c, r, k), (i, c, r, k)
    # byte 1 + 1024*c + 32*r + k of the record is images[i, c, r, k]
    raw = open(path, "rb").read()
    assert raw[3073 + 1 + 1024 * 2 + 32 * 7 + 11] == images[1, 2, 7, 11]


@pytest.mark.parametrize("parent", [False, True])
def test_load_cifar10(tmp_path, parent):
    directory = make_cifar_dir(tmp_path)
    ds = load_cifar10(tmp_path if parent else directory)
    assert ds.name == "cifar-10" and ds.n_classes == 10
    assert ds.channels == 3 and ds.image_shape == (32, 32) and ds.input_shape == (3, 32, 32)
    assert ds.n_features == 3072
    assert ds.x_train.shape == (9, 3072) and ds.x_test.shape == (2, 3072)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    # the training batches 1..5 in order, then the test batch
    train = [rec for name in CIFAR10_FILES[:5] for rec in BATCHES[name]]
    assert ds.y_train.tolist() == [lbl for _, lbl in train]
    assert ds.y_test.tolist() == [7, 0]
    # channel-major features: feature c*1024 + r*32 + k is channel c, row r, column k, divided by 255
    for row, (record, _) in enumerate(train):
        for c, r, k in ((0, 0, 0), (1, 2, 3), (2, 31, 30)):
            assert ds.x_train[row, c * 1024 + r * 32 + k] == np.float32(pixel(record, c, r, k)) / np.float32(255)
    images = ds.x_test.reshape(2, *ds.input_shape)
    assert images[1, 2, 5, 9] == np.float32(pixel(10, 2, 5, 9)) / np.float32(255)


def test_load_dataset_cifar10(tmp_path):
    make_cifar_dir(tmp_path)
    ds = load_dataset("cifar-10", str(tmp_path))
    assert ds.name == "cifar-10" and ds.x_train.shape == (9, 3072)


def one_line_value_error(call, pattern: str) -> str:
    with pytest.raises(ValueError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and re.search(pattern, text), text
    return text


def test_empty_batch(tmp_path):
    directory = make_cifar_dir(tmp_path)
    path = os.path.join(directory, "data_batch_4.bin")
    open(path, "wb").close()
    one_line_value_error(lambda: load_cifar10(directory),
                         rf"^{re.escape(path)}: empty file: holds no CIFAR-10 records \(each is 3073 bytes")


@pytest.mark.parametrize("size, n, left", [(2 * 3073 + 5, 2, 5), (2 * 3073 - 1, 1, 3072), (100, 0, 100)])
def test_size_not_whole_records(tmp_path, size, n, left):
    data = (record_bytes(0, 1) + record_bytes(1, 2) + bytes(10))[:size]
    assert len(data) == size
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(data)
    one_line_value_error(lambda: read_cifar10_batch(path),
                         rf"^{re.escape(str(path))}: {size} bytes is not a whole number of 3073-byte CIFAR-10 "
                         rf"records \(1 label \+ 3072 pixels\): {n} records and {left} bytes left over$")


def test_label_above_9(tmp_path):
    directory = make_cifar_dir(tmp_path)
    path = write_batch(os.path.join(directory, "test_batch.bin"), [(0, 1), (1, 10), (2, 255)])
    one_line_value_error(lambda: load_cifar10(directory),
                         rf"^{re.escape(path)}: record 1 \(byte 3073\) has label 10; labels must be within 0\.\.9$")


def test_missing_batch(tmp_path):
    directory = make_cifar_dir(tmp_path)
    os.remove(os.path.join(directory, "data_batch_3.bin"))
    missing = os.path.join(directory, "data_batch_3.bin")
    with pytest.raises(FileNotFoundError, match=rf"^CIFAR-10 file not found: {re.escape(missing)}$"):
        load_cifar10(directory)


def test_data_dir_is_a_file(tmp_path):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(b"\x1f\x8b")
    one_line_value_error(lambda: load_cifar10(archive),
                         rf"^cifar-10: {re.escape(str(archive))} is a file; --data-dir is the directory "
                         r"cifar-10-batches-bin \(extracted from cifar-10-binary.tar.gz\) or its parent$")


def test_read_batch_arrays_are_writeable_copies(tmp_path):
    path = write_batch(tmp_path / "b.bin", [(0, 1)])
    images, labels = read_cifar10_batch(path)
    images[0, 0, 0, 0] = 77
    labels[0] = 5
    again, again_labels = read_cifar10_batch(path)
    assert again[0, 0, 0, 0] == pixel(0, 0, 0, 0) and again_labels[0] == 1


def test_missing_directory_and_no_batches(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"^cifar-10: data directory not found: {re.escape(str(tmp_path / 'x'))}$"):
        load_cifar10(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match=rf"^CIFAR-10 file not found: {re.escape(str(tmp_path / 'data_batch_1.bin'))} "
                                                r"\(give the cifar-10-batches-bin directory of the binary version, or its parent\)$"):
        load_cifar10(tmp_path)


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any attempt to unpickle fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the CIFAR-10 loader unpickled something")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    import numpy
    monkeypatch.setattr(numpy, "load", refuse)


PICKLE = pickle.dumps({b"batch_label": b"training batch 1 of 5", b"labels": [3, 9], b"data": bytes(6146)}, protocol=2)


@pytest.mark.parametrize("layout", ["python-batches-here", "python-dir-inside"])
def test_python_version_is_refused(tmp_path, no_unpickling, layout):
    if layout == "python-batches-here":
        for name in ("data_batch_1", "data_batch_2", "test_batch", "batches.meta"):
            (tmp_path / name).write_bytes(PICKLE)
        where = tmp_path / "data_batch_1"
    else:
        (tmp_path / "cifar-10-batches-py").mkdir()
        where = tmp_path / "cifar-10-batches-py"
    text = one_line_value_error(lambda: load_dataset("cifar-10", tmp_path),
                                rf"^{re.escape(str(where))}: the Python \(pickled\) version of CIFAR-10, "
                                r"which neurocore never unpickles: use CIFAR-10's binary version")
    assert "cifar-10-batches-bin with data_batch_1.bin .. data_batch_5.bin and test_batch.bin" in text


def test_pickle_named_bin_is_refused(tmp_path, no_unpickling):
    directory = make_cifar_dir(tmp_path)
    path = os.path.join(directory, "data_batch_2.bin")
    with open(path, "wb") as f:
        f.write(PICKLE)
    one_line_value_error(lambda: load_cifar10(directory),
                         rf"^{re.escape(path)}: a Python pickle \(the Python version of CIFAR-10\), not a binary batch; "
                         r"neurocore never unpickles: use CIFAR-10's binary version")


def test_missing_bin_next_to_a_pickle(tmp_path, no_unpickling):
    directory = make_cifar_dir(tmp_path)
    os.remove(os.path.join(directory, "test_batch.bin"))
    with open(os.path.join(directory, "test_batch"), "wb") as f:
        f.write(PICKLE)
    with pytest.raises(FileNotFoundError, match=r"test_batch\.bin \(.*test_batch is the Python version's pickle, "
                                                r"which neurocore never unpickles"):
        load_cifar10(directory)


def test_bin_files_are_used_even_next_to_pickles(tmp_path, no_unpickling):
    directory = make_cifar_dir(tmp_path)
    for name in ("data_batch_1", "test_batch"):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(PICKLE)
    assert load_cifar10(tmp_path).x_train.shape == (9, 3072)


@pytest.mark.parametrize("make, needle", [
    (lambda root: None, "dataset 'cifar-10' is read from local files and is never downloaded"),
    (lambda root: (root / "data_batch_1").write_bytes(PICKLE), "which neurocore never unpickles"),
])
def test_cli_cifar_errors_one_line(tmp_path, capsys, make, needle):
    from neurocore.tools import cli
    argv = ["convert", "--dataset", "cifar-10", "--no-curve"]
    if make(tmp_path) is not None:
        argv += ["--data-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert needle in captured.err
