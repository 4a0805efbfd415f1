# SPDX-License-Identifier: MIT
"""vigil_client - Python client of the vigil fraud-scoring service.

    from vigil_client import Client, Transaction

    with Client(["tcp://10.0.0.1:9465", "tcp://10.0.0.2:9465"]) as c:
        r = c.score(Transaction(txn_id="t-1", card_id="card-42",
                                merchant_id="m-7", amount_minor=1234,
                                currency="EUR"))
        print(r.decision, r.score, [h.rule for h in r.hits])
        c.label("t-1", fraud=True, card_id="card-42")

Same behaviour as the C library (docs/client.md): cards are routed to a
replica by a consistent hash of card_id (the same ring as libvigil-client),
a request that times out, loses its connection or gets "overloaded /
unavailable / internal" is re-sent unchanged to the next replica on the
ring (safe: the server de-duplicates by txn_id), errors are exceptions
carrying the server's message and offending field. Needs only Debian's
python3 and python3-protobuf; nng and xxhash are reached through ctypes.
Thread-safe: one Client may be shared by any number of threads.
"""

import atexit
import concurrent.futures
import ctypes
import dataclasses
import decimal
import errno
import os
import re
import stat
import sys
import threading
import time
import weakref
from typing import Mapping, Optional, Sequence, Tuple, Union

from . import _nng
from ._ring import Ring

try:
    from . import vigil_pb2 as _pb
except ImportError as _e:
    if (_e.name or "").split(".")[0] == "google":
        raise ImportError(
            "vigil_client needs the protobuf package (>= 3.20), which is not "
            "installed: pip install protobuf, or on Debian apt install "
            "python3-protobuf (in a venv made with --system-site-packages); "
            "%s" % _e, name=_e.name) from None
    raise

__all__ = [
    "Client", "Transaction", "transaction_from_json", "ScoreResult", "Hit", "ModelReason",
    "Health",
    "VigilError", "InvalidArgument", "Timeout", "Unreachable", "ClientClosed",
    "ProtocolError", "TransportError", "TooManyInFlight", "ServerError",
    "InvalidField", "Malformed", "TooBig", "Unsupported", "Overloaded",
    "Unavailable", "ServerInternal",
]

ID_MAX = 64
MAX_REQUEST = 65536
MAX_ATTRS = 64
MAX_ATTR_KEY = 64     # bytes (vigild's checks, server/wire.c)
MAX_ATTR_VALUE = 256  # bytes

# ---- errors ----


class VigilError(Exception):
    """Base of every client error. `code` is the stable name shared with the
    C library ("ETIMEDOUT", "SINVALID", ...); `message` is one line that
    starts with the replica URL when one was involved; `field` names the
    offending field for InvalidArgument / InvalidField; `attempts` counts the
    requests sent before giving up."""

    code = "EUNKNOWN"

    def __init__(self, message, field="", attempts=0):
        super().__init__(message)
        self.message = message
        self.field = field
        self.attempts = attempts


class InvalidArgument(VigilError, ValueError):
    """A required field is missing or too long (checked before sending)."""
    code = "EINVAL"


class Timeout(VigilError, TimeoutError):
    """No reply within the timeout, on every attempt."""
    code = "ETIMEDOUT"


class Unreachable(VigilError, ConnectionError):
    """No connection to the replica: server down, refused or lost."""
    code = "EUNREACHABLE"


class ClientClosed(VigilError):
    code = "ECLOSED"


class ProtocolError(VigilError):
    """The reply is not a valid vigil.v1.Reply for the request."""
    code = "EPROTO"


class TransportError(VigilError):
    code = "ETRANSPORT"


class TooManyInFlight(VigilError):
    code = "ELIMIT"


class ServerError(VigilError):
    """The server answered with a non-OK status."""


class InvalidField(ServerError, ValueError):
    code = "SINVALID"


class Malformed(ServerError):
    code = "SMALFORMED"


class TooBig(ServerError):
    code = "STOOBIG"


class Unsupported(ServerError):
    code = "SUNSUPPORTED"


class Overloaded(ServerError):
    code = "SOVERLOADED"


class Unavailable(ServerError):
    code = "SUNAVAILABLE"


class ServerInternal(ServerError):
    code = "SINTERNAL"


_RETRYABLE = (Timeout, Unreachable, TransportError, ProtocolError, Overloaded,
              Unavailable, ServerInternal)

_STATUS_ERRORS = {
    _pb.STATUS_INVALID: InvalidField,
    _pb.STATUS_MALFORMED: Malformed,
    _pb.STATUS_TOO_BIG: TooBig,
    _pb.STATUS_UNSUPPORTED: Unsupported,
    _pb.STATUS_OVERLOADED: Overloaded,
    _pb.STATUS_UNAVAILABLE: Unavailable,
    _pb.STATUS_INTERNAL: ServerInternal,
}

_CHANNELS = {"unknown": 0, "pos": 1, "ecom": 2, "atm": 3, "moto": 4}
_DECISIONS = {0: "none", 1: "allow", 2: "review", 3: "decline"}

# ---- values ----


@dataclasses.dataclass(frozen=True)
class Transaction:
    """A card transaction to score (field meanings: docs/protocol.md).
    event_time_ms None means "now" (taken once per call, so retries send the
    same bytes; docs/protocol.md, "The event time"); 0 is refused. channel is "pos", "ecom", "atm", "moto", "unknown" or 0..4."""

    txn_id: str
    card_id: str
    merchant_id: str
    amount_minor: int
    currency: str
    event_time_ms: Optional[int] = None
    terminal_id: str = ""
    country: str = ""
    mcc: int = 0
    channel: Union[str, int] = "unknown"
    device_id: str = ""
    ip: str = ""
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Hit:
    rule: str
    points: int
    reason: str
    shadow: bool


