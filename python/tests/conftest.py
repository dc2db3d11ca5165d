"""Fixtures: a real psod on loopback, and small datasets in the real file
formats (MNIST IDX, CIFAR-10 binary), generated per test."""
import gzip
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("PSOD_BUILD", os.path.join(ROOT, "build"))
PY = "/usr/bin/python3"
TORCH_WORKER = [PY, os.path.join(ROOT, "python", "psoworker-torch")]


def binary(name):
    return os.path.join(BUILD, name)


class Daemon:
    def __init__(self, tmp, tag, args):
        self.epfile = os.path.join(tmp, f"{tag}.ep")
        self.log = os.path.join(tmp, f"{tag}.err")
        self.proc = subprocess.Popen(
            [binary("psod"), "--bind", "tcp://127.0.0.1:*", "--endpoint-file", self.epfile,
             "--progress-interval", "0"] + list(args),
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        deadline = time.time() + 10
        while not (os.path.exists(self.epfile) and os.path.getsize(self.epfile)):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("psod did not start: " + self.text())
            time.sleep(0.02)
        self.endpoint = open(self.epfile).read().strip()

    def text(self):
        return open(self.log).read() if os.path.exists(self.log) else ""

    def wait_for(self, needle, secs=20):
        deadline = time.time() + secs
        while time.time() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def daemon(tmp_path):
    started = []

    def start(*args, tag="psod"):
        d = Daemon(str(tmp_path), tag, args)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def _pattern_images(n, classes, h, w, c, rng):
    """Images whose class is a bright block at a class-given place, on noise:
    learnable in a few hundred steps, with wide margins."""
    y = rng.integers(0, classes, n).astype(np.uint8)
    x = rng.integers(0, 60, (n, c, h, w)).astype(np.uint8)
    bs = h // 5
    for i in range(n):
        r, q = divmod(int(y[i]), 5)
        x[i, :, 2 + r * (h // 2):2 + r * (h // 2) + bs, q * bs:(q + 1) * bs] = 230
    return x, y


def write_mnist(root, n_train=1024, n_test=256, seed=1, gz=False):
    """MNIST-format IDX files (optionally gzipped) in root."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x, y = _pattern_images(n, 10, 28, 28, 1, rng)
        opener = gzip.open if gz else open
        suffix = ".gz" if gz else ""
        with opener(os.path.join(root, f"{prefix}-images-idx3-ubyte{suffix}"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28) + x.tobytes())
        with opener(os.path.join(root, f"{prefix}-labels-idx1-ubyte{suffix}"), "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + y.tobytes())
    return root


def write_cifar(root, n_train=256, n_test=128, seed=1):
    """CIFAR-10 binary batches (label byte + 3072 pixel bytes) in root."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("data_batch_1.bin", n_train), ("test_batch.bin", n_test)):
        x, y = _pattern_images(n, 10, 32, 32, 3, rng)
        rec = np.concatenate([y[:, None], x.reshape(n, -1)], axis=1).astype(np.uint8)
        rec.tofile(os.path.join(root, name))
    return root


def run(cmd, tmp, tag, timeout=120, wait=True):
    """Start a command with its output in tmp/tag.out and tmp/tag.err."""
    p = subprocess.Popen(cmd, stdout=open(os.path.join(tmp, f"{tag}.out"), "w"),
                         stderr=open(os.path.join(tmp, f"{tag}.err"), "w"))
    if wait:
        p.wait(timeout)
    return p


def read(tmp, tag, ext="out"):
    path = os.path.join(tmp, f"{tag}.{ext}")
    return open(path).read() if os.path.exists(path) else ""


sys.path.insert(0, os.path.join(ROOT, "python"))
