"""psod: Python binding over psod's C client library (libpsoclient.so).

    import psod
    with psod.Client("tcp://head:5555", "node1-gpu0") as c:
        c.set_model("mymodel", "mydata")
        welcome = c.join(weights, psod.layout_hash("my layout text"))
        while training:
            ...
            pos = c.sync(weights, loss, samples)   # weights now hold the new position

`weights` (and a gradient) is a writable, C-contiguous float32 buffer: a
NumPy array, or anything with the buffer protocol, or an (address, count)
pair (a CPU torch tensor's data_ptr()). The library writes positions into
it in place. Every failure of the C library is a PsodError carrying its
message, its code and, when psod refused a request, the daemon's error code.
psod.torch builds PyTorch workers on this.
"""
import ctypes
import math
import sys
import threading

from . import _lib

__all__ = ["Client", "PsodError", "layout_hash", "library_path", "ADMIN_CHECKPOINT",
           "ADMIN_EVICT", "ADMIN_STOP"]

ADMIN_CHECKPOINT, ADMIN_EVICT, ADMIN_STOP = 1, 2, 3
_L = None


def _libc():
    global _L
    if _L is None:
        _L = _lib.load()
    return _L


def library_path():
    """The path of the libpsoclient.so this binding loaded."""
    return _libc()._psod_path


def layout_hash(text):
    """FNV-1a 64 of a layout description: the model fingerprint psod compares."""
    return _libc().psoc_layout_hash(text.encode())


class PsodError(Exception):
    """A call of the C library failed. `code` is its PSOC_E* code (negative),
    `name` that code's name, `server_code` psod's error code when psod
    refused the request (else 0), `message` the library's reason."""

    def __init__(self, code, message, server_code=0):
        self.code, self.message, self.server_code = code, message, server_code
        self.name = (_libc().psoc_strerror(code) or b"?").decode()
        super().__init__(f"{message} [{self.name}]")


_lib.error = PsodError


def _position(pos):
    return {"round": pos.round, "global_best_loss": pos.global_best_loss,
            "personal_best_loss": pos.personal_best_loss,
            "global_best_particle": pos.global_best_particle,
            "evaluator": bool(pos.evaluator), "resynced": pos.resynced,
            "lr": pos.lr, "momentum": pos.momentum}


def _buffer(obj, n=None):
    """(address, float count) of a writable float32 buffer, or of an
    (address, count) pair as given."""
    if isinstance(obj, tuple):
        return int(obj[0]), int(obj[1])
    mv = memoryview(obj)
    if mv.readonly or not mv.c_contiguous or mv.format not in ("f", "<f", "=f"):
        raise TypeError("weights must be a writable, C-contiguous float32 buffer")
    count = mv.nbytes // 4
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mv)) if count else 0
    return addr, count


def _text(b):
    return b.decode(errors="replace")


