"""psoworker-torch: psoworker's job with a PyTorch model, on CPU or CUDA.

The options are psoworker's where they apply; lenet5, mlp and cifar_cnn
are psoworker's networks (one swarm may mix C and PyTorch workers), and
resnet20 adds BatchNorm for CIFAR-10. The summary line has psoworker's
fields. Exit codes: 0 done, 1 a failure, 2 bad options, 130/143 stopped by
SIGINT/SIGTERM (after a bye).
"""
import argparse
import contextlib
import math
import os
import signal
import socket
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import psod
import psod.torch
from psod import data, models
from psod.modelfile import load_model, read_info, save_model

MAX_RECOVERIES = 10
AUTOCAST = {"none": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _spec(welcome):
    """The wire agreed, as --wire reads it."""
    d = welcome.get("density", 0)
    return f"topk:{d:g}:{welcome['wire']}" if d else welcome["wire"]


def _threads(text):
    """--threads: a count from 1 to 256, or auto (this process's affinity mask)."""
    if text == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError(f"must be 1 to 256 or auto, not {text!r}")
    return n

def parser():
    """psoworker-torch's options (its --help, and its man page: psod.manpage)."""
    p = argparse.ArgumentParser(prog="psoworker-torch", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--connect", default="tcp://127.0.0.1:5555", help="psod endpoint")
    a("--name", default="", help="this worker's stable name in the swarm [hostname-pid]")
    a("--model", default="", choices=("",) + models.NAMES, help="the network")
    a("--dataset", default="mnist", choices=("mnist", "fashion-mnist", "cifar10", "text"),
      help="text: a plain text file read as characters (first 90 %% train, last 10 %% "
           "validation), for --model gpt")
    a("--data-dir", default="data/mnist",
      help="directory with the dataset's files (text: the file, or a directory with input.txt)")
    a("--block", type=int, default=64, help="gpt: context length in characters")
    a("--gpt-dim", type=int, default=64, help="gpt: embedding width")
    a("--gpt-layers", type=int, default=2, help="gpt: transformer blocks")
    a("--gpt-heads", type=int, default=4, help="gpt: attention heads")
    a("--optimizer", default="sgd", choices=("sgd", "adamw"),
      help="local optimizer (adamw: --momentum is beta1, --weight-decay its decay)")
    a("--epochs", type=int, default=1)
    a("--batch", type=int, default=64)
    a("--lr", type=float, default=0.05)
    a("--momentum", type=float, default=0.9)
    a("--weight-decay", type=float, default=0.0)
    a("--schedule", default="constant", choices=("constant", "step", "cosine"))
    a("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up")
    a("--step-epochs", type=int, default=1)
    a("--step-gamma", type=float, default=0.1)
    a("--sync-every", type=int, default=4, help="local steps between synchronizations")
    a("--shard-index", type=int, default=0)
    a("--shard-count", type=int, default=1)
    a("--shard-mode", default="iid", choices=data.SHARD_MODES,
      help="how the parts are cut (psoworker's --shard-mode: the same parts)")
    a("--shard-alpha", type=float, default=0.5, help="--shard-mode dirichlet: the concentration")
    a("--shard-classes", type=int, default=2, help="--shard-mode classes: classes per worker")
    a("--shard-seed", type=int, default=1, help="seed of the partition, the same on every worker")
    a("--fitness", default="auto", choices=("train", "shared", "auto"),
      help="loss pushed as fitness: the interval's training loss, or (shared) the loss on the "
           "last --holdout training samples, kept out of every shard; auto: shared for "
           "label-skewed shards (psoworker's --fitness)")
    a("--holdout", type=int, default=1024, help="samples held out for --fitness shared")
    a("--shuffle-labels", action="store_true",
      help="train on this shard's labels in a seeded random order: a bad worker, for "
           "experiments (psoworker's --shuffle-labels)")
    a("--lie-loss", type=float, default=-1,
      help="push this loss as the fitness whatever was measured: a lying worker, for "
           "experiments (psod --verify-best refuses it); -1 = off")
    a("--eval-every", type=int, default=-1,
      help="syncs between accuracy reports; -1 = about every 100 local steps; 0 = never")
    a("--eval-samples", type=int, default=1000, help="test samples per report; 0 = all")
    a("--eval", default="", metavar="FILE", help="evaluate this model file and exit")
    a("--init", default="", metavar="FILE", help="start from this model file's weights")
    a("--model-out", default="", metavar="FILE", help="write the final weights here")
    a("--curve", default="", metavar="FILE",
      help="append 'seconds step samples test_loss test_accuracy' at each report: this "
           "worker's weights standalone, else the swarm's model (fetched under pso)")
    a("--seed", type=int, default=1)
    a("--threads", type=_threads, default=1,
      help="CPU threads for PyTorch, or auto: the CPUs this process may use")
    a("--device", default="cpu", help="cpu, cuda or cuda:N")
    a("--autocast", default="none", choices=("none", "bf16", "fp16"),
      help="mixed precision: the forward pass and loss under torch.autocast in this dtype "
           "(the weights stay float32)")
    a("--buffers", default="sync", choices=("sync", "local"),
      help="BatchNorm running statistics travel with the weights, or stay local")
    a("--reset-momentum", action="store_true")
    a("--overlap", action="store_true",
      help="a sync overlaps the next interval: its position is taken in at the next sync "
           "point with the steps taken since on top (not with ssgd)")
    a("--overlap-mix", type=float, default=None,
      help="with --overlap: merge the steps taken since the push as Streaming DiLoCo does, "
           "A x + (1 - A) P on the part synced (their A is 0.5), instead of keeping them on "
           "top of the position P")
    a("--timeout-ms", type=int, default=120000)
    a("--join-timeout-ms", type=int, default=20000)
    a("--reconnect-ms", type=int, default=120000)
    a("--wire", default="fp32",
      help="payload encoding of pushes and positions: fp32, fp16, bf16, int8, int4, int2, or "
           "topk:DENSITY[:KIND], that share of each change's entries (the largest) in KIND, "
           "or frag:F[:KIND], the vector in F parts, part (round mod F) synced each round; "
           "all but fp32 send the change since the last position, with error feedback; psod "
           "may impose another")
    a("--curve-secret", default="")
    a("--curve-server", default="")
    a("--standalone", action="store_true", help="train without a daemon")
    a("--log-level", default="info", choices=("debug", "info", "warn", "error"))
    return p


def _options(argv):
    p = parser()
    o = p.parse_args(argv)
    for k in ("epochs", "batch", "sync_every", "shard_count", "threads"):
        if getattr(o, k) < 1:
            p.error(f"--{k.replace('_', '-')} must be at least 1")
    if not math.isfinite(o.lr) or o.lr < 0:
        p.error("--lr must be a finite number >= 0")
    return o


def _log(msg, level="INFO"):
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    print(f"{t}Z psoworker-torch[{os.getpid()}] {level} {msg}", file=sys.stderr, flush=True)


def _hyper(o, opt, lr, momentum):
    """psod --hyper: the base learning rate (the schedule applies on top)
    and the momentum to train with until the next sync."""
    o.lr, o.momentum = float(lr), float(momentum)
    for g in opt.param_groups:
        if "betas" in g:
            g["betas"] = (o.momentum, g["betas"][1])
        else:
            g["momentum"] = o.momentum


def _lr(o, step, total, per_epoch):
    if o.warmup > 0 and step < o.warmup:
        return o.lr * (step + 1) / o.warmup
    if o.schedule == "step":
        return o.lr * o.step_gamma ** ((step - o.warmup) // max(1, o.step_epochs * per_epoch))
    if o.schedule == "cosine":
        span = total - o.warmup
        if span <= 0:
            return o.lr
        return 0.5 * o.lr * (1 + math.cos(math.pi * min(1.0, (step - o.warmup) / span)))
    return o.lr


def evaluate(model, x, y, device, batch=1000):
    """(mean loss, accuracy) of model on x, y."""
    model.eval()
    loss, right, count = 0.0, 0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch]).to(device)
            yb = torch.from_numpy(y[i:i + batch]).to(device)
            out = model(xb)
            if out.dim() == 3:  # a sequence model: every position is a sample
                out, yb = out.reshape(-1, out.shape[-1]), yb.reshape(-1)
            loss += F.cross_entropy(out, yb, reduction="sum").item()
            right += (out.argmax(1) == yb).sum().item()
            count += yb.numel()
    model.train()
    return loss / max(1, count), right / max(1, count)


def _loss(out, y):
    """Cross-entropy of a batch; a sequence model's every position counts."""
    if out.dim() == 3:
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    return F.cross_entropy(out, y)


def _build(o, name, dataset, data_dir):
    """The model, sized for its data (gpt: the text's vocabulary)."""
    if name != "gpt":
        return models.build(name)
    if dataset != "text":
        raise SystemExit("psoworker-torch: --model gpt trains on --dataset text")
    return models.build("gpt", vocab=len(data.vocab(data_dir)), block=o.block, dim=o.gpt_dim,
                        layers=o.gpt_layers, heads=o.gpt_heads)


def _input_shape(o):
    return (1, 1, o.block) if o.model == "gpt" else models.INPUT[o.model]


def _curve(o, swarm, model, x, y, device, secs, step):
    """One --curve line: the swarm's model (psod's global model, borrowed
    into the module where positions are particles) or, standalone, this
    worker's."""
    if swarm is not None and not swarm.welcome["positions_global"]:
        with swarm.global_model_borrowed() as info:
            if info is None:
                return
            loss, acc = evaluate(model, x, y, device)
    else:
        loss, acc = evaluate(model, x, y, device)
    with open(o.curve, "a") as f:
        f.write(f"{secs:.3f} {step} {step * o.batch} {loss:.6f} {acc:.6f}\n")


def _eval_file(o, device):
    info = read_info(o.eval)
    name = o.model or info["model"]
    if name not in models.NAMES:
        raise SystemExit(f"psoworker-torch: {o.eval} holds '{info['model']}'; give --model")
    if info["dataset"] and o.dataset != info["dataset"] and "--dataset" in sys.argv:
        raise SystemExit(f"psoworker-torch: {o.eval} was trained on {info['dataset']}, "
                         f"not {o.dataset}")
    dataset = info["dataset"] or o.dataset
    model = _build(o, name, dataset, o.data_dir).to(device)
    load_model(o.eval, model, buffers=o.buffers == "sync")
    _, _, xte, yte = data.load(dataset, o.data_dir)[:4]
    loss, acc = evaluate(model, xte, yte, device)
    print(f"psoworker-torch: {o.eval}: model {name} dataset {dataset} test loss {loss:.6f} "
          f"test accuracy {acc:.4f}", flush=True)
    return 0


def run(o):
    torch.set_num_threads(o.threads)
    device = torch.device(o.device)
    if o.eval:
        return _eval_file(o, device)
    if not o.model:
        raise SystemExit("psoworker-torch: give --model (" + ", ".join(models.NAMES) + ")")
    name = o.name or f"{socket.gethostname()}-{os.getpid()}"
    torch.manual_seed(o.seed)
    fitness = o.fitness
    if fitness == "auto":
        fitness = "shared" if o.shard_count > 1 and o.shard_mode != "iid" else "train"
    loaded = data.load(o.dataset, o.data_dir,
                       shard=(o.shard_index, o.shard_count, o.shard_seed,
                              o.shard_mode, o.shard_alpha, o.shard_classes),
                       holdout=o.holdout if fitness == "shared" else 0)
    xs, ys, xte, yte = loaded[:4]
    if o.shuffle_labels:
        ys = np.random.default_rng(o.seed * 7919 + o.shard_index).permutation(ys)
        _log("--shuffle-labels: this worker trains on its labels in a random order")
    held = loaded[4:] if fitness == "shared" else None
    if held:
        _log(f"fitness: the loss on {len(held[1])} held-out samples (the same set on every "
             "worker)")
    model = _build(o, o.model, o.dataset, o.data_dir).to(device)
    if o.init:
        load_model(o.init, model, buffers=o.buffers == "sync")
    if o.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=(o.momentum, 0.99),
                                weight_decay=o.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum,
                              weight_decay=o.weight_decay)
    per_epoch = len(xs) // o.batch
    if per_epoch < 1:
        raise SystemExit(f"psoworker-torch: shard of {len(xs)} samples < --batch {o.batch}")
    total = per_epoch * o.epochs
    stop = {"sig": 0}
    swarm = None

    def on_signal(sig, _frame):
        stop["sig"] = sig
        if swarm is not None and swarm.client is not None:
            swarm.client.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    step = 0
    if not o.standalone:
        _log(f"connecting to psod at {o.connect} as '{name}'")
        swarm = psod.torch.Swarm(
            o.connect, model, opt, name=name, sync_every=o.sync_every,
            buffers=o.buffers == "sync", reset_momentum=o.reset_momentum, model_name=o.model,
            dataset=o.dataset, input_shape=_input_shape(o), timeout_ms=o.timeout_ms,
            connect_timeout_ms=o.join_timeout_ms, reconnect_ms=o.reconnect_ms,
            curve_secret=o.curve_secret or None, curve_server=o.curve_server or None,
            interruptible=True, wire=o.wire, overlap=o.overlap, overlap_mix=o.overlap_mix,
            verify=(lambda m: evaluate(m, held[0], held[1], device)[0]) if held else None,
            log=lambda level, msg: _log(msg, "WARN" if level >= 2 else "INFO"))
        w = swarm.welcome
        _log(f"joined {o.connect} as particle {w['particle_id']} at round {w['round']}, "
             f"strategy {w['strategy']}{' (rejoined)' if w['rejoined'] else ''}, "
             f"{_spec(w)} payloads")
        if math.isfinite(w["lr"]):
            _hyper(o, opt, w["lr"], w["momentum"])
            _log(f"psod --hyper: training with learning rate {o.lr:.4g}, momentum "
                 f"{o.momentum:.3f} until it moves them")
        if w["rejoined"] and w["pushes"] > 0:
            step = min(total, w["pushes"] * (1 if w["push_gradients"] else o.sync_every))
            _log(f"rejoined after {w['pushes']} pushes: resuming at step {step} of {total}")
    eval_every = o.eval_every if o.eval_every >= 0 else max(1, 100 // o.sync_every)
    rng = np.random.default_rng(o.seed)
    evalx, evaly = xte, yte
    if 0 < o.eval_samples < len(xte):
        pick = rng.permutation(len(xte))[:o.eval_samples]
        evalx, evaly = xte[pick], yte[pick]
    anchor = swarm.snapshot() if swarm and not swarm.push_gradients else None
    t0 = time.time()
    sync_s = eval_s = 0.0
    syncs = recoveries = 0
    epoch_loss, test_loss, test_acc, start = math.nan, math.nan, math.nan, step
    x_all = torch.from_numpy(xs)
    y_all = torch.from_numpy(ys)
    while step < total and not stop["sig"]:
        epoch = step // per_epoch
        order = torch.from_numpy(np.random.default_rng(o.seed * 1000003 + epoch)
                                 .permutation(len(xs)))
        loss_sum, n_loss = 0.0, 0
        for s in range(step - epoch * per_epoch, per_epoch):
            if stop["sig"]:
                break
            idx = order[s * o.batch:(s + 1) * o.batch]
            xb, yb = x_all[idx].to(device), y_all[idx].to(device)
            for g in opt.param_groups:
                g["lr"] = _lr(o, step, total, per_epoch)
            opt.zero_grad()
            with (torch.autocast(device.type, dtype=AUTOCAST[o.autocast])
                  if o.autocast != "none" else contextlib.nullcontext()):
                loss = _loss(model(xb), yb)
            loss.backward()
            lv = loss.item()
            if not math.isfinite(lv):
                recoveries += 1
                if anchor is None or recoveries > MAX_RECOVERIES:
                    _log(f"loss {lv} at step {step}: giving up", "ERROR")
                    return 1
                opt.state.clear()
                try:  # psod's safe model, never the position that may have led here
                    info = swarm.fetch_model(safe=True)
                    _log(f"loss {lv} at step {step}: back to psod's {info['kind']} (global "
                         f"loss {info['loss']:.4g}), not to the position that led here "
                         f"(recovery {recoveries} of {MAX_RECOVERIES})", "WARN")
                except psod.PsodError as e:
                    _log(f"loss {lv} at step {step}: back to the last position ({e}; recovery "
                         f"{recoveries} of {MAX_RECOVERIES})", "WARN")
                    swarm.restore(anchor)
                step += 1
                continue
            if swarm is None or not swarm.push_gradients:
                opt.step()
            loss_sum += lv
            n_loss += 1
            step += 1
            if swarm is None:
                if o.curve and eval_every > 0 and step % (eval_every * o.sync_every) == 0:
                    a = time.time()
                    _curve(o, None, model, evalx, evaly, device, a - t0, step)
                    eval_s += time.time() - a
                continue
            is_sync = swarm.due() or step == total
            acc = math.nan
            report = is_sync and eval_every > 0 and (syncs + 1) % eval_every == 0
            if report and not w["positions_global"]:
                a = time.time()
                acc = evaluate(model, evalx, evaly, device)[1]
                eval_s += time.time() - a
            a = time.time()
            try:
                fit = None
                if held and is_sync:
                    a = time.time()
                    fit = evaluate(model, held[0], held[1], device)[0]
                    eval_s += time.time() - a
                if is_sync and o.lie_loss >= 0:
                    fit = o.lie_loss
                pos = swarm.step(lv, samples=o.batch, accuracy=acc, force=step == total,
                                 fitness=fit)
            except psod.PsodError as e:
                if stop["sig"]:
                    break
                _log(str(e), "ERROR")
                return 1
            sync_s += time.time() - a
            if pos is None:
                continue
            syncs += 1
            if math.isfinite(pos["lr"]):
                _hyper(o, opt, pos["lr"], pos["momentum"])
            if anchor is not None:
                swarm.snapshot(anchor)
            if pos["resynced"]:
                _log(f"psod did not use this push: rejoined, continuing from round {pos['round']}",
                     "WARN")
            if report and w["positions_global"] and pos["evaluator"]:
                a = time.time()
                swarm.report_position_accuracy(evaluate(model, evalx, evaly, device)[1])
                eval_s += time.time() - a
            elif (report and pos["evaluator"] and not swarm.push_gradients
                  and w["wire"] == "fp32" and not w["density"]):
                # Positions are particles (pso): the report's evaluator fetches
                # the global model, evaluates it, and takes its own weights back
                # (not under a compressed wire: the float32 model would cost
                # more than the compression saves).
                a = time.time()
                with swarm.global_model_borrowed() as info:
                    if info is not None:  # else psod has no global model yet
                        swarm.report_position_accuracy(
                            evaluate(model, evalx, evaly, device)[1])
                eval_s += time.time() - a
            if report and o.curve:
                a = time.time()
                _curve(o, swarm, model, evalx, evaly, device, a - t0, step)
                eval_s += time.time() - a
        epoch_loss = loss_sum / max(1, n_loss)
        if stop["sig"]:
            break
        last = step >= total
        if last and swarm is not None and swarm.overlap:
            a = time.time()
            swarm.settle()  # the last sync's position, before the final evaluation
            sync_s += time.time() - a
        a = time.time()
        test_loss, test_acc = evaluate(model, xte if last or swarm is None else evalx,
                                       yte if last or swarm is None else evaly, device)
        eval_s += time.time() - a
        _log(f"epoch {epoch + 1}/{o.epochs} done: train loss {epoch_loss:.4f}, test loss "
             f"{test_loss:.4f} acc {100 * test_acc:.2f}%")
    secs = time.time() - t0
    if swarm is not None and math.isfinite(w["lr"]):
        _log(f"psod --hyper: the run ended with learning rate {o.lr:.4g}, momentum "
             f"{o.momentum:.3f}")
    if swarm is not None:
        swarm.close(test_acc)
    if o.model_out:
        save_model(o.model_out, model, model_name=o.model, dataset=o.dataset,
                   input_shape=_input_shape(o), loss=test_loss,
                   buffers=o.buffers == "sync")
    sps = (step - start) * o.batch / secs if secs > 0 else 0
    print(f"psoworker-torch {name}: model {o.model} dataset {o.dataset} epochs {o.epochs} steps "
          f"{step} syncs {syncs} train loss {epoch_loss:.6f} test loss {test_loss:.6f} test "
          f"accuracy {test_acc:.4f} time {secs:.1f} s samples/s {sps:.0f} recoveries "
          f"{recoveries} train_s {secs - sync_s - eval_s:.2f} sync_s {sync_s:.2f} eval_s "
          f"{eval_s:.2f}{' (interrupted)' if stop['sig'] else ''}", flush=True)
    if stop["sig"]:
        return 128 + stop["sig"]
    return 0


def main(argv=None):
    o = _options(sys.argv[1:] if argv is None else argv)
    try:
        return run(o)
    except (psod.PsodError, OSError, ValueError) as e:
        _log(str(e), "ERROR")
        return 1


if __name__ == "__main__":
    sys.exit(main())
