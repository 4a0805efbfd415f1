# SPDX-License-Identifier: MIT
"""tests/clients/test_python_client.py - the vigil_client Python package.

Against peers written here (a REP socket that never answers, one that
answers garbage, a server that is down) and against real vigild processes
started from the build tree: scores, duplicates, dry runs, labels, invalid
fields, asynchronous futures, two replicas with one killed, the hash
ring agreeing with libvigil-client's, and mutual TLS. Run by `meson test` (suite
integration) with VIGIL_BUILD_ROOT / VIGIL_SOURCE_ROOT set.
"""

import ctypes
import dataclasses
import faulthandler
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BUILD = os.environ["VIGIL_BUILD_ROOT"]
SOURCE = os.environ["VIGIL_SOURCE_ROOT"]
sys.path.insert(0, os.path.join(BUILD, "clients", "python"))

import vigil_client as vc  # noqa: E402
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))
from vt_port import free_port  # noqa: E402
from vigil_client import _nng  # noqa: E402

RULES = os.path.join(SOURCE, "tests", "clients", "clients.rules")
RULES_VERSION = [l.split('"')[1] for l in open(RULES) if l.startswith("version ")][0]
VIGILD = os.path.join(BUILD, "server", "vigild")
SCORE = os.path.join(BUILD, "tools", "score", "vigil-score")


def txn(txn_id, card_id="card-1", amount_minor=1234, **kw):
    return vc.Transaction(txn_id=txn_id, card_id=card_id, merchant_id="m-1",
                          amount_minor=amount_minor, currency="EUR", country="FR",
                          channel="ecom", mcc=5411, event_time_ms=1795000000000, **kw)


