#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/server/admin_probes.py - the admin endpoint's second hardening
round (issue 28, rows 6 and 11), on a real vigild:

* a FIFO as admin_token_file: --check-config refuses it in one line
  instead of waiting for a writer, and so does a SIGHUP reload (the main
  thread goes on; the previous token stays);
* a token of 255 bytes (the limit) loads with LF, CR LF or no line
  ending; 256 bytes is refused in one line naming the file and the limit;
* [server] metrics_need_token: /metrics without the token is 401, with it
  200;
* refused authentications are logged with the peer's address, one line a
  second at most, the next line counting those not logged;
* [health] listen: with 300 slow connections holding the admin port (its
  256 slots taken, the rest queued), the probes' own listener still
  answers /readyz, /healthz and /livez, without a token, and nothing else.

Usage: admin_probes.py (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
"""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vigil_http import (RULES, VIGILD, fail, free_port, request, start,  # noqa: E402
                        stop, wait_log)

TOKEN = "0123456789abcdef0123456789abcdef"
SLOW = 300


def log_count(log, pattern):
    with open(log, encoding="utf-8", errors="replace") as f:
        return len(re.findall(pattern, f.read(), re.M))


def check_config_fifo(d):
    fifo = os.path.join(d, "token.fifo")
    os.mkfifo(fifo, 0o600)
    try:
        r = subprocess.run([VIGILD, "--check-config", "--quiet", "--rules", RULES,
                            "--data", os.path.join(d, "data"), "--listen",
                            "ipc://" + os.path.join(d, "cc.sock"),
                            "--admin-token-file", fifo],
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        fail("--check-config with a FIFO as the token file still runs after 30 s")
    want = "vigild: [server] admin_token_file %s: not a regular file" % fifo
    if r.returncode != 2 or want not in r.stderr:
        fail("--check-config with a FIFO: exit %d, %r" % (r.returncode, r.stderr))


def check_config_token_length(d):
    """A token of exactly 255 bytes loads whatever ends its line (LF, CR LF
    or nothing); one byte more is refused in one line naming the file and
    the limit."""
    path = os.path.join(d, "token.len")
    for size, ending, want in ((255, "", 0), (255, "\n", 0), (255, "\r\n", 0),
                               (256, "", 2), (256, "\n", 2), (256, "\r\n", 2)):
        with open(path, "w", encoding="ascii", newline="") as f:
            f.write("t" * size + ending)
        os.chmod(path, 0o600)
        r = subprocess.run([VIGILD, "--check-config", "--quiet", "--rules", RULES,
                            "--data", os.path.join(d, "data"), "--listen",
                            "ipc://" + os.path.join(d, "cc.sock"),
                            "--admin-token-file", path],
                           capture_output=True, text=True, timeout=30)
        line = "vigild: [server] admin_token_file %s: the token is longer than 255 bytes\n" % path
        if r.returncode != want or (want == 2 and r.stderr != line):
            fail("--check-config, a token of %d bytes ending %r: exit %d (want %d), %r"
                 % (size, ending, r.returncode, want, r.stderr))
    os.unlink(path)


def slow_connections(port, n):
    """n connections that each send part of a request and stop."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    for s in socks:
        try:
            s.send(b"GET /readyz HTTP/1.1\r\nHost: vigild\r\n")
        except OSError:
            pass  # still in the accept queue: it holds a place there
    return socks


def main():
    d = tempfile.mkdtemp(prefix="vigil-admin_probes-")
    log = os.path.join(d, "vigild.log")
    proc = None
    try:
        check_config_fifo(d)
        check_config_token_length(d)

        token = os.path.join(d, "token")
        with open(token, "w", encoding="ascii") as f:
            f.write(TOKEN + "\n")
        os.chmod(token, 0o600)
        aport, hport = free_port(), free_port()
        proc = start(d, "[server]\nmetrics_need_token = true\n[health]\nlisten = 127.0.0.1:%d\n"
                     % hport, aport, "--admin-token-file", token)

        # /metrics behind the token
        st, body = request(aport, "GET", "/metrics")
        if st != 401:
            fail("/metrics without the token: %d %s" % (st, body), log)
        st, body = request(aport, "GET", "/metrics", token=TOKEN)
        if st != 200 or "vigil_rule_hits_total" not in body:
            fail("/metrics with the token: %d" % st, log)

        # refused authentications: logged with the address, at most one a second,
        # each line counting those refused since the line before: every refusal
        # is accounted for once the last one is logged
        n = 100
        c = http.client.HTTPConnection("127.0.0.1", aport, timeout=30)
        for _ in range(n):
            c.request("GET", "/v1/rules", headers={"Authorization": "Bearer wrong-token-x"})
            r = c.getresponse()
            r.read()
            if r.status != 401:
                fail("/v1/rules with a wrong token: %d" % r.status, log)
        c.close()
        time.sleep(1.1)  # the next second: the next refusal is logged
        request(aport, "GET", "/v1/rules", token="wrong-token-x")
        last = (r"^vigild: admin: 401 for /v1/rules from 127\.0\.0\.1:\d+: wrong bearer token"
                r" \((\d+) more refused since the last such line; at most one a second\)$")
        wait_log(log, last, proc, "line counting the refusals not logged")
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f.read().splitlines() if ln.startswith("vigild: admin: 40")]
        if not re.match(r"^vigild: admin: 401 for /metrics from 127\.0\.0\.1:\d+: no bearer "
                        r"token$", lines[0]):
            fail("the first refusal is not logged with its address: %r" % lines[0], log)
        total = sum(1 + int(m.group(1)) if m else 1
                    for m in (re.search(r"\((\d+) more refused", ln) for ln in lines))
        if total != n + 2:
            fail("%d refusals accounted for in the log, %d made" % (total, n + 2), log)
        if len(lines) >= n + 2:
            fail("%d refusals logged in %d lines: not rate-limited" % (n + 2, len(lines)), log)

        # the probes' own listener, while slow clients hold the admin port
        socks = slow_connections(aport, SLOW)
        try:
            for path, key in (("/readyz", '"ready":true'), ("/healthz", '"server_version"'),
                              ("/livez", '"alive":true')):
                st, body = request(hport, "GET", path)
                if st != 200 or key not in body:
                    fail("health listener %s with %d slow admin connections: %d %s"
                         % (path, SLOW, st, body), log)
            for path, method, want in (("/metrics", "GET", 404), ("/v1/rules", "GET", 404),
                                       ("/v1/score", "POST", 404), ("/readyz", "POST", 405)):
                st, body = request(hport, method, path, token=TOKEN)
                if st != want:
                    fail("health listener %s %s: %d, expected %d" % (method, path, st, want),
                         log)
        finally:
            for s in socks:
                s.close()

        # SIGHUP with a FIFO in the token file's place: refused, main thread goes on
        os.rename(token, token + ".old")
        os.mkfifo(token, 0o600)
        proc.send_signal(signal.SIGHUP)
        wait_log(log, r"\[server\] admin_token_file %s: not a regular file.*; the previous token stays "
                 r"in use" % re.escape(token), proc, "refusal of the FIFO on SIGHUP")
        st, _ = request(aport, "GET", "/metrics", token=TOKEN)
        if st != 200:
            fail("the previous token no longer works after the refused reload: %d" % st, log)
        stop(proc, log)
        proc = None
        print("admin_probes: ok")
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
