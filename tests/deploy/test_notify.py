#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/deploy/test_notify.py - vigild under a Type=notify service manager.

Runs the real vigild with $NOTIFY_SOCKET naming a unix datagram socket this
test listens on (what systemd does for Type=notify) and $WATCHDOG_USEC set
(WatchdogSec=): READY=1 must arrive with a STATUS=, then WATCHDOG=1 pings,
and STOPPING=1 on SIGTERM, after which vigild exits 0. WATCHDOG=1 goes on
while a new generation's verification waits on its disk. A build that sent
nothing (libsystemd absent and no direct writer) hangs a unit's start: here
it fails after a bound.

Then a stop while a verification never ends (another vigild, no notify
socket): 20 transactions scored, a generation whose CHECKSUM the test holds
a write lease on (vigild's open waits on it); /metrics shows the check
running; SIGTERM must stop vigild,
exit 0, log that it stopped without the check, and leave the 20 records in
the archive's segment. Usage: test_notify.py VIGILD RULES VIGIL-SCORE
VIGIL-ARCHIVE.
"""
import fcntl
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ["VIGIL_SOURCE_ROOT"], "tests", "lib"))
from vt_port import free_port  # noqa: E402

BOUND_S = 60  # generous: the loaded machine; only a bound against a hang
LEASE_S = 30  # the least lease-break-time (45 s by default) that holds a stuck open long enough


LEASE_BROKEN = []  # set by SIGIO: an open of the leased CHECKSUM waits on us


def make_stuck_generation(tmp, idle=lambda: None):
    """gen-000001, named by CURRENT, whose CHECKSUM (regular, malformed)
    this test holds a write lease on: vigild's open of it waits until the
    test lets the lease go (or the kernel's lease-break-time passes), as a
    read of a hung NFS mount waits. Returns the descriptor that holds the
    lease once vigild is waiting on it. A FIFO would not do: vigild refuses
    anything but a regular file before opening it. idle() is called while
    the test waits."""
    with open("/proc/sys/fs/lease-break-time") as f:
        if int(f.read()) < LEASE_S:
            sys.exit("test_notify: /proc/sys/fs/lease-break-time is under %d s: a lease "
                     "would not hold vigild's open long enough" % LEASE_S)
    gen = os.path.join(tmp, "data", "features", "gen-000001")
    os.makedirs(gen)
    open(os.path.join(gen, "data.mdb"), "wb").close()
    checksum = os.path.join(gen, "CHECKSUM")
    with open(checksum, "w") as f:
        f.write("not a checksum\n")
    del LEASE_BROKEN[:]
    signal.signal(signal.SIGIO, lambda signum, frame: LEASE_BROKEN.append(signum))
    fd = os.open(checksum, os.O_RDONLY)
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    except OSError as e:
        os.close(fd)
        sys.exit("test_notify: no write lease on %s: %s" % (checksum, e))
    cur = os.path.join(tmp, "data", "features", "CURRENT")
    with open(cur + ".tmp", "w") as f:
        f.write("gen-000001\n")
    os.rename(cur + ".tmp", cur)
    deadline = time.monotonic() + BOUND_S
    while not LEASE_BROKEN:
        if time.monotonic() > deadline:
            os.close(fd)
            sys.exit("test_notify: vigild never opened the new generation's CHECKSUM")
        idle()
        time.sleep(0.05)
    return fd


def release(fd):
    """Lets vigild's waiting open of the leased CHECKSUM go on."""
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    os.close(fd)


def stuck_verification(tmp, got, wait_for, drain):
    """A new generation whose verification does not end while this test
    holds it. vigild reads it off the main thread, which goes on pinging the
    watchdog: 3 more WATCHDOG=1 while the open waits. Then the test lets it
    go: CHECKSUM is malformed, the generation is refused, and the main
    thread logs it. drain() reads the notifications meanwhile: a full
    socket (net.unix.max_dgram_qlen, 10 by default) would block the main
    thread's next WATCHDOG=1, as systemd's never does."""
    fd = make_stuck_generation(tmp, drain)
    try:
        for _ in range(3):
            del got[:]
            wait_for("WATCHDOG=1", "the main thread waits on a generation's verification")
    finally:
        release(fd)
    deadline = time.monotonic() + BOUND_S
    log = os.path.join(tmp, "vigild.log")
    while "features: refused generation 1 named by CURRENT" not in open(log).read():
        if time.monotonic() > deadline:
            sys.exit("test_notify: gen-000001 was never refused; vigild.log:\n"
                     + open(log).read())
        drain()
        time.sleep(0.05)


def metric(port, name):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND_S)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    for line in body.split("\n"):
        if line.startswith(name + " "):
            return float(line.split()[1])
    sys.exit("test_notify: no %s in /metrics:\n%s" % (name, body))


def stop_while_stuck(vigild, rules, score, archive):
    """SIGTERM while a generation's verification never ends: vigild stops
    anyway (before, it waited on the read until systemd's SIGKILL), and what
    it acknowledged is in the archive's segment."""
    with tempfile.TemporaryDirectory(prefix="vigil-notify-") as tmp:
        os.mkdir(os.path.join(tmp, "data"))
        sock = os.path.join(tmp, "vigild.sock")
        port = free_port()
        logpath = os.path.join(tmp, "vigild.log")
        log = open(logpath, "w+")
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        proc = subprocess.Popen(
            [vigild, "--data", os.path.join(tmp, "data"), "--listen", "ipc://" + sock,
             "--admin", "127.0.0.1:%d" % port, "--rules", rules], env=env, stderr=log)
        lease = None
        try:
            txns = "".join(json.dumps({"txn_id": "t%d" % i, "card_id": "c%d" % (i % 3),
                                       "merchant_id": "m1", "amount_minor": 1000 + i,
                                       "currency": "EUR"}) + "\n" for i in range(20))
            deadline = time.monotonic() + BOUND_S
            while True:  # until vigild listens
                r = subprocess.run([score, "-s", "ipc://" + sock, "-q", "--attempts", "1"],
                                   input=txns, capture_output=True, text=True)
                if r.returncode == 0:
                    break
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit("test_notify: vigil-score failed: %s\nvigild.log:\n%s"
                             % (r.stdout + r.stderr, open(logpath).read()))
                time.sleep(0.1)
            if sum('"status":"OK"' in l for l in r.stdout.split("\n")) != 20:
                sys.exit("test_notify: not 20 scores:\n" + r.stdout)
            lease = make_stuck_generation(tmp)
            deadline = time.monotonic() + BOUND_S
            while metric(port, "vigil_features_refresh_running_seconds") <= 0:
                if time.monotonic() > deadline:
                    sys.exit("test_notify: /metrics never showed the check running")
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            try:
                st = proc.wait(timeout=BOUND_S)
            except subprocess.TimeoutExpired:
                sys.exit("test_notify: vigild did not stop while a verification waited; "
                         "vigild.log:\n" + open(logpath).read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if lease is not None:
                release(lease)
        text = open(logpath).read()
        if st != 0:
            sys.exit("test_notify: vigild exited %d; vigild.log:\n%s" % (st, text))
        if "does not end; stopping without it" not in text:
            sys.exit("test_notify: the abandoned check was not logged:\n" + text)
        r = subprocess.run([archive, "stats", "--json", os.path.join(tmp, "data", "archive")],
                           capture_output=True, text=True)
        if r.returncode != 0 or json.loads(r.stdout)["total"]["records"] != 20:
            sys.exit("test_notify: the archive's segments do not hold the 20 scores: %s%s"
                     % (r.stdout, r.stderr))


def main():
    vigild, rules, score, archive = sys.argv[1:5]
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

        def drain():
            while select.select([sock], [], [], 0)[0]:
                got.append(sock.recv(4096).decode())

        try:
            wait_for("READY=1", "a Type=notify unit would hang in 'activating'")
            ready = next(m for m in got if "READY=1" in m.split("\n"))
            if not any(l.startswith("STATUS=") for l in ready.split("\n")):
                sys.exit("test_notify: READY=1 came without a STATUS=: %r" % ready)
            wait_for("WATCHDOG=1", "WatchdogSec= would kill it")
            stuck_verification(tmp, got, wait_for, drain)
            log.seek(0)
            if "CHECKSUM is malformed" not in log.read():
                sys.exit("test_notify: the refused generation was not logged")
            proc.send_signal(signal.SIGTERM)
            wait_for("STOPPING=1", "on SIGTERM")
            st = proc.wait(timeout=BOUND_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if st != 0:
            sys.exit("test_notify: vigild exited %d after SIGTERM" % st)
        stop_while_stuck(vigild, rules, score, archive)
        print("test_notify: ok: %d notifications, first %r; a stop while a verification "
              "waited" % (len(got), got[0]))


if __name__ == "__main__":
    main()
