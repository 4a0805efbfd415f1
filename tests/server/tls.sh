#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/tls.sh - mutual TLS on vigild's scoring socket as tools
# nobody here wrote see it (issue 17): a throwaway PKI made with openssl
# (tests/lib/mkpki.sh); --check-config names a bad certificate, key or
# pairing in one line; nngcat (nng-utils) with --cacert/--cert/--key scores
# a protoc-encoded request, without a client certificate or with one from
# another CA it gets nothing; vigil-score with --tls-*; the ipc socket is
# 0660; SIGHUP rotates the certificate, key and CA for new connections
# while open ones keep going, and refuses a bad new pair in one line.
# Usage: tls.sh (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
set -eu

VT_NAME=tls
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
V="$B/server/vigild"
R="$S/tests/server/rules/velocity.rules"

mkdir "$D/pki"
sh "$S/tests/lib/mkpki.sh" "$D/pki" || fail "mkpki.sh failed"
P="$D/pki"
PORT=$(vt_free_port)
URL="tls+tcp://127.0.0.1:$PORT"
COMMON="--rules $R --data $D/data --admin off --listen $URL --listen ipc://$D/vigild.sock"

# --check-config: the files, the pairing, one line each
expect 0 'vigild: configuration ok' \
	"$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$P/server.key" --tls-ca "$P/ca.pem" --check-config
grep -q "tls ca .*ca.pem (client certificates required)" "$D/out" || fail "check-config: no tls ca line"
grep -q "^vigild: warning: \[tls\] cert $P/server.pem expires on .* (in [0-2] day(s))$" "$D/out" ||
	fail "check-config: no expiry warning: $(cat "$D/out")"
expect 2 "^vigild: \[tls\] key $P/client.key is not the key of \[tls\] cert $P/server.pem\$" \
	"$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$P/client.key" --check-config
expect 2 "^vigild: \[tls\] cert $D/none.pem: cannot open: No such file or directory\$" \
	"$V" $COMMON --tls-cert "$D/none.pem" --tls-key "$P/server.key" --check-config
mkfifo "$D/fifo.pem"
expect 2 "^vigild: \[tls\] cert $D/fifo.pem: not a regular file\$" \
	"$V" $COMMON --tls-cert "$D/fifo.pem" --tls-key "$P/server.key" --check-config
printf 'not a certificate\n' >"$D/junk.pem"
expect 2 "^vigild: \[tls\] ca $D/junk.pem: not a PEM file (no \"-----BEGIN\" line" \
	"$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$P/server.key" --tls-ca "$D/junk.pem" --check-config
printf -- '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' >"$D/bad.pem"
expect 2 "^vigild: \[tls\] ca $D/bad.pem: not a PEM X.509 certificate" \
	"$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$P/server.key" --tls-ca "$D/bad.pem" --check-config
expect 2 "^vigild: \[tls\] key $P/server.pem: not an unencrypted PEM private key" \
	"$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$P/server.pem" --check-config
# DER, which mbedTLS reads but nng's TLS configuration does not: refused by
# the check as at start, not passed by one and refused by the other
openssl x509 -in "$P/ca.pem" -outform DER -out "$D/ca.der"
expect 2 "^vigild: \[tls\] ca $D/ca.der: not a PEM file" \
	"$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$P/server.key" --tls-ca "$D/ca.der" --check-config
openssl pkey -in "$P/server.key" -outform DER -out "$D/server.key.der"
expect 2 "^vigild: \[tls\] key $D/server.key.der: not a PEM file" \
	"$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$D/server.key.der" --check-config
expect 2 "^vigild: --listen: listen $URL: a tls+tcp:// URL needs \[tls\] cert and key (--tls-cert, --tls-key)\$" \
	"$V" $COMMON --check-config
# and the same at start: exit 2 before anything listens
expect 2 "is not the key of" "$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$P/client.key"
# a plaintext listener on a routable address is legal, with a warning
expect 0 "^vigild: warning: listen tcp://0.0.0.0:1: plaintext and unauthenticated" \
	"$V" --rules "$R" --data "$D/data" --admin off --listen tcp://0.0.0.0:1 --check-config

"$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$P/server.key" --tls-ca "$P/ca.pem" \
	2>"$D/vigild.log" &
PID=$!
vt_wait_log 'vigild: ready' "readiness"
[ "$(stat -c %a "$D/vigild.sock")" = 660 ] || fail "ipc socket mode $(stat -c %a "$D/vigild.sock"), expected 660"

