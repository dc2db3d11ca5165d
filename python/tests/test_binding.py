"""psod.Client against a real psod: join, sync, status, refusals as
exceptions, CURVE, and the C library as an installed, pkg-config'd .so."""
import math
import os
import subprocess

import numpy as np
import pytest

import psod
from conftest import ROOT, binary

LAYOUT = "objective:sphere:4"


def test_join_sync_status(daemon):
    d = daemon("--workers", "1", "--max-rounds", "50")
    with psod.Client(d.endpoint, "py-a") as c:
        c.set_model(LAYOUT)
        w = np.full(4, 2.0, np.float32)
        wel = c.join(w, psod.layout_hash(LAYOUT))
        assert wel["particle_id"] == 0 and wel["round"] == 0 and not wel["rejoined"]
        assert wel["strategy"] == "pso" and wel["model"] == LAYOUT
        for r in range(5):
            w -= 0.1 * 2 * w  # a gradient step on the sphere
            pos = c.sync(w, float((w ** 2).sum()), 4)
            assert pos["round"] == r + 1 and not pos["resynced"]
        st = psod.Client(d.endpoint).status(particles=True)
        assert st["round"] == 5 and st["particles"] == 1 and st["param_count"] == 4
        assert st["particles_status"][0]["name"] == "py-a"
        assert st["particles_status"][0]["pushes"] == 5
        assert math.isfinite(st["global_best_loss"])


@pytest.mark.parametrize("wire,tol", [("bf16", 2 ** -8), ("fp16", 2 ** -11), ("int8", 1 / 127)])
def test_compressed_payloads_follow_the_float32_positions(daemon, wire, tol):
    """Under avg with one worker a position is the pushed weights: over a
    compressed wire it must be within the kind's rounding of the change."""
    d = daemon("--workers", "1", "--strategy", "avg", "--max-rounds", "50")
    n = 1000
    with psod.Client(d.endpoint, "py-" + wire, wire=wire) as c:
        c.set_model("objective:sphere:%d" % n)
        rng = np.random.default_rng(3)
        w = rng.standard_normal(n).astype(np.float32)
        wel = c.join(w, psod.layout_hash("objective:sphere:%d" % n))
        assert wel["wire"] == wire
        for r in range(10):
            start = w.copy()
            w += (0.01 * rng.standard_normal(n)).astype(np.float32)
            target = w.copy()
            c.sync(w, float((w ** 2).sum()), 4)
            change = np.abs(target - start).max()
            # Two roundings of a change (the push's, the position's) and the
            # residual the push carries from the round before.
            assert np.abs(w - target).max() <= 3 * tol * change + 1e-6, r
        st = psod.Client(d.endpoint).status(particles=True)
        assert st["particles_status"][0]["wire"] == wire
        # A 1000-element round moves 2 (or 1 + 4/256) bytes per value, not 4.
        per_round = 2 if wire != "int8" else 1 + 4 / 256
        assert st["bytes_in"] < 4 * n * 2 + 10 * (per_round * n + 200)


@pytest.mark.parametrize("wire", ["topk:0.1", "topk:0.1:int8", "topk:0.1:int2"])
def test_sparse_payloads_deliver_the_whole_change_over_rounds(daemon, wire):
    """Sparse payloads send a tenth of each change: one change of every
    element arrives whole within a few more syncs (error feedback up, and
    the exact position on the daemon's side down), each sync moving a
    fraction of the float32 bytes."""
    d = daemon("--workers", "1", "--strategy", "avg", "--max-rounds", "50")
    n = 1000
    with psod.Client(d.endpoint, "py-sparse", wire=wire) as c:
        c.set_model("objective:sphere:%d" % n)
        rng = np.random.default_rng(5)
        w = rng.standard_normal(n).astype(np.float32)
        wel = c.join(w, psod.layout_hash("objective:sphere:%d" % n))
        assert abs(wel["density"] - 0.1) < 1e-6 and wel["wire"] == (wire.split(":") + ["fp32"])[2]
        joined = psod.Client(d.endpoint).status()["bytes_in"]
        target = w + (0.01 * rng.standard_normal(n)).astype(np.float32)
        w[:] = target
        c.sync(w, 1.0, 4)
        moved = np.abs(w - target) < 1e-3 * 0.01
        assert 0.05 * n <= (~np.isclose(w, target, atol=0.0)).sum() < n  # some, not all
        for r in range(40):
            c.sync(w, 1.0, 4)
        err = np.abs(w - target).max()
        tol = {"topk:0.1": 1e-6, "topk:0.1:int8": 0.01 / 127 * 2, "topk:0.1:int2": 0.01}[wire]
        assert err <= tol, (wire, err, moved.sum())
        st = psod.Client(d.endpoint).status()
        per_push = (st["bytes_in"] - joined) / 41
        assert per_push < 0.25 * 4 * n, per_push  # under a quarter of float32's


