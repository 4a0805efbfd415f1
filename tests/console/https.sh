#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/console/https.sh - vigil-console over HTTPS with analysts identified
# by client certificate (issue 19; docs/console.md, "Identity"): a
# throwaway PKI (tests/lib/mkpki.sh); curl with a certificate listed as
# "cert:CN" is that analyst; a token still works without a certificate; a
# certificate of another CA fails the handshake; a valid certificate whose
# CN is not listed is 401; plain HTTP gets no answer; a key that is not the
# certificate's stops start-up in one line (exit 2).
# Usage: https.sh (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
set -eu

VT_NAME=https
VT_LOG=console.log
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
C="$B/console/vigil-console"

mkdir "$D/pki" "$D/data" "$D/rules"
sh "$S/tests/lib/mkpki.sh" "$D/pki" || fail "mkpki.sh failed"
P="$D/pki"
# a certificate signed by the right CA for someone the tokens file does not list
(
	cd "$P"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout mallory.key \
		-out mallory.csr -subj "/CN=mallory" 2>/dev/null
	openssl x509 -req -in mallory.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-out mallory.pem 2>/dev/null
) || fail "cannot make mallory's certificate"
cp "$S/rules/default.rules" "$S/rules/blocked_cards.txt" "$S/rules/test_bins.txt" "$D/rules/"
printf 'client analyst cert:client\nalice admin alice-admin-token-000000001\n' >"$D/tokens"
chmod 600 "$D/tokens"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
COMMON="--data $D/data --rules $D/rules/default.rules --tokens $D/tokens --state $D/state --listen 127.0.0.1:$PORT"

# a mismatched pair: one line, exit 2, before anything listens
set +e
# shellcheck disable=SC2086
"$C" $COMMON --https-cert "$P/server.pem" --https-key "$P/client.key" >"$D/out" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "mismatched key: exit $rc, expected 2: $(cat "$D/out")"
grep -q "^vigil-console: --https-key $P/client.key is not the key of --https-cert $P/server.pem\$" \
	"$D/out" || fail "mismatched key: $(cat "$D/out")"

# shellcheck disable=SC2086
"$C" $COMMON --https-cert "$P/server.pem" --https-key "$P/server.key" \
	--https-client-ca "$P/ca.pem" 2>"$D/console.log" &
PID=$!
vt_wait_log "listening on https://" "listening line"
U="https://127.0.0.1:$PORT/api/me"

out=$(curl -s --cacert "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key" "$U") ||
	fail "curl with client.pem failed"
[ "$out" = '{"name":"client","role":"analyst"}' ] || fail "client certificate: $out"
out=$(curl -s --cacert "$P/ca.pem" -H "Authorization: Bearer alice-admin-token-000000001" "$U") ||
	fail "curl with a token failed"
[ "$out" = '{"name":"alice","role":"admin"}' ] || fail "token without a certificate: $out"
code=$(curl -s -o "$D/m.out" -w '%{http_code}' --cacert "$P/ca.pem" --cert "$P/mallory.pem" \
	--key "$P/mallory.key" "$U") || fail "curl with mallory.pem failed"
[ "$code" = 401 ] || fail "a valid certificate not listed: $code $(cat "$D/m.out")"
# a certificate's identity is not overridden by a token on the same request
code=$(curl -s -o "$D/m.out" -w '%{http_code}' --cacert "$P/ca.pem" --cert "$P/mallory.pem" \
	--key "$P/mallory.key" -H "Authorization: Bearer alice-admin-token-000000001" "$U") ||
	fail "curl with mallory.pem and a token failed"
[ "$code" = 401 ] || fail "an unlisted certificate with a token: $code $(cat "$D/m.out")"
if curl -s --cacert "$P/ca.pem" --cert "$P/evil.pem" --key "$P/evil.key" "$U" >"$D/e.out" 2>&1; then
	fail "a certificate of another CA got an answer: $(cat "$D/e.out")"
fi
if curl -s --max-time 5 "http://127.0.0.1:$PORT/api/me" >"$D/h.out" 2>&1 &&
	grep -q '"name"' "$D/h.out"; then
	fail "plain HTTP got an answer: $(cat "$D/h.out")"
fi
# still serving after the refusals
out=$(curl -s --cacert "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key" "$U") ||
	fail "curl with client.pem after the refusals failed"
[ "$out" = '{"name":"client","role":"analyst"}' ] || fail "after the refusals: $out"

kill -TERM "$PID"
wait "$PID" || fail "vigil-console exited with status $? after SIGTERM"
PID=
echo "https: ok"
