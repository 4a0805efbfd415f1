# SPDX-License-Identifier: MIT
"""tests/lib/vt_port.py - TCP ports for the integration tests to listen on.

A test that asks the kernel for a free port (bind to port 0, close, hand
the number to a server) races everything else on the machine until the
server binds it: the kernel gives the same range to every connect(), and
the suite's other tests open thousands of connections while it runs. One
CI run lost that race: slurmctld failed "Address already in use" on the
port it had just been given.

So ports come from outside the kernel's ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range), which no connect() and no bind
to port 0 ever takes, and are handed out in turn through a counter file
under flock(2) that the tests running at the same time share, so two
tests never get the same port until the range has gone round. A port that
does not bind now (on 0.0.0.0 and 127.0.0.1) is skipped.

    python3 tests/lib/vt_port.py [N]     prints N ports (default 1), one a line
    from vt_port import free_port         one port (tests/lib on sys.path)
"""
import fcntl
import os
import random
import socket
import sys
import tempfile

COUNTER = os.path.join(tempfile.gettempdir(), "vigil-test-ports-%d" % os.getuid())


def _span():
    """(lo, hi): the ports outside the ephemeral range that tests use."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            elo, ehi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        elo, ehi = 32768, 60999
    if elo - 10000 >= 2000:
        return 10000, elo
    if 65535 - ehi >= 2000:
        return ehi + 1, 65536
    return 20000, 30000  # the kernel's range is odd; keep clear of the usual services


def _bindable(port):
    for host in ("0.0.0.0", "127.0.0.1"):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def _next(lo, hi):
    """The next port in turn, shared by every test running now."""
    try:
        fd = os.open(COUNTER, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return random.randrange(lo, hi)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 32).decode("ascii", "replace").strip()
        try:
            port = int(raw)
        except ValueError:
            port = random.randrange(lo, hi)
        if not lo <= port < hi:
            port = lo
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % (lo if port + 1 >= hi else port + 1))
        return port
    finally:
        os.close(fd)


def free_port():
    """A port nothing listens on now and no other test has been given."""
    lo, hi = _span()
    for _ in range(hi - lo):
        port = _next(lo, hi)
        if _bindable(port):
            return port
    raise OSError("vt_port: no free port in %d-%d" % (lo, hi - 1))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    for _ in range(n):
        print(free_port())