class Client:
    """One connection to psod (psoc_open). `name` is the worker's stable
    name in the swarm; None for a status or admin client. Timeouts are in
    milliseconds; None keeps the library's defaults. `curve_secret` and
    `curve_server` name key files (psoctl keygen) for a CURVE daemon. `log`
    is called with (level, message) for what the library says about its
    connection (1 info, 2 warning). `wire` ("fp32", "fp16", "bf16", "int8",
    "int4", "int2", or sparse: "topk:0.01:int2", the largest 1 % of each change)
    is the payload encoding asked for at the join (psod may impose another;
    join() says which was agreed).

    With `interruptible`, a blocking call made from the main thread runs in
    a helper thread while the main thread waits, so Python's signal
    handlers run during it: a handler that calls stop() ends the wait with
    PSOC_EINTR, as a signal does in the C worker, and one that raises (Ctrl-C's
    KeyboardInterrupt) ends it at once with that exception. It costs a
    thread start per call (tens of microseconds)."""

    def __init__(self, endpoint, name=None, *, timeout_ms=None, connect_timeout_ms=None,
                 reconnect_ms=None, heartbeat_thread=True, curve_secret=None,
                 curve_server=None, log=None, interruptible=False, wire="fp32",
                 overlap_mix=None):
        self._interruptible = interruptible
        lib = _libc()
        self._lib = lib
        self._c = ctypes.c_void_p()
        self._stop = ctypes.c_int(0)
        opts = _lib.Options()
        lib.psoc_options_default(ctypes.byref(opts))
        for field, value in (("timeout_ms", timeout_ms), ("connect_timeout_ms", connect_timeout_ms),
                             ("reconnect_ms", reconnect_ms)):
            if value is not None:
                setattr(opts, field, int(value))
        opts.heartbeat_thread = 1 if heartbeat_thread else 0
        if overlap_mix is not None:  # sync_end: Streaming DiLoCo's merge (psoclient.h)
            opts.overlap_mix = float(overlap_mix)
        if lib.psoc_wire_spec(ctypes.byref(opts), wire.encode()) != 0:
            raise ValueError("wire must be fp32, fp16, bf16, int8, int4, int2, "
                             "topk:DENSITY[:KIND] or frag:F[:KIND], not %r" % (wire,))
        opts.stop = ctypes.pointer(self._stop)
        err = ctypes.create_string_buffer(_lib.ERR_LEN)
        if curve_secret or curve_server:
            rc = lib.psoc_options_curve(ctypes.byref(opts), (curve_secret or "").encode(),
                                        (curve_server or "").encode(), err, len(err))
            if rc:
                raise PsodError(rc, _text(err.value))
        # Kept referenced: the library calls it from its heartbeat thread.
        self._log = _lib.LOG_FN(lambda ctx, level, msg: log(level, _text(msg))) if log else None
        if self._log:
            opts.log = self._log
        rc = lib.psoc_open(ctypes.byref(self._c), endpoint.encode(),
                           name.encode() if name else None, ctypes.byref(opts), err, len(err))
        if rc:
            raise PsodError(rc, _text(err.value))
        self.name, self.endpoint, self.n = name, endpoint, None

    def _call(self, fn, *args):
        """fn(*args), in a helper thread when interruptible (see above)."""
        if not self._interruptible or threading.current_thread() is not threading.main_thread():
            return fn(*args)
        box, done = [], threading.Event()

        def call():
            try:
                box.append(fn(*args))
            finally:
                done.set()

        threading.Thread(target=call, daemon=True).start()
        try:
            while not done.wait(0.05):  # signal handlers run between the waits
                pass
        except BaseException:
            # A KeyboardInterrupt (or a handler's exception): end the wait in
            # the library at once, and let it return before this raises, so
            # the connection is whole for the bye. (An Event, not
            # Thread.join: a join that a signal interrupted can later return
            # while the thread still runs.)
            self._stop.value = 1
            while not done.is_set():
                try:
                    done.wait(0.05)
                except KeyboardInterrupt:
                    pass  # a second Ctrl-C: the library is already stopping
            self._stop.value = 0
            raise
        return box[0]

    def _check(self, rc, err):
        if rc:
            server = self._lib.psoc_last_server_error(self._c) if self._c else 0
            raise PsodError(rc, _text(err.value), server)

    def stop(self):
        """Make a wait in progress (or the next) return with PsodError
        PSOC_EINTR: for a signal handler or another thread."""
        self._stop.value = 1

    def set_model(self, model, dataset="", shape=None):
        """Name the model (and dataset, input shape C, H, W) before join."""
        arr = (ctypes.c_uint32 * 3)(*shape) if shape else None
        self._lib.psoc_set_model(self._c, model.encode(), dataset.encode(), arr)

    def set_verifier(self, fn):
        """Offer this worker as a verifier of candidate global bests (psod
        --verify-best); call before join. `fn(weights)` gets a candidate's
        weights (a read-only float32 memoryview, valid during the call) and
        returns their loss on the worker's shared fitness set, the set its
        own pushed losses come from; the library calls it inside sync() and
        sends the loss with the next push. An exception or a non-finite
        result sends no verdict."""
        def call(_ctx, x, n, out):
            try:
                mv = memoryview((ctypes.c_float * n).from_address(ctypes.addressof(x.contents)))
                loss = float(fn(mv.toreadonly().cast("B").cast("f")))
            except Exception as e:  # noqa: BLE001 - the C caller cannot take one
                print(f"psod: verifier failed: {e!r}", file=sys.stderr)
                return 1
            if not math.isfinite(loss):
                return 1
            out[0] = loss
            return 0
        self._verifier = _lib.VERIFY_FN(call)  # referenced while the client lives
        self._lib.psoc_set_verifier(self._c, self._verifier, None)

    def join(self, weights, layout_hash):
        """Join with these initial weights; on return they hold the start
        position psod gave. Returns the welcome as a dict."""
        addr, n = _buffer(weights)
        w = _lib.Welcome()
        err = ctypes.create_string_buffer(_lib.ERR_LEN)
        self._check(self._call(self._lib.psoc_join, self._c, n, layout_hash, addr,
                               ctypes.byref(w), err, len(err)), err)
        self.n = n
        return {"particle_id": w.particle_id, "round": w.round,
                "global_best_loss": w.global_best_loss, "rejoined": bool(w.rejoined),
                "strategy": _text(w.strategy), "positions_global": bool(w.positions_global),
                "push_gradients": bool(w.push_gradients), "heartbeat_ms": w.heartbeat_ms,
                "pushes": w.pushes, "model": _text(w.model), "dataset": _text(w.dataset),
                "wire": _text(self._lib.psoc_wire_name(w.wire)),
                "density": w.density, "fragments": w.fragments,
                "lr": w.lr, "momentum": w.momentum}

    def sync(self, weights, loss, samples, gradient=None, accuracy=math.nan,
             position_accuracy=math.nan, position_round=0):
        """Push (weights, or the gradient under ssgd) with the loss; wait for
        the round; the new position lands in `weights`. Returns a dict."""
        addr, n = _buffer(weights)
        gaddr = _buffer(gradient)[0] if gradient is not None else None
        if n != self.n:
            raise PsodError(-1, f"{n} weights, joined with {self.n}")
        rep = _lib.Report(float(loss), int(samples), float(accuracy), float(position_accuracy),
                          int(position_round))
        pos = _lib.Position()
        err = ctypes.create_string_buffer(_lib.ERR_LEN)
        self._check(self._call(self._lib.psoc_sync_ex, self._c, addr, gaddr, ctypes.byref(rep),
                               ctypes.byref(pos), err, len(err)), err)
        return _position(pos)

    def sync_begin(self, weights, loss, samples, accuracy=math.nan, position_accuracy=math.nan,
                   position_round=0):
        """Start a sync that overlaps training: push a copy of `weights` with
        the loss and return at once (sync_end takes the position in). Not
        under gradient strategies; one in flight at a time."""
        addr, n = _buffer(weights)
        if n != self.n:
            raise PsodError(-1, f"{n} weights, joined with {self.n}")
        rep = _lib.Report(float(loss), int(samples), float(accuracy), float(position_accuracy),
                          int(position_round))
        err = ctypes.create_string_buffer(_lib.ERR_LEN)
        self._check(self._lib.psoc_sync_begin(self._c, addr, ctypes.byref(rep), err, len(err)),
                    err)

    def sync_end(self, weights):
        """Wait for the position P of the sync in flight and apply it with
        the steps taken since: weights = P + (weights - weights as pushed),
        in place. Returns the position dict."""
        addr, n = _buffer(weights)
        if n != self.n:
            raise PsodError(-1, f"{n} weights, joined with {self.n}")
        pos = _lib.Position()
        err = ctypes.create_string_buffer(_lib.ERR_LEN)
        self._check(self._call(self._lib.psoc_sync_end, self._c, addr, ctypes.byref(pos), err,
                               len(err)), err)
        return _position(pos)

    @property
    def sync_pending(self):
        """Whether a sync_begin awaits its sync_end."""
        return bool(self._lib.psoc_sync_pending(self._c)) if self._c else False

    def set_final(self, accuracy, round_):
        """The final weights' test accuracy, sent with the bye."""
        self._lib.psoc_set_final(self._c, float(accuracy), int(round_))

    def status(self, particles=False):
        """The daemon's state (psoctl status) as a dict."""
        st = _lib.Status()
        err = ctypes.create_string_buffer(_lib.ERR_LEN)
        self._check(self._lib.psoc_status(self._c, 1 if particles else 0, ctypes.byref(st), err,
                                          len(err)), err)
        try:
            out = {}
            for field, _ in _lib.Status._fields_:
                if field in ("particle", "n_particles", "shard", "n_shards"):
                    continue
                v = getattr(st, field)
                out[field] = _text(v) if isinstance(v, bytes) else list(v) if field == "errors_by_code" else v
            out["encrypted"] = bool(out["encrypted"])
            out["particles_status"] = [
                {"id": p.id, "name": _text(p.name), "last_loss": p.last_loss,
                 "best_loss": p.best_loss, "age_seconds": p.age_seconds, "pushes": p.pushes,
                 "last_round": p.last_round, "pushed_this_round": bool(p.pushed_this_round),
                 "active": bool(p.active), "evicted": bool(p.evicted),
                 "strikes": p.strikes, "excluded": bool(p.excluded),
                 "wire": _text(self._lib.psoc_wire_name(p.wire))}
                for p in (st.particle[i] for i in range(st.n_particles))]
            out["shards"] = [
                {"index": q.index, "endpoint": _text(q.endpoint), "offset": q.offset,
                 "length": q.length, "round": q.round, "connected": bool(q.connected)}
                for q in (st.shard[i] for i in range(st.n_shards))]
        finally:
            self._lib.psoc_status_free(ctypes.byref(st))
        return out

    def fetch_model(self, weights, safe=False):
        """The swarm's model into `weights` (as joined; every shard's range
        on a sharded swarm): the global model, or with safe=True the one a
        diverged worker should start again from (the verified global best,
        else the robust attractor, else the global model). Returns
        {"loss": the global loss, "kind": what psod sent}; PsodError
        (PSOC_EREFUSED) while psod has none yet."""
        addr, n = _buffer(weights)
        if n != self.n:
            raise PsodError(-1, f"{n} weights, joined with {self.n}")
        loss = ctypes.c_double(math.nan)
        kind = ctypes.create_string_buffer(64)
        err = ctypes.create_string_buffer(_lib.ERR_LEN)
        self._check(self._call(self._lib.psoc_fetch_model, self._c, 1 if safe else 0, addr,
                               ctypes.byref(loss), kind, len(kind), err, len(err)), err)
        return {"loss": loss.value, "kind": _text(kind.value)}

    def admin(self, action, worker=None, token_file=None):
        """An operator request (ADMIN_CHECKPOINT, ADMIN_EVICT, ADMIN_STOP);
        needs an admin key, or, for a daemon without CURVE, the token it
        wrote on its host (`token_file`, default where psod at this endpoint
        writes it; used when readable). Returns the daemon's reply text."""
        err = ctypes.create_string_buffer(_lib.ERR_LEN)
        rc = self._lib.psoc_set_admin_token(self._c, token_file.encode() if token_file else None,
                                            err, len(err))
        if rc and token_file:
            raise PsodError(rc, _text(err.value))
        reply = ctypes.create_string_buffer(_lib.ERR_LEN)
        err = ctypes.create_string_buffer(_lib.ERR_LEN)
        self._check(self._lib.psoc_admin(self._c, action, worker.encode() if worker else None,
                                         reply, len(reply), err, len(err)), err)
        return _text(reply.value)

    def close(self):
        """Say bye (when joined) and free the connection."""
        if self._c:
            self._lib.psoc_close(ctypes.byref(self._c))
            self._c = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
