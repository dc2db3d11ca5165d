"""ctypes mirror of worker/client/psoclient.h, and where libpsoclient.so is found.

The C library is the one place that speaks the protocol: this module only
declares its calls and structs. Each struct's size is checked against the
library's own (psoc_struct_size) when the library is loaded, so a mirror
that no longer fits the header is refused instead of corrupting memory.
"""
import ctypes
import ctypes.util
import math
import os

SONAME = "libpsoclient.so.1"
ERR_LEN = 512
NAME_MAX = 127
ERROR_CODES = 32

c_int, c_uint32, c_uint64, c_int32 = ctypes.c_int, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int32
c_double, c_size_t, c_char_p, c_void_p = ctypes.c_double, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)
VERIFY_FN = ctypes.CFUNCTYPE(c_int, c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                             ctypes.POINTER(ctypes.c_double))


class Options(ctypes.Structure):
    _fields_ = [("timeout_ms", c_int), ("connect_timeout_ms", c_int), ("reconnect_ms", c_int),
                ("max_payload", c_size_t), ("heartbeat_thread", c_int), ("log", LOG_FN),
                ("log_ctx", c_void_p), ("stop", ctypes.POINTER(c_int)),
                ("curve_public", ctypes.c_char * 41), ("curve_secret", ctypes.c_char * 41),
                ("curve_server", ctypes.c_char * 41), ("wire", c_int), ("density", c_double),
                ("fragments", c_uint32), ("overlap_mix", c_double)]


class Welcome(ctypes.Structure):
    _fields_ = [("particle_id", c_uint32), ("round", c_uint64), ("global_best_loss", c_double),
                ("rejoined", c_int), ("strategy", ctypes.c_char * 32),
                ("positions_global", c_int), ("push_gradients", c_int),
                ("heartbeat_ms", c_uint32), ("pushes", c_uint64), ("model", ctypes.c_char * 64),
                ("dataset", ctypes.c_char * 32), ("wire", c_int),
                ("lr", c_double), ("momentum", c_double), ("density", c_double),
                ("fragments", c_uint32)]


class Report(ctypes.Structure):
    _fields_ = [("loss", c_double), ("samples", c_uint64), ("accuracy", c_double),
                ("position_accuracy", c_double), ("position_round", c_uint64)]


class Position(ctypes.Structure):
    _fields_ = [("round", c_uint64), ("global_best_loss", c_double),
                ("personal_best_loss", c_double), ("global_best_particle", c_uint32),
                ("evaluator", c_int), ("resynced", c_int), ("lr", c_double),
                ("momentum", c_double)]


class ParticleStatus(ctypes.Structure):
    _fields_ = [("id", c_uint32), ("name", ctypes.c_char * (NAME_MAX + 1)),
                ("last_loss", c_double), ("best_loss", c_double), ("age_seconds", c_double),
                ("pushes", c_uint64), ("last_round", c_uint64), ("pushed_this_round", c_int),
                ("active", c_int), ("evicted", c_int), ("wire", c_int),
                ("strikes", c_uint32), ("excluded", c_int)]


class ShardStatus(ctypes.Structure):
    _fields_ = [("index", c_uint32), ("endpoint", ctypes.c_char * 256), ("offset", c_uint64),
                ("length", c_uint64), ("round", c_uint64), ("connected", c_int)]


