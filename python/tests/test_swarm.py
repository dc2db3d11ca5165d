"""psod.torch.Swarm as users break it: a model moved or re-created after the
Swarm was made, a stale optimizer, bf16 and fp16 models, autocast, a psod
restart, Ctrl-C during a wait, the swarm's model back in the module, and a
launch by torchrun."""
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import psod
import psod.torch
from conftest import BUILD, PY, ROOT, Daemon, read, run, write_mnist
from psod.modelfile import load_model


class Small(nn.Module):
    """A user's model with a BatchNorm buffer and a tied weight."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Linear(8, 6, bias=False)
        self.bn = nn.BatchNorm1d(6)
        self.out = nn.Linear(6, 8)
        self.out_tied = nn.Linear(6, 8, bias=False)
        self.out_tied.weight = self.out.weight  # tied, as a GPT's lm_head

    def forward(self, x):
        h = F.gelu(self.bn(self.emb(x)))
        return self.out(h) + self.out_tied(h)


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 8, generator=g)
    return x, x.argmax(1)


def _train(model, opt, swarm, steps, dtype=None):
    x, y = _data()
    loss = None
    for _ in range(steps):
        opt.zero_grad()
        out = model(x.to(dtype) if dtype else x)
        loss = F.cross_entropy(out.float(), y)
        loss.backward()
        opt.step()
        pos = swarm.step(loss)
    return loss, pos


def _flat(model):
    return torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])


def _swarm(d, model, opt=None, logs=None, **kw):
    return psod.torch.Swarm(d.endpoint, model, opt, name=kw.pop("name", "w0"),
                            log=(lambda lvl, m: logs.append(m)) if logs is not None else None,
                            **kw)


def test_a_model_moved_after_the_swarm_is_followed(daemon):
    """.to(float64) after Swarm() (what .cuda() does to the link): the next
    sync re-attaches and pushes what the model trained, not its start."""
    d = daemon("--workers", "1", "--strategy", "avg")
    torch.manual_seed(0)
    model, logs = Small(), []
    swarm = _swarm(d, model, logs=logs, sync_every=4)
    start = _flat(model).clone()
    model.to(torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()
    for i in range(4):
        opt.zero_grad()
        F.cross_entropy(model(x.double()), y).backward()
        opt.step()
        trained = _flat(model).clone()
        pos = swarm.step(1.0)
    assert pos is not None and any("re-attached" in m for m in logs), logs
    assert "float64" in " ".join(logs)
    # One avg worker: the new position is what it pushed.
    torch.testing.assert_close(_flat(model), trained, rtol=0, atol=1e-6)
    assert (trained - start).abs().max() > 1e-3
    assert model.out.weight is model.out_tied.weight  # the tie survives
    assert model.out.weight.dtype == torch.float64 and not swarm.link.view
    # Back to float32: views again.
    model.float()
    _train(model, torch.optim.SGD(model.parameters(), lr=0.1), swarm, 4)
    assert swarm.link.view
    assert model.out.weight.data_ptr() >= swarm.flat.data_ptr()
    swarm.close()


def test_a_replaced_parameter_is_read_and_a_stale_optimizer_refused(daemon):
    d = daemon("--workers", "1", "--strategy", "avg")
    torch.manual_seed(0)
    model, logs = Small(), []
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    swarm = _swarm(d, model, opt, logs=logs, sync_every=2)
    _train(model, opt, swarm, 2)
    # A layer re-created: the old optimizer steps tensors the model lost.
    model.emb = nn.Linear(8, 6, bias=False)
    with pytest.raises(psod.PsodError, match="optimizer steps 1 tensors"):
        _train(model, opt, swarm, 2)
    # The user builds the optimizer again: the new layer's values travel.
    swarm.optimizer = opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _train(model, opt, swarm, 1)
    before = _flat(model).clone()
    swarm.sync()
    torch.testing.assert_close(_flat(model), before, rtol=0, atol=1e-6)
    assert any("re-attached" in m for m in logs)
    # New modules (new names): refused with what changed.
    model.extra = nn.Linear(2, 2)
    with pytest.raises(psod.PsodError, match="extra.weight.* new"):
        swarm.sync()
    swarm.close()


def test_parameters_recreated_by_to_are_caught(daemon):
    """With overwrite_module_params_on_conversion, .to() makes new Parameter
    objects: the optimizer built before steps nothing the model holds."""
    d = daemon("--workers", "1", "--strategy", "avg")
    model = Small()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    swarm = _swarm(d, model, opt, sync_every=2)
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        model.to(torch.float64)
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(False)
    with pytest.raises(psod.PsodError, match="not this model's parameters"):
        _train(model, opt, swarm, 2, dtype=torch.float64)
    swarm.close()


def test_half_precision_models_train_through_a_float32_master(daemon, dtype=torch.bfloat16):
    """A bf16 worker and a float32 worker of one model share a swarm (the
    fingerprint is what travels: float32); positions land rounded to the
    model's dtype, and the model learns."""
    d = daemon("--workers", "2", "--strategy", "avg")
    torch.manual_seed(0)
    half, full = Small().to(dtype), Small()
    full.load_state_dict({k: v.float() for k, v in half.state_dict().items()})
    assert psod.torch.layout_text(half) == psod.torch.layout_text(full)
    import threading
    out = {}

    def worker(name, model, dt):
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        with _swarm(d, model, opt, name=name, sync_every=4) as s:
            first, _ = _train(model, opt, s, 4, dtype=dt)
            last, pos = _train(model, opt, s, 40, dtype=dt)
            out[name] = (float(first), float(last), s.link.view, pos["round"])

    ts = [threading.Thread(target=worker, args=("half", half, dtype)),
          threading.Thread(target=worker, args=("full", full, None))]
    [t.start() for t in ts]
    [t.join(120) for t in ts]
    assert out["half"][2] is False and out["full"][2] is True
    assert out["half"][3] == out["full"][3] == 11
    assert out["half"][1] < 0.7 * out["half"][0], out
    assert half.out.weight.dtype == dtype
    # The same position in both, up to the half dtype's rounding.
    torch.testing.assert_close(_flat(half), _flat(full), rtol=1e-2, atol=1e-2)