@pytest.mark.parametrize("wire,tol", [("frag:4", 1e-6), ("frag:4:int8", 0.02 / 127 * 2)])
def test_fragments_sync_one_part_a_round_and_leave_the_rest_to_train(daemon, wire, tol):
    """Fragment payloads, avg, two workers: round r averages part r mod 4
    of the two vectors and leaves the other parts as each worker has them;
    after four rounds every part is the mean. Each push moves a quarter of
    float32's bytes (less in int8)."""
    import threading
    n = 1000
    d = daemon("--workers", "2", "--strategy", "avg", "--max-rounds", "20")
    layout = "objective:sphere:%d" % n
    rng = np.random.default_rng(11)
    w0 = rng.standard_normal(n).astype(np.float32)
    cs, xs = [], []
    for name in ("fa", "fb"):
        c = psod.Client(d.endpoint, name, wire=wire)
        c.set_model(layout)
        x = w0.copy()
        wel = c.join(x, psod.layout_hash(layout))
        # positions_global off: a worker holds the global model on the part synced only
        assert wel["fragments"] == 4 and wel["density"] == 0 and not wel["positions_global"], wel
        cs.append(c)
        xs.append(x)
    joined = psod.Client(d.endpoint).status()["bytes_in"]
    steps = [(0.01 * rng.standard_normal(n)).astype(np.float32) for _ in cs]
    for x, s in zip(xs, steps):
        x += s
    local = [x.copy() for x in xs]
    mean = w0 + (steps[0] + steps[1]) / 2

    def sync_all():
        ts = [threading.Thread(target=c.sync, args=(x, 1.0, 4)) for c, x in zip(cs, xs)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)

    for r in range(4):
        sync_all()
        done = slice(0, 250 * (r + 1))
        rest = slice(250 * (r + 1), n)
        for x, mine in zip(xs, local):
            assert np.abs(x[done] - mean[done]).max() <= tol, (r, np.abs(x[done] - mean[done]).max())
            assert np.array_equal(x[rest], mine[rest]), r  # not yet synced: the worker's own
    st = psod.Client(d.endpoint).status()
    per_push = (st["bytes_in"] - joined) / 8
    assert per_push < (0.25 if wire == "frag:4" else 0.08) * 4 * n + 400, per_push
    import json
    js = json.loads(subprocess.run([binary("psoctl"), "status", d.endpoint, "--json"], check=True,
                                   capture_output=True, text=True, timeout=30).stdout)
    spec = wire if wire.count(":") == 2 else wire + ":fp32"
    assert [p["wire"] for p in js["particle"]] == [spec, spec], js["particle"]
    for c in cs:
        c.close()
    for bad in ("frag:1", "frag:0", "frag:x", "frag:4097", "frag:4:int3", "frag:-2"):
        with pytest.raises(ValueError):
            psod.Client(d.endpoint, "x", wire=bad)


def test_workers_starting_from_weights_psod_holds_do_not_send_them(daemon):
    """A hello names its weights by checksum first: the first worker of a
    swarm is asked for them, a second one starting from the same weights
    is not, nor is either sent them back in its welcome; a worker with
    other weights sends its own."""
    d = daemon("--workers", "3", "--strategy", "avg", "--max-rounds", "5")
    n = 10000
    w = np.random.default_rng(7).standard_normal(n).astype(np.float32)
    layout = "objective:sphere:%d" % n
    clients = []
    for name in ("a", "b"):
        c = psod.Client(d.endpoint, name)
        c.set_model(layout)
        x = w.copy()
        c.join(x, psod.layout_hash(layout))
        assert np.array_equal(x, w)
        clients.append(c)
    st = psod.Client(d.endpoint).status()
    assert 4 * n <= st["bytes_in"] < 4 * n + 4000, st["bytes_in"]  # a's weights, once
    assert st["bytes_out"] < 4000, st["bytes_out"]  # no welcome carried weights
    c = psod.Client(d.endpoint, "c")
    c.set_model(layout)
    other = w + 1
    c.join(other, psod.layout_hash(layout))
    assert np.array_equal(other, w + 1)
    st = psod.Client(d.endpoint).status()
    assert 8 * n <= st["bytes_in"] < 8 * n + 6000, st["bytes_in"]
    assert not d.wait_for("refused", secs=0.5)  # asking for weights is no error
    for c in clients + [c]:
        c.close()


def test_the_daemon_imposes_its_wire_kind(daemon):
    d = daemon("--workers", "1", "--wire", "int8", "--max-rounds", "5")
    with psod.Client(d.endpoint, "py-asks-fp32") as c:
        c.set_model(LAYOUT)
        w = np.full(4, 2.0, np.float32)
        assert c.join(w, psod.layout_hash(LAYOUT))["wire"] == "int8"
        c.sync(w * 0.5, 1.0, 4)
    assert d.wait_for("psod imposes int8")
    for bad in ("int3", "topk:0", "topk:1.5", "topk:0.1:int3", "topk:x"):
        with pytest.raises(ValueError):
            psod.Client(d.endpoint, "x", wire=bad)


