"""Image-classification datasets for the ANN-to-SNN and STDP pipelines.

Nothing is ever downloaded. The default dataset is scikit-learn's bundled *digits* (8x8
images, shipped inside the scikit-learn wheel); MNIST and Fashion-MNIST are read from the
four standard IDX files in a directory the user gives (``--data-dir PATH`` on the command
line).

Every loader returns a :class:`Dataset`: flattened images as float32 in [0, 1] (one row per
sample) and int64 labels, with a fixed train/test split so that results are comparable
between runs and machines.

The IDX format (http://yann.lecun.com/exdb/mnist/) is::

    bytes 0-1   0x00 0x00
    byte  2     type code: 0x08 ubyte, 0x09 sbyte, 0x0B short, 0x0C int, 0x0D float, 0x0E double
    byte  3     number of dimensions d
    4*d bytes   the size of each dimension, big-endian uint32
    data        prod(sizes) items of the type, big-endian, C order

:func:`read_idx` reads it raw or gzip-compressed (recognised by the gzip magic ``1f 8b``,
not by the file name).
"""
from __future__ import annotations

import dataclasses
import gzip
import math
import os
import zlib

import numpy as np

__all__ = [
    "Dataset",
    "DATASETS",
    "IDX_FILES",
    "load_dataset",
    "load_digits",
    "load_idx_dataset",
    "read_idx",
]

#: Names accepted by :func:`load_dataset`.
DATASETS = ("digits", "mnist", "fashion-mnist")

#: The four standard IDX file names (without the optional ``.gz``) of MNIST and
#: Fashion-MNIST: (train images, train labels, test images, test labels).
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# IDX type code -> big-endian numpy dtype.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset with a fixed train/test split.

    ``x_train``/``x_test`` are float32 ``[n, features]`` with values in [0, 1] (flattened
    images, row-major, ``features == image_shape[0] * image_shape[1]``); ``y_train``/``y_test``
    are int64 ``[n]`` with values in ``0 .. n_classes - 1``. Equality is identity
    (``eq=False``): comparing arrays element-wise has no single truth value.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    n_classes: int

    def __post_init__(self) -> None:
        try:
            shape = tuple(self.image_shape)
        except TypeError:
            shape = ()
        if len(shape) != 2 or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape
        ):
            raise ValueError(
                f"dataset {self.name!r}: image_shape must be two positive ints, got {self.image_shape!r}"
            )
        object.__setattr__(self, "image_shape", (int(shape[0]), int(shape[1])))
        n_classes = self.n_classes
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
            raise ValueError(f"dataset {self.name!r}: n_classes must be a positive int, got {n_classes!r}")
        object.__setattr__(self, "n_classes", int(n_classes))
        n_features = shape[0] * shape[1]
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2:
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} must be a 2-D float32 array [n, features], "
                    f"got {_describe(x)}"
                )
            if x.shape[1] != n_features:
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} has {x.shape[1]} features but image_shape "
                    f"{shape} has {n_features} pixels"
                )
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
                raise ValueError(
                    f"dataset {self.name!r}: y_{split} must be a 1-D int64 array [n], got {_describe(y)}"
                )
            if y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} has {x.shape[0]} samples but y_{split} has {y.shape[0]} labels"
                )
            if x.size and not (np.all(x >= 0.0) and np.all(x <= 1.0)):  # NaN fails both
                if np.isnan(x).any():
                    raise ValueError(f"dataset {self.name!r}: x_{split} contains NaN; values must be within [0, 1]")
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} values must be within [0, 1], got min {x.min()}, max {x.max()}"
                )
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError(
                    f"dataset {self.name!r}: y_{split} labels must be within 0..{self.n_classes - 1}, "
                    f"got {y.min()}..{y.max()}"
                )

    @property
    def n_features(self) -> int:
        """Number of input features (pixels) per sample."""
        return self.image_shape[0] * self.image_shape[1]


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {a.shape}"
    return type(a).__name__


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1797 samples, 10 classes).

    Pixel values 0..16 are divided by 16. The split is fixed:
    ``train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)``, giving
    **1257 training and 540 test samples** (test class counts 54 55 53 55 54 55 54 54 52 54
    for digits 0..9). Nothing is downloaded: the data ships with scikit-learn.
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_load_digits()
    x = (np.asarray(bunch.data, dtype=np.float64) / 16.0).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return Dataset(
        name="digits",
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        image_shape=(8, 8),
        n_classes=10,
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file, raw or gzip-compressed, into a native-endian numpy array.

    Gzip is recognised by the magic bytes ``1f 8b`` at the start of the file, whatever
    the file is called. Raises :class:`FileNotFoundError` for a missing file and
    :class:`ValueError` (one line, naming the file) for a corrupt gzip stream, a bad magic
    number, an unknown type code, a truncated header or data section, or trailing bytes
    after the data.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file: only {len(raw)} bytes, the header needs at least 4")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: bad IDX magic: the first two bytes must be 00 00, got {raw[0]:02x} {raw[1]:02x}"
        )
    code, ndims = raw[2], raw[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndims == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndims
    if len(raw) < header_len:
        raise ValueError(
            f"{path}: truncated IDX header: {ndims} dimensions need {header_len} header bytes, found {len(raw)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndims, offset=4))
    dtype = _IDX_TYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    found = len(raw) - header_len
    if found < expected:
        raise ValueError(
            f"{path}: truncated IDX data: shape {dims} of {dtype.name} needs {expected} bytes, found {found}"
        )
    if found > expected:
        raise ValueError(
            f"{path}: {found - expected} bytes of trailing garbage after the IDX data "
            f"(shape {dims} of {dtype.name} needs {expected} bytes, found {found})"
        )
    data = np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=header_len)
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(directory: str, stem: str) -> str:
    for candidate in (stem, stem + ".gz"):
        p = os.path.join(directory, candidate)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"IDX file not found: {os.path.join(directory, stem)}[.gz]")


