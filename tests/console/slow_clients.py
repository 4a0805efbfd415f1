#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/console/slow_clients.py - slow clients cannot take vigil-console's
connections (issue 28, row 3; common/evconn.h). A real console with
--max-connections 8 --max-connections-per-address 4 --request-timeout 2;
twelve clients from 127.0.0.1 each drip one header line every 0.3 s and
never finish a request:

- a probe from another address (127.0.0.2) is still answered: one address
  holds at most 4 of the 8 slots (before, the drippers held all of them and
  every probe waited);
- the connections over the cap are closed at once, and the refusal is logged
  with the address;
- the ones within it are closed at the request deadline although they keep
  sending (before, only a silent connection was ever closed);
- afterwards a client from 127.0.0.1 is answered again.

Every wait is bounded (a few seconds, or the test fails).
Usage: slow_clients.py BUILD_ROOT SOURCE_ROOT
"""
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

DRIPPERS = 12
PER_ADDR = 4


def fail(msg):
    print("slow_clients: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def probe(port, source, timeout=5.0):
    """GET /healthz from source; the status line, or None if no answer."""
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode() if data else None
    except OSError:
        return None
    finally:
        s.close()


def closed(s):
    """Whether the server closed s (EOF or reset), without blocking."""
    try:
        return s.recv(4096, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def main():
    build, src = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.join(src, "tests", "lib"))
    from vt_port import free_port
    tmp = tempfile.mkdtemp(prefix="vigil-slow-")
    console = None
    drippers = []
    try:
        for d in ("data", "rules", "state"):
            os.mkdir(os.path.join(tmp, d))
        for f in ("default.rules", "blocked_cards.txt", "test_bins.txt"):
            shutil.copy(os.path.join(src, "rules", f), os.path.join(tmp, "rules", f))
        tokens = os.path.join(tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("alice analyst alice-analyst-token-0001\n")
        os.chmod(tokens, 0o600)
        port = free_port()
        log = open(os.path.join(tmp, "console.log"), "w+")
        console = subprocess.Popen(
            [os.path.join(build, "console/vigil-console"), "--data", os.path.join(tmp, "data"),
             "--rules", os.path.join(tmp, "rules/default.rules"), "--tokens", tokens,
             "--state", os.path.join(tmp, "state"), "--listen", "127.0.0.1:%d" % port,
             "--max-connections", "8", "--max-connections-per-address", str(PER_ADDR),
             "--request-timeout", "2"], stderr=log)
        for _ in range(100):
            if probe(port, "127.0.0.1", 1.0) == "HTTP/1.1 200 OK":
                break
            if console.poll() is not None:
                fail("vigil-console exited: " + open(log.name).read())
            time.sleep(0.1)
        else:
            fail("vigil-console never answered: " + open(log.name).read())

        for _ in range(DRIPPERS):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)  # closed() must not wait
            drippers.append(s)

        def drip(seconds):
            """Send one header line on every open dripper every 0.3 s."""
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for s in drippers:
                    if not closed(s):
                        try:
                            s.sendall(b"X-Slow: 1\r\n")
                        except OSError:
                            pass
                select.select([], [], [], 0.3)

        drip(1.0)
        # another address is answered while the drippers keep going
        line = probe(port, "127.0.0.2")
        if line != "HTTP/1.1 200 OK":
            fail("a probe from 127.0.0.2 got %r while 127.0.0.1 dripped" % line)
        open_now = sum(1 for s in drippers if not closed(s))
        if open_now > PER_ADDR:
            fail("%d drippers from one address still open, cap %d" % (open_now, PER_ADDR))
        log.flush()
        text = open(log.name).read()
        if "refused a connection from 127.0.0.1: %d connections from one address" % PER_ADDR \
                not in text:
            fail("no log line for the connections over the cap: " + text)

        # the deadline closes them although they keep sending (bounded: 10 s)
        end = time.monotonic() + 10
        while time.monotonic() < end and not all(closed(s) for s in drippers):
            drip(0.5)
        still = sum(1 for s in drippers if not closed(s))
        if still:
            fail("%d dripping connections still open 10 s after a 2 s request deadline" % still)
        line = probe(port, "127.0.0.1")
        if line != "HTTP/1.1 200 OK":
            fail("127.0.0.1 after the drippers: %r" % line)
        console.terminate()
        if console.wait(timeout=10) != 0:
            fail("vigil-console exited %d after SIGTERM" % console.returncode)
        console = None
        print("slow_clients: ok")
    finally:
        for s in drippers:
            s.close()
        if console is not None:
            console.kill()
            console.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
