#!/usr/bin/env python3
"""torch.distributed local SGD on the main job, as the reference for psod's avg.

  torch_localsgd.py DATA_DIR [WORKERS] [SYNC_EVERY] [EPOCHS]      [4 16 2]

The job scripts/run-local.sh runs by default: LeNet-5 on MNIST, WORKERS
processes (gloo over loopback, one thread each), each on its own shard of
the training set, batch 64, SGD momentum 0.9, lr 0.05 on a cosine schedule
over the run, and every SYNC_EVERY mini-batches the parameters averaged with
all_reduce (and once more after the last step), which is what psod's avg
does. Rank 0 evaluates the averaged model on the whole test set at the end.

Prints one line: wall seconds from the first process's start to the end,
and what the time is made of on rank 0 (training, syncing, evaluating),
then the test accuracy. Uses Debian's python3-torch (CPU).
"""
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import build, idx  # noqa: E402  (the identical LeNet-5)


def worker(rank, k, data, sync_every, epochs, port, t_start, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=k)
    norm = lambda a: torch.tensor((a.astype(np.float32) / 255 - 0.1307) / 0.3081)
    raw = idx(f"{data}/train-images-idx3-ubyte")
    labels = idx(f"{data}/train-labels-idx1-ubyte").astype(np.int64)
    g = torch.Generator().manual_seed(1)
    order = torch.randperm(len(raw), generator=g).numpy()
    lo, hi = len(raw) * rank // k, len(raw) * (rank + 1) // k
    # This worker's shard only, converted to floats after the cut.
    xs, ys = norm(raw[order[lo:hi]]), torch.tensor(labels[order[lo:hi]])
    torch.manual_seed(1)  # every worker starts from the same weights, as psoworker
    model, _ = build("lenet5")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    lossf = nn.CrossEntropyLoss()
    per_epoch = len(xs) // 64
    total = per_epoch * epochs
    params = list(model.parameters())

    def sync():
        flat = torch.cat([p.data.view(-1) for p in params])
        dist.all_reduce(flat)
        flat /= k
        off = 0
        for p in params:
            p.data.copy_(flat[off:off + p.numel()].view_as(p))
            off += p.numel()

    train_s = sync_s = 0.0
    step = 0
    t0 = time.perf_counter()
    for e in range(epochs):
        perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(1000003 + e))
        for s in range(per_epoch):
            a = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = 0.5 * 0.05 * (1 + math.cos(math.pi * min(step / total, 1.0)))
            i = perm[s * 64:(s + 1) * 64]
            opt.zero_grad()
            lossf(model(xs[i]), ys[i]).backward()
            opt.step()
            step += 1
            b = time.perf_counter()
            train_s += b - a
            if step % sync_every == 0 or step == total:
                sync()
                sync_s += time.perf_counter() - b
    eval_s, acc = 0.0, float("nan")
    if rank == 0:
        a = time.perf_counter()
        xte = norm(idx(f"{data}/t10k-images-idx3-ubyte"))
        yte = torch.tensor(idx(f"{data}/t10k-labels-idx1-ubyte").astype(np.int64))
        with torch.no_grad():
            right = sum((model(xte[j:j + 1000]).argmax(1) == yte[j:j + 1000]).sum().item()
                        for j in range(0, len(xte), 1000))
        acc = right / len(xte)
        eval_s = time.perf_counter() - a
        out.put((time.time() - t_start, time.perf_counter() - t0, train_s, sync_s, eval_s, acc))
    dist.destroy_process_group()


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    data = sys.argv[1]
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    sync_every = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    t_start = time.time()
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    port = 29500 + os.getpid() % 1000
    procs = [ctx.Process(target=worker, args=(r, k, data, sync_every, epochs, port, t_start, out))
             for r in range(k)]
    for p in procs:
        p.start()
    res = out.get()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        raise SystemExit("a worker failed")
    wall = time.time() - t_start
    _, loop, train_s, sync_s, eval_s, acc = res
    print(f"torch.distributed local SGD: workers {k} sync_every {sync_every} epochs {epochs} "
          f"wall_s {wall:.1f} loop_s {loop:.1f} train_s {train_s:.2f} sync_s {sync_s:.2f} "
          f"eval_s {eval_s:.2f} test_accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
