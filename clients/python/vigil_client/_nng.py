# SPDX-License-Identifier: MIT
"""ctypes bindings to the few libnng 1.5 functions the client uses.

Only the REQ side: sockets, dialers, contexts, aios and messages, and the
TLS configuration of a tls+tcp:// dialer. Every
blocking call (nng_aio_wait) goes through ctypes, which releases the GIL, so
other Python threads run while a request is in flight.
"""

import ctypes
import ctypes.util

NNG_EINTR = 1
NNG_ENOMEM = 2
NNG_ETIMEDOUT = 5
NNG_ECONNREFUSED = 6
NNG_ECLOSED = 7
NNG_EUNREACHABLE = 14
NNG_EADDRINVAL = 15
NNG_ECONNABORTED = 18
NNG_ECONNRESET = 19
NNG_ECANCELED = 20
NNG_ECRYPTO = 26
NNG_ECONNSHUT = 31

NNG_FLAG_NONBLOCK = 2
NNG_DURATION_INFINITE = -1

NNG_PIPE_EV_ADD_POST = 1
NNG_PIPE_EV_REM_POST = 2

NNG_OPT_RECVMAXSZ = b"recv-size-max"
NNG_OPT_RECONNMINT = b"reconnect-time-min"
NNG_OPT_RECONNMAXT = b"reconnect-time-max"
NNG_OPT_REQ_RESENDTIME = b"req:resend-time"
NNG_OPT_TLS_CONFIG = b"tls-config"

NNG_TLS_MODE_CLIENT = 0
NNG_TLS_AUTH_MODE_REQUIRED = 2
NNG_TLS_1_2 = 0x303


class Socket(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


class Ctx(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


class Pipe(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


class Dialer(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


PIPE_CB = ctypes.CFUNCTYPE(None, Pipe, ctypes.c_int, ctypes.c_void_p)


def _load(names):
    last = None
    for name in names:
        if name is None:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError as e:  # try the next spelling
            last = e
    raise OSError("vigil_client needs the nng library: cannot load %s (Debian: "
                  "apt install libnng1): %s" % (names[-1], last))


lib = _load([ctypes.util.find_library("nng"), "libnng.so.1", "libnng.so"])

_P = ctypes.c_void_p
_I = ctypes.c_int


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


req0_open = _fn("nng_req0_open", _I, ctypes.POINTER(Socket))
close = _fn("nng_close", _I, Socket)
dial = _fn("nng_dial", _I, Socket, ctypes.c_char_p, _P, _I)
socket_set_ms = _fn("nng_socket_set_ms", _I, Socket, ctypes.c_char_p, ctypes.c_int32)
socket_set_size = _fn("nng_socket_set_size", _I, Socket, ctypes.c_char_p, ctypes.c_size_t)
pipe_notify = _fn("nng_pipe_notify", _I, Socket, _I, PIPE_CB, _P)
ctx_open = _fn("nng_ctx_open", _I, ctypes.POINTER(Ctx), Socket)
ctx_close = _fn("nng_ctx_close", _I, Ctx)
ctx_send = _fn("nng_ctx_send", None, Ctx, _P)
ctx_recv = _fn("nng_ctx_recv", None, Ctx, _P)
aio_alloc = _fn("nng_aio_alloc", _I, ctypes.POINTER(_P), _P, _P)
aio_free = _fn("nng_aio_free", None, _P)
aio_wait = _fn("nng_aio_wait", None, _P)
aio_cancel = _fn("nng_aio_cancel", None, _P)
aio_result = _fn("nng_aio_result", _I, _P)
aio_set_timeout = _fn("nng_aio_set_timeout", None, _P, ctypes.c_int32)
aio_set_msg = _fn("nng_aio_set_msg", None, _P, _P)
aio_get_msg = _fn("nng_aio_get_msg", _P, _P)
dialer_create = _fn("nng_dialer_create", _I, ctypes.POINTER(Dialer), Socket, ctypes.c_char_p)
dialer_start = _fn("nng_dialer_start", _I, Dialer, _I)
dialer_set_ptr = _fn("nng_dialer_set_ptr", _I, Dialer, ctypes.c_char_p, _P)
tls_config_alloc = _fn("nng_tls_config_alloc", _I, ctypes.POINTER(_P), _I)
tls_config_free = _fn("nng_tls_config_free", None, _P)
tls_config_version = _fn("nng_tls_config_version", _I, _P, _I, _I)
tls_config_ca_chain = _fn("nng_tls_config_ca_chain", _I, _P, ctypes.c_char_p, ctypes.c_char_p)
tls_config_own_cert = _fn("nng_tls_config_own_cert", _I, _P, ctypes.c_char_p,
                          ctypes.c_char_p, ctypes.c_char_p)
tls_config_server_name = _fn("nng_tls_config_server_name", _I, _P, ctypes.c_char_p)
tls_config_auth_mode = _fn("nng_tls_config_auth_mode", _I, _P, _I)
msg_alloc = _fn("nng_msg_alloc", _I, ctypes.POINTER(_P), ctypes.c_size_t)
msg_body = _fn("nng_msg_body", _P, _P)
msg_len = _fn("nng_msg_len", ctypes.c_size_t, _P)
msg_free = _fn("nng_msg_free", None, _P)
_strerror = _fn("nng_strerror", ctypes.c_char_p, _I)


def strerror(rv):
    return _strerror(rv).decode("utf-8", "replace")


def msg_from_bytes(data):
    """A new nng_msg holding data; raises MemoryError."""
    m = _P()
    if msg_alloc(ctypes.byref(m), len(data)) != 0:
        raise MemoryError("nng_msg_alloc")
    if data:
        ctypes.memmove(msg_body(m), data, len(data))
    return m


def msg_to_bytes(m):
    n = msg_len(m)
    return ctypes.string_at(msg_body(m), n) if n else b""
