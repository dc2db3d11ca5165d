"""psod.torch and psoworker-torch against a real psod: the PyTorch networks
against the C engine, every strategy, a mixed C + PyTorch swarm, BatchNorm,
and a kill -9 and restart."""
import math
import os
import re
import signal
import struct
import subprocess
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import psod
import psod.torch
from conftest import TORCH_WORKER, binary, read, run, write_cifar, write_mnist
from psod import data, models
from psod.modelfile import load_model, read_info, save_model

ERR_NOT_FINITE = 9  # psod.proto ErrorCode


def _summary(text, key):
    m = re.search(rf"{key} ([-0-9.naif]+)", text)
    assert m, text
    return float(m.group(1))


def _torch_worker(tmp, ep, name, datadir, extra=(), tag=None, wait=False, **kw):
    cmd = TORCH_WORKER + ["--model", "lenet5", "--data-dir", datadir, "--epochs", "1",
                          "--batch", "32", "--lr", "0.02", "--sync-every", "4", "--name", name,
                          "--connect", ep, "--seed", "1"] + list(extra)
    return run(cmd, tmp, tag or name, wait=wait, **kw)


def _c_worker(tmp, ep, name, datadir, extra=(), tag=None):
    cmd = [binary("psoworker"), "--model", "lenet5", "--data-dir", datadir, "--epochs", "1",
           "--batch", "32", "--lr", "0.02", "--sync-every", "4", "--name", name, "--connect", ep,
           "--seed", "1"] + list(extra)
    return run(cmd, tmp, tag or name, wait=False)


@pytest.mark.parametrize("name,threads", [("lenet5", 1), ("mlp", 1), ("lenet5", 3), ("mlp", 2)])
def test_the_torch_networks_match_the_c_engine(tmp_path, name, threads):
    """Same weights, same batch: the C engine's loss and gradient (tests/nn_ref,
    on 1 or more engine threads) against autograd, element by element."""
    torch.manual_seed(3)
    model = models.build(name)
    path = tmp_path / "w.psom"
    save_model(path, model, model_name=name, dataset="mnist")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 8).astype(np.uint8)
    batch = tmp_path / "batch.bin"
    batch.write_bytes(struct.pack("<I", 8) + x.tobytes() + y.tobytes())
    out = tmp_path / "out.bin"
    subprocess.run([binary("tests/nn_ref"), name, str(path), str(batch), str(out), str(threads)],
                   check=True)
    raw = out.read_bytes()
    c_loss = struct.unpack("<d", raw[:8])[0]
    c_grad = np.frombuffer(raw[8:], np.float32)
    loss = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y.astype(np.int64)))
    loss.backward()
    t_grad = torch.cat([p.grad.reshape(-1) for _, p in model.named_parameters()]).numpy()
    assert c_grad.shape == t_grad.shape
    assert abs(c_loss - loss.item()) <= 1e-5 * max(1.0, abs(c_loss))
    np.testing.assert_allclose(c_grad, t_grad, rtol=2e-3, atol=2e-6)


def test_the_fingerprint_is_the_c_engines_for_its_networks():
    assert psod.torch.layout_text(models.build("lenet5")) == (
        "conv5x5:1->6:pad2;relu;maxpool2;conv5x5:6->16:pad0;relu;maxpool2;dense:400->120;relu;"
        "dense:120->84;relu;dense:84->10")
    text = psod.torch.layout_text(models.build("resnet20"))
    assert text.startswith("torch:conv.weight:float32:16x3x3x3;")
    assert "buffer:bn.running_mean:float32:16" in text
    assert "num_batches_tracked" not in text


