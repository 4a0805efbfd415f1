#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/server/startup_stop.py - a SIGTERM during vigild's start-up stops
it in the archive replay, between two records, on a real vigild:

* three transactions of one card are scored and archived, vigild stopped;
* vigild is started again with a SIGTERM already pending (blocked in the
  child before exec: vigild keeps it blocked, so it is pending from the
  first instruction to the replay's first record, whatever the timing):
  it exits 0 without becoming ready, logs "stopping: SIGTERM during
  start-up, at archive record 1 of 3" and tells systemd STOPPING=1, never
  READY=1;
* started once more on the same directory, it serves, and its live state
  holds the three transactions: a fourth one fires fourth_in_hour
  (velocity.rules: the card's 4th transaction within the hour).

Usage: startup_stop.py (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vigil_http import (RULES, VIGILD, fail, free_port, request, start,  # noqa: E402
                        stop)

TXN = ('{"txn_id": "st-%d", "card_id": "card-st", "merchant_id": "m-1", '
       '"amount": "12.00", "currency": "EUR", "event_time": "2025-11-21T04:4%d:00Z"}')


def score(aport, i, log):
    """The reply's body of transaction i of the card (200 expected)."""
    st, body = request(aport, "POST", "/v1/score", TXN % (i, i))
    if st != 200:
        fail("POST /v1/score st-%d: %d %s" % (i, st, body), log)
    return body


def pending_sigterm():
    """In the child, before exec: SIGTERM blocked, then sent, so pending."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    os.kill(os.getpid(), signal.SIGTERM)


def main():
    d = tempfile.mkdtemp(prefix="vigil-startup_stop-")
    log = os.path.join(d, "vigild.log")
    proc = None
    try:
        aport = free_port()
        proc = start(d, "", aport)
        for i in (1, 2, 3):
            score(aport, i, log)
        stop(proc, log)
        proc = None

        note = os.path.join(d, "notify.sock")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(note)
        env = dict(os.environ, NOTIFY_SOCKET=note)
        with open(log, "w", encoding="ascii") as err:
            proc = subprocess.Popen([VIGILD, "--config", os.path.join(d, "vigild.ini"),
                                     "--rules", RULES, "--data", os.path.join(d, "data"),
                                     "--listen", "ipc://" + os.path.join(d, "vigild.sock"),
                                     "--admin", "127.0.0.1:%d" % aport],
                                    stderr=err, env=env, preexec_fn=pending_sigterm)
        status = proc.wait(timeout=120)  # a bound for a hung vigild, not a measurement
        proc = None
        with open(log, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if status != 0:
            fail("SIGTERM during start-up: exit status %d, expected 0" % status, log)
        if not re.search(r"^vigild: stopping: SIGTERM during start-up, at archive record 1 "
                         r"of 3 \(replaying the archive into the live state\)$", text, re.M):
            fail("SIGTERM during start-up: no 'stopping: ... at archive record 1 of 3' line",
                 log)
        if re.search(r"^vigild: ready$", text, re.M):
            fail("SIGTERM during start-up: vigild became ready first", log)
        if not re.search(r"^vigild: stopped$", text, re.M):
            fail("SIGTERM during start-up: no 'stopped' line", log)
        ns.setblocking(False)
        states = []
        while True:
            try:
                states.append(ns.recv(4096).decode("utf-8", "replace"))
            except BlockingIOError:
                break
        ns.close()
        said = "\n".join(states)
        if "STOPPING=1" not in said or "READY=1" in said:
            fail("SIGTERM during start-up: told systemd %r" % states, log)

        proc = start(d, "", aport)
        body = score(aport, 4, log)
        if "fourth_in_hour" not in body:
            fail("after the stopped start-up: the live state lacks the card's first "
                 "three transactions: %s" % body, log)
        stop(proc, log)
        proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)
    print("startup_stop: ok")


if __name__ == "__main__":
    main()