def _score_of(s) -> float:
    """ScoreReply.score; a server from before it sent its score, the points,
    in field 2 (a 0 score with positive points is only that, as in the C
    client)."""
    if s.score == 0 and s.points > 0:
        return float(min(s.points, 100))
    return s.score


@dataclasses.dataclass(frozen=True)
class ModelReason:
    """A feature that pushed the model's score up (vigil_client_model_reason)."""
    feature: str               # schema name, e.g. "amount"
    value: float               # its value as scored
    contribution: float        # on the log-odds scale, > 0


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    txn_id: str
    # The risk score, 0-100 (docs/protocol.md, ScoreReply.score): 100 x the
    # model's calibrated probability of fraud once the server has a model,
    # the rules' points clamped to 0-100 before.
    score: float
    decision: str              # "allow", "review" or "decline"
    hits: Tuple[Hit, ...]      # active hits, then shadow hits
    rules_version: str
    features_generation: int
    latency_us: int            # the server's own time, decode to reply
    duplicate: bool            # the first outcome of an earlier request
    dry_run: bool
    attempts: int              # 1 unless the call was retried
    replica: str               # URL of the replica that answered
    # Backfill (docs/protocol.md): late: 7 days or more older than the newest
    # event the server applied, so in no velocity feature; past_dedupe_horizon:
    # older than the dedupe horizon, so a repeat of txn_id is scored again.
    late: bool = False
    past_dedupe_horizon: bool = False
    points: int = 0            # the sum of the active hits' points
    # The nightly model (docs/model.md), as the C client's has_model,
    # model_score and model_reasons: model_score None when the server's
    # generation has no model (rules alone decided); model_reasons, when a
    # rule reading model.score fired, the features that pushed it up.
    model_score: Optional[float] = None
    model_reasons: Tuple[ModelReason, ...] = ()
    # The rules that decided: rules_version is the rule file's declared
    # version, rules_hash the content hash of the file and its list files.
    rules_hash: str = ""

    @property
    def server_latency_us(self) -> int:
        """The name before issue 18 (latency_us is the wire's and JSON's)."""
        return self.latency_us


@dataclasses.dataclass(frozen=True)
class Health:
    ready: bool
    server_version: str
    uptime_s: int
    rules_version: str         # the rule file's declared version
    features_generation: int
    replica: str
    rules_hash: str = ""       # their content hash (docs/protocol.md, rules_hash)


# Clients still open at exit are closed first, so no nng thread calls back
# into a finalizing interpreter.
_open_clients = weakref.WeakSet()


@atexit.register
def _close_all():
    for c in list(_open_clients):
        c.close()


# ---- request encoding ----


_PEM_MAX = 1 << 20  # as the C client's


