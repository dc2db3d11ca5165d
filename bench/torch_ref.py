#!/usr/bin/env python3
"""PyTorch reference for psod's training engine: the identical architectures.

  torch_ref.py speed MODEL THREADS SECONDS   samples/s at batch 64, SGD momentum 0.9
  torch_ref.py mnist DIR EPOCHS [SEED]       LeNet-5 on MNIST IDX files, batch 64,
                                             lr 0.01, momentum 0.9; prints test accuracy
Uses Debian's python3-torch (CPU). Normalization and shuffling as in psoworker.
"""
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def build(name):
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                             nn.ReLU(), nn.Linear(512, 10)), (1, 28, 28)
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                             nn.Linear(84, 10)), (1, 28, 28)
    if name == "cifar_cnn":
        return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(),
                             nn.Linear(256, 10)), (3, 32, 32)
    raise SystemExit(f"unknown model {name}")


def speed(name, threads, seconds):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model, shape = build(name)
    nparams = sum(p.numel() for p in model.parameters())
    x = torch.randn(64, *shape)
    y = torch.arange(64) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    lossf = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        lossf(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    dt = time.perf_counter() - t0
    print(f"torch model={name} threads={threads} params={nparams} samples/s {n * 64 / dt:.0f}")


def idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        h, w = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, h, w)
    return np.frombuffer(data, np.uint8, offset=8)


def mnist(d, epochs, seed):
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    norm = lambda a: torch.tensor((a.astype(np.float32) / 255 - 0.1307) / 0.3081)
    xtr, ytr = norm(idx(f"{d}/train-images-idx3-ubyte")), torch.tensor(idx(f"{d}/train-labels-idx1-ubyte").astype(np.int64))
    xte, yte = norm(idx(f"{d}/t10k-images-idx3-ubyte")), torch.tensor(idx(f"{d}/t10k-labels-idx1-ubyte").astype(np.int64))
    model, _ = build("lenet5")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    lossf = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for e in range(epochs):
        perm = torch.randperm(len(xtr), generator=g)
        for s in range(len(xtr) // 64):
            i = perm[s * 64:(s + 1) * 64]
            opt.zero_grad()
            lossf(model(xtr[i]), ytr[i]).backward()
            opt.step()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"torch lenet5 epoch {e + 1} test accuracy {acc:.4f} time {time.perf_counter() - t0:.1f} s",
              flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "speed":
        speed(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "mnist":
        mnist(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    else:
        raise SystemExit(__doc__)
