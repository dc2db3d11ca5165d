"""Model files (.psom) through the C library's one reader and writer, so a
model trained by psoworker evaluates in PyTorch and the other way round."""
import ctypes
import math

import torch

import psod
from psod import _lib

__all__ = ["read_info", "load_model", "save_model"]


def _info_dict(info):
    return {"layout_hash": info.layout_hash, "param_count": info.param_count,
            "round": info.round, "loss": info.loss, "strategy": info.strategy.decode(),
            "model": info.model.decode(), "dataset": info.dataset.decode(),
            "input_shape": tuple(info.input_shape)}


def read_info(path):
    """The header of a model file as a dict (model, dataset, counts, ...)."""
    info = _lib.ModelInfo()
    err = ctypes.create_string_buffer(_lib.ERR_LEN)
    rc = psod._libc().psoc_model_load(str(path).encode(), ctypes.byref(info), None, 0, err, len(err))
    if rc:
        raise psod.PsodError(rc, err.value.decode())
    return _info_dict(info)


def load_model(path, model, buffers=True):
    """Load a model file into `model` (its parameters, and float buffers
    when the file holds them). The file's fingerprint must be the model's.
    Returns the header dict."""
    from psod.torch import _travelling, layout_text
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
    err = ctypes.create_string_buffer(_lib.ERR_LEN)
    hdr = _lib.ModelInfo()
    rc = psod._libc().psoc_model_load(str(path).encode(), ctypes.byref(hdr), flat.data_ptr(), n,
                                      err, len(err))
    if rc:
        raise psod.PsodError(rc, err.value.decode())
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
    from psod.torch import _travelling, layout_text
    items = _travelling(model, buffers)
    flat = torch.cat([t.detach().reshape(-1).float().cpu() for _, t in items]).contiguous()
    info = _lib.ModelInfo()
    info.layout_hash = psod.layout_hash(layout_text(model, buffers))
    info.param_count = flat.numel()
    info.round = int(round_)
    info.loss = float(loss)
    info.strategy = strategy.encode()[:15]
    info.model = (model_name or type(model).__name__.lower()).encode()[:31]
    info.dataset = dataset.encode()[:15]
    if input_shape:
        info.input_shape[:] = list(input_shape)
    err = ctypes.create_string_buffer(_lib.ERR_LEN)
    rc = psod._libc().psoc_model_save(str(path).encode(), ctypes.byref(info), flat.data_ptr(),
                                      err, len(err))
    if rc:
        raise psod.PsodError(rc, err.value.decode())
