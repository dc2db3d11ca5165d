"""psod.torch: any PyTorch model as a particle of a psod swarm.

    import psod.torch
    swarm = psod.torch.Swarm("tcp://head:5555", model, opt, name="node1-gpu0", sync_every=16)
    for x, y in loader:
        opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()
        swarm.step(loss)     # every 16 steps: push weights + mean loss, pull the new position
    swarm.close()            # bye, with the final accuracy if given

The parameters become views of one flat float32 buffer on their device
(named_parameters() order), so a sync moves one block: on the CPU the C
library sends and receives that buffer itself; on CUDA one copy to pinned
host memory, the push and pull, one copy back. Float buffers (BatchNorm
running statistics) ride after the parameters by default (`buffers=True`),
so they stay with the weights they were measured for; `buffers=False`
keeps them local to each worker.

The fingerprint psod compares is the C engine's layout text for a
Sequential of Conv2d, ReLU, MaxPool2d(2), Flatten and Linear (so such a
model joins C psoworkers' swarms), else the names, shapes and dtypes of
what travels. Under ssgd the swarm pushes the gradient every step and the
daemon's weights replace the optimizer's step.
"""
import math

import torch
import torch.nn as nn

import psod

__all__ = ["Swarm", "layout_text", "flat_view", "save_model", "load_model"]


def _c_layout(model):
    """The C engine's layout text of a Sequential it could build, else None."""
    if not isinstance(model, nn.Sequential):
        return None
    parts = []
    for m in model:
        if isinstance(m, nn.Conv2d):
            k, p = m.kernel_size, m.padding
            if (k[0] != k[1] or isinstance(p, str) or p[0] != p[1] or m.stride != (1, 1)
                    or m.groups != 1 or m.bias is None or m.dilation != (1, 1)):
                return None
            parts.append(f"conv{k[0]}x{k[1]}:{m.in_channels}->{m.out_channels}:pad{p[0]}")
        elif isinstance(m, nn.Linear) and m.bias is not None:
            parts.append(f"dense:{m.in_features}->{m.out_features}")
        elif isinstance(m, nn.ReLU):
            parts.append("relu")
        elif isinstance(m, nn.MaxPool2d) and m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)):
            parts.append("maxpool2")
        elif isinstance(m, nn.Flatten):
            continue
        else:
            return None
    return ";".join(parts)


def _travelling(model, buffers):
    """(name, tensor) of what goes into the flat vector, in order."""
    out = [(n, p) for n, p in model.named_parameters()]
    if buffers:
        out += [("buffer:" + n, b) for n, b in model.named_buffers() if b.is_floating_point()]
    return out


def layout_text(model, buffers=True):
    """The fingerprint text of `model` as psod sees it (see the module doc)."""
    c = _c_layout(model)
    if c is not None:
        return c
    return "torch:" + ";".join(f"{n}:{str(t.dtype).replace('torch.', '')}:"
                               f"{'x'.join(str(s) for s in t.shape)}"
                               for n, t in _travelling(model, buffers))


def flat_view(model, buffers=True):
    """Make every travelling tensor a view of one flat float32 buffer on the
    model's device, in order; returns that buffer. Values are kept."""
    items = _travelling(model, buffers)
    if not items:
        raise ValueError("the model has no parameters")
    dev = items[0][1].device
    for n, t in items:
        if t.dtype != torch.float32 or t.device != dev:
            raise ValueError(f"{n}: every parameter must be float32 on one device "
                             f"(found {t.dtype} on {t.device})")
    total = sum(t.numel() for _, t in items)
    flat = torch.empty(total, dtype=torch.float32, device=dev)
    off = 0
    with torch.no_grad():
        for _, t in items:
            k = t.numel()
            flat[off:off + k].copy_(t.reshape(-1))
            t.data = flat[off:off + k].view_as(t)
            off += k
    return flat