encode() { protoc --proto_path="$S/proto" --encode=vigil.v1.Request vigil.proto; }
decode() { protoc --proto_path="$S/proto" --decode=vigil.v1.Reply vigil.proto; }
encode >"$D/score.bin" <<'TXT'
score { txn { txn_id: "tls-nngcat-1" event_time_ms: 1763700000000 card_id: "card-tls" merchant_id: "m-1" amount_minor: 2500 currency: "EUR" } }
TXT
# nngcat as a foreign client: verifies the server for its URL's host (127.0.0.1)
nngcat --req --dial "$URL" --cacert "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key" \
	--file "$D/score.bin" --raw --recv-timeout 5 >"$D/score.out" 2>"$D/nngcat.err" ||
	fail "nngcat with a valid certificate: $(cat "$D/nngcat.err")"
decode <"$D/score.out" >"$D/score.txt" || fail "reply is not a vigil.v1.Reply"
grep -q 'txn_id: "tls-nngcat-1"' "$D/score.txt" || fail "no txn_id in reply: $(cat "$D/score.txt")"
grep -q 'status:' "$D/score.txt" && fail "score: status is not OK: $(cat "$D/score.txt")"

if nngcat --req --dial "$URL" --cacert "$P/ca.pem" --file "$D/score.bin" --raw \
	--recv-timeout 2 >"$D/none.out" 2>&1; then
	fail "nngcat without a client certificate got an answer"
fi
if nngcat --req --dial "$URL" --cacert "$P/ca.pem" --cert "$P/evil.pem" --key "$P/evil.key" \
	--file "$D/score.bin" --raw --recv-timeout 2 >"$D/evil.out" 2>&1; then
	fail "nngcat with a certificate from another CA got an answer"
fi

# vigil-score
SC="$B/tools/score/vigil-score"
expect 0 '"ready":true' "$SC" --server "$URL" --tls-ca "$P/ca.pem" --tls-cert "$P/client.pem" \
	--tls-key "$P/client.key" health
expect 0 '"txn_id":"tls-score-1"' "$SC" --server "$URL" --tls-ca "$P/ca.pem" \
	--tls-cert "$P/client.pem" --tls-key "$P/client.key" --tls-server-name localhost \
	--txn-id tls-score-1 --card card-tls --merchant m-1 --amount 12.50 --currency EUR
expect 1 '"client_error":"EUNREACHABLE"' "$SC" --server "$URL" --tls-ca "$P/ca.pem" --timeout 300 \
	--attempts 1 health
expect 1 '"client_error":"EUNREACHABLE"' "$SC" --server "$URL" --tls-ca "$P/ca.pem" --tls-cert "$P/evil.pem" \
	--tls-key "$P/evil.key" --timeout 300 --attempts 1 health
expect 2 "^vigil-score: $URL: a tls+tcp:// URL needs --tls-ca FILE (see --help)\$" "$SC" --server "$URL" health
expect 2 "^vigil-score: $URL: $D/none.pem: No such file or directory\$" "$SC" --server "$URL" \
	--tls-ca "$D/none.pem" health

# vigil-replay's server mode dials the same way, after the two clients
# above that give up in the middle of their handshakes: on libnng 1.5.2
# such a client could stop the listener for good, and this request then got
# no reply (server/epipe.c; tests/server/peer_close.sh). On a failure the
# health probe below tells a replay-only fault from a listener that
# answers nobody.
RP="$B/tools/replay/vigil-replay"
printf 'txn_id,event_time,card_id,merchant_id,amount,currency\n' >"$D/r.csv"
printf 'tls-rp-1,%s,card-rp,m-1,9.99,EUR\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$D/r.csv"
set +e
"$RP" --csv "$D/r.csv" --server "$URL" --tls-ca "$P/ca.pem" --tls-cert "$P/client.pem" \
	--tls-key "$P/client.key" --tls-server-name localhost >"$D/rp.out" 2>&1
rc=$?
set -e
if [ "$rc" -ne 0 ] || ! grep -q "1 rows" "$D/rp.out"; then
	"$SC" --server "$URL" --tls-ca "$P/ca.pem" --tls-cert "$P/client.pem" \
		--tls-key "$P/client.key" health >"$D/probe.out" 2>&1 || true
	fail "vigil-replay over TLS: exit $rc: $(cat "$D/rp.out"); a health probe right after: \
$(cat "$D/probe.out")"
fi
expect 2 "^vigil-replay: $URL: a tls+tcp:// URL needs --tls-ca FILE (see --help)\$" \
	"$RP" --csv "$D/r.csv" --server "$URL" -q

