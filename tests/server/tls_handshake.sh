#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/tls_handshake.sh - [tls] handshake_timeout_ms: TCP
# connections to a tls+tcp:// listener that send nothing, and ones that
# send the first half of a real ClientHello and stop, are closed by vigild
# (server/handshake.c) and counted in vigil_tls_handshake_timeouts_total,
# while a TLS client connected before them, an nng client on the plain
# tcp:// listener and an idle TCP connection to that listener are left
# alone, both clients still score on their own connection afterwards, and
# a TLS client connecting after them scores. On libnng 1.5.2 without the
# sweep the stalled connections are held for as long as one waits (nng's
# negotiation timeout does not fire under TLS); here they go within a few
# seconds.
# Usage: tls_handshake.sh (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
set -eu

VT_NAME=tls-handshake
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
V=$(vt_prog vigild)
TLS_PORT=$(vt_free_port)
TCP_PORT=$(vt_free_port)
mkdir "$D/pki"
P="$D/pki"
sh "$S/tests/lib/mkpki.sh" "$P" || fail "mkpki.sh failed"
cat >"$D/vigild.ini" <<INI
[tls]
cert = $P/server.pem
key = $P/server.key
ca = $P/ca.pem
handshake_timeout_ms = 1000
INI

expect 0 '  tls handshake_timeout_ms 1000$' "$V" --config "$D/vigild.ini" \
	--rules "$S/tests/server/rules/velocity.rules" --data "$D/data" --admin off \
	--listen "tls+tcp://127.0.0.1:$TLS_PORT" --check-config
printf '[tls]\nhandshake_timeout_ms = 600001\n' >"$D/bad.ini"
expect 2 "^vigild: config $D/bad.ini:2: handshake_timeout_ms: 600001 is outside \\[0, 600000\\]\$" "$V" --config "$D/bad.ini" \
	--rules "$S/tests/server/rules/velocity.rules" --data "$D/data" --admin off --check-config

for n in 1 2 3; do
	protoc --proto_path="$S/proto" --encode=vigil.v1.Request vigil.proto >"$D/score$n.bin" <<TXT
score { txn { txn_id: "hs-$n" event_time_ms: 1763700000000 card_id: "card-hs" merchant_id: "m-1" amount_minor: 2500 currency: "EUR" } }
TXT
done

"$V" --config "$D/vigild.ini" --rules "$S/tests/server/rules/velocity.rules" --data "$D/data" \
	--admin "unix:$D/admin.sock" --listen "tls+tcp://127.0.0.1:$TLS_PORT" \
	--listen "tcp://127.0.0.1:$TCP_PORT" 2>"$D/vigild.log" &
PID=$!
vt_wait_log 'vigild: ready' "readiness"

python3 - "$TLS_PORT" "$TCP_PORT" "$P" "$D" <<'PY' || fail "the handshake timeout check failed"
import select, socket, ssl, struct, sys, time

tls_port, tcp_port, pki, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
REQ, REP = 0x30, 0x31

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit("connection closed by vigild")
        b += c
    return b

def sp_open(s):  # the SP header exchange of nng's stream transports
    s.sendall(b"\0SP\0" + struct.pack(">H", REQ) + b"\0\0")
    h = recv_exact(s, 8)
    if h[:4] != b"\0SP\0" or struct.unpack(">H", h[4:6])[0] != REP:
        raise SystemExit("not an SP REP peer: %r" % h)

def score(s, n, rid):
    body = struct.pack(">I", 0x80000000 | rid) + open("%s/score%d.bin" % (d, n), "rb").read()
    s.sendall(struct.pack(">Q", len(body)) + body)
    reply = recv_exact(s, struct.unpack(">Q", recv_exact(s, 8))[0])
    if b"hs-%d" % n not in reply:
        raise SystemExit("reply without txn_id hs-%d: %r" % (n, reply))

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/ca.pem")
ctx.load_cert_chain(pki + "/client.pem", pki + "/client.key")
ctx.check_hostname = False
good = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), timeout=10))
sp_open(good)
score(good, 1, 1)
plain = socket.create_connection(("127.0.0.1", tcp_port), timeout=10)
sp_open(plain)
score(plain, 1, 1)

def client_hello():  # the first flight of a real TLS client, as bytes
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    try:
        c.wrap_bio(ssl.MemoryBIO(), out).do_handshake()
    except ssl.SSLWantReadError:
        pass
    b = out.read()
    # one handshake record (0x16) holding a ClientHello (1), longer than its header
    if len(b) < 16 or b[0] != 0x16 or b[5] != 1:
        raise SystemExit("not a ClientHello: %r" % b[:16])
    return b

hello = client_hello()
started = time.monotonic()
plain_idle = socket.create_connection(("127.0.0.1", tcp_port))
idle = [socket.create_connection(("127.0.0.1", tls_port)) for _ in range(5)]
partial = [socket.create_connection(("127.0.0.1", tls_port)) for _ in range(3)]
for s in partial:
    s.sendall(hello[:len(hello) // 2])
open_ = idle + partial
while open_ and time.monotonic() - started < 60:
    r, _, _ = select.select(open_, [], [], 1)
    for s in r:
        try:
            if s.recv(1) == b"":
                open_.remove(s)
        except ConnectionResetError:
            open_.remove(s)
if open_:
    raise SystemExit("%d of 5 idle connections and %d of 3 with half a ClientHello (%d of %d bytes) "
                     "to the TLS port still open after 60 s"
                     % (len([s for s in open_ if s in idle]), len([s for s in open_ if s in partial]),
                        len(hello) // 2, len(hello)))
# nng closes an idle plain tcp connection itself after 10 s: only before that
# does its being open say the sweep left it alone
if time.monotonic() - started < 9:
    try:  # nng's 8-byte SP header, or nothing yet: open; b"" or a reset: closed
        if plain_idle.recv(64, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
            raise SystemExit("the idle connection to the plain tcp listener was closed")
    except BlockingIOError:
        pass
    except ConnectionResetError:
        raise SystemExit("the idle connection to the plain tcp listener was reset")
else:
    print("tls-handshake: note: the sweep took over 9 s; plain idle connection not checked")
score(good, 2, 2)
score(plain, 2, 2)
late = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), timeout=10))
sp_open(late)
score(late, 3, 3)
PY

curl -s --unix-socket "$D/admin.sock" http://vigild/metrics >"$D/metrics" || fail "no /metrics"
grep -q '^vigil_tls_handshake_timeouts_total 8$' "$D/metrics" ||
	fail "metric: $(grep vigil_tls_handshake "$D/metrics")"
grep -q 'tls: closed [1-8] connection(s) that did not complete the TLS handshake within 1000 ms' \
	"$D/vigild.log" || fail "no log line for the closed connections"
kill -0 "$PID" || fail "vigild exited"
vt_done "5 idle and 3 half-ClientHello connections to the TLS port closed; a TLS and a tcp client kept theirs and scored, a new TLS client scored"
