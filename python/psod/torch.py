"""psod.torch: any PyTorch model as a particle of a psod swarm.

    import psod.torch
    swarm = psod.torch.Swarm("tcp://head:5555", model, opt, sync_every=16)
    for x, y in loader:
        opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()
        swarm.step(loss)     # every 16 steps: push weights + mean loss, pull the new position
    swarm.close(load_global=True)   # the swarm's model into `model`, then bye
    torch.save(model.state_dict(), "swarm.pt")

A float32 model's parameters become views of one flat float32 buffer on
their device (named_parameters() order), so a sync moves one block: on the
CPU the C library sends and receives that buffer itself; on CUDA one copy
to pinned host memory, the push and pull, one copy back. bf16 and fp16
models keep a float32 master copy instead (psod._flat). Float buffers
(BatchNorm running statistics) ride after the parameters by default
(`buffers=True`), so they stay with the weights they were measured for;
`buffers=False` keeps them local to each worker.

The fingerprint psod compares is the C engine's layout text for a
Sequential of Conv2d, ReLU, MaxPool2d(2), Flatten and Linear (so such a
model joins C psoworkers' swarms), else the names and shapes of what
travels. Under ssgd the swarm pushes the gradient every step and the
daemon's weights replace the optimizer's step. Under torchrun or srun,
launch_env() and device() read the launcher's environment.
"""
import contextlib
import math
import os
import socket
import sys

import torch
import torch.nn.functional as F

import psod
from psod._flat import Link, layout_text, travelling as _travelling

__all__ = ["Swarm", "layout_text", "flat_view", "save_model", "load_model", "held_out_loss",
           "launch_env", "device"]

# The C worker's behaviour, which Swarm shares unless told otherwise: wait
# two minutes for a round, 20 s for a join, ride through a psod restart of
# up to two minutes.
DEFAULTS = {"timeout_ms": 120000, "connect_timeout_ms": 20000, "reconnect_ms": 120000}


def flat_view(model, buffers=True):
    """Make every travelling tensor (float32, one device) a view of one flat
    float32 buffer, in order; returns that buffer. Values are kept."""
    link = Link(model, buffers)
    if not link.view:
        raise ValueError("flat_view needs float32 tensors; Swarm takes other dtypes")
    return link.flat


def launch_env(environ=None):
    """Where this process stands when a launcher started it (torchrun, Slurm's
    srun, or by hand): {"endpoint", "name", "rank", "world_size",
    "local_rank", "device"}. The endpoint is PSOD_ENDPOINT; the name PSOD_NAME,
    else host-LOCAL_RANK (stable across restarts on that node), else
    host-pid; rank and world size from RANK / WORLD_SIZE (torchrun) or
    SLURM_PROCID / SLURM_NTASKS, for cutting the data; the device
    cuda:LOCAL_RANK when CUDA is there, else cpu."""
    env = os.environ if environ is None else environ

    def num(*keys, default):
        for k in keys:
            if env.get(k, "").strip():
                try:
                    return int(env[k])
                except ValueError:
                    raise ValueError(f"{k}={env[k]!r} is not a number") from None
        return default

    local = num("LOCAL_RANK", "SLURM_LOCALID", default=None)
    rank = num("RANK", "SLURM_PROCID", default=0)
    world = num("WORLD_SIZE", "SLURM_NTASKS", default=1)
    host = socket.gethostname().split(".")[0]
    name = env.get("PSOD_NAME") or (f"{host}-{local}" if local is not None
                                     else f"{host}-{os.getpid()}")
    return {"endpoint": env.get("PSOD_ENDPOINT", ""), "name": name, "rank": rank,
            "world_size": world, "local_rank": local or 0,
            "device": _device(local or 0)}


def _device(local):
    if torch.cuda.is_available():
        return torch.device("cuda", local % torch.cuda.device_count())
    return torch.device("cpu")


def device():
    """This process's device: cuda:LOCAL_RANK when CUDA is there, else cpu."""
    return launch_env()["device"]


