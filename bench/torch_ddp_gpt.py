#!/usr/bin/env python3
"""torch.distributed data-parallel training of psod's char-level GPT, the
reference for the language-model table in docs/RESULTS.md.

  torch_ddp_gpt.py TEXT CURVE [WORKERS] [EPOCHS] [BATCH] [LR] [EVAL_EVERY] [EVAL_SAMPLES] [SEED]
                                 [4 4 32 0.003 128 300 1]

WORKERS processes (gloo over loopback, one thread each) wrap the same GPT
(psod.models.GPT, the text's vocabulary) in DistributedDataParallel: the
gradient is all-reduced every step. Each rank trains on the part of the
training windows psoworker-torch's --shard-index RANK --shard-count WORKERS
gets (psoc_partition, seed 1), with AdamW (betas 0.9, 0.99) at LR, the same
batch and epochs as the psod runs, so every method sees the same samples;
SEED sets the initial weights, the batch order and the evaluation windows
as psoworker-torch's --seed does.
Rank 0 appends 'seconds step samples val_loss val_accuracy' to CURVE every
EVAL_EVERY steps (on the first EVAL_SAMPLES validation windows, as
psoworker-torch's --eval-samples picks them) and at the end, then prints one
line: wall seconds, the final validation loss on every window, and the bytes
the all-reduces moved, as the ring algorithm counts them (2 (K-1)/K x 4
bytes x parameters per rank per step) and as loopback's counters saw them.
"""
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from psod import data, models  # noqa: E402
from psod.worker import evaluate  # noqa: E402


def _lo_bytes():
    try:
        with open("/sys/class/net/lo/statistics/tx_bytes") as f:
            return int(f.read())
    except OSError:
        return -1


def worker(rank, k, text, curve, epochs, batch, lr, eval_every, eval_samples, seed, port, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=k)
    xs, ys, xte, yte = data.load("text", text, shard=(rank, k, 1))
    torch.manual_seed(seed)  # every rank starts from the same weights, as psoworker-torch
    model = models.build("gpt", vocab=len(data.vocab(text)))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(ddp.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(xte))[:eval_samples] if 0 < eval_samples < len(xte) else None
    evalx, evaly = (xte[pick], yte[pick]) if pick is not None else (xte, yte)
    per_epoch = len(xs) // batch
    x_all, y_all = torch.from_numpy(xs), torch.from_numpy(ys)
    step, t0, lo0 = 0, time.time(), _lo_bytes()
    for e in range(epochs):
        order = torch.from_numpy(np.random.default_rng(seed * 1000003 + e).permutation(len(xs)))
        for s in range(per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            opt.zero_grad()
            outp = ddp(x_all[idx])
            F.cross_entropy(outp.reshape(-1, outp.shape[-1]), y_all[idx].reshape(-1)).backward()
            opt.step()
            step += 1
            if rank == 0 and eval_every > 0 and step % eval_every == 0:
                loss, acc = evaluate(model, evalx, evaly, "cpu")
                with open(curve, "a") as f:
                    f.write(f"{time.time() - t0:.3f} {step} {step * batch} {loss:.6f} "
                            f"{acc:.6f}\n")
    dist.barrier()
    wall, lo1 = time.time() - t0, _lo_bytes()
    if rank == 0:
        loss, acc = evaluate(model, evalx, evaly, "cpu")
        with open(curve, "a") as f:
            f.write(f"{wall:.3f} {step} {step * batch} {loss:.6f} {acc:.6f}\n")
        full_loss, full_acc = evaluate(model, xte, yte, "cpu")
        n = sum(p.numel() for p in model.parameters())
        ring = int(2 * (k - 1) / k * 4 * n * step * k)
        out.put((wall, step, full_loss, full_acc, n, ring, lo1 - lo0 if lo0 >= 0 else -1))
    dist.destroy_process_group()


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    a = sys.argv[1:] + [None] * 9
    text, curve = a[0], a[1]
    k, epochs, batch = int(a[2] or 4), int(a[3] or 4), int(a[4] or 32)
    lr, eval_every, eval_samples = float(a[5] or 0.003), int(a[6] or 128), int(a[7] or 300)
    seed = int(a[8] or 1)
    open(curve, "w").close()
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    port = 29500 + os.getpid() % 1000
    procs = [ctx.Process(target=worker, args=(r, k, text, curve, epochs, batch, lr, eval_every,
                                              eval_samples, seed, port, out))
             for r in range(k)]
    for p in procs:
        p.start()
    try:
        res = out.get()
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    if any(p.exitcode for p in procs):
        raise SystemExit("a worker failed")
    wall, steps, loss, acc, n, ring, lo = res
    print(f"ddp: workers {k} epochs {epochs} steps {steps} parameters {n} wall_s {wall:.1f} "
          f"val_loss {loss:.4f} val_accuracy {acc:.4f} ring_bytes {ring} lo_bytes {lo}")


if __name__ == "__main__":
    main()
