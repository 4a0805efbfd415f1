# SPDX-License-Identifier: MIT
"""tests/server/vigil_http.py - what the Python tests of vigild's admin HTTP
API share (admin_probes.py, metrics_doc.py): a failure printed with
vigild's log, one request on a new connection, a wait for a log line, and
a real vigild started on a temporary directory and stopped.

Each test puts its own directory first on sys.path (it is run as
`python3 tests/server/TEST.py`, tests/server/meson.build), then imports
this module. VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT are set by meson.
"""
import http.client
import os
import re
import subprocess
import sys
import time

B = os.environ["VIGIL_BUILD_ROOT"]
S = os.environ["VIGIL_SOURCE_ROOT"]
sys.path.insert(0, os.path.join(S, "tests", "lib"))
from vt_port import free_port  # noqa: E402,F401  (for the tests)
VIGILD = os.path.join(B, "server", "vigild")
RULES = os.path.join(S, "tests", "server", "rules", "velocity.rules")
# the failing test's name: "admin_probes" for tests/server/admin_probes.py
NAME = os.path.splitext(os.path.basename(sys.argv[0]))[0]


def fail(msg, log=None):
    """Prints NAME: msg and vigild's log (if any), exits 1."""
    print(NAME + ": " + msg, file=sys.stderr)
    if log is not None and os.path.exists(log):
        with open(log, encoding="utf-8", errors="replace") as f:
            for line in f:
                print("  vigild.log: " + line.rstrip(), file=sys.stderr)
    sys.exit(1)


def request(port, method, path, body=None, token=None):
    """(status, body) of one request to 127.0.0.1:port on a new connection;
    a body is sent as JSON, a token as the bearer token."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": "Bearer " + token} if token else {}
    if body:
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read().decode("utf-8")
    c.close()
    return r.status, data


def wait_log(log, pattern, proc, what):
    """Waits (30 s at most) for a line of log matching pattern; fails if
    proc (unless None) exits first."""
    for _ in range(300):
        with open(log, encoding="utf-8", errors="replace") as f:
            if re.search(pattern, f.read(), re.M):
                return
        if proc is not None and proc.poll() is not None:
            fail("vigild exited before " + what, log)
        time.sleep(0.1)
    fail("no " + what + " after 30 s", log)


def start(d, ini, aport, *args):
    """vigild with d/vigild.ini holding ini, data in d/data, listening on
    ipc://d/vigild.sock and its admin API on 127.0.0.1:aport (and args),
    stderr in d/vigild.log: the process, once it said it is ready."""
    conf = os.path.join(d, "vigild.ini")
    log = os.path.join(d, "vigild.log")
    with open(conf, "w", encoding="ascii") as f:
        f.write(ini)
    with open(log, "w", encoding="ascii") as err:
        proc = subprocess.Popen([VIGILD, "--config", conf, "--rules", RULES, "--data",
                                 os.path.join(d, "data"), "--listen",
                                 "ipc://" + os.path.join(d, "vigild.sock"), "--admin",
                                 "127.0.0.1:%d" % aport] + list(args), stderr=err)
    try:
        wait_log(log, r"^vigild: ready$", proc, "readiness")
    except SystemExit:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop(proc, log):
    """SIGTERM; vigild must exit 0 within 60 s."""
    proc.terminate()
    if proc.wait(timeout=60) != 0:
        fail("vigild exited with status %d" % proc.returncode, log)