def held_out_loss(loader, loss_fn=F.cross_entropy, max_batches=None):
    """A fitness function for Swarm(fitness=...): the model's mean loss on
    `loader`'s (input, target) batches, in eval mode without gradients (the
    mode the model was in is restored), on the model's device. Give every
    worker the same held-out set: the global best is then picked by a loss
    that generalizes, not by the noisy training loss of the interval."""
    def fn(model):
        dev = next(model.parameters()).device
        was = model.training
        model.eval()
        total, count = 0.0, 0
        try:
            with torch.no_grad():
                for i, (x, y) in enumerate(loader):
                    if max_batches is not None and i >= max_batches:
                        break
                    x, y = x.to(dev), y.to(dev)
                    out = model(x)
                    if out.dim() > 2:  # a sequence model: (batch, time, classes)
                        out, y = out.reshape(-1, out.shape[-1]), y.reshape(-1)
                    total += float(loss_fn(out.float(), y, reduction="sum"))
                    count += y.numel()
        finally:
            model.train(was)
        if not count:
            raise ValueError("the held-out loader gave no samples")
        return total / count
    return fn


def _stderr_log(level, msg):
    print(f"psod: {'warning: ' if level >= 2 else ''}{msg}", file=sys.stderr, flush=True)


class Swarm:
    """A PyTorch model as one particle of a psod swarm.

    `endpoint` and `name` default to launch_env() (PSOD_ENDPOINT, and the
    host with torchrun's or Slurm's local rank). `optimizer` (optional) is
    checked at each sync to step this model's parameters, and has its
    momentum reset when `reset_momentum` is set; under ssgd it is not
    stepped (call `step` after backward instead of optimizer.step(), or
    both: the daemon's weights replace what it did). `model_name`,
    `dataset` and `input_shape` name the model to psod (the default name is
    "torch:" and the class name; psod refuses a worker whose dataset differs
    from the swarm's). `fitness(model)`, if given, returns the model's loss
    on a held-out set (held_out_loss() makes one from a loader): it is
    pushed as the particle's fitness instead of the interval's training
    loss, and it checks candidate global bests for psod --verify-best.

    Any float dtype: float32 models' tensors become views of the vector psod
    moves; bf16, fp16 or mixed models keep a float32 master copy. Moving the
    model after the Swarm was made (`.to()`, `.cuda()`) is followed at the
    next sync (see psod._flat). The C worker's timeouts and reconnects are
    the defaults (DEFAULTS); a psod restart is ridden through. Ctrl-C during
    a wait raises KeyboardInterrupt at once, after a bye. With `overlap`,
    a sync does not wait: the push goes and training goes on, and its
    position is taken in at the next sync with the steps taken meanwhile
    kept on top (psod.Client.sync_end; Streaming DiLoCo's outer step), so
    sync() returns the position of the sync before (None at the first);
    taking the global model or closing takes in the one in flight first.
    Other keyword arguments go to psod.Client (timeouts, curve_secret,
    curve_server, log, wire)."""

    def __init__(self, endpoint=None, model=None, optimizer=None, *, name=None, sync_every=16,
                 buffers=True, reset_momentum=False, model_name=None, dataset="",
                 input_shape=None, layout=None, verify=None, fitness=None, overlap=False,
                 **client_args):
        if model is None:
            raise TypeError("Swarm needs a model")
        env = launch_env() if endpoint is None or name is None else None
        endpoint = endpoint or env["endpoint"]
        if not endpoint:
            raise psod.PsodError(-1, "no psod endpoint: give one, or set PSOD_ENDPOINT "
                                     "(e.g. tcp://head:5555)")
        self.model, self.optimizer = model, optimizer
        self.sync_every, self.reset_momentum = int(sync_every), reset_momentum
        if self.sync_every < 1:
            raise ValueError("sync_every must be at least 1")
        self.link = Link(model, buffers)
        self.n = self.link.n
        self.grad_host = None
        self.fitness_fn = fitness
        self.layout = layout or layout_text(model, buffers)
        self._log = client_args.get("log") or _stderr_log
        client_args["log"] = self._log
        for k, v in DEFAULTS.items():
            client_args.setdefault(k, v)
        client_args.setdefault("interruptible", True)
        self.client = psod.Client(endpoint, name or env["name"], **client_args)
        self.client.set_model(model_name or "torch:" + type(model).__name__, dataset,
                              input_shape)
        check = verify or fitness
        if check is not None:
            self.client.set_verifier(lambda weights: self._verify(check, weights))
        self.link.to_host()
        try:
            self.welcome = self.client.join(self.link.host_ptr(), psod.layout_hash(self.layout))
        except KeyboardInterrupt:
            self.close()
            raise
        self.link.from_host()
        self.steps, self.round = 0, self.welcome["round"]
        self.push_gradients = self.welcome["push_gradients"]
        self.overlap = False
        if overlap and self.push_gradients:
            self.close()
            raise psod.PsodError(-1, "overlap: the daemon's strategy takes gradients, which are "
                                     "the steps themselves; a sync cannot overlap them")
        self.overlap = bool(overlap)
        self._loss_sum, self._loss_n, self._samples, self._bad = 0.0, 0, 0, 0
        self._last_mean = math.inf
        self.last = None  # the last sync's position dict
        self.evaluator = False
        self.position_accuracy, self.position_round = math.nan, 0

    @property
    def flat(self):
        """The float32 vector psod moves, on the model's device (the model's
        own storage for a float32 model; a master copy otherwise)."""
        return self.link.flat

    def snapshot(self, out=None):
        """A float32 copy of the model's travelling values (into `out` when
        given)."""
        return self.link.snapshot(out)

    def restore(self, values):
        """Put a snapshot() back into the model."""
        self.link.restore(values)

    def _verify(self, fn, weights):
        cand = torch.frombuffer(bytearray(weights), dtype=torch.float32)
        if cand.numel() != self.n:
            raise ValueError(f"candidate of {cand.numel()} values, the model has {self.n}")
        own = self.link.snapshot()
        self.link.restore(cand.to(self.link.device))
        try:
            return float(fn(self.model))
        finally:
            self.link.restore(own)

    def _check(self):
        """Before a push: the model still the one linked, the optimizer still
        stepping its parameters."""
        if self.optimizer is not None:
            mine = {id(p) for p in self.model.parameters()}
            stale = [p for g in self.optimizer.param_groups for p in g["params"]
                     if id(p) not in mine]
            if stale:
                raise psod.PsodError(-1, f"the optimizer steps {len(stale)} tensors that are not "
                                         "this model's parameters (built before a layer was "
                                         "replaced or the model re-created?): the model would "
                                         "not train; build the optimizer on model.parameters() "
                                         "and set swarm.optimizer to it")
        moved = self.link.check()
        if moved:
            self._log(2, moved)

    def _grads(self):
        if self.grad_host is None or self.grad_host.numel() != self.n:
            self.grad_host = torch.zeros(self.n, dtype=torch.float32, pin_memory=self.link.cuda)
        params = [p for _, p in self.model.named_parameters()]
        flat_grads = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p))
                                .reshape(-1).float() for p in params])
        self.grad_host[:flat_grads.numel()].copy_(flat_grads)
        return self.grad_host

    def due(self):
        """Whether the next step() synchronizes."""
        return self.push_gradients or (self.steps + 1) % self.sync_every == 0

    def step(self, loss, samples=None, accuracy=math.nan, force=False, fitness=None):
        """Count one local step (after optimizer.step()) with its loss (a
        number or a 0-dim tensor); every sync_every steps (every step under
        ssgd, or now with `force`, e.g. after the last step) synchronize.
        Returns the position dict on a sync step, else None. `accuracy`:
        test accuracy of the weights now, if measured (a fraction, 0..1);
        `fitness`: the loss to push instead of the interval's mean training
        loss or the Swarm's fitness function, on a sync step."""
        lv = float(loss.detach()) if torch.is_tensor(loss) else float(loss)
        self.steps += 1
        if math.isfinite(lv):
            self._loss_sum += lv
            self._loss_n += 1
        else:
            self._bad += 1
        self._samples += int(samples) if samples is not None else 1
        if not force and not self.push_gradients and self.steps % self.sync_every:
            return None
        return self.sync(accuracy=accuracy, fitness=fitness)

    def sync(self, accuracy=math.nan, fitness=None):
        """Synchronize now: push the weights (or gradient) and the mean loss
        since the last sync (or the fitness), take the new position."""
        if self.client is None:
            raise psod.PsodError(-1, "this Swarm is closed")
        self._check()
        mean = self._loss_sum / self._loss_n if self._loss_n else math.inf
        if not self._loss_n and not self._bad:
            mean = self._last_mean  # no step since the last sync: the same fitness
        if not math.isfinite(mean):
            raise psod.PsodError(-1, "no finite loss since the last sync: the model diverged")
        if fitness is None and self.fitness_fn is not None and not self.push_gradients:
            fitness = self.fitness_fn(self.model)
        if fitness is not None:
            mean = float(fitness)
        grad = self.link.ptr(self._grads()) if self.push_gradients else None
        self.link.to_host()
        try:
            if self.overlap:
                pos = self._overlapped(mean, accuracy)
            else:
                pos = self.client.sync(self.link.host_ptr(), mean, self._samples, gradient=grad,
                                       accuracy=_fraction(accuracy),
                                       position_accuracy=self.position_accuracy,
                                       position_round=self.position_round)
        except KeyboardInterrupt:
            self.close()
            raise
        self.link.from_host()
        self._last_mean = mean
        self._loss_sum, self._loss_n, self._samples, self._bad = 0.0, 0, 0, 0
        self.position_accuracy = math.nan
        if pos is None:  # overlapped, the first: nothing has arrived yet
            return None
        self.round, self.evaluator, self.last = pos["round"], pos["evaluator"], pos
        if self.reset_momentum and self.optimizer is not None:
            self.optimizer.state.clear()
        return pos

    def _overlapped(self, mean, accuracy):
        """The host vector holds the weights now: take in the sync in flight
        (if any) on top of them, then push them and return at once."""
        pos = None
        if self.client.sync_pending:
            pos = self.client.sync_end(self.link.host_ptr())
        self.client.sync_begin(self.link.host_ptr(), mean, self._samples,
                               accuracy=_fraction(accuracy),
                               position_accuracy=self.position_accuracy,
                               position_round=self.position_round)
        return pos

    def settle(self):
        """Take in a sync still in flight (overlap), into the model."""
        if self.client is not None and getattr(self, "overlap", False) and self.client.sync_pending:
            self.link.to_host()
            pos = self.client.sync_end(self.link.host_ptr())
            self.link.from_host()
            self.round, self.evaluator, self.last = pos["round"], pos["evaluator"], pos

    def fetch_model(self, safe=False):
        """Load the swarm's model into this model (every shard's range on a
        sharded swarm): the global model (under pso the global best), or
        with safe=True the one a diverged worker should start again from
        (the verified global best, else the robust attractor, else the
        global model). Returns {"loss", "kind"}; PsodError while psod has
        none."""
        if self.client is None:
            raise psod.PsodError(-1, "this Swarm is closed")
        self.link.check()
        try:
            self.settle()
            info = self.client.fetch_model(self.link.host_ptr(), safe=safe)
        except KeyboardInterrupt:
            self.close()
            raise
        self.link.from_host()
        return info

    def global_model(self):
        """The swarm's model, put into the user's module (fetch_model())."""
        return self.fetch_model(safe=False)

    @contextlib.contextmanager
    def global_model_borrowed(self):
        """The swarm's global model in the module for the `with` block (to
        evaluate it), this worker's own weights put back after. Yields the
        fetch's {"loss", "kind"}, or None while psod has no model yet."""
        self.settle()  # the sync in flight first: it belongs to the own weights
        own = self.link.snapshot()
        try:
            try:
                info = self.fetch_model()
            except psod.PsodError:
                info = None
            yield info
        finally:
            self.link.restore(own)

    def report_position_accuracy(self, accuracy):
        """The test accuracy of the position last received (strategies whose
        positions are the global model), sent with the next push."""
        self.position_accuracy, self.position_round = _fraction(accuracy), self.round

    def close(self, accuracy=math.nan, load_global=False):
        """Leave the swarm: bye, with the final test accuracy if given (a
        fraction, or a percentage above 1). With load_global, first put the
        swarm's model into the module (global_model()), so what the user
        saves is the swarm's result; returns its {"loss", "kind"} then."""
        info = None
        if self.client is not None:
            try:
                try:
                    self.settle()
                except psod.PsodError as e:
                    self._log(2, f"the sync in flight at close: {e}")
                if load_global:
                    info = self.global_model()
            finally:
                if self.client is not None:
                    self.client.set_final(_fraction(accuracy), self.round)
                    self.client.close()
                    self.client = None
        return info

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _fraction(accuracy):
    """An accuracy as psod takes it (0..1): a percentage (above 1) divided by
    100; anything not a number in 0..100 is NaN (unknown)."""
    a = float(accuracy)
    if not math.isfinite(a) or a < 0 or a > 100:
        return math.nan
    return a / 100 if a > 1 else a


from psod.modelfile import load_model, save_model  # noqa: E402
