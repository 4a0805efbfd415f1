#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/deploy/test_notify.py - vigild under a Type=notify service manager.

Runs the real vigild with $NOTIFY_SOCKET naming a unix datagram socket this
test listens on (what systemd does for Type=notify) and $WATCHDOG_USEC set
(WatchdogSec=): READY=1 must arrive with a STATUS=, then WATCHDOG=1 pings,
and STOPPING=1 on SIGTERM, after which vigild exits 0. A build that sent
nothing (libsystemd absent and no direct writer) hangs a unit's start: here
it fails after a bound. Usage: test_notify.py VIGILD RULES.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

BOUND_S = 60  # generous: the loaded machine; only a bound against a hang


def main():
    vigild, rules = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="vigil-notify-") as tmp:
        path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(1.0)
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
        os.mkdir(os.path.join(tmp, "data"))
        log = open(os.path.join(tmp, "vigild.log"), "w+")
        proc = subprocess.Popen(
            [vigild, "--data", os.path.join(tmp, "data"),
             "--listen", "ipc://" + os.path.join(tmp, "vigild.sock"),
             "--admin", "off", "--rules", rules],
            env=env, stderr=log)
        got = []

        def wait_for(key, what):
            deadline = time.monotonic() + BOUND_S
            while time.monotonic() < deadline:
                if any(key in m.split("\n") for m in got):
                    return
                try:
                    got.append(sock.recv(4096).decode())
                except socket.timeout:
                    if proc.poll() is not None and key != "STOPPING=1":
                        break
            log.seek(0)
            proc.kill()
            sys.exit("test_notify: no %s from vigild (%s); got %r\nvigild.log:\n%s"
                     % (key, what, got, log.read()))

        try:
            wait_for("READY=1", "a Type=notify unit would hang in 'activating'")
            ready = next(m for m in got if "READY=1" in m.split("\n"))
            if not any(l.startswith("STATUS=") for l in ready.split("\n")):
                sys.exit("test_notify: READY=1 came without a STATUS=: %r" % ready)
            wait_for("WATCHDOG=1", "WatchdogSec= would kill it")
            proc.send_signal(signal.SIGTERM)
            wait_for("STOPPING=1", "on SIGTERM")
            st = proc.wait(timeout=BOUND_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if st != 0:
            sys.exit("test_notify: vigild exited %d after SIGTERM" % st)
        print("test_notify: ok: %d notifications, first %r" % (len(got), got[0]))


if __name__ == "__main__":
    main()
