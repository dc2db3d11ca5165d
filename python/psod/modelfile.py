"""Model files (.psom) through the C library's one reader and writer, so a
model trained by psoworker evaluates in PyTorch and the other way round."""
import math

import torch

import psod
from psod import _lib
from psod._flat import layout_text, travelling as _travelling

__all__ = ["read_info", "load_model", "save_model"]


def read_info(path):
    """The header of a model file as a dict (model, dataset, counts, ...)."""
    return _lib.model_load(psod._libc(), path)


def load_model(path, model, buffers=True):
    """Load a model file into `model` (its parameters, and float buffers
    when the file holds them). The file's fingerprint must be the model's.
    Returns the header dict."""
    items = _travelling(model, buffers)
    n = sum(t.numel() for _, t in items)
    info = read_info(path)
    if info["param_count"] != n and buffers:
        items = _travelling(model, False)  # a file without the buffers
        n = sum(t.numel() for _, t in items)
        buffers = False
    want = psod.layout_hash(layout_text(model, buffers))
    if info["param_count"] != n or info["layout_hash"] != want:
        raise psod.PsodError(-1, f"{path} holds {info['model'] or 'a model'} of "
                             f"{info['param_count']} parameters (layout {info['layout_hash']:016x});"
                             f" this model has {n} (layout {want:016x})")
    flat = torch.empty(n, dtype=torch.float32)
    _lib.model_load(psod._libc(), path, flat.data_ptr(), n)
    off = 0
    with torch.no_grad():
        for _, t in items:
            k = t.numel()
            t.copy_(flat[off:off + k].view_as(t))
            off += k
    return info


def save_model(path, model, *, model_name=None, dataset="", input_shape=None, loss=math.nan,
               round_=0, strategy="", buffers=True):
    """Write `model` as a .psom file psod and psoworker read."""
    items = _travelling(model, buffers)
    flat = torch.cat([t.detach().reshape(-1).float().cpu() for _, t in items]).contiguous()
    _lib.model_save(psod._libc(), path, {
        "layout_hash": psod.layout_hash(layout_text(model, buffers)),
        "param_count": flat.numel(), "round": round_, "loss": loss, "strategy": strategy,
        "model": model_name or type(model).__name__.lower(), "dataset": dataset,
        "input_shape": input_shape}, flat.data_ptr())