def _read_pem(url, path):
    """A TLS file's whole text, read once (nng is given it, not the name).
    A FIFO, device or directory in its place is refused at once (opened
    non-blocking: a FIFO would wait for a writer): InvalidArgument
    "URL: PATH: not a regular file", as the C client says."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise InvalidArgument("%s: %s: %s" % (url, path, e.strerror)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidArgument("%s: %s: not a regular file" % (url, path))
        chunks, n = [], 0
        while n <= _PEM_MAX:
            b = os.read(fd, _PEM_MAX + 1 - n)
            if not b:
                break
            chunks.append(b)
            n += len(b)
        if n > _PEM_MAX:
            raise InvalidArgument("%s: %s: %s" % (url, path, os.strerror(errno.EFBIG)))
        return b"".join(chunks)
    except OSError as e:
        raise InvalidArgument("%s: %s: %s" % (url, path, e.strerror)) from None
    finally:
        os.close(fd)


def _check_id(field, value, required):
    if value is None or value == "":
        if required:
            raise InvalidArgument("%s: required" % field, field=field)
        return ""
    if not isinstance(value, str):
        raise InvalidArgument("%s: must be a string" % field, field=field)
    if len(value.encode()) > ID_MAX:
        raise InvalidArgument("%s: longer than %d bytes" % (field, ID_MAX), field=field)
    return value


# ---- the JSON transaction shape (docs/protocol.md, "JSON") ----

# Minor-unit exponents of the active ISO 4217 codes that do not have 2
# (common/txn.c's table); any other code is read with 2 and judged by the
# server.
_EXPONENTS = {
    "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0,
    "JOD": 3, "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0,
    "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "UYW": 4, "VND": 0, "VUV": 0, "XAF": 0,
    "XOF": 0, "XPF": 0,
}
# JSON's number syntax, the one accepted in a string for every numeric field
_INT_RE = re.compile(r"-?[0-9]+\Z")
_NUM_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")


def _bad(field, msg):
    return InvalidArgument("txn.%s: %s" % (field, msg), field="txn." + field)


def _quoted(text, cut=True):
    # a refused value as common/json.c quotes it: "%.40s", and "..." after
    # it when cut (cut=False where the C message adds none)
    return '"%s%s"' % (text[:40], "..." if cut and len(text) > 40 else "")


def _json_int(field, v):
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise _bad(field, "must be an integer (a JSON number or a string of digits)")
    if isinstance(v, str):
        if not _INT_RE.match(v) or not -2**63 <= int(v) < 2**63:
            raise _bad(field, "%s is not an integer" % _quoted(v))
        return int(v)
    return v


def _json_num(field, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise _bad(field, "must be a number (a JSON number or a string holding one)")
    if isinstance(v, str):
        x = float(v) if _NUM_RE.match(v) else float("nan")
        if x != x or x in (float("inf"), float("-inf")):
            raise _bad(field, "%s is not a number" % _quoted(v))
        return x
    return float(v)


def _json_amount(v, currency):
    exp = _EXPONENTS.get(currency, 2)
    if isinstance(v, bool) or not isinstance(v, (int, float, str, decimal.Decimal)):
        raise _bad("amount", "must be a decimal number or string in major units")
    if isinstance(v, float):
        # binary floating point: only its representation error is rounded
        # away; more decimals than the currency has are refused (as in C)
        d = v * 10 ** exp
        r = round(d)
        if d != d or d < 0 or d >= 1e15 or abs(d - r) > max(1e-6, d * 4 * sys.float_info.epsilon):
            raise _bad("amount", "%r is out of range or has more decimals than %s has (%d); "
                       "send the amount as a string for exact decimals" % (v, currency, exp))
        return int(r)
    text = str(v)
    if not _NUM_RE.match(text) or "e" in text.lower() or text.startswith("-"):
        raise _bad("amount", "%s is not a non-negative decimal with at most %d decimals"
                   % (_quoted(text), exp))
    # as common/json.c decimal_to_minor: too many whole digits, then too
    # many decimals, then more than an int64 of minor units
    if int(text.split(".")[0]) // 10 > 10 ** 14:
        raise _bad("amount", "%s is too large" % _quoted(text, False))
    minor = decimal.Decimal(text).scaleb(exp)
    if minor != minor.to_integral_value():
        raise _bad("amount", "%s is not a non-negative decimal with at most %d decimals"
                   % (_quoted(text), exp))
    if minor >= 2 ** 63:
        raise _bad("amount", "%s is too large" % _quoted(text, False))
    return int(minor)


# RFC 3339 as common/time.c vigil_time_parse_rfc3339 reads it: "T", "t" or a
# space between date and time, seconds required (60, a leap second, is :59),
# 1-9 decimals cut (not rounded) to the millisecond, "Z"/"z" or +hh:mm
_TIME_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))\Z")


def _json_time(v):
    m = _TIME_RE.match(v) if isinstance(v, str) else None
    if m is not None:
        y, mo, d, hh, mm, ss = (int(x) for x in m.groups()[:6])
        oh, om = int(m.group(9) or 0), int(m.group(10) or 0)
        leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
        mdays = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
        if not (1 <= mo <= 12 and 1 <= d <= mdays[mo - 1] and hh <= 23 and mm <= 59 and
                ss <= 60 and oh <= 23 and om <= 59):
            m = None
    if m is None:
        raise _bad("event_time", "must be an RFC 3339 time such as \"2026-11-21T10:00:00Z\"")
    # days from 1970-01-01 (proleptic Gregorian, year 0 included, as in C)
    ya = y - (mo <= 2)
    era = ya // 400
    yoe = ya - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    off = (-1 if m.group(8) == "-" else 1) * (oh * 60 + om)
    frac_ms = int((m.group(7) or "0")[:3].ljust(3, "0"))
    return (days * 86400 + hh * 3600 + mm * 60 + min(ss, 59) - off * 60) * 1000 + frac_ms


# the keys of the JSON transaction shape (docs/protocol.md, "JSON"), and this
# class's own spellings of the location and its attributes
_TXN_KEYS = frozenset((
    "txn_id", "card_id", "merchant_id", "terminal_id", "device_id", "ip", "currency",
    "country", "event_time_ms", "event_time", "amount_minor", "amount", "mcc", "channel",
    "location", "lat", "lon", "latitude", "longitude", "attributes"))


def transaction_from_json(obj: Mapping) -> "Transaction":
    """A Transaction from the JSON transaction shape that /v1/score,
    vigil-score, vigil-rules explain and this client all read
    (docs/protocol.md, "JSON"): the vigil.v1.Transaction field names, plus
    "amount" (decimal major units; a string is read exactly) instead of
    amount_minor, "event_time" (RFC 3339) instead of event_time_ms, "channel"
    as a word or 0..4 (in a string, its one digit: "2", not "02"), "location":
    {"latitude", "longitude"} or "lat"/"lon" (or this class's
    latitude/longitude and attributes). Every number may
    be given as a string holding it. Two spellings of one field must agree.
    Any other key is refused by name, as everywhere: a misspelt key must
    not pass for an absent one. Raises InvalidArgument naming the field."""
    if not isinstance(obj, Mapping):
        raise InvalidArgument("txn: must be a JSON object (a dict)", field="txn")
    for k in obj:
        if k not in _TXN_KEYS:
            raise _bad(str(k)[:64], "unknown key (docs/protocol.md lists a transaction's)")
    g = {k: v for k, v in obj.items() if v is not None}
    kw = {}
    for k in ("txn_id", "card_id", "merchant_id", "terminal_id", "currency", "country",
              "device_id", "ip"):
        if k in g:
            if not isinstance(g[k], str):
                raise _bad(k, "must be a string")
            kw[k] = g[k]
    kw.setdefault("txn_id", "")
    kw.setdefault("card_id", "")
    kw.setdefault("merchant_id", "")
    kw.setdefault("currency", "")
    minor = _json_int("amount_minor", g["amount_minor"]) if "amount_minor" in g else None
    if "amount" in g:
        a = _json_amount(g["amount"], kw["currency"])
        if minor is not None and a != minor:
            raise _bad("amount", "%d minor units, not amount_minor %d; give one or the same "
                       "amount" % (a, minor))
        minor = a
    kw["amount_minor"] = minor
    ms = _json_int("event_time_ms", g["event_time_ms"]) if "event_time_ms" in g else None
    if "event_time" in g:
        t = _json_time(g["event_time"])
        if ms is not None and t != ms:
            raise _bad("event_time", "%s is not event_time_ms %d; give one or the same time"
                       % (_quoted(g["event_time"], False), ms))
        ms = t
    kw["event_time_ms"] = ms
    if "mcc" in g:
        kw["mcc"] = _json_int("mcc", g["mcc"])
        if not 0 <= kw["mcc"] <= 9999:  # the words of the wire's check (common/txn.c)
            raise _bad("mcc", "mcc %d is not a 4-digit merchant category code" % kw["mcc"])
    if "channel" in g:
        ch = g["channel"]
        # a word, or its one digit as a string (common/json.c): not "04"
        if isinstance(ch, str) and re.fullmatch("[0-4]", ch):
            ch = int(ch)
        elif isinstance(ch, int) and not isinstance(ch, bool) and not 0 <= ch <= 4:
            raise _bad("channel", "channel %d is not a known channel (0-4)" % ch)
        if isinstance(ch, bool) or not (isinstance(ch, str) and ch.lower() in _CHANNELS or
                                        isinstance(ch, int) and 0 <= ch <= 4):
            raise _bad("channel", "must be one of pos, ecom, atm, moto, unknown")
        kw["channel"] = ch
    points = []
    for la, lo, name in (("lat", "lon", "lat"), ("latitude", "longitude", "latitude")):
        if la in g or lo in g:
            points.append((_json_num(la, g[la]) if la in g else None,
                           _json_num(lo, g[lo]) if lo in g else None))
    loc = g.get("location")
    if loc is not None:
        if not isinstance(loc, Mapping):
            raise _bad("location", "must be an object {\"latitude\": .., \"longitude\": ..}")
        for k in loc:
            if k not in ("latitude", "longitude"):
                raise _bad("location.%s" % str(k)[:64],
                           "unknown key (location holds latitude and longitude)")
        points.append((_json_num("location.latitude", loc["latitude"])
                       if loc.get("latitude") is not None else None,
                       _json_num("location.longitude", loc["longitude"])
                       if loc.get("longitude") is not None else None))
    if any(p != points[0] for p in points[1:]):
        raise _bad("location", "lat/lon is another point than location; give one")
    if points:
        kw["latitude"], kw["longitude"] = points[0]
    if "attributes" in g:
        kw["attributes"] = _json_attributes(g["attributes"])
    return Transaction(**kw)


def _json_attributes(a):
    # vigild's checks of Transaction.attributes, worded as the C reader's
    # (common/txn.c vigil_txn_attr_check, which vigild and the C readers call)
    if not isinstance(a, Mapping):
        raise _bad("attributes", "must be an object of strings ({\"key\": \"value\"})")
    if len(a) > MAX_ATTRS:
        raise _bad("attributes", "%d attributes, the limit is %d" % (len(a), MAX_ATTRS))
    for k, v in a.items():
        kq = '"%s"' % str(k)[:64]
        if not isinstance(k, str) or not 1 <= len(k.encode()) <= MAX_ATTR_KEY:
            raise _bad("attributes.key", "%s: key must be 1-%d bytes" % (kq, MAX_ATTR_KEY))
        if "\0" in k:
            raise _bad("attributes.key", '"%s": contains a NUL byte' % k.split("\0")[0])
        if not isinstance(v, str):
            raise _bad("attributes.value", "%s: value must be a string" % kq)
        if len(v.encode()) > MAX_ATTR_VALUE:
            raise _bad("attributes.value", "%s: value is %d bytes, the limit is %d"
                       % (kq, len(v.encode()), MAX_ATTR_VALUE))
        if "\0" in v:
            raise _bad("attributes.value", "%s: contains a NUL byte" % kq)
    return dict(a)


def _encode_txn(txn, dry_run):
    if isinstance(txn, Mapping):
        txn = transaction_from_json(txn)
    if not isinstance(txn, Transaction):
        raise InvalidArgument("txn: must be a Transaction or a dict of its fields", field="txn")
    t = _pb.Transaction(
        txn_id=_check_id("txn.txn_id", txn.txn_id, True),
        card_id=_check_id("txn.card_id", txn.card_id, True),
        merchant_id=_check_id("txn.merchant_id", txn.merchant_id, True),
        terminal_id=_check_id("txn.terminal_id", txn.terminal_id, False),
        device_id=_check_id("txn.device_id", txn.device_id, False),
        country=txn.country or "",
        ip=txn.ip or "",
    )
    # what the wire cannot carry is ours to refuse (protobuf's own ValueError
    # is not a VigilError); the rest of the range is the server's
    if isinstance(txn.mcc, bool) or not isinstance(txn.mcc, int) or not 0 <= txn.mcc < 2 ** 32:
        raise InvalidArgument("txn.mcc: mcc %s is not a 4-digit merchant category code"
                              % txn.mcc, field="txn.mcc")
    t.mcc = txn.mcc
    if not txn.currency:
        raise InvalidArgument("txn.currency: required", field="txn.currency")
    t.currency = txn.currency
    if txn.amount_minor is None:
        raise InvalidArgument("txn.amount_minor: required (or amount)", field="txn.amount_minor")
    if (not isinstance(txn.amount_minor, int) or isinstance(txn.amount_minor, bool) or
            not -2 ** 63 <= txn.amount_minor < 2 ** 63):
        raise InvalidArgument("txn.amount_minor: must be an integer (minor units)",
                              field="txn.amount_minor")
    t.amount_minor = txn.amount_minor
    # the event-time rule of every JSON reader (docs/protocol.md): absent
    # (None) is now; an explicit 0 is refused, as vigild and the C client do
    if txn.event_time_ms is not None and txn.event_time_ms <= 0:
        raise InvalidArgument("txn.event_time_ms: required (Unix milliseconds > 0)",
                              field="txn.event_time_ms")
    t.event_time_ms = (txn.event_time_ms if txn.event_time_ms is not None
                       else int(time.time() * 1000))
    ch = txn.channel
    if isinstance(ch, str):
        if ch.lower() not in _CHANNELS:
            raise InvalidArgument("txn.channel: must be one of pos, ecom, atm, moto, unknown",
                                  field="txn.channel")
        ch = _CHANNELS[ch.lower()]
    t.channel = int(ch)
    if (txn.latitude is None) != (txn.longitude is None):
        raise InvalidArgument("txn.location: latitude and longitude go together",
                              field="txn.location")
    if txn.latitude is not None:
        t.location.latitude = float(txn.latitude)
        t.location.longitude = float(txn.longitude)
    if len(txn.attributes or {}) > MAX_ATTRS:
        raise InvalidArgument("txn.attributes: %d given, at most %d"
                              % (len(txn.attributes), MAX_ATTRS), field="txn.attributes")
    for k, v in (txn.attributes or {}).items():
        t.attributes.add(key=str(k), value=str(v))
    req = _pb.Request(score=_pb.ScoreRequest(txn=t, dry_run=bool(dry_run)))
    data = req.SerializeToString()
    if len(data) > MAX_REQUEST:
        raise InvalidArgument("request is %d bytes, over the %d-byte cap" % (len(data), MAX_REQUEST))
    return t.txn_id, t.card_id, data


# ---- replicas and pooled call slots ----


class _Replica:
    def __init__(self, url):
        self.url = url
        self.sock = _nng.Socket()
        self.open = False
        self.npipes = 0
        self.inflight = set()
        self.cb = None


class _Slot:
    """One call's aio and its REQ contexts (one per replica), pooled."""

    def __init__(self):
        self.aio = ctypes.c_void_p()
        self.ctxs = {}
        self.disc = False
        self.was_connected = False