@pytest.mark.parametrize("strategy", ["pso", "avg", "easgd", "diloco", "ssgd"])
def test_two_torch_workers_train_under_each_strategy(daemon, tmp_path, strategy):
    mnist = write_mnist(str(tmp_path / "mnist"), n_train=1024, n_test=128)
    model = tmp_path / "m.psom"
    # DiLoCo's outer Nesterov momentum diverges at 4 local steps a sync
    # (docs/RESULTS.md); without it the outer step is a damped average.
    outer = ["--outer-momentum", "0"] if strategy == "diloco" else []
    d = daemon("--workers", "2", "--strategy", strategy, "--exit-when-done", "--model-out",
               str(model), *outer)
    extra = ["--shard-count", "2", "--epochs", "3"]
    ws = [_torch_worker(str(tmp_path), d.endpoint, f"t{i}", mnist,
                        extra + ["--shard-index", str(i)]) for i in range(2)]
    for w in ws:
        assert w.wait(120) == 0, read(str(tmp_path), w.args[w.args.index("--name") + 1], "err")
    assert d.proc.wait(20) == 0, d.text()
    steps = 3 * (1024 // 2 // 32)
    syncs = steps if strategy == "ssgd" else math.ceil(steps / 4)
    for i in range(2):
        out = read(str(tmp_path), f"t{i}")
        assert f"syncs {syncs} " in out, out
        assert _summary(out, "test accuracy") > 0.3, out
    assert read_info(model)["model"] == "lenet5"


def test_under_pso_the_global_models_accuracy_is_known_and_autocast_trains(daemon, tmp_path):
    """The report's evaluator fetches the global model (pso's positions are
    particles), so psod knows its accuracy from the first reports on; one
    worker trains under bf16 autocast."""
    mnist = write_mnist(str(tmp_path / "mnist"), n_train=1024, n_test=128)
    d = daemon("--workers", "2", "--metrics", str(tmp_path / "m.jsonl"), "--exit-when-done")
    extra = ["--shard-count", "2", "--epochs", "2", "--eval-every", "1", "--eval-samples", "64"]
    ws = [_torch_worker(str(tmp_path), d.endpoint, f"t{i}", mnist,
                        extra + ["--shard-index", str(i)] + (["--autocast", "bf16"] if i else []))
          for i in range(2)]
    for w in ws:
        assert w.wait(120) == 0, read(str(tmp_path), w.args[w.args.index("--name") + 1], "err")
    assert d.proc.wait(20) == 0, d.text()
    import json
    rows = [json.loads(x) for x in open(tmp_path / "m.jsonl")]
    known = [r["round"] for r in rows if r.get("global_acc") is not None]
    assert known and known[0] <= 2 and len(known) >= len(rows) - 2, (known, len(rows))
    assert _summary(read(str(tmp_path), "t1"), "test accuracy") > 0.3


def test_a_mixed_swarm_of_c_and_torch_workers(daemon, tmp_path):
    """2 C workers and 2 PyTorch workers train one LeNet-5; the model file
    evaluates to the same accuracy (and loss) in both engines."""
    mnist = write_mnist(str(tmp_path / "mnist"), n_train=1024, n_test=256)
    model = tmp_path / "m.psom"
    d = daemon("--workers", "4", "--strategy", "avg", "--exit-when-done", "--model-out",
               str(model))
    # Every particle starts from the same weights, as psoworker's do.
    torch.manual_seed(5)
    init = tmp_path / "init.psom"
    save_model(init, models.build("lenet5"), model_name="lenet5", dataset="mnist")
    extra = ["--shard-count", "4", "--epochs", "4", "--init", str(init)]
    ws = [_c_worker(str(tmp_path), d.endpoint, f"c{i}", mnist, extra + ["--shard-index", str(i)])
          for i in range(2)]
    ws += [_torch_worker(str(tmp_path), d.endpoint, f"t{i}", mnist,
                         extra + ["--shard-index", str(2 + i)]) for i in range(2)]
    for w in ws:
        assert w.wait(120) == 0
    assert d.proc.wait(20) == 0, d.text()
    assert d.text().count("joined as particle") == 4
    c = subprocess.run([binary("psoworker"), "--eval", str(model), "--data-dir", mnist],
                       capture_output=True, text=True, check=True).stdout
    t = subprocess.run(TORCH_WORKER + ["--eval", str(model), "--data-dir", mnist],
                       capture_output=True, text=True, check=True).stdout
    c_acc, t_acc = _summary(c, "test accuracy"), _summary(t, "test accuracy")
    assert abs(c_acc - t_acc) <= 0.0005, (c, t)
    assert abs(_summary(c, "test loss") - _summary(t, "test loss")) < 1e-4, (c, t)
    assert c_acc > 0.3


def test_batchnorm_statistics_travel_with_the_weights(daemon, tmp_path):
    cifar = write_cifar(str(tmp_path / "cifar"), n_train=128, n_test=64)
    model = tmp_path / "m.psom"
    d = daemon("--workers", "2", "--strategy", "avg", "--exit-when-done", "--model-out",
               str(model))
    ws = [run(TORCH_WORKER + ["--model", "resnet20", "--dataset", "cifar10", "--data-dir", cifar,
                              "--epochs", "1", "--batch", "16", "--lr", "0.02", "--sync-every",
                              "2", "--name", f"r{i}", "--connect", d.endpoint, "--shard-index",
                              str(i), "--shard-count", "2"], str(tmp_path), f"r{i}", wait=False)
          for i in range(2)]
    for w in ws:
        assert w.wait(180) == 0
    assert d.proc.wait(20) == 0
    net = models.build("resnet20")
    n_params = sum(p.numel() for p in net.parameters())
    n_buffers = sum(b.numel() for b in net.buffers() if b.is_floating_point())
    info = read_info(model)
    assert info["param_count"] == n_params + n_buffers
    # The averaged running statistics are what the file holds, and load back.
    load_model(model, net)
    assert not torch.equal(net.bn.running_var, torch.ones(16))
    both = [read(str(tmp_path), f"r{i}") for i in range(2)]
    assert all("syncs 2 " in o for o in both), both


def test_a_killed_torch_worker_gets_its_particle_back(daemon, tmp_path):
    mnist = write_mnist(str(tmp_path / "mnist"), n_train=512, n_test=64)
    d = daemon("--workers", "2", "--heartbeat-ms", "100", "--liveness", "5")
    other = _torch_worker(str(tmp_path), d.endpoint, "steady", mnist,
                          ["--epochs", "100000", "--shard-count", "2"])
    victim = _torch_worker(str(tmp_path), d.endpoint, "victim", mnist,
                           ["--epochs", "100000", "--shard-index", "1", "--shard-count", "2"])
    assert d.wait_for("worker 'victim' (", 30), d.text()
    time.sleep(1)  # some rounds
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert d.wait_for("evicted worker 'victim'", 20), d.text()
    again = _torch_worker(str(tmp_path), d.endpoint, "victim", mnist,
                          ["--epochs", "100000", "--shard-index", "1", "--shard-count", "2"],
                          tag="victim2")
    assert d.wait_for("worker 'victim' (", 30)
    deadline = time.time() + 30
    while "(rejoined)" not in read(str(tmp_path), "victim2", "err") and time.time() < deadline:
        time.sleep(0.1)
    first = re.search(r"as particle (\d+) at round", read(str(tmp_path), "victim", "err"))
    assert first, read(str(tmp_path), "victim", "err")
    log = read(str(tmp_path), "victim2", "err")
    assert f"as particle {first.group(1)} at round" in log and "(rejoined)" in log, log
    assert f"rejoined particle {first.group(1)}" in d.text()
    for p in (again, other):
        p.send_signal(signal.SIGTERM)
    assert again.wait(20) == 143 and other.wait(20) == 143
    assert "(interrupted)" in read(str(tmp_path), "victim2")


def test_sigterm_ends_a_wait_with_a_bye(daemon, tmp_path):
    """The round waits for a second worker that never comes; SIGTERM ends
    psoworker-torch's wait at once: bye, summary, exit 143."""
    mnist = write_mnist(str(tmp_path / "mnist"), n_train=256, n_test=64)
    d = daemon("--workers", "2", "--liveness", "60")
    w = _torch_worker(str(tmp_path), d.endpoint, "lonely", mnist, ["--epochs", "50"])
    assert d.wait_for("worker 'lonely' (", 30), d.text()
    time.sleep(1.5)  # its first push is in; it waits for the round
    t0 = time.time()
    w.send_signal(signal.SIGTERM)
    assert w.wait(10) == 143
    assert time.time() - t0 < 3
    assert "(interrupted)" in read(str(tmp_path), "lonely")
    assert d.wait_for("worker 'lonely' left", 5), d.text()


def test_a_diverging_torch_worker_goes_back_to_its_position(daemon, tmp_path):
    """NaN recovery as in the C worker: back to psod's safe model (here the
    global best), or to the last position while psod has none, momentum
    reset; after 10 divergences it gives up with exit 1, and psod never saw
    a non-finite push."""
    mnist = write_mnist(str(tmp_path / "mnist"), n_train=512, n_test=64)
    d = daemon("--workers", "1")
    w = _torch_worker(str(tmp_path), d.endpoint, "wild", mnist, ["--lr", "1e6", "--epochs", "20"])
    assert w.wait(120) == 1
    err = read(str(tmp_path), "wild", "err")
    assert "recovery 1 of 10)" in err, err
    assert "back to psod's global best" in err or "back to the last position" in err, err
    assert "giving up" in err
    assert "ERR_NOT_FINITE" not in d.text()
    codes = psod.Client(d.endpoint).status()["errors_by_code"]
    assert codes[ERR_NOT_FINITE] == 0, codes  # refused model requests (before round 1) aside


def test_swarm_in_process_with_a_flat_buffer(daemon):
    """psod.torch.Swarm as a user writes it: parameters become views of one
    flat buffer, the sync writes the new position into them in place."""
    d = daemon("--workers", "1", "--strategy", "avg")
    torch.manual_seed(0)
    model = models.build("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    swarm = psod.torch.Swarm(d.endpoint, model, opt, name="inproc", sync_every=3,
                             model_name="mlp", dataset="mnist")
    assert all(p.data_ptr() >= swarm.flat.data_ptr() for p in model.parameters())
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    got = []
    for _ in range(6):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        got.append(swarm.step(loss))
    assert [g is not None for g in got] == [False, False, True] * 2
    assert got[-1]["round"] == 2
    st = psod.Client(d.endpoint).status(particles=True)
    assert st["round"] == 2 and st["particles_status"][0]["name"] == "inproc"
    swarm.close()


def test_threads_takes_a_count_or_auto():
    from psod import worker

    assert worker._threads("3") == 3
    assert worker._threads("auto") == len(os.sched_getaffinity(0))
    for bad in ("0", "257", "two", ""):
        with pytest.raises(Exception, match="1 to 256 or auto"):
            worker._threads(bad)


@pytest.mark.parametrize("mode", ["iid", "dirichlet", "classes"])
def test_shards_come_from_the_c_library_and_tile_the_set(mode):
    """psoworker-torch cuts its shard with psoc_partition, as psoworker does:
    the parts are disjoint, cover every sample, and repeat for a seed."""
    y = np.random.default_rng(4).permutation(np.repeat(np.arange(10), 300))
    x = np.arange(3000)
    seen = np.zeros(3000, dtype=int)
    for k in range(5):
        xs, ys = data.shard(x, y, k, 5, 9, mode=mode, alpha=0.3, classes=2)
        assert (y[xs] == ys).all()
        seen[xs] += 1
        again, _ = data.shard(x, y, k, 5, 9, mode=mode, alpha=0.3, classes=2)
        assert (again == xs).all()
        if mode == "classes":  # 10 runs of one class each, 2 per worker
            assert len(set(ys.tolist())) == 2
    assert (seen == 1).all()


def test_bad_shard_requests_are_refused_with_the_c_librarys_reason():
    y = np.zeros(100, dtype=np.int64)
    with pytest.raises(ValueError, match="unknown shard mode"):
        data.shard(y, y, 0, 2, 1, mode="skewed")
    with pytest.raises(ValueError, match="shard 3 of 2"):
        data.shard(y, y, 3, 2, 1)
    with pytest.raises(ValueError, match="--shard-alpha"):
        data.shard(y, y, 0, 16, 1, mode="dirichlet", alpha=0.001)


def test_torch_workers_on_skewed_shards_push_the_shared_fitness(daemon, tmp_path):
    """--shard-mode classes: --fitness auto becomes shared, both workers push
    the loss on the same held-out tail, and the swarm still trains."""
    mnist = write_mnist(str(tmp_path / "mnist"), n_train=1024, n_test=128)
    d = daemon("--workers", "2", "--strategy", "pso", "--exit-when-done")
    extra = ["--shard-count", "2", "--epochs", "2", "--shard-mode", "classes", "--holdout", "64"]
    ws = [_torch_worker(str(tmp_path), d.endpoint, f"s{i}", mnist,
                        extra + ["--shard-index", str(i)]) for i in range(2)]
    for i, w in enumerate(ws):
        assert w.wait(120) == 0, read(str(tmp_path), f"s{i}", "err")
    assert d.proc.wait(20) == 0, d.text()
    for i in range(2):
        assert "fitness: the loss on 64 held-out samples" in read(str(tmp_path), f"s{i}", "err")
    x, y, _, _, hx, hy = data.load("mnist", mnist, shard=(0, 2, 1, "classes", 0.5, 2), holdout=64)
    full = data.load("mnist", mnist)
    assert len(hx) == 64 and (hy == full[1][-64:]).all()
    assert len(x) == (1024 - 64) // 2


@pytest.mark.parametrize("liar", ["c", "torch"])
def test_verified_best_across_engines_refuses_a_liar(daemon, tmp_path, liar):
    """psod --verify-best with 2 C workers and a PyTorch worker, all on the
    shared fitness set, one of them (a C worker, or the PyTorch one) pushing
    shuffled labels and claiming loss 0.01 (--lie-loss): the liar is refused
    each time, the engines verify each other's claims (their losses agree
    far inside the 5 % tolerance), and the model file is an honest worker's."""
    mnist = write_mnist(str(tmp_path / "mnist"), n_train=1536, n_test=256)
    model = tmp_path / "v.psom"
    d = daemon("--workers", "3", "--strategy", "pso", "--verify-best", "yes",
               "--exit-when-done", "--model-out", str(model))
    extra = ["--model", "mlp", "--shard-count", "3", "--epochs", "2", "--fitness", "shared",
             "--holdout", "256"]
    lie = ["--shuffle-labels", "--lie-loss", "0.01"]
    names = ("c0", "c1", "torch")
    bad = "c0" if liar == "c" else "torch"
    ws = [_c_worker(str(tmp_path), d.endpoint, n, mnist,
                    extra + ["--shard-index", str(i)] + (lie if n == bad else []))
          for i, n in enumerate(names[:2])]
    ws.append(_torch_worker(str(tmp_path), d.endpoint, "torch", mnist,
                            extra + ["--shard-index", "2"] + (lie if bad == "torch" else [])))
    for name, w in zip(names, ws):
        assert w.wait(180) == 0, read(str(tmp_path), name, "err")
    assert d.proc.wait(20) == 0, d.text()
    log = d.text()
    assert "candidate refused: particle" in log and f"(worker '{bad}')" in log, log
    adopted = [ln for ln in log.splitlines() if "new global best" in ln]
    assert adopted and not any(f"'{bad}') claimed" in ln for ln in adopted), log
    honest = [n for n in names if n != bad]
    assert sum(read(str(tmp_path), n, "err").count("verified particle") for n in honest) >= 2, log
    c = subprocess.run([binary("psoworker"), "--eval", str(model), "--data-dir", mnist],
                       capture_output=True, text=True, check=True).stdout
    assert _summary(c, "test accuracy") > 0.3, c


def test_hyper_particles_reach_both_engines(daemon, tmp_path):
    """psod --hyper under avg: a C and a PyTorch worker each train with the
    learning rate and momentum psod hands them at the welcome and moves with
    the positions, inside the ranges psod was given."""
    mnist = write_mnist(str(tmp_path / "mnist"), n_train=1024, n_test=128)
    d = daemon("--workers", "2", "--strategy", "avg", "--hyper", "yes", "--exit-when-done",
               "--hyper-lr-min", "0.01", "--hyper-lr-max", "0.1", "--hyper-momentum-min", "0.6",
               "--hyper-momentum-max", "0.9", "--log-level", "debug")
    extra = ["--model", "mlp", "--shard-count", "2", "--epochs", "2", "--fitness", "shared",
             "--holdout", "128"]
    ws = [_c_worker(str(tmp_path), d.endpoint, "c", mnist, extra + ["--shard-index", "0"]),
          _torch_worker(str(tmp_path), d.endpoint, "t", mnist, extra + ["--shard-index", "1"])]
    for name, w in zip("ct", ws):
        assert w.wait(180) == 0, read(str(tmp_path), name, "err")
    assert d.proc.wait(20) == 0, d.text()
    for name in "ct":
        log = read(str(tmp_path), name, "err")
        start = re.search(r"training with learning rate ([0-9.e-]+), momentum ([0-9.]+)", log)
        end = re.search(r"the run ended with learning rate ([0-9.e-]+), momentum ([0-9.]+)", log)
        assert start and end, log
        for m in (start, end):
            assert 0.01 - 1e-6 <= float(m.group(1)) <= 0.1 + 1e-6, log
            assert 0.6 - 1e-6 <= float(m.group(2)) <= 0.9 + 1e-6, log
    assert "best hyperparameters" in d.text(), d.text()
