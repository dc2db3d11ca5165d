"""The link between a PyTorch model and the one float32 vector psod moves.

A Link holds what travels (the parameters, then the float buffers when
`buffers` is set, in named_parameters() / named_buffers() order) and a flat
float32 vector on the model's device. Two modes:

* view: every travelling tensor is float32 on one device, and becomes a
  view of the flat vector: a sync moves the vector itself, no copy.
* copy: some tensor is not float32 (a bf16 or fp16 model, float64): the
  flat vector is a float32 master copy, gathered from the tensors before a
  push and scattered back (rounded to each tensor's dtype) after a pull.

The link breaks when the user moves the model after the Swarm was made
(`.to()`, `.cuda()`, `.half()`), replaces a parameter or buffer, or swaps
the tensors under it: a view is then no longer the model's tensor, and a
push would send the untouched start weights. `check()` sees that at each
sync (data pointers, devices, dtypes), and re-attaches when the model is
the same shape (taking the values the model holds now, on its new device),
or raises a PsodError that says what changed when it is not.
"""
import torch
import torch.nn as nn

import psod


def travelling(model, buffers):
    """(name, tensor) of what goes into the flat vector, in order."""
    out = [(n, p) for n, p in model.named_parameters()]
    if buffers:
        out += [("buffer:" + n, b) for n, b in model.named_buffers() if b.is_floating_point()]
    return out


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


def layout_text(model, buffers=True):
    """The fingerprint text of `model` as psod sees it: the C engine's layout
    for a Sequential it could build, else the names and shapes of what
    travels. What travels is float32 whatever the model's dtype (a bf16
    worker and a float32 one of the same model share a swarm), so the text
    says float32 for every floating tensor."""
    c = _c_layout(model)
    if c is not None:
        return c
    return "torch:" + ";".join(
        f"{n}:{'float32' if t.is_floating_point() else str(t.dtype).replace('torch.', '')}:"
        f"{'x'.join(str(s) for s in t.shape)}" for n, t in travelling(model, buffers))


def _where(t):
    return f"{str(t.dtype).replace('torch.', '')} on {t.device}"


class Link:
    """The model's travelling tensors and the flat float32 vector (see the
    module doc). `flat` is on the model's device; `host` is the CPU buffer
    the C library reads and writes (`flat` itself on the CPU)."""

    def __init__(self, model, buffers=True):
        self.model, self.buffers = model, buffers
        items = travelling(model, buffers)
        if not items:
            raise ValueError("the model has no parameters")
        self.names = [n for n, _ in items]
        self.shapes = [tuple(t.shape) for _, t in items]
        self.n = sum(t.numel() for _, t in items)
        self.host = None
        self.attach(items)

    def attach(self, items=None):
        """Make the flat vector from the values the model holds now: views
        when every tensor is float32 on one device, else a master copy."""
        items = items if items is not None else travelling(self.model, self.buffers)
        dev = items[0][1].device
        for n, t in items:
            if t.device != dev:
                raise psod.PsodError(-1, f"{n} is on {t.device}, {items[0][0]} on {dev}: "
                                         "a Swarm's model lives on one device")
        self.view = all(t.dtype == torch.float32 for _, t in items)
        flat = torch.empty(self.n, dtype=torch.float32, device=dev)
        off = 0
        with torch.no_grad():
            for _, t in items:
                k = t.numel()
                flat[off:off + k].copy_(t.reshape(-1))
                if self.view:
                    t.data = flat[off:off + k].view_as(t)
                off += k
        self.flat, self.device = flat, dev
        self.cuda = flat.is_cuda
        if self.cuda:
            if self.host is None or self.host.is_cuda or not self.host.is_pinned():
                self.host = torch.empty(self.n, dtype=torch.float32, pin_memory=True)
        else:
            self.host = flat
        self._record(items)

    def _record(self, items):
        self.seen = [(t.data_ptr(), t.device, t.dtype) for _, t in items]
        self.tensors = [t for _, t in items]

    def check(self):
        """None while the link holds; else re-attach and return a line that
        says what moved. PsodError when the model's layout changed."""
        items = travelling(self.model, self.buffers)
        names = [n for n, _ in items]
        shapes = [tuple(t.shape) for _, t in items]
        if names != self.names or shapes != self.shapes:
            gone = [n for n in self.names if n not in names]
            new = [n for n in names if n not in self.names]
            what = (f"{', '.join(gone[:3]) or 'nothing'} gone, {', '.join(new[:3]) or 'nothing'} new"
                    if gone or new else "shapes changed")
            raise psod.PsodError(-1, "the model's parameters are not the ones it joined the "
                                     f"swarm with ({what}): make the Swarm after the model is "
                                     "built, or give the new model its own Swarm")
        moved = [(name, t, dev, dtype) for (name, t), (ptr, dev, dtype) in zip(items, self.seen)
                 if t.data_ptr() != ptr or t.device != dev or t.dtype != dtype]
        if not moved:
            return None
        if not self.view and all(t.device == dev and t.dtype == dtype for _, t, dev, dtype in moved):
            self._record(items)  # copy mode, same place: a replaced tensor is read as it is
            return None
        name, t, dev, dtype = moved[0]
        before = f"{str(dtype).replace('torch.', '')} on {dev}"
        self.attach(items)
        mode = ("its tensors are views of the swarm's vector again" if self.view else
                "the swarm's float32 vector is a master copy of its tensors")
        return (f"the model changed after Swarm() ({len(moved)} of {len(items)} tensors, e.g. "
                f"{name}: {before} -> {_where(t)}): re-attached with the values it holds now; "
                f"{mode}")

    @staticmethod
    def ptr(t):
        """(address, count) of a CPU float32 tensor, for the C library."""
        return (t.data_ptr(), t.numel())

    def host_ptr(self):
        return self.ptr(self.host)

    def gather(self):
        """Copy mode: the tensors' values into the flat vector (float32)."""
        if self.view:
            return
        off = 0
        with torch.no_grad():
            for t in self.tensors:
                k = t.numel()
                self.flat[off:off + k].copy_(t.reshape(-1))
                off += k

    def scatter(self):
        """Copy mode: the flat vector into the tensors, in their dtypes."""
        if self.view:
            return
        off = 0
        with torch.no_grad():
            for t in self.tensors:
                k = t.numel()
                t.copy_(self.flat[off:off + k].view(t.shape))
                off += k

    def to_host(self):
        """Before the C library reads: the model's values in `host`."""
        self.gather()
        if self.cuda:
            self.host.copy_(self.flat)  # waits for the copy: the C side reads it next

    def from_host(self):
        """After the C library wrote `host`: into the model."""
        if self.cuda:
            self.flat.copy_(self.host)
        self.scatter()

    def snapshot(self, out=None):
        """A float32 copy of the model's travelling values (into `out`, a
        tensor of as many values, when given: no allocation)."""
        self.gather()
        if out is None:
            return self.flat.clone()
        with torch.no_grad():
            out.copy_(self.flat)
        return out

    def restore(self, values):
        """Put a snapshot back into the model."""
        with torch.no_grad():
            self.flat.copy_(values)
        self.scatter()