class Status(ctypes.Structure):
    _fields_ = [("round", c_uint64), ("particles", c_uint32), ("active", c_uint32),
                ("workers_expected", c_uint32), ("pushed_this_round", c_uint32),
                ("global_best_loss", c_double), ("global_best_particle", c_int32),
                ("global_accuracy", c_double), ("param_count", c_uint64),
                ("strategy", ctypes.c_char * 32), ("version", ctypes.c_char * 32),
                ("uptime_seconds", c_double), ("last_round_seconds", c_double),
                ("errors_sent", c_uint64), ("bytes_in", c_uint64), ("bytes_out", c_uint64),
                ("bytes_refused", c_uint64), ("errors_by_code", c_uint64 * ERROR_CODES),
                ("peers_connected", c_uint32), ("max_peers", c_uint32),
                ("peers_refused", c_uint64), ("encrypted", c_int), ("n_particles", c_size_t),
                ("particle", ctypes.POINTER(ParticleStatus)), ("n_shards", c_size_t),
                ("shard_index", c_uint32), ("shard", ctypes.POINTER(ShardStatus)),
                ("verify_adopted", c_uint64), ("verify_refused", c_uint64),
                ("verify_ignored", c_uint64), ("verify_undecided", c_uint64),
                ("verify_struck", c_uint64), ("verify_excluded", c_uint64),
                ("heartbeat_ms", c_uint32), ("checkpoint_round", c_uint64),
                ("checkpoint_age_seconds", c_double), ("checkpoint_failures", c_uint64),
                ("checkpoint_error", ctypes.c_char * 256)]


class ModelInfo(ctypes.Structure):
    _fields_ = [("layout_hash", c_uint64), ("param_count", c_uint64), ("round", c_uint64),
                ("loss", c_double), ("strategy", ctypes.c_char * 16),
                ("model", ctypes.c_char * 32), ("dataset", ctypes.c_char * 16),
                ("input_shape", c_uint32 * 3)]


_STRUCTS = {"psoc_model_info": ModelInfo, "psoc_options": Options, "psoc_welcome": Welcome, "psoc_report": Report,
            "psoc_position": Position, "psoc_particle_status": ParticleStatus,
            "psoc_status": Status, "psoc_shard_status": ShardStatus}
P = ctypes.POINTER
_SIGNATURES = {
    "psoc_options_default": (None, [P(Options)]),
    "psoc_options_curve": (c_int, [P(Options), c_char_p, c_char_p, c_char_p, c_size_t]),
    "psoc_open": (c_int, [P(c_void_p), c_char_p, c_char_p, P(Options), c_char_p, c_size_t]),
    "psoc_set_model": (None, [c_void_p, c_char_p, c_char_p, P(c_uint32)]),
    "psoc_join": (c_int, [c_void_p, c_size_t, c_uint64, c_void_p, P(Welcome), c_char_p, c_size_t]),
    "psoc_sync_ex": (c_int, [c_void_p, c_void_p, c_void_p, P(Report), P(Position), c_char_p,
                             c_size_t]),
    "psoc_sync_begin": (c_int, [c_void_p, c_void_p, P(Report), c_char_p, c_size_t]),
    "psoc_sync_end": (c_int, [c_void_p, c_void_p, P(Position), c_char_p, c_size_t]),
    "psoc_sync_pending": (c_int, [c_void_p]),
    "psoc_set_final": (None, [c_void_p, c_double, c_uint64]),
    "psoc_set_verifier": (None, [c_void_p, VERIFY_FN, c_void_p]),
    "psoc_status": (c_int, [c_void_p, c_int, P(Status), c_char_p, c_size_t]),
    "psoc_status_free": (None, [P(Status)]),
    "psoc_fetch_model": (c_int, [c_void_p, c_int, c_void_p, P(c_double), c_char_p, c_size_t,
                                 c_char_p, c_size_t]),
    "psoc_admin": (c_int, [c_void_p, c_int, c_char_p, c_char_p, c_size_t, c_char_p, c_size_t]),
    "psoc_set_admin_token": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t]),
    "psoc_close": (None, [P(c_void_p)]),
    "psoc_last_server_error": (c_int, [c_void_p]),
    "psoc_strerror": (c_char_p, [c_int]),
    "psoc_layout_hash": (c_uint64, [c_char_p]),
    "psoc_partition": (c_int, [c_void_p, c_size_t, c_int, c_int, c_int, c_double, c_int, c_uint64,
                               c_void_p, P(c_size_t), c_char_p, c_size_t]),
    "psoc_shard_mode_parse": (c_int, [c_char_p]),
    "psoc_wire_parse": (c_int, [c_char_p]),
    "psoc_wire_spec": (c_int, [c_void_p, c_char_p]),
    "psoc_wire_name": (c_char_p, [c_int]),
    "psoc_struct_size": (c_size_t, [c_char_p]),
    "psoc_model_save": (c_int, [c_char_p, P(ModelInfo), c_void_p, c_char_p, c_size_t]),
    "psoc_model_load": (c_int, [c_char_p, P(ModelInfo), c_void_p, c_size_t, c_char_p, c_size_t]),
}


