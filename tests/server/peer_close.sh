#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/peer_close.sh - peers that close in the middle of connection
# setup do not stop vigild's listeners: a thousand connect-and-close on the
# ipc socket, 1,500 TLS handshakes dropped at each of their first four
# steps (half with a reset), and a thousand connect-and-close on plain tcp;
# a client that comes after them is answered on each listener. On libnng
# 1.5.2 a handshake that failed on the peer's close stopped its listener for
# good (server/epipe.c): 300 on the ipc socket or 300-600 dropped TLS
# handshakes were enough, on this machine, every time. The plain tcp case
# did not stop it even then (nng writes its 8-byte header once, and the
# reset comes back as ECONNRESET): it is checked all the same.
# Usage: peer_close.sh (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
set -eu

VT_NAME=peer-close
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
SC=$(vt_prog vigil-score)
TLS_PORT=$(vt_free_port)
TCP_PORT=$(vt_free_port)
SOCK="$D/vigild.sock"
mkdir "$D/pki"
P="$D/pki"
sh "$S/tests/lib/mkpki.sh" "$P" || fail "mkpki.sh failed"

"$(vt_prog vigild)" --rules "$S/tests/server/rules/velocity.rules" --data "$D/data" --admin off \
	--listen "ipc://$SOCK" --listen "tls+tcp://127.0.0.1:$TLS_PORT" \
	--listen "tcp://127.0.0.1:$TCP_PORT" --tls-cert "$P/server.pem" --tls-key "$P/server.key" \
	--tls-ca "$P/ca.pem" 2>"$D/vigild.log" &
PID=$!
vt_wait_log 'vigild: ready' "readiness"

python3 - "$SOCK" "$TLS_PORT" "$TCP_PORT" <<'PY' || fail "the peers that close failed"
import socket, ssl, struct, sys

path, tls_port, tcp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends a reset

for i in range(1000):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.close()

# A TLS client without a certificate that stops after 0-3 round trips of
# its handshake, as a client whose timeout fires in the middle does.
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for i in range(1500):
    s = socket.create_connection(("127.0.0.1", tls_port))
    s.settimeout(10)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out)
    try:
        for step in range(i % 4 + 1):
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            data = out.read()
            if data:
                s.sendall(data)
            if step == i % 4:
                break
            data = s.recv(65536)
            if not data:
                break
            inc.write(data)
    except (ssl.SSLError, OSError):
        pass
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    s.close()

for i in range(1000):
    s = socket.create_connection(("127.0.0.1", tcp_port))
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    s.close()
PY

TLS="--tls-ca $P/ca.pem --tls-cert $P/client.pem --tls-key $P/client.key"
for url in "ipc://$SOCK" "tls+tcp://127.0.0.1:$TLS_PORT" "tcp://127.0.0.1:$TCP_PORT"; do
	case $url in tls*) opts=$TLS ;; *) opts= ;; esac
	# shellcheck disable=SC2086 # the TLS options, a word each
	expect 0 '"ready":true' "$SC" --server "$url" $opts --timeout 5000 --attempts 1 health
	# shellcheck disable=SC2086
	expect 0 "\"txn_id\":\"after-close-${url%%:*}\"" "$SC" --server "$url" $opts --timeout 5000 \
		--attempts 1 --txn-id "after-close-${url%%:*}" --card card-pc --merchant m-1 \
		--amount 10.00 --currency EUR
done
kill -0 "$PID" || fail "vigild exited"
vt_done "3,500 peers closed during connection setup; the ipc, tls+tcp and tcp listeners still answer"