def test_fp16_parameters_travel_as_float32(daemon):
    """fp16 (which this CPU build of torch cannot train: no fp16 matmul on
    CPU; gpu-check.sh trains one on CUDA): what the module holds is pushed,
    and the position lands rounded to fp16."""
    d = daemon("--workers", "1", "--strategy", "avg")
    torch.manual_seed(0)
    model = Small().half()
    with _swarm(d, model, sync_every=1) as s:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.25)  # what an optimizer step does
        want = _flat(model).clone()
        s.step(1.0)
        assert not s.link.view and model.out.weight.dtype == torch.float16
        torch.testing.assert_close(_flat(model), want, rtol=0, atol=0)
        g = Small().half()
        s.model, s.link.model = g, g  # (a fresh module: nothing of the above in it)
        s.link.attach()
        s.global_model()
        torch.testing.assert_close(_flat(g), want, rtol=0, atol=0)


def test_autocast_training_through_the_swarm(daemon):
    d = daemon("--workers", "1", "--strategy", "avg")
    torch.manual_seed(0)
    model = Small()
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    x, y = _data()
    with _swarm(d, model, opt, sync_every=4) as s:
        losses = []
        for _ in range(40):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(x)
                loss = F.cross_entropy(out, y)
            assert out.dtype == torch.bfloat16
            loss.backward()
            opt.step()
            s.step(loss)
            losses.append(float(loss))
        assert s.link.view and s.round == 10
    assert losses[-1] < 0.7 * losses[0]


def test_the_swarms_model_comes_back_into_the_module(daemon, tmp_path):
    """close(load_global=True) under pso: the module then holds psod's global
    model (its --model-out file), not the worker's own particle."""
    out = tmp_path / "g.psom"
    d = daemon("--workers", "2", "--model-out", str(out), "--exit-when-done", "--seed", "3")
    import threading
    models_ = {}
    infos = {}

    def worker(name, seed):
        torch.manual_seed(0)
        model = Small()
        models_[name] = model
        opt = torch.optim.SGD(model.parameters(), lr=0.3 if seed else 0.01)
        s = _swarm(d, model, opt, name=name, sync_every=3, dataset="toy")
        _train(model, opt, s, 12)
        s.sync()
        infos[name] = s.close(accuracy=97.5, load_global=True)

    ts = [threading.Thread(target=worker, args=(f"w{i}", i)) for i in range(2)]
    [t.start() for t in ts]
    [t.join(120) for t in ts]
    assert d.proc.wait(30) == 0
    ref = Small()
    load_model(str(out), ref)
    for name in ("w0", "w1"):
        assert infos[name]["kind"] == "global model"
        torch.testing.assert_close(_flat(models_[name]), _flat(ref), rtol=0, atol=0)
    assert "final test accuracy 97.50%" in d.text()
    assert "nan%" not in d.text()