def _candidates():
    env = os.environ.get("PSOD_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    try:  # installed: the library make install put beside this package
        from psod._installed import LIBDIR
        yield os.path.join(LIBDIR, SONAME)
    except ImportError:
        # python/psod/ in a source tree: the build directory beside it.
        yield os.path.join(here, "..", "..", "build", SONAME)
    yield SONAME  # installed: the dynamic loader's path (ldconfig)
    found = ctypes.util.find_library("psoclient")
    if found:
        yield found


def load():
    """The C library with its calls declared; OSError if none loads."""
    tried = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        for name, (res, args) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        for cname, cls in _STRUCTS.items():
            size = lib.psoc_struct_size(cname.encode())
            if size != ctypes.sizeof(cls):
                raise OSError(f"{path}: struct {cname} is {size} bytes there, {ctypes.sizeof(cls)} "
                              "in this binding: use the binding of the same psod release")
        lib._psod_path = path
        return lib
    raise OSError("libpsoclient.so not found (set PSOD_LIBRARY, build with make, or make "
                  "install): " + "; ".join(tried))


# Typed wrappers: the rest of the package calls these, never ctypes. A
# failure of the C library raises `error(code, message)`: PsodError, given
# by the package (this module loads first and cannot import it).
error = None


def _fail(rc, err):
    raise error(rc, err.value.decode(errors="replace"))


def model_load(lib, path, address=None, count=0):
    """A model file's header (a dict) and, with an (address, count) of
    float32s, its weights into them."""
    info = ModelInfo()
    err = ctypes.create_string_buffer(ERR_LEN)
    rc = lib.psoc_model_load(str(path).encode(), ctypes.byref(info), address, count, err,
                             len(err))
    if rc:
        _fail(rc, err)
    return {"layout_hash": info.layout_hash, "param_count": info.param_count,
            "round": info.round, "loss": info.loss, "strategy": info.strategy.decode(),
            "model": info.model.decode(), "dataset": info.dataset.decode(),
            "input_shape": tuple(info.input_shape)}


def model_save(lib, path, header, address):
    """Write a model file: header (layout_hash, param_count, round, loss,
    strategy, model, dataset, input_shape) and param_count float32s."""
    info = ModelInfo()
    info.layout_hash = header["layout_hash"]
    info.param_count = header["param_count"]
    info.round = int(header.get("round", 0))
    info.loss = float(header.get("loss", math.nan))
    info.strategy = header.get("strategy", "").encode()[:15]
    info.model = header.get("model", "").encode()[:31]
    info.dataset = header.get("dataset", "").encode()[:15]
    if header.get("input_shape"):
        info.input_shape[:] = list(header["input_shape"])
    err = ctypes.create_string_buffer(ERR_LEN)
    rc = lib.psoc_model_save(str(path).encode(), ctypes.byref(info), address, err, len(err))
    if rc:
        _fail(rc, err)


def partition(lib, labels, index, count, mode, alpha, classes, seed, out):
    """psoc_partition: the indices of part `index` of `count` into `out` (a
    uintp array as long as labels, a uint8 array); how many. ValueError on
    a bad request (the C library's reason)."""
    m = lib.psoc_shard_mode_parse(mode.encode())
    if m < 0:
        raise ValueError(f"unknown shard mode '{mode}'")
    got = ctypes.c_size_t(0)
    err = ctypes.create_string_buffer(ERR_LEN)
    if lib.psoc_partition(labels.ctypes.data, len(labels), int(index), int(count), m,
                          float(alpha), int(classes), int(seed) & (2**64 - 1), out.ctypes.data,
                          ctypes.byref(got), err, len(err)) != 0:
        raise ValueError(err.value.decode())
    return got.value
