"""The datasets psoworker reads, in the same files: MNIST and Fashion-MNIST
IDX (plain or .gz), CIFAR-10 binary batches; normalized as psoworker
normalizes them."""
import gzip
import os
import struct

import numpy as np

__all__ = ["load", "shard", "SHARD_MODES"]

_NORM = {"mnist": ((0.1307,), (0.3081,)), "fashion-mnist": ((0.2860,), (0.3530,)),
         "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))}


def _open(path):
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _idx(path):
    with _open(path) as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: not an IDX file")
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        h, w = struct.unpack(">II", data[8:16])
        if len(data) != 16 + n * h * w:
            raise ValueError(f"{path}: {len(data)} bytes, the header says {16 + n * h * w}")
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, h, w)
    if magic == 0x801:
        if len(data) != 8 + n:
            raise ValueError(f"{path}: {len(data)} bytes, the header says {8 + n}")
        return np.frombuffer(data, np.uint8, offset=8)
    raise ValueError(f"{path}: IDX magic {magic:#x} is neither images nor labels")


def _norm(x, name):
    mean, std = _NORM[name]
    x = x.astype(np.float32) / 255.0
    m = np.array(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.array(std, np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x - m) / s)


def _cifar(paths):
    xs, ys = [], []
    for p in paths:
        raw = np.fromfile(p, np.uint8)
        if raw.size % 3073:
            raise ValueError(f"{p}: {raw.size} bytes is not whole CIFAR-10 records (3073 bytes)")
        raw = raw.reshape(-1, 3073)
        ys.append(raw[:, 0])
        xs.append(raw[:, 1:].reshape(-1, 3, 32, 32))
    return np.concatenate(xs), np.concatenate(ys)


def load(name, root, shard=None, holdout=0):
    """(x_train, y_train, x_test, y_test) as float32 NCHW and int64 arrays.
    `shard` = (index, count, seed[, mode, alpha, classes]) keeps only that part
    of the training set (see shard()), cut before the conversion to floats.
    With `holdout` N > 0, the last N training samples are kept out of every
    shard (psoworker --fitness shared) and returned after the rest:
    (x_train, y_train, x_test, y_test, x_holdout, y_holdout)."""
    if name in ("mnist", "fashion-mnist"):
        xtr = _idx(os.path.join(root, "train-images-idx3-ubyte"))
        ytr = _idx(os.path.join(root, "train-labels-idx1-ubyte"))
        xte = _idx(os.path.join(root, "t10k-images-idx3-ubyte"))
        yte = _idx(os.path.join(root, "t10k-labels-idx1-ubyte"))
    elif name == "cifar10":
        train = [os.path.join(root, f"data_batch_{k}.bin") for k in range(1, 6)]
        train = [p for p in train if os.path.exists(p)] or \
            [os.path.join(root, "data_batch_1_first4000.bin")]
        test = os.path.join(root, "test_batch.bin")
        if not os.path.exists(test):
            test = os.path.join(root, "test_first1000.bin")
        xtr, ytr = _cifar(train)
        xte, yte = _cifar([test])
    elif name == "text":
        return text(root, shard=shard, holdout=holdout)
    else:
        raise ValueError(f"unknown dataset '{name}' (mnist, fashion-mnist, cifar10, text)")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(f"{root}: images and labels differ in count")
    held = None
    if holdout:
        if not 0 < holdout < len(xtr):
            raise ValueError(f"cannot hold out {holdout} of {len(xtr)} samples")
        held = (_norm(xtr[-holdout:], name), ytr[-holdout:].astype(np.int64))
        xtr, ytr = xtr[:-holdout], ytr[:-holdout]
    if shard is not None:
        xtr, ytr = globals()["shard"](xtr, ytr, *shard)
    out = (_norm(xtr, name), ytr.astype(np.int64), _norm(xte, name), yte.astype(np.int64))
    return out + held if held else out


SHARD_MODES = ("iid", "dirichlet", "classes")
BLOCK = 64


def text_path(root):
    """The text file: root itself, or root/input.txt."""
    return os.path.join(root, "input.txt") if os.path.isdir(root) else root


def vocab(root):
    """The sorted characters of the whole text (the same on every worker)."""
    with open(text_path(root), encoding="utf-8") as f:
        return sorted(set(f.read()))


def text(root, block=BLOCK, shard=None, holdout=0):
    """A plain text file read as characters (the text dataset): the first
    90 % train, the last 10 % validation, each cut in windows of block + 1
    characters (x the first block, y the next character at each place), as
    int64 arrays (windows, block). The vocabulary is the text's sorted
    characters. `shard` (iid only) and `holdout` (the last N training
    windows) as for the image sets."""
    with open(text_path(root), encoding="utf-8") as f:
        chars = f.read()
    if len(chars) < 20 * (block + 1):
        raise ValueError(f"{text_path(root)}: {len(chars)} characters, too short for windows "
                         f"of {block + 1}")
    table = {c: i for i, c in enumerate(sorted(set(chars)))}
    ids = np.fromiter((table[c] for c in chars), dtype=np.int64, count=len(chars))
    cut = int(0.9 * len(ids))

    def windows(a):
        n = (len(a) - 1) // block
        x = a[:n * block].reshape(n, block)
        y = a[1:n * block + 1].reshape(n, block)
        return np.ascontiguousarray(x), np.ascontiguousarray(y)

    xtr, ytr = windows(ids[:cut])
    xte, yte = windows(ids[cut:])
    held = None
    if holdout:
        if not 0 < holdout < len(xtr):
            raise ValueError(f"cannot hold out {holdout} of {len(xtr)} windows")
        held = (xtr[-holdout:], ytr[-holdout:])
        xtr, ytr = xtr[:-holdout], ytr[:-holdout]
    if shard is not None:
        if len(shard) > 3 and shard[3] != "iid":
            raise ValueError("the text dataset is cut iid only (no labels to skew)")
        pick = globals()["shard"](np.arange(len(xtr)), np.zeros(len(xtr), np.uint8), *shard[:3])[0]
        xtr, ytr = xtr[pick], ytr[pick]
    out = (xtr, ytr, xte, yte)
    return out + held if held else out


def shard(x, y, index, count, seed, mode="iid", alpha=0.5, classes=2):
    """This worker's part of the training set, cut by the C library's
    psoc_partition, so that C and PyTorch workers of one swarm hold the same
    parts: iid (a seeded permutation cut in `count` parts), dirichlet (label
    skew, each class dealt in Dirichlet(alpha) proportions) or classes (about
    `classes` classes per worker)."""
    import psod
    from psod import _lib

    if mode not in SHARD_MODES:
        raise ValueError(f"unknown shard mode '{mode}' ({', '.join(SHARD_MODES)})")
    labels = np.ascontiguousarray(y, dtype=np.uint8)
    out = np.empty(len(labels), dtype=np.uintp)
    got = _lib.partition(psod._libc(), labels, index, count, mode, alpha, classes, seed, out)
    pick = out[:got].astype(np.int64)
    return x[pick], y[pick]