def test_fitness_pushes_the_held_out_loss(daemon):
    d = daemon("--workers", "1")
    torch.manual_seed(0)
    model = Small()
    hx, hy = _data(5)
    fit = psod.torch.held_out_loss([(hx[:32], hy[:32]), (hx[32:], hy[32:])])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with _swarm(d, model, opt, sync_every=2, fitness=fit) as s:
        _train(model, opt, s, 1)
        model.eval()
        with torch.no_grad():
            want = float(F.cross_entropy(model(hx), hy))
        model.train()
        s.step(123.0)  # the training loss is not what is pushed
        assert model.training
        st = psod.Client(d.endpoint).status(particles=True)
        assert st["particles_status"][0]["last_loss"] == pytest.approx(want, rel=1e-5)
    # Closed without an accuracy: said so, never "nan%".
    assert d.wait_for("worker 'w0' left: worker closed (no final test accuracy reported)", 5)


def test_the_global_model_is_borrowed_and_the_own_weights_come_back(daemon):
    d = daemon("--workers", "1")
    torch.manual_seed(0)
    model = Small()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with _swarm(d, model, opt, sync_every=2) as s:
        with s.global_model_borrowed() as info:
            assert info is None  # no round has closed: psod has no model yet
        _train(model, opt, s, 2)
        for p in model.parameters():
            p.data.add_(1.0)  # this worker's own weights, away from the global model
        own = _flat(model).clone()
        with s.global_model_borrowed() as info:
            assert info["kind"] == "global model"
            assert (_flat(model) - own).abs().max() > 0.5
        torch.testing.assert_close(_flat(model), own, rtol=0, atol=0)
        anchor = s.snapshot()
        assert s.snapshot(anchor) is anchor


def test_launch_env_reads_torchrun_and_slurm():
    e = psod.torch.launch_env({"PSOD_ENDPOINT": "tcp://h:1", "LOCAL_RANK": "3", "RANK": "7",
                               "WORLD_SIZE": "8"})
    assert e["endpoint"] == "tcp://h:1" and e["name"].endswith("-3")
    assert (e["rank"], e["world_size"], e["local_rank"]) == (7, 8, 3)
    assert e["device"] == torch.device("cpu")  # no CUDA here
    e = psod.torch.launch_env({"SLURM_LOCALID": "1", "SLURM_PROCID": "5", "SLURM_NTASKS": "6",
                               "PSOD_NAME": "n1"})
    assert (e["name"], e["rank"], e["world_size"]) == ("n1", 5, 6)
    assert psod.torch.launch_env({})["name"].endswith(f"-{os.getpid()}")
    with pytest.raises(ValueError, match="RANK='x'"):
        psod.torch.launch_env({"RANK": "x"})
    with pytest.raises(psod.PsodError, match="PSOD_ENDPOINT"):
        old = os.environ.pop("PSOD_ENDPOINT", None)
        try:
            psod.torch.Swarm(model=Small())
        finally:
            if old is not None:
                os.environ["PSOD_ENDPOINT"] = old


def test_a_user_model_is_not_named_as_a_built_in_one(daemon):
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

    d = daemon("--workers", "1")
    with _swarm(d, MLP(), sync_every=1) as s:
        assert s.welcome["model"] == "torch:MLP"
        assert psod.torch.layout_text(MLP()).startswith("torch:")


_SCRIPT = textwrap.dedent("""
    import signal, sys, time, torch, torch.nn as nn, torch.nn.functional as F
    # A terminal's Ctrl-C, even where the test runs with SIGINT ignored
    # (a background job of a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, {py!r})
    import psod.torch
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(32, 4); y = x[:, :3].argmax(1)
    swarm = psod.torch.Swarm({ep!r}, model, opt, name="py", sync_every=2)
    print("joined", flush=True)
    for i in range({steps}):
        opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()
        pos = swarm.step(loss)
        if pos: print("round", pos["round"], flush=True)
        time.sleep({pause})
    swarm.close(load_global=True)
    print("done", flush=True)
""")