def test_a_wrong_model_is_refused_by_name(daemon):
    d = daemon("--workers", "2")
    a = psod.Client(d.endpoint, "a")
    a.set_model(LAYOUT)
    a.join(np.ones(4, np.float32), psod.layout_hash(LAYOUT))
    b = psod.Client(d.endpoint, "b")
    b.set_model("lenet5", "mnist")
    with pytest.raises(psod.PsodError) as e:
        b.join(np.ones(61706, np.float32), psod.layout_hash("lenet5 layout"))
    assert e.value.code == -4 and e.value.name == "refused by the daemon"
    assert e.value.server_code == 6 and "(ERR_FINGERPRINT)" in e.value.message
    assert "this swarm trains objective:sphere:4" in e.value.message
    assert "the hello is for lenet5 on mnist" in e.value.message
    a.close()
    b.close()


def test_errors_carry_the_library_message_and_code(daemon, tmp_path):
    # Nothing listens there: the first join fails within its timeout, saying so.
    c = psod.Client("tcp://127.0.0.1:9", "lonely", connect_timeout_ms=400)
    with pytest.raises(psod.PsodError) as e:
        c.join(np.ones(4, np.float32), psod.layout_hash(LAYOUT))
    assert e.value.code == -2 and "no answer from psod" in e.value.message
    with pytest.raises(TypeError):
        c.join(np.ones(4, np.float64), 1)  # not float32
    with pytest.raises(psod.PsodError) as e:
        c.sync(np.ones(4, np.float32), 1.0, 1)  # before join
    assert e.value.code in (-1, -7)


def test_curve_keys(daemon, tmp_path):
    keys = tmp_path / "keys"
    (keys / "allow").mkdir(parents=True)
    for name in ("server", "allow/w", "stranger"):
        subprocess.run([binary("psoctl"), "keygen", str(keys / name)], check=True,
                       stdout=subprocess.DEVNULL)
    d = daemon("--workers", "1", "--curve-secret", str(keys / "server.key"), "--allow",
               str(keys / "allow"), "--max-rounds", "3")
    with psod.Client(d.endpoint, "w", curve_secret=str(keys / "allow/w.key"),
                     curve_server=str(keys / "server.pub")) as c:
        w = np.ones(4, np.float32)
        c.join(w, psod.layout_hash(LAYOUT))
        assert c.sync(w, 1.0, 1)["round"] == 1
        assert psod.Client(d.endpoint, curve_secret=str(keys / "allow/w.key"),
                           curve_server=str(keys / "server.pub")).status()["encrypted"]
    bad = psod.Client(d.endpoint, "s", curve_secret=str(keys / "stranger.key"),
                      curve_server=str(keys / "server.pub"), connect_timeout_ms=5000)
    with pytest.raises(psod.PsodError) as e:
        bad.join(np.ones(4, np.float32), psod.layout_hash(LAYOUT))
    assert "refused this peer's key" in e.value.message
    with pytest.raises(psod.PsodError) as e:
        psod.Client(d.endpoint, "x", curve_secret=str(keys / "missing.key"),
                    curve_server=str(keys / "server.pub"))
    assert e.value.code == -1