class Swarm:
    """A PyTorch model as one particle. `optimizer` (optional) has its
    momentum reset when `reset_momentum` is set; under ssgd it is not
    stepped (call `step` after backward instead of optimizer.step(), or
    both: the daemon's weights replace what it did). `model_name`,
    `dataset` and `input_shape` name the model to psod (the default name is
    the class name). `verify(model)`, if given, returns the model's loss on
    the shared fitness set: the worker then checks candidate global bests
    for psod --verify-best (the candidate's weights are put in the model for
    the call, its own put back after). Other keyword arguments go to
    psod.Client (timeouts, curve_secret, curve_server, log, wire)."""

    def __init__(self, endpoint, model, optimizer=None, *, name=None, sync_every=16,
                 buffers=True, reset_momentum=False, model_name=None, dataset="",
                 input_shape=None, layout=None, verify=None, **client_args):
        self.model, self.optimizer = model, optimizer
        self.sync_every, self.reset_momentum = int(sync_every), reset_momentum
        self.flat = flat_view(model, buffers)
        self.n = self.flat.numel()
        self.cuda = self.flat.is_cuda
        # The buffer the C library reads and writes: the parameters
        # themselves on the CPU, pinned host memory beside them on CUDA.
        self.host = (torch.empty(self.n, dtype=torch.float32, pin_memory=True)
                     if self.cuda else self.flat)
        self.grad_host = None
        self.layout = layout or layout_text(model, buffers)
        self.client = psod.Client(endpoint, name, **client_args)
        self.client.set_model(model_name or type(model).__name__.lower(), dataset, input_shape)
        if verify is not None:
            self.client.set_verifier(lambda weights: self._verify(verify, weights))
        self._to_host()
        self.welcome = self.client.join(self._ptr(self.host), psod.layout_hash(self.layout))
        self._from_host()
        self.steps, self.round = 0, self.welcome["round"]
        self.push_gradients = self.welcome["push_gradients"]
        self._loss_sum, self._loss_n, self._samples = 0.0, 0, 0
        self.last = None  # the last sync's position dict
        self.evaluator = False
        self.position_accuracy, self.position_round = math.nan, 0

    def _verify(self, fn, weights):
        cand = torch.frombuffer(bytearray(weights), dtype=torch.float32)
        if cand.numel() != self.n:
            raise ValueError(f"candidate of {cand.numel()} values, the model has {self.n}")
        with torch.no_grad():
            own = self.flat.clone()
            self.flat.copy_(cand.to(self.flat.device))
            try:
                return float(fn(self.model))
            finally:
                self.flat.copy_(own)

    def _ptr(self, t):
        return (t.data_ptr(), t.numel())

    def _to_host(self):
        if self.cuda:
            self.host.copy_(self.flat)  # waits for the copy: the C side reads it next

    def _from_host(self):
        if self.cuda:
            self.flat.copy_(self.host, non_blocking=False)

    def _grads(self):
        if self.grad_host is None:
            self.grad_host = torch.zeros(self.n, dtype=torch.float32,
                                         pin_memory=self.cuda)
        params = [p for _, p in self.model.named_parameters()]
        flat_grads = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                                for p in params])
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
        test accuracy of the weights now, if measured; `fitness`: the loss
        to push instead of the interval's mean training loss (a held-out
        loss), on a sync step."""
        lv = float(loss.detach()) if torch.is_tensor(loss) else float(loss)
        self.steps += 1
        if math.isfinite(lv):
            self._loss_sum += lv
            self._loss_n += 1
        self._samples += int(samples) if samples is not None else 1
        if not force and not self.push_gradients and self.steps % self.sync_every:
            return None
        return self.sync(accuracy=accuracy, fitness=fitness)

    def sync(self, accuracy=math.nan, fitness=None):
        """Synchronize now: push the weights (or gradient) and the mean loss
        since the last sync (or `fitness`), take the new position."""
        mean = self._loss_sum / self._loss_n if self._loss_n else math.inf
        if fitness is not None and math.isfinite(mean):
            mean = float(fitness)
        if not math.isfinite(mean):
            raise psod.PsodError(-1, "no finite loss since the last sync: the model diverged")
        grad = self._ptr(self._grads()) if self.push_gradients else None
        self._to_host()
        pos = self.client.sync(self._ptr(self.host), mean, self._samples, gradient=grad,
                               accuracy=accuracy, position_accuracy=self.position_accuracy,
                               position_round=self.position_round)
        self._from_host()
        self._loss_sum, self._loss_n, self._samples = 0.0, 0, 0
        self.position_accuracy = math.nan
        self.round, self.evaluator, self.last = pos["round"], pos["evaluator"], pos
        if self.reset_momentum and self.optimizer is not None:
            self.optimizer.state.clear()
        return pos

    def fetch_model(self, safe=False):
        """Load the swarm's model into this model's parameters (every
        shard's range on a sharded swarm): the global model, or with
        safe=True the one a diverged worker should start again from (the
        verified global best, else the robust attractor, else the global
        model). Returns {"loss", "kind"}; PsodError while psod has none."""
        info = self.client.fetch_model(self._ptr(self.host), safe=safe)
        self._from_host()
        return info

    def report_position_accuracy(self, accuracy):
        """The test accuracy of the position last received (strategies whose
        positions are the global model), sent with the next push."""
        self.position_accuracy, self.position_round = float(accuracy), self.round

    def close(self, accuracy=math.nan):
        """Leave the swarm: bye, with the final test accuracy if given."""
        if self.client is not None:
            self.client.set_final(accuracy, self.round)
            self.client.close()
            self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


from psod.modelfile import load_model, save_model  # noqa: E402