def _script(tmp_path, ep, steps, pause):
    path = tmp_path / "user.py"
    path.write_text(_SCRIPT.format(py=os.path.join(ROOT, "python"), ep=ep, steps=steps,
                                   pause=pause))
    return [PY, str(path)]


@pytest.mark.parametrize("wire", ["any", "frag:3:int8"])
def test_a_psod_restart_is_ridden_through(tmp_path, wire):
    """kill -9 of psod mid-run and a restart with --resume: the Swarm's
    defaults (the C worker's reconnect) carry the script to its end; also
    with fragment payloads psod imposes (the rejoin's float32 welcome
    starts the state both sides hold afresh)."""
    ck = tmp_path / "ck"
    d = Daemon(str(tmp_path), "a", ["--workers", "1", "--checkpoint-dir", str(ck),
                                    "--checkpoint-every", "1", "--wire", wire])
    ep = d.endpoint
    p = run(_script(tmp_path, ep, 60, 0.05), str(tmp_path), "user", wait=False)
    try:
        deadline = time.time() + 30
        while "round 6" not in read(str(tmp_path), "user") and time.time() < deadline:
            time.sleep(0.05)
        d.proc.kill()
        d.proc.wait()
        time.sleep(1.5)
        d2 = subprocess.Popen([os.path.join(BUILD, "psod"), "--bind", ep, "--workers", "1",
                               "--resume", str(ck), "--progress-interval", "0", "--wire", wire],
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "b.err", "w"))
        try:
            assert p.wait(90) == 0, read(str(tmp_path), "user", "err")
        finally:
            d2.terminate()
            d2.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        d.stop()
    out = read(str(tmp_path), "user")
    assert "done" in out and "round 29" in out, out  # one push lost in the crash
    assert "resumed" in (tmp_path / "b.err").read_text() or "restored" in (tmp_path / "b.err").read_text()
    if wire != "any":
        assert "imposes frag:3:int8" in (tmp_path / "b.err").read_text()


def test_ctrl_c_while_waiting_raises_at_once_after_a_bye(daemon, tmp_path):
    """Waiting on a round that cannot close (--workers 2, one worker):
    SIGINT ends the wait with KeyboardInterrupt within a second, and psod
    hears the bye."""
    d = daemon("--workers", "2")
    p = run(_script(tmp_path, d.endpoint, 10, 0), str(tmp_path), "user", wait=False)
    try:
        deadline = time.time() + 20
        while "joined" not in read(str(tmp_path), "user") and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # in the wait for round 0
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        p.wait(10)
        took = time.time() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = read(str(tmp_path), "user", "err")
    assert "KeyboardInterrupt" in err and took < 1.5, (took, err)
    assert d.wait_for("worker 'py' left", 5), d.text()