class Client:
    """A connection to one or several vigild replicas.

    servers: one URL or a list ("tls+tcp://host:9465", "tcp://host:9465",
    "ipc:///run/vigil/vigild.sock").
    timeout: seconds per attempt (send and reply). attempts: per call,
    counting the first. connect_wait: seconds the constructor waits for every
    replica to connect (a replica that is down does not fail it). backoff:
    pause before re-sending to a replica already tried in the call.
    workers: threads serving score_async. max_inflight: cap on score_async
    calls not yet finished.

    Mutual TLS (tls+tcp:// URLs; docs/security.md): tls_ca is the PEM CA
    that signed the servers' certificates (required for tls+tcp://: the
    server is always verified); tls_cert and tls_key (unencrypted PEM) are
    this client's certificate, which a vigild with [tls] ca requires;
    tls_server_name is the name the servers' certificates must carry
    (default: each URL's host). A failed handshake shows as Unreachable.
    """

    def __init__(self, servers: Union[str, Sequence[str]], *, timeout: float = 1.0,
                 attempts: int = 3, connect_wait: float = 1.0, backoff: float = 0.02,
                 vnodes: int = 160, max_reply_bytes: int = 1 << 20, workers: int = 8,
                 max_inflight: int = 4096, tls_ca: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                 tls_server_name: Optional[str] = None):
        urls = [servers] if isinstance(servers, str) else list(servers)
        if not 1 <= len(urls) <= 64:
            raise InvalidArgument("need 1 to 64 server URLs, got %d" % len(urls))
        for i, u in enumerate(urls):
            if not isinstance(u, str) or not u or len(u) > 1024:
                raise InvalidArgument("server URL %d: empty or longer than 1024 bytes" % (i + 1))
            if u in urls[:i]:
                raise InvalidArgument("%s: server URL given twice" % u)
        if timeout <= 0 or attempts < 1:
            raise InvalidArgument("timeout must be > 0 and attempts >= 1")
        if not 1 <= vnodes <= 4096:
            raise InvalidArgument("vnodes must be in [1, 4096]")
        for name, value in (("max_reply_bytes", max_reply_bytes), ("workers", workers),
                            ("max_inflight", max_inflight)):
            if value < 1:
                raise InvalidArgument("%s must be >= 1" % name)
        if bool(tls_cert) != bool(tls_key):
            raise InvalidArgument("tls_cert and tls_key go together")
        self._tls = (tls_ca, tls_cert, tls_key, tls_server_name)
        for u in urls:
            if u.startswith("tls+") and not tls_ca:
                raise InvalidArgument("%s: a tls+tcp:// URL needs tls_ca (the CA that signed "
                                      "the server's certificate)" % u)
        self._timeout_ms = max(1, int(timeout * 1000))
        self._attempts = min(int(attempts), 100)
        self._backoff = max(0.0, float(backoff))
        self._workers = max(1, int(workers))
        self._max_inflight = max(1, int(max_inflight))
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._closed = False
        self._active = 0
        self._pending_async = 0
        self._slots = []       # every call slot, for close
        self._free_slots = []  # those not in use by a call
        self._local = threading.local()
        self._executor = None
        self._ring = Ring(urls, vnodes)
        self._reps = [_Replica(u) for u in urls]
        try:
            for r in self._reps:
                self._replica_open(r, max_reply_bytes)
        except BaseException:
            self._release()
            raise
        _open_clients.add(self)
        deadline = time.monotonic() + max(0.0, connect_wait)
        with self._cv:
            while any(r.npipes == 0 for r in self._reps):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.05))

    # -- lifecycle --

    def _replica_open(self, r, max_reply_bytes):
        rv = _nng.req0_open(ctypes.byref(r.sock))
        if rv == 0:
            r.open = True
            rv = _nng.socket_set_ms(r.sock, _nng.NNG_OPT_REQ_RESENDTIME, _nng.NNG_DURATION_INFINITE)
        if rv == 0:
            rv = _nng.socket_set_size(r.sock, _nng.NNG_OPT_RECVMAXSZ, max_reply_bytes)
        if rv == 0:
            rv = _nng.socket_set_ms(r.sock, _nng.NNG_OPT_RECONNMINT, 50)
        if rv == 0:
            rv = _nng.socket_set_ms(r.sock, _nng.NNG_OPT_RECONNMAXT, 1000)
        if rv == 0:
            r.cb = _nng.PIPE_CB(lambda pipe, ev, arg, rep=r: self._pipe_event(rep, ev))
            rv = _nng.pipe_notify(r.sock, _nng.NNG_PIPE_EV_ADD_POST, r.cb, None)
            if rv == 0:
                rv = _nng.pipe_notify(r.sock, _nng.NNG_PIPE_EV_REM_POST, r.cb, None)
        if rv == 0 and r.url.startswith("tls+"):
            rv = self._tls_dial(r)
        elif rv == 0:
            rv = _nng.dial(r.sock, r.url.encode(), None, _nng.NNG_FLAG_NONBLOCK)
        if rv != 0:
            cls = MemoryError if rv == _nng.NNG_ENOMEM else TransportError
            raise cls("%s: %s" % (r.url, _nng.strerror(rv)))

    def _tls_dial(self, r):
        """Starts a tls+tcp:// dialer: TLS 1.2, the server verified against
        tls_ca for tls_server_name (or the URL's host), our certificate if
        given. Returns an nng error code; raises InvalidArgument for a file
        that cannot be read."""
        ca, cert, key, name = self._tls
        pems = [None if not path else _read_pem(r.url, path) for path in (ca, cert, key)]
        if name is None:
            # the URL's host: tls+tcp://HOST:PORT, [v6]:PORT
            host = r.url.split("://", 1)[1].rsplit(":", 1)[0]
            name = host[1:-1] if host.startswith("[") else host
        d = _nng.Dialer()
        cfg = ctypes.c_void_p()
        rv = _nng.dialer_create(ctypes.byref(d), r.sock, r.url.encode())
        if rv == 0:
            rv = _nng.tls_config_alloc(ctypes.byref(cfg), _nng.NNG_TLS_MODE_CLIENT)
        try:
            if rv == 0:
                rv = _nng.tls_config_version(cfg, _nng.NNG_TLS_1_2, _nng.NNG_TLS_1_2)
            if rv == 0:
                # the text read, not the name: nng reads nothing again
                rv = _nng.tls_config_ca_chain(cfg, pems[0], None)
                if rv != 0:
                    raise InvalidArgument("%s: %s: %s" % (
                        r.url, ca, "not a PEM X.509 certificate" if rv == _nng.NNG_ECRYPTO
                        else _nng.strerror(rv)))
            if rv == 0 and cert:
                rv = _nng.tls_config_own_cert(cfg, pems[1], pems[2], None)
                if rv != 0:
                    raise InvalidArgument("%s: %s: %s" % (
                        r.url, cert, "not a PEM X.509 certificate and its private key"
                        if rv == _nng.NNG_ECRYPTO else _nng.strerror(rv)))
            if rv == 0:
                rv = _nng.tls_config_server_name(cfg, name.encode())
            if rv == 0:
                rv = _nng.tls_config_auth_mode(cfg, _nng.NNG_TLS_AUTH_MODE_REQUIRED)
            if rv == 0:
                rv = _nng.dialer_set_ptr(d, _nng.NNG_OPT_TLS_CONFIG, cfg)
        finally:
            if cfg:
                _nng.tls_config_free(cfg)  # the dialer holds its own reference
        if rv == 0:
            rv = _nng.dialer_start(d, _nng.NNG_FLAG_NONBLOCK)
        return rv

    def _pipe_event(self, r, ev):
        # runs on an nng thread
        with self._cv:
            if ev == _nng.NNG_PIPE_EV_ADD_POST:
                r.npipes += 1
                self._cv.notify_all()
            elif ev == _nng.NNG_PIPE_EV_REM_POST:
                r.npipes = max(0, r.npipes - 1)
                if r.npipes == 0:
                    # the requests waiting there will not be answered: fail over now
                    for slot in r.inflight:
                        slot.disc = True
                        _nng.aio_cancel(slot.aio)

    def close(self):
        """Cancels calls in flight (they raise ClientClosed), waits for them,
        closes the sockets. Idempotent; may be called from a score_async
        callback."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
            for r in self._reps:
                for slot in r.inflight:
                    _nng.aio_cancel(slot.aio)
            executor = self._executor
        if executor is not None:
            # Queued calls still run, at once, and raise ClientClosed (not
            # the Future's CancelledError). A worker (a callback of a Future
            # it completed) cannot wait for itself; its own call is over.
            executor.shutdown(wait=not getattr(self._local, "worker", False))
        with self._cv:
            while self._active > 0:
                self._cv.wait()
        self._release()

    def _release(self):
        for r in self._reps:
            if r.open:
                _nng.close(r.sock)  # closes its contexts
                r.open = False
        for slot in self._slots:
            if slot.aio:
                _nng.aio_free(slot.aio)
                slot.aio = ctypes.c_void_p()
        self._slots = []
        self._free_slots = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing sensible to do
            pass

    # -- routing --

    @property
    def replicas(self):
        """The replica URLs, in the order given."""
        return [r.url for r in self._reps]

    def route(self, card_id: str) -> str:
        """URL of the replica that owns card_id on the ring."""
        return self._reps[self._ring.owner(card_id)].url

    def connected(self, url: str) -> bool:
        """Whether the replica has a live connection now."""
        with self._lock:
            for r in self._reps:
                if r.url == url:
                    return r.npipes > 0
        raise KeyError(url)

    # -- the call machinery --

    def _slot_get(self):
        """A call slot from the pool, or a new one: a slot belongs to one
        call at a time, not to a thread, so threads that come and go (one
        per request) do not each keep an aio and contexts until close."""
        with self._lock:
            if self._free_slots:
                return self._free_slots.pop()
        slot = _Slot()
        if _nng.aio_alloc(ctypes.byref(slot.aio), None, None) != 0:
            raise MemoryError("nng_aio_alloc")
        with self._lock:
            self._slots.append(slot)
        return slot

    def _pick(self, order, tried, attempt):
        with self._lock:
            for i in order:
                if i not in tried and self._reps[i].npipes > 0:
                    return i, False
            n = len(order)
            for k in range(n):
                i = order[(k + attempt) % n]
                if self._reps[i].npipes > 0:
                    return i, True
            for i in order:
                if i not in tried:
                    return i, False
            return order[attempt % n], True

    def _aio_failed(self, r, slot, rv, timeout_ms):
        with self._lock:
            up = r.npipes > 0
            closed = self._closed
        if closed and rv in (_nng.NNG_ECANCELED, _nng.NNG_ECLOSED):
            return ClientClosed("client closed during the call")
        if (rv == _nng.NNG_ECANCELED and slot.disc) or rv in (
                _nng.NNG_ECONNRESET, _nng.NNG_ECONNSHUT, _nng.NNG_ECONNABORTED):
            return Unreachable("%s: connection lost" % r.url)
        if rv == _nng.NNG_ETIMEDOUT and not up and not slot.was_connected:
            return Unreachable("%s: not connected within %d ms (is vigild running there?)"
                               % (r.url, timeout_ms))
        if rv == _nng.NNG_ETIMEDOUT:
            return Timeout("%s: no reply within %d ms" % (r.url, timeout_ms))
        if rv in (_nng.NNG_ECONNREFUSED, _nng.NNG_EUNREACHABLE, _nng.NNG_EADDRINVAL):
            return Unreachable("%s: %s" % (r.url, _nng.strerror(rv)))
        return TransportError("%s: %s" % (r.url, _nng.strerror(rv)))

    def _exchange(self, slot, idx, data, timeout_ms):
        """One request/reply on replica idx; returns the reply bytes or raises."""
        r = self._reps[idx]
        ctx = slot.ctxs.get(idx)
        if ctx is None:
            ctx = _nng.Ctx()
            rv = _nng.ctx_open(ctypes.byref(ctx), r.sock)
            if rv != 0:
                raise TransportError("%s: %s" % (r.url, _nng.strerror(rv)))
            slot.ctxs[idx] = ctx
        msg = _nng.msg_from_bytes(data)
        with self._lock:
            slot.disc = False
            slot.was_connected = r.npipes > 0
            r.inflight.add(slot)
        try:
            deadline = time.monotonic() + timeout_ms / 1000.0
            _nng.aio_set_msg(slot.aio, msg)
            _nng.aio_set_timeout(slot.aio, timeout_ms)
            _nng.ctx_send(ctx, slot.aio)
            self._recheck(slot)
            _nng.aio_wait(slot.aio)
            rv = _nng.aio_result(slot.aio)
            if rv != 0:
                _nng.msg_free(_nng.aio_get_msg(slot.aio))
                _nng.aio_set_msg(slot.aio, None)
                raise self._aio_failed(r, slot, rv, timeout_ms)
            left = max(1, int((deadline - time.monotonic()) * 1000))
            _nng.aio_set_timeout(slot.aio, left)
            _nng.ctx_recv(ctx, slot.aio)
            self._recheck(slot)
            _nng.aio_wait(slot.aio)
            rv = _nng.aio_result(slot.aio)
            if rv != 0:
                raise self._aio_failed(r, slot, rv, timeout_ms)
            reply = _nng.aio_get_msg(slot.aio)
            _nng.aio_set_msg(slot.aio, None)
            try:
                return _nng.msg_to_bytes(reply)
            finally:
                _nng.msg_free(reply)
        finally:
            with self._lock:
                r.inflight.discard(slot)

    def _recheck(self, slot):
        # a disconnect or close that raced with issuing the operation
        with self._lock:
            if slot.disc or self._closed:
                _nng.aio_cancel(slot.aio)

    def _decode(self, url, data, kind, txn_id):
        try:
            rep = _pb.Reply.FromString(data)
        except Exception:
            raise ProtocolError("%s: reply is not a vigil.v1.Reply (%d bytes)" % (url, len(data)))
        if rep.status != _pb.STATUS_OK:
            cls = _STATUS_ERRORS.get(rep.status)
            if cls is None:
                raise ProtocolError("%s: reply has unknown status %d" % (url, rep.status))
            msg = " ".join((rep.message or cls.__name__).splitlines())
            raise cls("%s: %s" % (url, msg), field=rep.field)
        which = rep.WhichOneof("kind")
        if which != kind:
            raise ProtocolError("%s: reply to a %s carries no %s (kind %s)"
                                % (url, kind, kind, which))
        if kind == "score" and rep.score.txn_id and rep.score.txn_id != txn_id:
            raise ProtocolError('%s: reply is for txn_id "%s", not "%s"'
                                % (url, rep.score.txn_id[:64], txn_id))
        if kind == "score" and rep.score.decision not in (1, 2, 3):
            # nothing a caller could act on: never hand it out as a decision
            if rep.score.decision == 0:
                raise ProtocolError("%s: reply to a score carries no decision" % url)
            raise ProtocolError("%s: reply has unknown decision %d" % (url, rep.score.decision))
        return rep

    def _call_opts(self, timeout, attempts):
        """Per-call timeout in ms and attempts; None means the client's."""
        if timeout is not None and not timeout > 0:
            raise InvalidArgument("timeout must be > 0")
        if attempts is not None and int(attempts) < 1:
            raise InvalidArgument("attempts must be >= 1")
        timeout_ms = self._timeout_ms if timeout is None else max(1, int(timeout * 1000))
        attempts = self._attempts if attempts is None else min(int(attempts), 100)
        return timeout_ms, attempts

    def _call(self, data, key, kind, txn_id, timeout, attempts, only=None):
        timeout_ms, attempts = self._call_opts(timeout, attempts)
        with self._lock:
            if self._closed:
                raise ClientClosed("client is closed")
            self._active += 1
        slot = None
        try:
            slot = self._slot_get()
            order = self._ring.order(key) if only is None else [only]
            tried = set()
            last = None
            for n in range(1, attempts + 1):
                with self._lock:
                    if self._closed:
                        raise ClientClosed("client closed during the call", attempts=n - 1)
                idx, backoff = self._pick(order, tried, n - 1)
                tried.add(idx)
                if backoff and self._backoff > 0:
                    time.sleep(self._backoff)
                url = self._reps[idx].url
                try:
                    rep = self._decode(url, self._exchange(slot, idx, data, timeout_ms), kind, txn_id)
                except VigilError as e:
                    e.attempts = n
                    if not isinstance(e, _RETRYABLE):
                        raise
                    last = e
                    continue
                return rep, url, n
            raise last
        finally:
            with self._cv:
                if slot is not None:
                    self._free_slots.append(slot)
                self._active -= 1
                if self._active == 0:
                    self._cv.notify_all()

    # -- public calls --

    def score(self, txn: Union[Transaction, Mapping], *, dry_run: bool = False,
              timeout: Optional[float] = None, attempts: Optional[int] = None) -> ScoreResult:
        """Scores txn; returns a ScoreResult or raises a VigilError subclass."""
        return self._score_encoded(_encode_txn(txn, dry_run), timeout, attempts)

    def _score_encoded(self, encoded, timeout, attempts):
        txn_id, card_id, data = encoded
        rep, url, n = self._call(data, card_id, "score", txn_id, timeout, attempts)
        s = rep.score
        return ScoreResult(
            txn_id=s.txn_id or txn_id, score=_score_of(s), points=s.points,
            decision=_DECISIONS.get(s.decision, "none"),
            hits=tuple(Hit(h.rule, h.points, h.reason, h.shadow) for h in s.hits),
            rules_version=s.rules_version, features_generation=s.features_generation,
            latency_us=s.latency_us, duplicate=s.duplicate, dry_run=s.dry_run,
            attempts=n, replica=url, late=s.late, past_dedupe_horizon=s.past_dedupe_horizon,
            model_score=s.model.score if s.HasField("model") else None,
            model_reasons=tuple(ModelReason(m.feature, m.value, m.contribution)
                                for m in s.model.reasons),
            rules_hash=s.rules_hash)

    def score_async(self, txn: Union[Transaction, Mapping], *, callback=None,
                    **kwargs) -> "concurrent.futures.Future[ScoreResult]":
        """Starts scoring txn on the client's worker threads; returns a Future
        (its result() is the ScoreResult or raises). callback(future), if
        given, runs when it is done. The request is encoded (and checked) now:
        InvalidArgument is raised here, not through the Future."""
        unknown = set(kwargs) - {"dry_run", "timeout", "attempts"}
        if unknown:
            raise TypeError("score_async() got an unexpected keyword argument %r"
                            % sorted(unknown)[0])
        # encoded once, now: the caller may change txn afterwards, and a call
        # waiting for a worker keeps the event time of this moment
        encoded = _encode_txn(txn, kwargs.get("dry_run", False))
        timeout, attempts = kwargs.get("timeout"), kwargs.get("attempts")
        self._call_opts(timeout, attempts)
        with self._lock:
            if self._closed:
                raise ClientClosed("client is closed")
            if self._pending_async >= self._max_inflight:
                raise TooManyInFlight("%d calls already in flight" % self._max_inflight)
            self._pending_async += 1
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="vigil-client")
            executor = self._executor
        try:
            fut = executor.submit(self._score_worker, encoded, timeout, attempts)
        except BaseException:
            with self._lock:
                self._pending_async -= 1
            raise

        def _done(_f):
            with self._lock:
                self._pending_async -= 1

        fut.add_done_callback(_done)
        if callback is not None:
            fut.add_done_callback(callback)
        return fut

    def _score_worker(self, encoded, timeout, attempts):
        self._local.worker = True  # see close()
        return self._score_encoded(encoded, timeout, attempts)

    def label(self, txn_id: str, fraud: bool, *, card_id: Optional[str] = None,
              source: str = "", label_time_ms: int = 0, timeout: Optional[float] = None,
              attempts: Optional[int] = None) -> None:
        """Sends a label (fraud=True: confirmed fraud). Routed by card_id when
        given, else by txn_id. Raises a VigilError subclass on failure."""
        txn_id = _check_id("label.txn_id", txn_id, True)
        card_id = _check_id("label.card_id", card_id, False)
        req = _pb.Request(label=_pb.LabelRequest(label=_pb.Label(
            txn_id=txn_id, fraud=bool(fraud), card_id=card_id, source=source or "",
            label_time_ms=int(label_time_ms))))
        self._call(req.SerializeToString(), card_id or txn_id, "label", txn_id, timeout, attempts)

    def health(self, replica: Optional[str] = None, *, timeout: Optional[float] = None) -> Health:
        """Asks one replica (default: the first) whether it is ready. Not
        retried on other replicas: the answer is about that one."""
        urls = self.replicas
        idx = 0 if replica is None else urls.index(replica) if replica in urls else -1
        if idx < 0:
            raise InvalidArgument("%s: not a replica of this client" % replica)
        data = _pb.Request(health=_pb.HealthRequest()).SerializeToString()
        rep, url, _ = self._call(data, "", "health", "", timeout, 1, only=idx)
        h = rep.health
        return Health(ready=h.ready, server_version=h.server_version, uptime_s=h.uptime_s,
                      rules_version=h.rules_version, rules_hash=h.rules_hash,
                      features_generation=h.features_generation, replica=url)
