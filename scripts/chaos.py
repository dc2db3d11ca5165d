#!/usr/bin/env python3
"""chaos.py: a training run under a stream of faults, beside a clean run of
the same job in the same harness, and what survived.

  scripts/chaos.py --seconds 600 --mtbf 10 --workers 4 --model lenet5 \\
      --data-dir data/mnist --out docs/results/chaos        # the soak's shape
  scripts/chaos.py --seconds 30 --mtbf 4 --model mlp --data-dir D --shards 2

Faults arrive at random (exponential gaps, mean --mtbf seconds, seeded by
--seed so a schedule replays), taking the kinds of --faults in turn:
  worker-kill   kill -9 of a worker, restarted under its name --restart-after s later
  worker-stop   SIGSTOP of a worker (a hung node), SIGCONT --stop-for s later
  psod-kill     kill -9 of psod (the coordinator), restarted with --resume
  shard-kill    kill -9 of a shard (under --shards S >= 2), restarted with --resume
  disk-full     --checkpoint-dir (a small tmpfs, root only) filled for --stop-for s
  link-cut      a worker's link down for --stop-for s        } under --link RATE:
  link-slow     a worker's link at a tenth of RATE for 3 x --stop-for s } every node in
                                     scripts/netlab.sh's namespaces (root only)
Left out: stepping psod's clock (it times rounds and liveness on
CLOCK_MONOTONIC, which no one can step; a wall-clock step changes only log
stamps).

Measured, for the clean and the chaos run: goodput (rounds a second that
reached the global model's history, and samples trained a second in them),
the time from each fault to the next closed round, a restarted worker's time
from its hello to its first push in a closed round, rounds lost per daemon
crash, psod's resident memory at its start and end, the final model's test
accuracy (psoworker --eval), and at the end every process gone, no temporary
file left and every checkpoint intact (psoctl checkpoints). Prints a table,
writes OUT/summary.json; exits 1 if anything was left behind, a checkpoint is
not intact, a fault was never followed by a closed round, or a run failed.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

KINDS = ["worker-kill", "worker-stop", "psod-kill", "shard-kill", "disk-full", "link-cut",
         "link-slow"]
LAB = ROOT = None


def rate_bytes(rate):
    m = re.fullmatch(r"(\d+)(kbit|mbit|gbit)", rate)
    return int(m.group(1)) * {"kbit": 1000, "mbit": 10**6, "gbit": 10**9}[m.group(2)] // 8


def shape(ns, dev, rate):
    """netlab.sh's tbf on DEV in NS, replaced at another rate."""
    bps = rate_bytes(rate)
    burst = max(bps // 100, 16384)
    limit = max(bps // 20, 2 * burst)
    subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
                    "rate", rate, "burst", str(burst), "limit", str(limit)], check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_time(line):
    """The wall time of a psod/psoworker log line (ISO, UTC, ms)."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
    if not m:
        return None
    return time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + \
        float("0" + m.group(1)[19:])


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Run:
    """One run of the job: psod (S daemons), K workers, a metrics tail."""

    def __init__(self, a, name, faults, seconds):
        self.a, self.faults, self.seconds = a, faults, seconds
        self.dir = os.path.join(a.out, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.ports = [free_port() for _ in range(a.shards)]
        # In the lab shard k is node k, worker i node shards + i.
        self.eps = ([f"tcp://10.88.0.{k + 1}:5555" for k in range(a.shards)] if LAB else
                    [f"tcp://127.0.0.1:{p}" for p in self.ports])
        self.ck = [os.path.join(self.dir, f"ck{k}") for k in range(a.shards)]
        self.mounted = []
        for d in self.ck:
            os.makedirs(d)
            if "disk-full" in faults:
                size = f"{a.disk_mib}m"
                if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", d]).returncode == 0:
                    self.mounted.append(d)
        if "disk-full" in faults and len(self.mounted) < len(self.ck):
            print("chaos: disk-full left out: could not mount a tmpfs for --checkpoint-dir")
            self.faults = [k for k in faults if k != "disk-full"]
        self.psod = [None] * a.shards
        self.psod_spawns = [0] * a.shards
        self.workers = [None] * a.workers
        self.worker_spawns = [0] * a.workers
        self.stopped = set()
        self.metrics = os.path.join(self.dir, "metrics.jsonl")
        self.lines, self.tail_pos = [], 0  # (wall, record)
        self.events = []  # (wall, kind, detail)
        self.rss = []  # (wall, incarnation, MiB)
        self.fillers = []

    # --- processes ------------------------------------------------------
    def start_psod(self, k, resume):
        a = self.a
        args = [os.path.join(a.build, "psod"), "--bind", self.eps[k], "--workers", str(a.workers),
                "--strategy", a.strategy, "--seed", str(a.seed), "--checkpoint-dir", self.ck[k],
                "--checkpoint-every", str(a.checkpoint_every), "--progress-interval", "5"]
        if a.shards > 1:
            args += ["--shards", ",".join(self.eps), "--shard-index", str(k)]
        if k == 0:
            args += ["--metrics", self.metrics, "--model-out", os.path.join(self.dir, "model.psom")]
        if resume:
            args += ["--resume", self.ck[k], "--resume-or-start"]
        self.psod_spawns[k] += 1
        log = open(os.path.join(self.dir, f"psod{k}.{self.psod_spawns[k]}.log"), "w")
        self.psod[k] = subprocess.Popen(self.node(k) + args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.events.append((time.time(), "psod-start", f"{k} {self.psod_spawns[k]}"))

    def start_worker(self, i):
        a = self.a
        args = [os.path.join(a.build, "psoworker"), "--connect", self.eps[i % a.shards],
                "--name", f"w{i}", "--sync-every", str(a.sync_every), "--seed", str(a.seed),
                "--reconnect-ms", "600000", "--join-timeout-ms", "600000",
                "--timeout-ms", "60000", "--progress-interval", "0"]
        if a.objective:
            args += ["--objective", a.objective, "--dim", str(a.dim), "--rounds", "1000000000",
                     "--lr", "0.002"]
        else:
            args += ["--model", a.model, "--dataset", a.dataset, "--data-dir", a.data_dir,
                     "--epochs", "100000", "--batch", str(a.batch), "--lr", str(a.lr),
                     "--shard-index", str(i), "--shard-count", str(a.workers), "--threads", "1"]
        self.worker_spawns[i] += 1
        log = open(os.path.join(self.dir, f"w{i}.{self.worker_spawns[i]}.log"), "w")
        self.workers[i] = subprocess.Popen(self.node(a.shards + i) + args, stdout=log,
                                           stderr=subprocess.STDOUT)
        log.close()
        self.events.append((time.time(), "worker-start", f"w{i} {self.worker_spawns[i]}"))

    def node(self, n):
        """The command prefix that runs in lab node n (ip netns exec execs: same pid)."""
        return ["ip", "netns", "exec", f"{LAB}-n{n}"] if LAB else []

    def procs(self):
        return [p for p in self.psod + self.workers if p is not None]

    # --- what psod says -------------------------------------------------
    def tail(self):
        try:
            with open(self.metrics) as f:
                # A resumed psod rewrites the file up to its checkpoint's
                # round: what it kept was read already.
                size = os.fstat(f.fileno()).st_size
                if size < self.tail_pos:
                    self.tail_pos = size
                f.seek(self.tail_pos)
                data = f.read()
        except OSError:
            return
        now = time.time()
        end = data.rfind("\n")
        if end < 0:
            return
        for line in data[:end].splitlines():
            try:
                self.lines.append((now, json.loads(line)))
            except ValueError:
                pass
        self.tail_pos += len(data[:end + 1].encode())

    def sample(self):
        p = self.psod[0]
        if p is not None and p.poll() is None:
            r = rss_mib(p.pid)
            if r is not None:
                self.rss.append((time.time(), self.psod_spawns[0], r))

    # --- faults ---------------------------------------------------------
    def fault(self, kind, rng, later):
        a, now = self.a, time.time()
        if kind == "worker-kill":
            i = rng.randrange(a.workers)
            if self.workers[i].poll() is None:
                self.workers[i].kill()
                self.workers[i].wait()
            later.append((now + a.restart_after, lambda: self.start_worker(i)))
            return f"w{i}"
        if kind == "worker-stop":
            i = rng.choice([j for j in range(a.workers) if j not in self.stopped] or [0])
            self.workers[i].send_signal(signal.SIGSTOP)
            self.stopped.add(i)

            def cont():
                self.workers[i].send_signal(signal.SIGCONT)
                self.stopped.discard(i)
            later.append((now + a.stop_for, cont))
            return f"w{i}"
        if kind in ("psod-kill", "shard-kill"):
            k = 0 if kind == "psod-kill" else rng.randrange(1, a.shards)
            self.psod[k].kill()
            self.psod[k].wait()
            later.append((now + a.restart_after, lambda: self.start_psod(k, True)))
            return f"shard {k}"
        if kind == "disk-full":
            for d in self.mounted:
                filler = os.path.join(d, "filler")
                subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "status=none"],
                               stderr=subprocess.DEVNULL)
                self.fillers.append(filler)

            def free():
                for f in self.fillers:
                    try:
                        os.unlink(f)
                    except OSError:
                        pass
                self.fillers = []
            later.append((now + a.stop_for, free))
            return "checkpoint tmpfs"
        if kind in ("link-cut", "link-slow"):
            i = rng.randrange(a.workers)
            node = a.shards + i
            ns, hub = f"{LAB}-n{node}", f"{LAB}-hub"
            if kind == "link-cut":
                subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "down"], check=True)
                later.append((now + a.stop_for, lambda: subprocess.run(
                    ["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)))
            else:
                slow = f"{max(1, rate_bytes(a.link) * 8 // 10 // 1000)}kbit"
                shape(ns, "eth0", slow)
                shape(hub, f"h{node}", slow)

                def restore():
                    shape(ns, "eth0", a.link)
                    shape(hub, f"h{node}", a.link)
                later.append((now + 3 * a.stop_for, restore))
            return f"w{i}"
        raise ValueError(kind)

    def go(self):
        a = self.a
        rng = random.Random(a.seed)
        kinds = [k for k in a.faults if k in self.faults]
        for k in range(a.shards):
            self.start_psod(k, False)
        time.sleep(0.3)
        for i in range(a.workers):
            self.start_worker(i)
        t0 = time.time()
        end = t0 + self.seconds
        next_fault = t0 + a.warmup + rng.expovariate(1 / a.mtbf) if kinds else float("inf")
        later, n = [], 0
        while time.time() < end:
            now = time.time()
            for job in [j for j in later if j[0] <= now]:
                later.remove(job)
                job[1]()
            if now >= next_fault and now < end - a.cooldown:
                self.tail()  # what closed before the fault is stamped before it
                kind = kinds[n % len(kinds)]
                n += 1
                what = self.fault(kind, rng, later)
                self.events.append((time.time(), kind, what))
                next_fault = now + max(0.5, rng.expovariate(1 / a.mtbf))
            self.tail()
            self.sample()
            time.sleep(0.05)
        for _, job in later:  # a stopped worker goes on, a killed one comes back
            job()
        self.wall = time.time() - t0
        self.t0 = t0
        self.stop()

    def stop(self):
        """Workers, then psod (its final checkpoint and model), then checks."""
        for p in self.workers:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
        for p in self.workers:
            if p is not None:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        # The coordinator first: it gathers the shards' ranges into the model
        # file, then the shards go (each with its final checkpoint).
        self.psod_rc = []
        for p in self.psod:
            if p.poll() is None:
                p.terminate()
            try:
                self.psod_rc.append(p.wait(60))
            except subprocess.TimeoutExpired:
                p.kill()
                self.psod_rc.append("hung")
        self.tail()
        for d in self.mounted:  # the checkpoints leave the tmpfs before it goes
            keep = d + ".kept"
            shutil.copytree(d, keep, ignore=shutil.ignore_patterns("filler"))
            subprocess.run(["umount", d])
            os.rmdir(d)
            os.rename(keep, d)

    def cleanup_mounts(self):
        for d in self.mounted:
            subprocess.run(["umount", d], stderr=subprocess.DEVNULL)

    # --- what survived --------------------------------------------------
    def measure(self):
        a = self.a
        r = {"seconds": round(self.wall, 1), "faults": [e for e in self.events if e[1] in KINDS]}
        surviving = {}
        for wall, rec in self.lines:  # a redone round replaces the one lost
            surviving[rec["round"]] = (wall, rec)
        rounds = sorted(surviving)
        per_push = a.sync_every * (1 if a.objective else a.batch)
        samples = sum(sum(p["pushed"] for p in rec["particles"]) for _, rec in surviving.values())
        r["rounds"] = len(rounds)
        r["rounds_per_s"] = len(rounds) / self.wall
        r["samples_per_s"] = samples * per_push / self.wall
        closes = [w for w, _ in self.lines]
        gaps = {}
        for wall, kind, what in r["faults"]:
            nxt = [w for w in closes if w > wall]
            gaps.setdefault(kind, []).append(nxt[0] - wall if nxt else None)
        r["fault_to_round_s"] = gaps
        r["unrecovered"] = [k for k, v in gaps.items() for g in v if g is None]
        # Readmission: a restarted worker's hello (psod's log) to the first
        # closed round with its particle's push.
        hellos = []
        for n in range(1, self.psod_spawns[0] + 1):
            with open(os.path.join(self.dir, f"psod0.{n}.log")) as f:
                for line in f:
                    m = re.search(r"worker 'w(\d+)' .*?particle (\d+)", line)
                    if m and "join" in line:
                        hellos.append((log_time(line), int(m.group(1)), int(m.group(2))))
        restarts = [(t, d.split()[0]) for t, kind, d in self.events
                    if kind == "worker-start" and not d.endswith(" 1")]
        readmit = []
        for t, name in restarts:
            w = int(name[1:])
            hs = [(ht, pid) for ht, hw, pid in hellos if hw == w and ht is not None and ht >= t - 1]
            if not hs:
                continue
            ht, pid = min(hs)
            first = [wall for wall, rec in self.lines if wall > ht and any(
                p["id"] == pid and p["pushed"] for p in rec["particles"])]
            if first:
                readmit.append(first[0] - ht)
        r["readmit_s"] = readmit
        back = []  # from the restart itself (the process started)
        for t, name in restarts:
            w = int(name[1:])
            ids = {pid for ht, hw, pid in hellos if hw == w}
            first = [wall for wall, rec in self.lines if wall > t and any(
                p["id"] in ids and p["pushed"] for p in rec["particles"])]
            if first:
                back.append(first[0] - t)
        r["restart_to_push_s"] = back
        # A resumed psod: its start to its first closed round; rounds lost.
        starts = [t for t, kind, d in self.events if kind == "psod-start" and d.startswith("0 ")][1:]
        first_round = []
        for t in starts:
            nxt = [w for w in closes if w > t]
            first_round.append(nxt[0] - t if nxt else None)
        r["resume_first_round_s"] = first_round
        lost = []
        for t, kind, _ in r["faults"]:
            if kind != "psod-kill":
                continue
            before = [rec["round"] for w, rec in self.lines if w <= t]
            after = [rec["round"] for w, rec in self.lines if w > t]
            if before and after:
                lost.append(max(0, max(before) - (min(after) - 1)))
        r["rounds_lost_per_crash"] = lost
        # Resident memory of each psod (coordinator) process: after it has
        # settled (5 s, or a quarter of the run) and at its end.
        growth = []
        for inc in sorted({x[1] for x in self.rss}):
            life = [x for x in self.rss if x[1] == inc]
            settle = [m for w, _, m in life if w >= life[0][0] + min(5, self.wall / 4)]
            if settle:
                growth.append((round(settle[0], 1), round(life[-1][2], 1),
                               round(life[-1][0] - life[0][0], 1)))
        r["psod_rss_mib"] = growth  # (start, end, seconds) per process
        # Accuracy of the final model; what is left; checkpoints.
        model = os.path.join(self.dir, "model.psom")
        r["final_accuracy"] = None
        if not a.objective and os.path.exists(model):
            out = subprocess.run([os.path.join(a.build, "psoworker"), "--eval", model, "--dataset",
                                  a.dataset, "--data-dir", a.data_dir], capture_output=True,
                                 text=True)
            m = re.search(r"test accuracy ([0-9.]+)", out.stdout + out.stderr)
            r["final_accuracy"] = float(m.group(1)) if m else None
        if lines := [rec for _, rec in self.lines]:
            r["final_loss"] = lines[-1].get("global_loss")
        left = []
        for p in self.procs():
            if p.poll() is None:
                left.append(p.args[0])
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    cmd = open(f"/proc/{d}/cmdline").read().replace("\0", " ")
                except OSError:
                    continue
                if self.dir in cmd and int(d) != os.getpid():
                    left.append(f"{d}: {cmd[:120]}")
        r["left_running"] = left
        r["temp_files"] = [os.path.join(dp, f) for d in self.ck for dp, _, fs in os.walk(d)
                           for f in fs if f.endswith(".tmp") or f == "filler"]
        checks = []
        for d in self.ck:
            out = subprocess.run([os.path.join(a.build, "psoctl"), "checkpoints", d],
                                 capture_output=True, text=True)
            checks.append({"dir": d, "intact": out.returncode == 0,
                           "said": (out.stdout + out.stderr).strip().splitlines()})
        r["checkpoints"] = checks
        r["psod_exit"] = self.psod_rc
        return r


def median(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def show(v, unit="s"):
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    return f"median {statistics.median(v):.2f} {unit}, max {max(v):.2f} {unit} (n={len(v)})"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60, help="length of the chaos run")
    p.add_argument("--clean-seconds", type=float, default=0,
                   help="length of the clean run (default: --seconds; goodput is a rate)")
    p.add_argument("--mtbf", type=float, default=10, help="mean seconds between faults")
    p.add_argument("--warmup", type=float, default=3, help="seconds before the first fault")
    p.add_argument("--cooldown", type=float, default=8,
                   help="seconds at the end without a new fault (the swarm's recovery is measured)")
    p.add_argument("--faults", default=",".join(KINDS), help="kinds, taken in turn")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--strategy", default="pso")
    p.add_argument("--model", default="lenet5")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="data/mnist")
    p.add_argument("--objective", default="", help="a test function instead of a model")
    p.add_argument("--dim", type=int, default=1000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--sync-every", type=int, default=16)
    p.add_argument("--checkpoint-every", type=int, default=10)
    p.add_argument("--restart-after", type=float, default=1.0)
    p.add_argument("--stop-for", type=float, default=3.0)
    p.add_argument("--disk-mib", type=int, default=64, help="the checkpoint tmpfs (disk-full)")
    p.add_argument("--no-clean", action="store_true", help="the chaos run only")
    p.add_argument("--link", default="", help="run every node in a netlab at this rate "
                   "(e.g. 1gbit; root): the link faults need it")
    p.add_argument("--build", default="build")
    p.add_argument("--out", default="", help="keep the runs here (default: a temporary dir)")
    a = p.parse_args()
    a.faults = [k for k in a.faults.split(",") if k]
    for k in a.faults:
        if k not in KINDS:
            p.error(f"unknown fault '{k}' (choose from {', '.join(KINDS)})")
    if "shard-kill" in a.faults and a.shards < 2:
        a.faults.remove("shard-kill")
        print("chaos: shard-kill left out: it needs --shards 2 or more")
    for k in ("link-cut", "link-slow"):
        if k in a.faults and not a.link:
            a.faults.remove(k)
            print(f"chaos: {k} left out: it needs --link RATE (every node in a netlab)")
    if "disk-full" in a.faults and os.geteuid() != 0:
        a.faults.remove("disk-full")
        print("chaos: disk-full left out: mounting the checkpoint tmpfs needs root")
    temp = not a.out
    a.out = a.out or tempfile.mkdtemp(prefix="psod-chaos-")
    os.makedirs(a.out, exist_ok=True)
    runs, res = [], {}
    global LAB
    if a.link:
        rate_bytes(a.link)
        LAB = f"chaos{os.getpid() % 10**7}"
        nodes = a.shards + a.workers
        up = subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)), "netlab.sh"),
                             "up", "--nodes", str(nodes), "--rate", a.link, "--name", LAB])
        if up.returncode != 0:
            print("chaos: the lab did not come up (--link needs root)")
            return 2
    try:
        for name, faults in ([] if a.no_clean else [("clean", [])]) + [("chaos", a.faults)]:
            secs = a.clean_seconds or a.seconds if name == "clean" else a.seconds
            run = Run(a, name, faults, secs)
            runs.append(run)
            print(f"chaos: {name} run, {secs:.0f} s, {a.workers} workers, "
                  f"{a.shards} daemon(s), faults {', '.join(faults) or 'none'}", flush=True)
            run.go()
            res[name] = run.measure()
    finally:
        for run in runs:
            for proc in run.procs():
                if proc.poll() is None:
                    proc.kill()
            run.cleanup_mounts()
        if LAB:
            subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)), "netlab.sh"),
                            "down", LAB])
    c = res["chaos"]
    bad = []
    if LAB and LAB in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
        bad.append(f"the lab {LAB} was left behind")
    print(f"{'':34} {'clean':>14} {'chaos':>14}")
    for key, label in [("rounds_per_s", "rounds/s (that reached the model)"),
                       ("samples_per_s", "samples/s in those rounds"),
                       ("final_accuracy", "final test accuracy"), ("final_loss", "final global loss")]:
        vals = [res[n].get(key) for n in ("clean", "chaos") if n in res]
        print(f"{label:34} " + " ".join(f"{v:>14.4g}" if v is not None else f"{'-':>14}" for v in vals))
    if "clean" in res and res["clean"]["rounds_per_s"]:
        c["goodput_vs_clean"] = c["rounds_per_s"] / res["clean"]["rounds_per_s"]
        print(f"goodput against clean: {100 * c['goodput_vs_clean']:.1f} % of rounds/s, "
              f"{100 * c['samples_per_s'] / max(res['clean']['samples_per_s'], 1e-9):.1f} % of samples/s")
    print(f"faults: {len(c['faults'])} ({', '.join(sorted(set(k for _, k, _ in c['faults'])))})")
    for kind, gaps in sorted(c["fault_to_round_s"].items()):
        print(f"  {kind:12} fault to the next closed round: {show(gaps)}")
    print(f"restarted worker, hello to its first push in a closed round: {show(c['readmit_s'])}")
    print(f"restarted worker, process start to that push: {show(c['restart_to_push_s'])}")
    print(f"resumed psod, start to its first closed round: {show(c['resume_first_round_s'])}")
    print(f"rounds lost per psod crash: {c['rounds_lost_per_crash'] or '-'} "
          f"(--checkpoint-every {a.checkpoint_every})")
    for name, r in res.items():
        g = r.get("psod_rss_mib") or []
        if g:
            worst = max(g, key=lambda x: x[1] / x[0])
            longest = max(g, key=lambda x: x[2])
            print(f"psod resident memory ({name}): {len(g)} process(es); the longest-lived "
                  f"{longest[0]} -> {longest[1]} MiB over {longest[2]:.0f} s; the most growth "
                  f"{worst[0]} -> {worst[1]} MiB ({100 * (worst[1] / worst[0] - 1):+.1f} %)")
    for name, r in res.items():
        if r["unrecovered"]:
            bad.append(f"{name}: no round closed after a fault of kind {', '.join(r['unrecovered'])}")
        if r["left_running"]:
            bad.append(f"{name}: left running: {r['left_running']}")
        if r["temp_files"]:
            bad.append(f"{name}: temporary files left: {r['temp_files']}")
        for ck in r["checkpoints"]:
            if not ck["intact"]:
                bad.append(f"{name}: checkpoints in {ck['dir']} not all intact: {ck['said']}")
        if any(x != 0 for x in r["psod_exit"]):
            bad.append(f"{name}: psod exit status {r['psod_exit']}")
        if r["rounds"] == 0:
            bad.append(f"{name}: no round closed")
    print("left behind: " + ("nothing (every process gone, no temporary file, every checkpoint intact)"
                             if not bad else "see below"))
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"args": vars(a), "runs": res}, f, indent=1, default=str)
    for b in bad:
        print("chaos: FAIL: " + b)
    if temp and not bad:
        shutil.rmtree(a.out, ignore_errors=True)
    elif temp:
        print(f"chaos: the runs are kept in {a.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