def test_the_shared_library_exports_only_the_api():
    out = subprocess.run(["nm", "-D", "--defined-only", psod.library_path()], check=True,
                         capture_output=True, text=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert names and all(n.startswith("psoc_") for n in names), names
    soname = subprocess.run(["objdump", "-p", psod.library_path()], capture_output=True,
                            text=True).stdout
    assert "SONAME               libpsoclient.so.1" in soname


PROGRAM = r"""
#include <psoclient.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char err[512];
    struct psoc *c;
    float w[4] = {1, 2, 3, 4};
    struct psoc_welcome wel;
    struct psoc_position pos;
    if (psoc_open(&c, argv[1], "installed", NULL, err, sizeof err) ||
        psoc_join(c, 4, psoc_layout_hash("objective:sphere:4"), w, &wel, err, sizeof err))
        return fprintf(stderr, "%s\n", err), 1;
    for (int r = 0; r < 3; r++)
        if (psoc_sync(c, w, 1.0 / (r + 1), 4, &pos, err, sizeof err))
            return fprintf(stderr, "%s\n", err), 1;
    printf("round %llu\n", (unsigned long long)pos.round);
    psoc_close(&c);
    return 0;
}
"""


def test_a_program_builds_with_pkg_config_against_an_installed_tree(daemon, tmp_path):
    dest = tmp_path / "root"
    build = os.path.relpath(os.environ.get("PSOD_BUILD", os.path.join(ROOT, "build")), ROOT)
    subprocess.run(["make", "-s", "-C", ROOT, f"BUILD={build}", "install", f"DESTDIR={dest}",
                    "PREFIX=/usr/local"], check=True, stdout=subprocess.DEVNULL)
    lib = dest / "usr/local/lib"
    assert (lib / "libpsoclient.so.1").exists() and (lib / "pkgconfig/psoclient.pc").exists()
    assert (dest / "usr/local/bin/psoworker-torch").exists()
    env = dict(os.environ, PKG_CONFIG_PATH=str(lib / "pkgconfig"))
    flags = subprocess.run(["pkg-config", f"--define-variable=prefix={dest}/usr/local",
                            "--cflags", "--libs", "psoclient"], env=env,
                           check=True, capture_output=True, text=True).stdout.split()
    src = tmp_path / "app.c"
    src.write_text(PROGRAM)
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", str(src), "-o",
                    str(tmp_path / "app")] + flags, check=True)
    d = daemon("--workers", "1", "--max-rounds", "3")
    r = subprocess.run([str(tmp_path / "app"), d.endpoint], capture_output=True, text=True,
                       env=dict(os.environ, LD_LIBRARY_PATH=str(lib)), timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "round 3"
    ldd = subprocess.run(["ldd", str(tmp_path / "app")], capture_output=True, text=True,
                         env=dict(os.environ, LD_LIBRARY_PATH=str(lib))).stdout
    assert str(lib / "libpsoclient.so.1") in ldd


def test_a_sharded_swarm_looks_like_one_daemon(daemon, tmp_path):
    """Two daemons each own half of the vector; the binding's client (the C
    library underneath) learns both from the one it is given, splits its
    pushes and assembles the positions. Under avg with one worker every
    position is exactly the pushed weights."""
    eps = ["ipc://%s/shard%d.ipc" % (tmp_path, k) for k in range(2)]
    shards = ",".join(eps)
    ds = [daemon("--shards", shards, "--shard-index", str(k), "--bind", eps[k], "--workers",
                 "1", "--strategy", "avg", "--max-rounds", "5", tag="shard%d" % k)
          for k in range(2)]
    n = 1001
    with psod.Client(eps[1], "py-sharded") as c:
        c.set_model("objective:sphere:%d" % n)
        w = np.linspace(-1, 1, n).astype(np.float32)
        c.join(w, psod.layout_hash("objective:sphere:%d" % n))
        st = psod.Client(eps[0]).status()
        assert [(s["offset"], s["length"]) for s in st["shards"]] == [(0, 500), (500, 501)]
        assert st["param_count"] == n and all(s["connected"] for s in st["shards"])
        for r in range(5):
            w = (w * 0.5 + 0.25).astype(np.float32)
            sent = w.copy()
            pos = c.sync(w, float((w ** 2).sum()), 4)
            assert pos["round"] == r + 1 and not pos["resynced"]
            np.testing.assert_array_equal(w, sent)
    for d in ds:
        assert d.proc.wait(20) == 0, d.text()
    assert "the coordinator ends the run" in ds[1].text()


@pytest.mark.parametrize("shards", [1, 2])
def test_fetch_model_gives_back_the_swarms_model(daemon, tmp_path, shards):
    """The global model from psod (each shard's range, assembled): under
    avg with one worker it is the weights pushed (to rounding); before any round psod
    has none and says so; safe=True under --aggregate median names the
    robust model."""
    n = 1001
    eps = ["ipc://%s/fetch%d.ipc" % (tmp_path, k) for k in range(shards)]
    for k in range(shards):
        extra = ("--shards", ",".join(eps), "--shard-index", str(k)) if shards > 1 else ()
        daemon(*extra, "--bind", eps[k], "--workers", "1", "--strategy", "avg",
               "--aggregate", "median", tag="fetch%d" % k)
    with psod.Client(eps[-1], "py-fetch") as c:
        c.set_model("objective:sphere:%d" % n)
        w = np.linspace(-1, 1, n).astype(np.float32)
        c.join(w, psod.layout_hash("objective:sphere:%d" % n))
        got = np.zeros(n, np.float32)
        with pytest.raises(psod.PsodError) as e:
            c.fetch_model(got)
        assert "no global model yet" in str(e.value)
        w = (w * 0.5 + 0.25).astype(np.float32)
        sent = w.copy()
        c.sync(w, float((w ** 2).sum()), 4)
        for safe in (False, True):
            info = c.fetch_model(got, safe=safe)
            # the median of one change, added back to where it started:
            # the push, up to one rounding
            np.testing.assert_allclose(got, sent, rtol=0, atol=1e-6)
            assert info["kind"] == "global model" and math.isfinite(info["loss"])