def load_idx_dataset(path: str | os.PathLike, name: str) -> Dataset:
    """Load an MNIST-format dataset from the four standard IDX files in directory ``path``.

    The files are ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally with a
    ``.gz`` suffix (an uncompressed file is preferred when both exist). Images must be
    3-D ubyte ``[n, rows, cols]`` (train and test of the same size), labels 1-D ubyte
    ``[n]`` with values 0..9 and as many labels as images; no file may be empty (0 images,
    0 x 0 pixels or 0 labels). Pixels are divided by 255; the
    split is the files' own (60000/10000 for MNIST and Fashion-MNIST).
    """
    directory = os.fspath(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{name}: data directory not found: {directory}")
    arrays = {}
    for stem in IDX_FILES:
        file = _find_idx(directory, stem)
        arr = read_idx(file)
        if arr.dtype != np.uint8:
            raise ValueError(f"{file}: expected ubyte (type code 0x08) data, got {arr.dtype.name}")
        want_ndim = 3 if "images" in stem else 1
        if arr.ndim != want_ndim:
            raise ValueError(
                f"{file}: expected {want_ndim}-D {'images [n, rows, cols]' if want_ndim == 3 else 'labels [n]'}, "
                f"got shape {arr.shape}"
            )
        if arr.size == 0:   # e.g. a header of 0 images, or of 0 x 0 pixels
            what = "images (at least one of at least 1x1 pixels)" if want_ndim == 3 else "labels"
            raise ValueError(f"{file}: holds no {what}: shape {arr.shape}")
        if want_ndim == 1 and arr.max() > 9:
            raise ValueError(f"{file}: labels must be within 0..9, found {int(arr.max())}")
        arrays[stem] = (file, arr)

    splits = {}
    for split, img_stem, lbl_stem in (("train", IDX_FILES[0], IDX_FILES[1]), ("test", IDX_FILES[2], IDX_FILES[3])):
        img_file, images = arrays[img_stem]
        lbl_file, labels = arrays[lbl_stem]
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{name}: {split} images and labels disagree: {img_file} has {images.shape[0]} images, "
                f"{lbl_file} has {labels.shape[0]} labels"
            )
        splits[split] = (images, labels)
    train_shape = splits["train"][0].shape[1:]
    test_shape = splits["test"][0].shape[1:]
    if train_shape != test_shape:
        raise ValueError(f"{name}: train images are {train_shape} but test images are {test_shape}")

    def flat(images: np.ndarray) -> np.ndarray:
        return images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)

    return Dataset(
        name=name,
        x_train=flat(splits["train"][0]),
        y_train=splits["train"][1].astype(np.int64),
        x_test=flat(splits["test"][0]),
        y_test=splits["test"][1].astype(np.int64),
        image_shape=(int(train_shape[0]), int(train_shape[1])),
        n_classes=10,
    )


def load_dataset(name: str, path: str | os.PathLike | None = None) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`).

    ``"digits"`` needs no files and refuses a ``path`` (a ``--data-dir`` given for it would
    otherwise be silently ignored). ``"mnist"`` and ``"fashion-mnist"`` need ``path``: a
    directory holding the four IDX files (see :func:`load_idx_dataset`). Nothing is ever
    downloaded.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "digits":
        if path is not None:
            raise ValueError(f"--data-dir {os.fspath(path)}: dataset 'digits' ships with scikit-learn and reads "
                             "no files; --data-dir is for mnist and fashion-mnist (drop it, or choose one of them)")
        return load_digits()
    if path is None:
        raise ValueError(
            f"dataset {name!r} is read from local IDX files and is never downloaded: pass --data-dir PATH "
            f"with the IDX files ({', '.join(s + '[.gz]' for s in IDX_FILES)})"
        )
    return load_idx_dataset(path, name)