# Certificate rotation without a restart (SIGHUP): a new server certificate
# from another CA and a CA bundle that also accepts that CA's clients. A
# connection open before keeps being served; new ones get the new
# certificate (the first one included); a bad new pair is refused with one
# line and the previous configuration stays.
(
	cd "$P"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server2.key \
		-out server2.csr -subj "/CN=server2" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1\n' >server2.ext
	openssl x509 -req -in server2.csr -CA evil-ca.pem -CAkey evil-ca.key -CAcreateserial \
		-days 2 -extfile server2.ext -out server2.pem 2>/dev/null
) || fail "cannot make the second server certificate"
encode >"$D/health.bin" <<'TXT'
health { }
TXT
# the connection opened before: one request a second, 6 in all
nngcat --req --dial "$URL" --cacert "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key" \
	--file "$D/health.bin" --hex --interval 1 --count 6 --recv-timeout 5 \
	>"$D/before.out" 2>"$D/before.err" &
BEFORE=$!
sleep 1.5
cp "$P/ca.pem" "$D/oldca.pem"
cat "$P/ca.pem" "$P/evil-ca.pem" >"$P/bundle.tmp"
cp "$P/server2.pem" "$P/server.pem.tmp"
cp "$P/server2.key" "$P/server.key.tmp"
mv "$P/server.pem.tmp" "$P/server.pem"
mv "$P/server.key.tmp" "$P/server.key"
mv "$P/bundle.tmp" "$P/ca.pem"
kill -HUP "$PID"
vt_wait_log 'vigild: tls: certificate .* reloaded (SIGHUP): new connections use them' "certificate reload line after SIGHUP"
# the first new connection verifies the new certificate (and the bundle
# accepts a client of the new CA)
nngcat --req --dial "$URL" --cacert "$P/evil-ca.pem" --cert "$P/evil.pem" --key "$P/evil.key" \
	--file "$D/health.bin" --hex --recv-timeout 5 >"$D/new.out" 2>&1 ||
	fail "after the reload, a client trusting the new CA: $(cat "$D/new.out")"
nngcat --req --dial "$URL" --cacert "$P/evil-ca.pem" --cert "$P/client.pem" --key "$P/client.key" \
	--file "$D/health.bin" --hex --recv-timeout 5 >"$D/new.out" 2>&1 ||
	fail "after the reload, a client of the old CA trusting the new one: $(cat "$D/new.out")"
if nngcat --req --dial "$URL" --cacert "$D/oldca.pem" --cert "$P/client.pem" --key "$P/client.key" \
	--file "$D/health.bin" --hex --recv-timeout 2 >"$D/old.out" 2>&1; then
	fail "after the reload, a client trusting only the old CA got an answer (old certificate served)"
fi
wait "$BEFORE" || fail "the connection opened before the reload: $(cat "$D/before.err")"
[ "$(wc -l <"$D/before.out")" -eq 6 ] ||
	fail "the connection opened before the reload got $(wc -l <"$D/before.out") replies, not 6"
# a bad new pair: refused in one line, the configuration in use stays
cp "$P/client.key" "$P/server.key.tmp"
mv "$P/server.key.tmp" "$P/server.key"
kill -HUP "$PID"
vt_wait_log "vigild: \[tls\] key $P/server.key is not the key of \[tls\] cert $P/server.pem; the previous certificate, key and CA stay in use\$" "refusal line for a mismatched key after SIGHUP"
nngcat --req --dial "$URL" --cacert "$P/evil-ca.pem" --cert "$P/client.pem" --key "$P/client.key" \
	--file "$D/health.bin" --hex --recv-timeout 5 >"$D/new.out" 2>&1 ||
	fail "after a refused reload, the certificate in use: $(cat "$D/new.out")"
# a FIFO in the key's place: refused, not waited on (the reload runs on the
# main thread, which also answers SIGTERM below)
rm "$P/server.key"
mkfifo "$P/server.key"
kill -HUP "$PID"
vt_wait_log "vigild: \[tls\] key $P/server.key: not a regular file; the previous certificate, key and CA stay in use\$" "refusal line for a FIFO key after SIGHUP"
nngcat --req --dial "$URL" --cacert "$P/evil-ca.pem" --cert "$P/client.pem" --key "$P/client.key" \
	--file "$D/health.bin" --hex --recv-timeout 5 >"$D/new.out" 2>&1 ||
	fail "after a reload refused for a FIFO, the certificate in use: $(cat "$D/new.out")"

kill -0 "$PID" 2>/dev/null || fail "vigild died"
kill -TERM "$PID"
wait "$PID" || fail "vigild exited with status $? after SIGTERM"
PID=
echo "tls: ok"