class Vigild:
    """A vigild child process, by default on ipc://<tmp>/vigild.sock; args
    are added to its command line, client the TLS options of the client
    that waits for it to be ready."""

    READY_S = 60  # a first TLS handshake on a loaded CI machine can take seconds

    def __init__(self, datadir=None, url=None, args=(), client=None):
        self.datadir = datadir or tempfile.mkdtemp(prefix="vigil-pytest-")
        self.url = url or "ipc://%s/vigild.sock" % self.datadir
        self.log_path = os.path.join(self.datadir, "vigild.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [VIGILD, "--data", self.datadir, "--listen", self.url, "--admin", "off",
             "--rules", RULES] + list(args), stdout=self.log, stderr=self.log)
        # One client for the whole wait: its dialer keeps the connection it
        # makes, so a slow handshake is finished rather than started again.
        deadline = time.monotonic() + self.READY_S
        with vc.Client(self.url, timeout=1, attempts=1, connect_wait=0, **(client or {})) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("vigild exited with %d: %s"
                                       % (self.proc.returncode, self.log_tail()))
                try:
                    if c.health().ready:
                        return
                except vc.VigilError:
                    pass
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("vigild on %s not ready after %d s: %s"
                           % (self.url, self.READY_S, self.log_tail()))

    def log_tail(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return " | ".join(lines[-5:]) or "(its log is empty)"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        """SIGTERM, then the exit status (that of the kill if it was killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.datadir, ignore_errors=True)
        return self.proc.returncode


class Peer:
    """A REP socket on a thread: mode "silent" never answers, "garbage"
    answers bytes that are not a Reply."""

    def __init__(self, mode, path):
        lib = _nng.lib
        lib.nng_rep0_open.argtypes = [ctypes.POINTER(_nng.Socket)]
        lib.nng_listen.argtypes = [_nng.Socket, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
        lib.nng_recv.argtypes = [_nng.Socket, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                                 ctypes.c_int]
        lib.nng_send.argtypes = [_nng.Socket, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.mode = mode
        self.url = "ipc://" + path
        self.sock = _nng.Socket()
        self.requests = 0
        self.last = b""  # the last request's bytes
        self.stop_flag = False
        assert lib.nng_rep0_open(ctypes.byref(self.sock)) == 0
        assert _nng.socket_set_ms(self.sock, b"recv-timeout", 50) == 0
        assert lib.nng_listen(self.sock, self.url.encode(), None, 0) == 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        lib = _nng.lib
        buf = ctypes.create_string_buffer(65536)
        while not self.stop_flag:
            n = ctypes.c_size_t(len(buf))
            if lib.nng_recv(self.sock, buf, ctypes.byref(n), 0) != 0:
                continue
            self.requests += 1
            self.last = buf.raw[:n.value]
            if self.mode == "garbage":
                junk = b"\x0a\xff\xff\xff\x7fjunk"
                lib.nng_send(self.sock, junk, len(junk), 0)
            elif isinstance(self.mode, bytes):  # a fixed reply
                lib.nng_send(self.sock, self.mode, len(self.mode), 0)

    def stop(self):
        self.stop_flag = True
        self.thread.join()
        _nng.close(self.sock)


class PeerTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vigil-pyclients-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_bad_arguments(self):
        with self.assertRaises(vc.InvalidArgument):
            vc.Client([])
        with self.assertRaises(vc.InvalidArgument) as cm:
            vc.Client(["ipc:///tmp/a.sock", "ipc:///tmp/a.sock"])
        self.assertEqual(cm.exception.message, "ipc:///tmp/a.sock: server URL given twice")
        with self.assertRaises(vc.TransportError):
            vc.Client("nonsense://x")
        with vc.Client("ipc://%s/none.sock" % self.dir, connect_wait=0) as c:
            with self.assertRaises(vc.InvalidArgument) as cm:
                c.score(txn("t", card_id=""))
            self.assertEqual(cm.exception.field, "txn.card_id")
            self.assertEqual(str(cm.exception), "txn.card_id: required")
            with self.assertRaises(vc.InvalidArgument) as cm:
                c.score(txn("x" * 65))
            self.assertEqual(str(cm.exception), "txn.txn_id: longer than 64 bytes")
            with self.assertRaises(vc.InvalidArgument):
                c.label("", fraud=True)

    def test_bad_call_options(self):
        # per call as in the constructor: a timeout <= 0 or attempts < 1 is
        # refused, not turned into a 1 ms timeout or a single attempt
        with vc.Client("ipc://%s/none.sock" % self.dir, connect_wait=0) as c:
            for kw in ({"timeout": 0}, {"timeout": -1}, {"attempts": 0}, {"attempts": -2}):
                with self.assertRaises(vc.InvalidArgument) as cm:
                    c.score(txn("t-opt"), **kw)
                self.assertEqual(cm.exception.attempts, 0)
                with self.assertRaises(vc.InvalidArgument):
                    c.label("t-opt", fraud=True, **kw)
                with self.assertRaises(vc.InvalidArgument):
                    c.score_async(txn("t-opt"), **kw)
            with self.assertRaises(vc.InvalidArgument):
                c.health(timeout=0)

    def test_checks_of_the_c_library(self):
        # what libvigil-client refuses as EINVAL before sending, so does this one
        with vc.Client("ipc://%s/none.sock" % self.dir, connect_wait=0, timeout=0.05) as c:
            with self.assertRaises(vc.InvalidArgument) as cm:
                c.score(txn("t-attrs", attributes={"k%d" % i: "v" for i in range(65)}))
            self.assertEqual(cm.exception.field, "txn.attributes")
            self.assertEqual(cm.exception.message, "txn.attributes: 65 given, at most 64")
            with self.assertRaises(vc.InvalidArgument) as cm:
                c.score(vc.Transaction("t-neg", "card-1", "m-1", 5, "EUR", event_time_ms=-1))
            self.assertEqual(cm.exception.field, "txn.event_time_ms")
            self.assertEqual(cm.exception.message,
                             "txn.event_time_ms: required (Unix milliseconds > 0)")
            # the event-time rule (docs/protocol.md): an explicit 0 is not
            # absent: refused as vigild and the C client refuse it, in a
            # Transaction and in the JSON shape alike
            for t in (vc.Transaction("t-zero", "card-1", "m-1", 5, "EUR", event_time_ms=0),
                      {"txn_id": "t-zero", "card_id": "card-1", "merchant_id": "m-1",
                       "amount_minor": 5, "currency": "EUR", "event_time_ms": 0}):
                with self.assertRaises(vc.InvalidArgument) as cm:
                    c.score(t)
                self.assertEqual(cm.exception.field, "txn.event_time_ms")

    def test_bad_client_options(self):
        # a VigilError (InvalidArgument) naming the option, not a bare
        # ValueError, a TransportError blaming the URL, or a silent 1
        url = "ipc://%s/none.sock" % self.dir
        for kw, want in (({"vnodes": 0}, "vnodes must be in [1, 4096]"),
                         ({"vnodes": 5000}, "vnodes must be in [1, 4096]"),
                         ({"max_reply_bytes": -1}, "max_reply_bytes must be >= 1"),
                         ({"workers": 0}, "workers must be >= 1"),
                         ({"max_inflight": 0}, "max_inflight must be >= 1")):
            with self.assertRaises(vc.InvalidArgument) as cm:
                vc.Client(url, connect_wait=0, **kw)
            self.assertEqual(cm.exception.message, want)

    def test_server_down(self):
        url = "ipc://%s/nobody.sock" % self.dir
        with vc.Client(url, timeout=0.1, attempts=2, connect_wait=0) as c:
            self.assertFalse(c.connected(url))
            with self.assertRaises(vc.Unreachable) as cm:
                c.score(txn("t-down"))
            e = cm.exception
            self.assertEqual(e.code, "EUNREACHABLE")
            self.assertEqual(e.attempts, 2)
            self.assertEqual(e.message,
                             url + ": not connected within 100 ms (is vigild running there?)")

    def test_timeout(self):
        p = Peer("silent", os.path.join(self.dir, "silent.sock"))
        try:
            with vc.Client(p.url, timeout=0.1, attempts=2, backoff=0.005) as c:
                with self.assertRaises(vc.Timeout) as cm:
                    c.score(txn("t-slow"))
                self.assertEqual(cm.exception.message, p.url + ": no reply within 100 ms")
                self.assertEqual(cm.exception.attempts, 2)
                self.assertIsInstance(cm.exception, TimeoutError)
        finally:
            p.stop()
        self.assertEqual(p.requests, 2)

    def test_close_cancels_calls_in_flight(self):
        p = Peer("silent", os.path.join(self.dir, "close.sock"))
        try:
            c = vc.Client(p.url, timeout=60, attempts=1, workers=2, max_inflight=2)
            futs = [c.score_async(txn("t-close-%d" % i)) for i in range(2)]
            with self.assertRaises(vc.TooManyInFlight) as cm:
                c.score_async(txn("t-close-3"))
            self.assertEqual(cm.exception.message, "2 calls already in flight")
            while p.requests < 2:  # both are waiting on the silent peer
                time.sleep(0.01)
            c.close()
            for f in futs:
                with self.assertRaises(vc.ClientClosed):
                    f.result(timeout=30)
            with self.assertRaises(vc.ClientClosed):
                c.score(txn("t-after"))
            c.close()  # idempotent
        finally:
            p.stop()

    def test_close_fails_queued_calls_as_closed(self):
        # one worker: one call waits on the silent peer, two wait in the queue
        p = Peer("silent", os.path.join(self.dir, "queued.sock"))
        try:
            c = vc.Client(p.url, timeout=60, attempts=1, workers=1)
            futs = [c.score_async(txn("t-queued-%d" % i)) for i in range(3)]
            while p.requests < 1:
                time.sleep(0.01)
            c.close()
            for f in futs:
                with self.assertRaises(vc.ClientClosed):
                    f.result(timeout=30)
        finally:
            p.stop()

    def test_close_from_a_callback(self):
        p = Peer("silent", os.path.join(self.dir, "cbclose.sock"))
        try:
            c = vc.Client(p.url, timeout=0.05, attempts=1, workers=1)
            done = threading.Event()
            errors = []

            def on_done(_f):
                try:
                    c.close()
                except BaseException as e:  # noqa: B902 - reported below
                    errors.append(e)
                done.set()

            fut = c.score_async(txn("t-cb-close"), callback=on_done)
            self.assertTrue(done.wait(30))
            self.assertEqual(errors, [])
            with self.assertRaises(vc.Timeout):
                fut.result()
            self.assertEqual([r.open for r in c._reps], [False])
            with self.assertRaises(vc.ClientClosed):
                c.score(txn("t-after-cb-close"))
        finally:
            p.stop()

    def test_score_async_encodes_at_once(self):
        # the request is encoded when score_async returns: changing the dict
        # afterwards, or waiting in the queue, changes nothing that is sent
        p = Peer("silent", os.path.join(self.dir, "enc.sock"))
        try:
            with vc.Client(p.url, timeout=0.3, attempts=1, workers=1) as c:
                first = c.score_async(txn("t-enc-0"))  # holds the only worker
                d = {"txn_id": "t-enc-1", "card_id": "card-1", "merchant_id": "m-1",
                     "amount_minor": 100, "currency": "EUR"}
                before = int(time.time() * 1000)
                second = c.score_async(d)
                after = int(time.time() * 1000)
                d["txn_id"] = "t-enc-changed"
                d["amount_minor"] = 999
                for f in (first, second):
                    with self.assertRaises(vc.Timeout):
                        f.result(timeout=30)
            for _ in range(3000):  # the peer's thread may lag (30 s: only a bug)
                if p.requests >= 2:
                    break
                time.sleep(0.01)
            self.assertEqual(p.requests, 2)
            req = vc._pb.Request.FromString(p.last)
            self.assertEqual(req.score.txn.txn_id, "t-enc-1")
            self.assertEqual(req.score.txn.amount_minor, 100)
            self.assertTrue(before <= req.score.txn.event_time_ms <= after)
        finally:
            p.stop()

    def test_garbage(self):
        p = Peer("garbage", os.path.join(self.dir, "garbage.sock"))
        try:
            with vc.Client(p.url, timeout=1, attempts=1) as c:
                with self.assertRaises(vc.ProtocolError) as cm:
                    c.score(txn("t-junk"))
                self.assertEqual(cm.exception.message,
                                 p.url + ": reply is not a vigil.v1.Reply (9 bytes)")
        finally:
            p.stop()

    def test_score_without_valid_decision(self):
        pb = vc._pb
        for dec, want in ((0, "reply to a score carries no decision"),
                          (7, "reply has unknown decision 7")):
            reply = pb.Reply(score=pb.ScoreReply(txn_id="t-dec", score=10, decision=dec))
            p = Peer(reply.SerializeToString(), os.path.join(self.dir, "dec%d.sock" % dec))
            try:
                with vc.Client(p.url, timeout=5, attempts=1) as c:
                    with self.assertRaises(vc.ProtocolError) as cm:
                        c.score(txn("t-dec"))
                    self.assertEqual(cm.exception.message, "%s: %s" % (p.url, want))
            finally:
                p.stop()

    def test_reply_without_txn_id(self):
        # accepted (only another txn_id is refused); the result names the request's
        reply = vc._pb.Reply(score=vc._pb.ScoreReply(score=10, decision=vc._pb.ALLOW))
        p = Peer(reply.SerializeToString(), os.path.join(self.dir, "noid.sock"))
        try:
            with vc.Client(p.url, timeout=5, attempts=1) as c:
                self.assertEqual(c.score(txn("t-noid")).txn_id, "t-noid")
        finally:
            p.stop()

    def test_threads_come_and_go(self):
        # a thread per request (a threading HTTP server): the nng resources
        # of a call are reused by the next one, not kept per thread forever
        reply = vc._pb.Reply(score=vc._pb.ScoreReply(score=1, decision=vc._pb.ALLOW))
        p = Peer(reply.SerializeToString(), os.path.join(self.dir, "threads.sock"))
        try:
            with vc.Client(p.url, timeout=5, attempts=1) as c:
                results = []
                for i in range(50):
                    th = threading.Thread(
                        target=lambda i=i: results.append(c.score(txn("t-th-%d" % i)).txn_id))
                    th.start()
                    th.join()
                self.assertEqual(len(results), 50)
                self.assertEqual(len(c._slots), 1)
        finally:
            p.stop()

    def test_ring_matches_c_library(self):
        path = os.path.join(BUILD, "clients", "c", "libvigil-client.so")
        with open(path, "rb") as f, open("/proc/self/maps") as maps:
            if b"libasan.so" in f.read() and "libasan" not in maps.read():
                self.skipTest("sanitizer build: libvigil-client needs ASan preloaded")
        lib = ctypes.CDLL(path)

        class Opts(ctypes.Structure):
            _fields_ = [("timeout_ms", ctypes.c_int32), ("max_attempts", ctypes.c_uint32),
                        ("connect_wait_ms", ctypes.c_int32), ("backoff_ms", ctypes.c_int32),
                        ("vnodes", ctypes.c_uint32), ("max_inflight", ctypes.c_uint32),
                        ("max_reply_bytes", ctypes.c_uint32)]

        urls = ["ipc://%s/r%d.sock" % (self.dir, i) for i in range(3)]
        arr = (ctypes.c_char_p * 3)(*[u.encode() for u in urls])
        handle = ctypes.c_void_p()
        lib.vigil_client_open.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                          ctypes.POINTER(Opts), ctypes.POINTER(ctypes.c_void_p),
                                          ctypes.c_void_p]
        lib.vigil_client_route.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.vigil_client_route.restype = ctypes.c_size_t
        lib.vigil_client_close.argtypes = [ctypes.c_void_p]
        opts = Opts(connect_wait_ms=-1)
        self.assertEqual(lib.vigil_client_open(arr, 3, ctypes.byref(opts),
                                               ctypes.byref(handle), None), 0)
        try:
            with vc.Client(urls, connect_wait=0) as c:
                for k in range(3000):
                    card = "card-%d" % k
                    self.assertEqual(c.route(card),
                                     urls[lib.vigil_client_route(handle, card.encode())])
        finally:
            lib.vigil_client_close(handle)


class JsonShapeTests(unittest.TestCase):
    # the JSON transaction shape of /v1/score, vigil-score and vigil-rules
    # explain (common/json.c): amount/event_time accepted, numbers as strings
    # read the same way for every field
    def test_json_shape(self):
        t = vc.transaction_from_json({
            "txn_id": "j-1", "card_id": "c", "merchant_id": "m", "currency": "EUR",
            "amount": "12.5", "amount_minor": "1250", "event_time": "2025-11-21T10:00:00Z",
            "mcc": "0742", "channel": "2", "lat": "60.2", "lon": "-1.5e1"})
        self.assertEqual(t.amount_minor, 1250)
        self.assertEqual(t.event_time_ms, 1763719200000)
        self.assertEqual(t.mcc, 742)
        self.assertEqual(t.channel, 2)
        self.assertEqual((t.latitude, t.longitude), (60.2, -15.0))
        t = vc.transaction_from_json({"txn_id": "j", "card_id": "c", "merchant_id": "m",
                                      "currency": "JPY", "amount": 1500,
                                      "location": {"latitude": 1, "longitude": 2}})
        self.assertEqual(t.amount_minor, 1500)
        self.assertEqual((t.latitude, t.longitude), (1.0, 2.0))
        self.assertEqual(vc.transaction_from_json(
            {"currency": "EUR", "amount": 12.34}).amount_minor, 1234)
        for key, value, field in (
                ("amount_minor", "12.5", "txn.amount_minor"),
                ("amount_minor", " 12", "txn.amount_minor"),
                ("amount_minor", 12.0, "txn.amount_minor"),
                ("event_time_ms", "1e12", "txn.event_time_ms"),
                ("mcc", "0x10", "txn.mcc"),
                ("lat", "60.2x", "txn.lat"),
                ("lat", "inf", "txn.lat"),
                ("lat", ".5", "txn.lat"),
                ("amount", "12.", "txn.amount"),
                ("amount", "1.234", "txn.amount"),
                ("amount", 12.345, "txn.amount"),
                ("amount", True, "txn.amount"),
                ("event_time", "yesterday", "txn.event_time"),
                ("channnel", "ecom", "txn.channnel"),
                ("bogus", None, "txn.bogus")):
            d = {"currency": "EUR", "lat": 1, "lon": 1, key: value}
            with self.assertRaises(vc.InvalidArgument, msg=(key, value)) as cm:
                vc.transaction_from_json(d)
            self.assertEqual(cm.exception.field, field)
        with self.assertRaises(vc.InvalidArgument) as cm:
            vc.transaction_from_json({"currency": "EUR", "amount": "1", "amount_minor": 2})
        self.assertEqual(cm.exception.field, "txn.amount")
        # a key inside location is refused by name too, as the C reader does
        with self.assertRaises(vc.InvalidArgument) as cm:
            vc.transaction_from_json({"location": {"latitude": 1, "longitude": 2, "alt": 3}})
        self.assertEqual(cm.exception.field, "txn.location.alt")

    def test_json_event_time_as_c(self):
        # the times the C readers accept, and their milliseconds (common/time.c
        # vigil_time_parse_rfc3339: decimals cut, not rounded; a space or "t"
        # for "T"; a leap second is :59), and the forms they all refuse
        for text, ms in (("2026-11-21T10:00:00.9999Z", 1795255200999),
                         ("2026-11-21 10:00:00Z", 1795255200000),
                         ("2026-11-21t10:00:00z", 1795255200000),
                         ("2016-12-31T23:59:60Z", 1483228799000),
                         ("2024-02-29T00:00:00-05:30", 1709184600000),
                         ("2026-11-21T10:00:00.123456789Z", 1795255200123)):
            self.assertEqual(vc.transaction_from_json({"event_time": text}).event_time_ms, ms,
                             msg=text)
        for text in ("2026-11-21T10:00Z", "2026-11-21T10:00:00+0100", "20261121T100000Z",
                     "2026-11-21T10:00:00", "2023-02-29T00:00:00Z",
                     "2026-11-21T10:00:00.1234567890Z"):
            with self.assertRaises(vc.InvalidArgument, msg=text) as cm:
                vc.transaction_from_json({"event_time": text})
            self.assertEqual(cm.exception.field, "txn.event_time")

    def test_json_numbers_out_of_range(self):
        # refused as the C reader refuses them (common/json.c), and never
        # protobuf's bare ValueError, which is no VigilError
        base = {"txn_id": "j", "card_id": "c", "merchant_id": "m", "currency": "EUR",
                "event_time_ms": 1795000000000}
        for key, value, field, msg in (
                ("mcc", -1, "txn.mcc", "mcc -1 is not a 4-digit merchant category code"),
                ("mcc", "10000", "txn.mcc", "mcc 10000 is not a 4-digit merchant category code"),
                ("amount", 10 ** 30, "txn.amount", '"%d" is too large' % 10 ** 30),
                ("amount", "1000000000000010", "txn.amount", '"1000000000000010" is too large')):
            with self.assertRaises(vc.InvalidArgument, msg=(key, value)) as cm:
                vc.transaction_from_json(dict(base, **{key: value}))
            self.assertEqual(cm.exception.field, field)
            self.assertEqual(cm.exception.message, "%s: %s" % (field, msg))
        with vc.Client("ipc:///nonexistent/vigil.sock", connect_wait=0) as c:
            for kw, field in (({"mcc": -1}, "txn.mcc"), ({"mcc": 2 ** 32}, "txn.mcc"),
                              ({"amount_minor": 2 ** 63}, "txn.amount_minor")):
                t = vc.Transaction(**dict(base, **dict({"amount_minor": 1}, **kw)))
                with self.assertRaises(vc.InvalidArgument, msg=kw) as cm:
                    c.score(t)
                self.assertEqual(cm.exception.field, field)

    def test_json_refusals_as_c(self):
        # the same transactions accepted, or refused in the same words, as
        # the C reader (common/json.c) refuses them in vigil-score: values
        # quoted "...", a channel one digit or a word
        base = {"txn_id": "j", "card_id": "c", "merchant_id": "m", "currency": "EUR",
                "amount": "1", "event_time_ms": 1795000000000}
        cases = [{"channel": v} for v in ("04", "00", "4", "0", "5", "-1", "+1", " 1", "1.0",
                                          "ECOM", "ecom4", 4, 5)]
        cases += [{"mcc": "x"}, {"mcc": "7" * 41}, {"mcc": "7" * 40 + "x"}, {"mcc": 10000},
                  {"mcc": -1}, {"channel": -1},
                  {"lat": "n", "lon": 1}, {"lat": "1" * 39 + "x", "lon": 1},
                  {"lat": "6" * 41 + "x", "lon": 1}, {"amount": "1.234"},
                  {"amount": "1" * 44 + ".x"}, {"amount": "1" * 44},
                  {"event_time": "2026-11-21T10:00:00Z"}]
        lines = "".join(json.dumps(dict(base, **c)) + "\n" for c in cases)
        out = subprocess.run([SCORE, "-q", "-s", "ipc:///nonexistent/vigil.sock",
                              "--timeout", "50", "--attempts", "1"], input=lines,
                             capture_output=True, text=True, timeout=60).stdout
        for case, line in zip(cases, out.splitlines()):
            r = json.loads(line)
            try:
                vc.transaction_from_json(dict(base, **case))
            except vc.InvalidArgument as e:
                self.assertEqual(r["status"], "INVALID", msg=(case, str(e)))
                self.assertEqual(str(e), "%s: %s" % (r["error"]["where"]["field"],
                                                     r["error"]["message"]), msg=case)
            else:  # read: C sends it (nothing listens) or refuses nothing
                self.assertNotEqual(r["status"], "INVALID", msg=(case, r))
        self.assertEqual(len(out.splitlines()), len(cases), msg=out)
        with self.assertRaises(vc.InvalidArgument) as cm:
            vc.transaction_from_json({"channel": "04"})
        self.assertEqual(str(cm.exception),
                         "txn.channel: must be one of pos, ecom, atm, moto, unknown")
        self.assertEqual(vc.transaction_from_json({"channel": "4"}).channel, 4)

    def test_json_attributes(self):
        # read at vigild's limits, refused one past them, in the words of the
        # C reader (tests/common/test_common.c test_json_attributes)
        a = {"%02d%s" % (i, "k" * 62): "v" * 256 for i in range(64)}
        self.assertEqual(vc.transaction_from_json({"attributes": a}).attributes, a)
        for attrs, field, msg in (
                (["k"], "txn.attributes", 'must be an object of strings ({"key": "value"})'),
                (dict(a, x=""), "txn.attributes", "65 attributes, the limit is 64"),
                ({"": "v"}, "txn.attributes.key", '"": key must be 1-64 bytes'),
                ({"k" * 65: ""}, "txn.attributes.key",
                 '"%s": key must be 1-64 bytes' % ("k" * 64)),
                ({"k": 1}, "txn.attributes.value", '"k": value must be a string'),
                ({"k": "v" * 257}, "txn.attributes.value",
                 '"k": value is 257 bytes, the limit is 256'),
                ({"k": "a\0b"}, "txn.attributes.value", '"k": contains a NUL byte'),
                ({"k\0b": "v"}, "txn.attributes.key", '"k": contains a NUL byte')):
            with self.assertRaises(vc.InvalidArgument, msg=attrs) as cm:
                vc.transaction_from_json({"attributes": attrs})
            self.assertEqual(cm.exception.field, field)
            self.assertEqual(str(cm.exception), "%s: %s" % (field, msg))


class VigildTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Vigild()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_score_duplicate_dry_run_label(self):
        with vc.Client(self.server.url, timeout=5) as c:
            h = c.health()
            self.assertTrue(h.ready)
            r = c.score(txn("py-1", amount_minor=150000))
            self.assertEqual(r.txn_id, "py-1")
            self.assertEqual(r.decision, "review")
            self.assertEqual(r.score, 50)  # no model: the points
            self.assertIsInstance(r.score, float)
            self.assertEqual(r.points, 50)
            self.assertEqual([x.rule for x in r.hits], ["big_amount"])
            self.assertFalse(r.duplicate)
            self.assertEqual(r.attempts, 1)
            self.assertEqual(r.replica, self.server.url)
            self.assertEqual(r.rules_version, h.rules_version)
            # the declared version and the content hash, the same in the
            # reply and in health (docs/protocol.md, rules_hash)
            self.assertEqual(r.rules_hash, h.rules_hash)
            self.assertRegex(r.rules_hash, "^[0-9a-f]{32}$")
            self.assertEqual(r.rules_version, RULES_VERSION)
            self.assertEqual(r.server_latency_us, r.latency_us)  # the old name reads on
            # the JSON shape, as vigil-score reads it
            j = c.score({"txn_id": "py-json-1", "card_id": "card-1", "merchant_id": "m-1",
                         "amount": "1500.00", "currency": "EUR", "country": "FR",
                         "event_time": "2026-11-18T08:26:40Z"})
            self.assertEqual((j.decision, j.score), ("review", 50))
            again = c.score(txn("py-1", amount_minor=150000))
            self.assertTrue(again.duplicate)
            self.assertEqual(again.score, r.score)

            d = c.score(txn("py-2"), dry_run=True)
            self.assertTrue(d.dry_run)
            self.assertFalse(d.duplicate)
            real = c.score(txn("py-2"))  # the dry run recorded nothing
            self.assertFalse(real.duplicate)
            c.label("py-1", fraud=True, card_id="card-1", source="test")
            c.label("py-2", fraud=False)

    def test_backfill_flags(self):
        # history after a current transaction: late (not in velocity) and
        # past the dedupe horizon (a repeat is scored again) are in the result
        day = 86400000
        base = 1795000000000
        with vc.Client(self.server.url, timeout=5) as c:
            now = c.score(txn("py-bf-0", card_id="card-bf"))
            self.assertFalse(now.late)
            self.assertFalse(now.past_dedupe_horizon)
            late = c.score(dataclasses.replace(txn("py-bf-1", card_id="card-bf"),
                                               event_time_ms=base - 7 * day - 1))
            self.assertTrue(late.late)
            self.assertFalse(late.past_dedupe_horizon)
            old = c.score(dataclasses.replace(txn("py-bf-2", card_id="card-bf"),
                                              event_time_ms=base - 9 * day))
            self.assertTrue(old.late)
            self.assertTrue(old.past_dedupe_horizon)

    def test_invalid_field(self):
        with vc.Client(self.server.url, timeout=5) as c:
            with self.assertRaises(vc.InvalidField) as cm:
                c.score(vc.Transaction(txn_id="py-bad", card_id="card-1", merchant_id="m",
                                       amount_minor=1, currency="EUR", country="fr",
                                       event_time_ms=1795000000000))
            e = cm.exception
            self.assertEqual(e.code, "SINVALID")
            self.assertEqual(e.field, "txn.country")
            self.assertTrue(e.message.startswith(self.server.url + ": "))
            self.assertEqual(e.attempts, 1)

    def test_async(self):
        with vc.Client(self.server.url, timeout=5, workers=4) as c:
            done = []
            futs = [c.score_async(txn("py-async-%d" % i, card_id="card-async-%d" % (i % 5)),
                                  callback=done.append) for i in range(40)]
            results = [f.result(timeout=60) for f in futs]
            self.assertEqual([r.txn_id for r in results], ["py-async-%d" % i for i in range(40)])
            self.assertTrue(all(not r.duplicate for r in results))
            self.assertEqual(len(done), 40)
            with self.assertRaises(vc.InvalidArgument):
                c.score_async(txn("py-async-bad", card_id=""))
        with self.assertRaises(vc.ClientClosed):
            c.score(txn("py-after-close"))


class TlsTests(unittest.TestCase):
    """tls+tcp:// (issue 17): the CA and a client certificate score; no
    certificate, or one from another CA, is Unreachable; a tls+tcp:// URL
    without tls_ca, or unreadable files, are InvalidArgument."""

    def setUp(self):
        self.pki = tempfile.mkdtemp(prefix="vigil-pypki-")
        subprocess.run(["/bin/sh", os.path.join(SOURCE, "tests", "lib", "mkpki.sh"), self.pki],
                       check=True)
        self.url = "tls+tcp://127.0.0.1:%d" % free_port()

    def tearDown(self):
        shutil.rmtree(self.pki, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.pki, name)

    def vigild(self, cert, client):
        p = self.p
        return Vigild(url=self.url, args=["--tls-cert", p(cert + ".pem"), "--tls-key",
                                          p(cert + ".key"), "--tls-ca", p("ca.pem")],
                      client=client)

    def test_mutual_tls(self):
        p, url = self.p, self.url
        good = dict(tls_ca=p("ca.pem"), tls_cert=p("client.pem"), tls_key=p("client.key"))
        v = self.vigild("server", good)
        try:
            with vc.Client(url, timeout=5, **good) as c:
                r = c.score(txn("py-tls-1"))
                self.assertEqual(r.txn_id, "py-tls-1")
                self.assertEqual(r.replica, url)
            with vc.Client(url, timeout=0.3, attempts=1, connect_wait=0.3,
                           tls_ca=p("ca.pem")) as c:
                with self.assertRaises(vc.Unreachable):
                    c.health()
            with vc.Client(url, timeout=0.3, attempts=1, connect_wait=0.3, tls_ca=p("ca.pem"),
                           tls_cert=p("evil.pem"), tls_key=p("evil.key")) as c:
                with self.assertRaises(vc.Unreachable):
                    c.health()
            with self.assertRaises(vc.InvalidArgument) as cm:
                vc.Client(url)
            self.assertIn("a tls+tcp:// URL needs tls_ca", cm.exception.message)
            with self.assertRaises(vc.InvalidArgument) as cm:
                vc.Client(url, tls_ca=p("none.pem"))
            self.assertIn("none.pem", cm.exception.message)
            # what the C client says: a FIFO refused at once, not waited
            # on; a file that is no PEM certificate named as such
            os.mkfifo(p("ca.fifo"))
            with self.assertRaises(vc.InvalidArgument) as cm:
                vc.Client(url, tls_ca=p("ca.fifo"))
            self.assertEqual(cm.exception.message, "%s: %s: not a regular file" %
                             (url, p("ca.fifo")))
            with self.assertRaises(vc.InvalidArgument) as cm:
                vc.Client(url, tls_ca=p("client.key"))
            self.assertEqual(cm.exception.message, "%s: %s: not a PEM X.509 certificate" %
                             (url, p("client.key")))
            with self.assertRaises(vc.InvalidArgument):
                vc.Client(url, tls_ca=p("ca.pem"), tls_cert=p("client.pem"))
        finally:
            self.assertEqual(v.stop(), 0)

    def test_tls_server_name(self):
        """tls_server_name (issue 25): a certificate for an address carries it
        as an IP entry (ipsan.pem: DNS:vigil.test, IP:127.0.0.1), which
        mbedTLS 2.28 does not match: dialled as tls+tcp://127.0.0.1 the
        handshake fails (Unreachable) unless the caller names the server."""
        p, url = self.p, self.url
        named = dict(tls_ca=p("ca.pem"), tls_cert=p("client.pem"), tls_key=p("client.key"),
                     tls_server_name="vigil.test")
        v = self.vigild("ipsan", named)
        try:
            with vc.Client(url, timeout=5, **named) as c:
                r = c.score(txn("py-tlsn-1"))
                self.assertEqual(r.txn_id, "py-tlsn-1")
                # no model in this data directory: rules alone, as the C
                # client's has_model false
                self.assertIsNone(r.model_score)
                self.assertEqual(r.model_reasons, ())
            del named["tls_server_name"]
            with vc.Client(url, timeout=0.3, attempts=1, connect_wait=0.3, **named) as c:
                with self.assertRaises(vc.Unreachable):
                    c.health()
        finally:
            self.assertEqual(v.stop(), 0)


class FailoverTests(unittest.TestCase):
    def test_two_replicas_one_killed(self):
        a, b = Vigild(), Vigild()
        try:
            with vc.Client([a.url, b.url], timeout=2, attempts=3) as c:
                cards = ["card-fo-%d" % i for i in range(20)]
                on_a = [k for k in cards if c.route(k) == a.url]
                self.assertTrue(on_a)
                first = [c.score(txn("py-fo-%d" % i, card_id=k)) for i, k in enumerate(cards)]
                for r, k in zip(first, cards):
                    self.assertEqual(r.replica, c.route(k))
                a.kill()
                after = [c.score(txn("py-fo2-%d" % i, card_id=k)) for i, k in enumerate(cards)]
                for r in after:
                    self.assertEqual(r.replica, b.url)
                    self.assertFalse(r.duplicate)
                # every answered request is recorded once on the replica that answered it
                for i, k in enumerate(cards):
                    if c.route(k) == b.url:
                        self.assertTrue(c.score(txn("py-fo-%d" % i, card_id=k)).duplicate)
                    self.assertTrue(c.score(txn("py-fo2-%d" % i, card_id=k)).duplicate)
        finally:
            a.kill()
            a.stop()
            b.stop()


if __name__ == "__main__":
    # meson's timeout is SIGTERM: say where every thread was, then die of it
    faulthandler.register(signal.SIGTERM, all_threads=True, chain=True)
    unittest.main(verbosity=2)
