#!/usr/bin/python3
"""What a sync costs a PyTorch worker (psod.torch.Swarm) next to the C
worker's (bench_round's psod column, one worker), at the same parameter
counts, in one run:

  bench_swarm_sync.py BUILD_DIR [ROUNDS] [DEVICE]        [30 cpu]

Each cell: psod with one worker, 5 warm-up syncs, then ROUNDS timed
Swarm.sync() calls (more below 4M parameters: 16x at 65k, 4x at 1M) (push, the PSO update, pull, back into the parameters);
the C worker's cell (itself a median of 3) and this one taken in turn,
BENCH_REPS (7) times each; medians. Prints a markdown table.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "python"))

import torch  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "7"))
import torch.nn as nn  # noqa: E402

import psod.torch  # noqa: E402


class Flat(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n) * 0.01)


def swarm_round_ms(build, n, rounds, device):
    with tempfile.TemporaryDirectory() as tmp:
        ep = os.path.join(tmp, "ep")
        d = subprocess.Popen([os.path.join(build, "psod"), "--bind", "tcp://127.0.0.1:*",
                              "--endpoint-file", ep, "--workers", "1", "--progress-interval",
                              "0", "--max-payload-mb", "256"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not (os.path.exists(ep) and os.path.getsize(ep)):
                time.sleep(0.01)
            model = Flat(n).to(device)
            s = psod.torch.Swarm(open(ep).read().strip(), model, name="bench", sync_every=1,
                                 model_name="flat")
            for _ in range(5):
                s.step(1.0)
            if device != "cpu":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for r in range(rounds):
                s.step(1.0 / (r + 1))
            if device != "cpu":
                torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) * 1e3 / rounds
            s.close()
            return ms
        finally:
            d.terminate()
            d.wait()


def c_round_ms(build, n, rounds):
    out = subprocess.run([os.path.join(build, "bench", "bench_round"), os.path.join(build, "psod"),
                          str(rounds), str(n), "1"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 4 and cells[0] == str(n) and cells[1] == "1":
            return float(cells[3])
    return float("nan")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    device = sys.argv[3] if len(sys.argv) > 3 else "cpu"
    torch.set_num_threads(1)
    sizes = [65536, 1 << 20, 4 << 20] if device == "cpu" else [1 << 20, 25 << 20]
    print(f"| parameters | C worker sync (ms) | Swarm.step sync, {device} (ms) | ratio |")
    print("|---:|---:|---:|---:|")
    for n in sizes:
        # Small rounds are short: more of them, the same count on both sides.
        k = max(rounds, int(rounds * (4 << 20) / n / 4)) if n < (4 << 20) else rounds
        # The two sides in turn, REPS times each (this machine's noise at
        # sub-millisecond rounds is larger than the difference), medians.
        have_c = os.path.exists(os.path.join(build, "bench", "bench_round"))
        pys, cs = [], []
        for _ in range(REPS):
            pys.append(swarm_round_ms(build, n, k, device))
            cs.append(c_round_ms(build, n, k) if have_c else float("nan"))
        py, c = statistics.median(pys), statistics.median(cs)
        print(f"| {n} | {c:.2f} | {py:.2f} | {py / c:.2f} |", flush=True)


if __name__ == "__main__":
    main()
