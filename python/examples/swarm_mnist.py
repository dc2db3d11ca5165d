#!/usr/bin/env python3
"""A user's own training script with psod.torch.Swarm: a CNN with BatchNorm,
dropout and GELU on MNIST, one process per worker, on CPU or CUDA.

    psod --bind tcp://*:5555 --workers 2 --exit-when-done &
    PSOD_ENDPOINT=tcp://127.0.0.1:5555 torchrun --standalone --nproc_per_node 2 \
        python/examples/swarm_mnist.py --data-dir data/mnist --out swarm.pt

Each process reads the launcher's environment (psod.torch.launch_env: the
endpoint from PSOD_ENDPOINT, its name from the host and LOCAL_RANK, its
device from LOCAL_RANK, its part of the data from RANK and WORLD_SIZE); no
process group is made: psod is the only link between the workers. The
script ends with the swarm's model (not this worker's own weights) in
`--out`, and its test accuracy. `--fitness held-out` pushes the loss on
the last `--held-out` training images (the same on every worker) instead of
the training loss: under pso the global best is then picked by a loss that
generalizes.
"""
import argparse
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import psod.torch  # noqa: E402
from psod import data  # noqa: E402


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.b1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.b2 = nn.BatchNorm2d(32)
        self.drop = nn.Dropout(0.25)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.gelu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.gelu(self.b2(self.c2(x))), 2)
        return self.fc2(self.drop(F.gelu(self.fc1(x.flatten(1)))))


def batches(x, y, size, shuffle=None):
    order = torch.randperm(len(x), generator=shuffle) if shuffle is not None else torch.arange(len(x))
    for i in range(0, len(x) - size + 1 if shuffle is not None else len(x), size):
        idx = order[i:i + size]
        yield x[idx], y[idx]


def accuracy(model, x, y, dev):
    model.eval()
    right = 0
    with torch.no_grad():
        for xb, yb in batches(x, y, 1000):
            right += (model(xb.to(dev)).argmax(1) == yb.to(dev)).sum().item()
    model.train()
    return right / len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="data/mnist")
    p.add_argument("--train-samples", type=int, default=0, help="first N training images; 0 = all")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--sync-every", type=int, default=16)
    p.add_argument("--fitness", default="train", choices=("train", "held-out"))
    p.add_argument("--held-out", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bf16", action="store_true", help="train under torch.autocast(bfloat16)")
    p.add_argument("--out", default="", help="save the swarm's model here (torch.save)")
    o = p.parse_args()
    env = psod.torch.launch_env()
    dev = env["device"]
    torch.manual_seed(o.seed)  # every worker starts from the same weights
    xtr, ytr, xte, yte = data.load("mnist", o.data_dir)
    if o.train_samples:
        xtr, ytr = xtr[:o.train_samples], ytr[:o.train_samples]
    xtr, ytr = torch.from_numpy(xtr), torch.from_numpy(ytr).long()
    xte, yte = torch.from_numpy(xte), torch.from_numpy(yte).long()
    fitness = None
    if o.fitness == "held-out":
        hx, hy = xtr[-o.held_out:], ytr[-o.held_out:]
        xtr, ytr = xtr[:-o.held_out], ytr[:-o.held_out]
        fitness = psod.torch.held_out_loss(list(batches(hx, hy, 500)))
    part = torch.arange(env["rank"], len(xtr), env["world_size"])  # this worker's part
    xtr, ytr = xtr[part], ytr[part]
    model = Net().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=0.9)
    swarm = psod.torch.Swarm(model=model, optimizer=opt, sync_every=o.sync_every,
                             dataset="mnist", fitness=fitness)
    print(f"{env['name']}: joined {env['endpoint']} as particle {swarm.welcome['particle_id']} "
          f"({swarm.welcome['strategy']}) on {dev}", flush=True)
    shuffle = torch.Generator().manual_seed(o.seed * 1000 + env["rank"])
    steps = len(xtr) // o.batch * o.epochs
    step = 0
    for _ in range(o.epochs):
        for xb, yb in batches(xtr, ytr, o.batch, shuffle):
            xb, yb = xb.to(dev), yb.to(dev)
            opt.zero_grad()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=o.bf16):
                loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            step += 1
            swarm.step(loss, samples=len(xb), force=step == steps)
    own = accuracy(model, xte, yte, dev)
    info = swarm.close(accuracy=own, load_global=True)  # the swarm's model, then bye
    acc = accuracy(model, xte, yte, dev)
    if o.out:
        torch.save(model.state_dict(), o.out)
    print(f"{env['name']}: own weights {100 * own:.2f}%, the swarm's model ({info['kind']}, "
          f"loss {info['loss']:.4f}) {100 * acc:.2f}% test accuracy", flush=True)
    return 0 if math.isfinite(acc) else 1


if __name__ == "__main__":
    sys.exit(main())