def test_torchrun_launches_one_worker_per_process(daemon, tmp_path):
    """The README's torchrun line, on CPU: two processes, names and data
    parts from the launcher's environment, the swarm's model saved."""
    mn = write_mnist(str(tmp_path / "mnist"), n_train=1024, n_test=256)
    d = daemon("--workers", "2", "--strategy", "avg", "--exit-when-done")
    env = dict(os.environ, PSOD_ENDPOINT=d.endpoint, OMP_NUM_THREADS="1")
    out = tmp_path / "swarm.pt"
    # --redirects 2 --tee 2: Debian's torch 1.13 under Python 3.11 fails on
    # the default 0 (its Std enum lost the value 0); newer torch needs none.
    p = subprocess.run(["torchrun", "--standalone", "--nproc_per_node", "2", "--redirects", "2",
                        "--tee", "2",
                        os.path.join(ROOT, "python", "examples", "swarm_mnist.py"),
                        "--data-dir", mn, "--epochs", "1", "--batch", "32", "--sync-every", "8",
                        "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    host = __import__("socket").gethostname().split(".")[0]
    for r in (0, 1):
        assert f"{host}-{r}: joined" in p.stdout, p.stdout
    # torchrun's --tee copies both processes' lines to one stream, and one
    # process's line can land before the other's newline: match each report
    # alone, never across two.
    accs = [float(a) for a in __import__("re").findall(r"the swarm's model \([^)]*\) ([0-9.]+)% test",
                                                       p.stdout)]
    assert len(accs) == 2 and accs[0] == accs[1] and accs[0] > 60, p.stdout
    assert out.exists() and d.proc.wait(30) == 0
    assert f"worker '{host}-0' joined" in d.text() or f"'{host}-0'" in d.text()


def test_an_overlapping_sync_keeps_the_steps_taken_meanwhile(daemon):
    """Client level, avg with two workers: a begins its sync and trains on
    (adds d), b syncs as usual; a's sync_end gives the mean of the two
    pushes plus d. Other requests wait for it; gradients are refused."""
    import threading
    import numpy as np
    d = daemon("--workers", "2", "--strategy", "avg", "--max-rounds", "3")
    n = 64
    layout = "objective:sphere:%d" % n
    a, b = psod.Client(d.endpoint, "a"), psod.Client(d.endpoint, "b")
    xa = np.arange(n, dtype=np.float32)
    xb = np.full(n, -1.0, np.float32)
    for c in (a, b):
        c.set_model(layout)
    ta = threading.Thread(target=lambda: b.join(xb, psod.layout_hash(layout)))
    ta.start()
    a.join(xa, psod.layout_hash(layout))
    ta.join(30)
    pushed = xa.copy()
    a.sync_begin(xa, 1.0, 4)
    assert a.sync_pending
    with pytest.raises(psod.PsodError):
        a.sync(xa, 1.0, 4)  # one in flight at a time
    step = np.float32(0.25) * (np.arange(n) % 3).astype(np.float32)
    xa += step  # trained on meanwhile
    tb = threading.Thread(target=lambda: b.sync(xb, 0.5, 4))
    tb.start()
    pos = a.sync_end(xa)
    tb.join(30)
    assert not a.sync_pending and pos["round"] == 1
    mean = (np.float32(0) + pushed + np.float32(-1)) * np.float32(0.5)
    np.testing.assert_array_equal(xb, mean)
    np.testing.assert_array_equal(xa, mean + ((pushed + step) - pushed))
    a.close()
    b.close()


@pytest.mark.parametrize("wire,mix", [("fp32", None), ("frag:3:int8", None),
                                      ("frag:3:int8", 0.5)])
def test_swarms_that_overlap_their_syncs_train_and_take_the_last_one_in(daemon, wire, mix):
    """Two Swarm(overlap=True) under avg: the first sync returns None (nothing
    has arrived), later ones the round before; the model learns, and close
    takes the sync in flight in, so both end on positions the rounds made.
    The same over fragments (a third of the model a round, in int8), and
    with Streaming DiLoCo's merge of the steps taken meanwhile."""
    import threading
    d = daemon("--workers", "2", "--strategy", "avg")
    out = {}

    def worker(name, seed):
        torch.manual_seed(seed)
        model = Small()
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        with _swarm(d, model, opt, name=name, sync_every=4, overlap=True, wire=wire,
                    overlap_mix=mix) as s:
            assert s.welcome["fragments"] == (3 if wire.startswith("frag") else 0)
            first, pos = _train(model, opt, s, 4)
            out[name + "-first"] = pos
            last, pos = _train(model, opt, s, 40)
            out[name] = (float(first), float(last), pos["round"], s.client.sync_pending)
            s.settle()
            out[name + "-settled"] = (s.round, s.client.sync_pending)

    ts = [threading.Thread(target=worker, args=(n, i)) for i, n in enumerate(("a", "b"))]
    [t.start() for t in ts]
    [t.join(120) for t in ts]
    for n in ("a", "b"):
        assert out[n + "-first"] is None
        first, last, rnd, pending = out[n]
        assert rnd == 10 and pending, out  # the 11th sync is in flight
        assert last < 0.7 * first, out
        assert out[n + "-settled"] == (11, False), out
    with pytest.raises(psod.PsodError):
        gd = daemon("--workers", "1", "--strategy", "ssgd", tag="ssgd")
        _swarm(gd, Small(), name="g", overlap=True)
