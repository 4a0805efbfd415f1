#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/console/https.sh - vigil-console over HTTPS with analysts identified
# by client certificate (issue 19; docs/console.md, "Identity"): a
# throwaway PKI (tests/lib/mkpki.sh); curl with a certificate listed as
# "cert:CN" is that analyst; a token still works without a certificate; a
# certificate of another CA fails the handshake; a valid certificate whose
# CN is not listed is 401 (logged with the address); plain HTTP gets no
# answer; a key that is not the certificate's stops start-up in one line
# (exit 2); on a certificate session a cross-site Origin or Sec-Fetch-Site is
# 403 and a POST not declared JSON 415 (issue 28, row 2).
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
PORT=$(vt_free_port)
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
# a refused authentication is logged with the address it came from
grep -q "^vigil-console: refused /api/me from 127.0.0.1: 401 " "$D/console.log" ||
	fail "no log line for the refused certificate: $(cat "$D/console.log")"

# cross-site requests on a certificate session (issue 28, row 2): a browser
# sends the certificate whichever page asks, so another site's Origin or
# Sec-Fetch-Site is refused, and a POST must be declared JSON (a page cannot
# send that type across sites without asking first)
CASE="https://127.0.0.1:$PORT/api/cases/t1/block"
post() { # EXPECTED_CODE WHAT CURL_ARGS...: POST to $CASE, the status must be EXPECTED_CODE
	want=$1
	what=$2
	shift 2
	code=$(curl -s -o "$D/p.out" -w '%{http_code}' --cacert "$P/ca.pem" -X POST "$@" "$CASE") ||
		fail "$what: curl failed"
	[ "$code" = "$want" ] || fail "$what: $code, expected $want: $(cat "$D/p.out")"
}
CERT="--cert $P/client.pem --key $P/client.key"
# shellcheck disable=SC2086
post 403 "certificate, Origin evil, text/plain" $CERT -H 'Origin: https://evil.example' \
	-H 'Content-Type: text/plain' --data-binary '{"fraud":false}'
grep -q '"message":"cross-site request refused (Origin: https://evil.example)' "$D/p.out" ||
	fail "cross-site refusal: $(cat "$D/p.out")"
# shellcheck disable=SC2086
post 403 "certificate, Origin evil, JSON" $CERT -H 'Origin: https://evil.example' \
	-H 'Content-Type: application/json' --data-binary '{}'
# shellcheck disable=SC2086
post 403 "certificate, Sec-Fetch-Site cross-site" $CERT -H 'Sec-Fetch-Site: cross-site' \
	-H 'Content-Type: application/json'
# shellcheck disable=SC2086
post 403 "certificate, Sec-Fetch-Site same-site" $CERT -H 'Sec-Fetch-Site: same-site' \
	-H 'Content-Type: application/json'
# shellcheck disable=SC2086
post 415 "certificate, an empty POST without a type" $CERT
# shellcheck disable=SC2086
post 415 "certificate, text/plain" $CERT -H 'Content-Type: text/plain' --data-binary '{}'
# this console's own page: past the checks, to the case (none here: 404)
# shellcheck disable=SC2086
post 404 "certificate, same origin" $CERT -H "Origin: https://127.0.0.1:$PORT" \
	-H 'Sec-Fetch-Site: same-origin' -H 'Content-Type: application/json; charset=utf-8'
# a bearer token is not sent by a browser on its own: Origin does not matter,
# the type does
post 404 "token, Origin evil, JSON" -H "Authorization: Bearer alice-admin-token-000000001" \
	-H 'Origin: https://evil.example' -H 'Content-Type: application/json'
post 415 "token, form" -H "Authorization: Bearer alice-admin-token-000000001" \
	-d 'fraud=false'

# a body over 2 MiB is refused unread with the error object, over TLS as in
# plain HTTP (common/evconn.h), not with libevent's HTML page
head -c 3145728 /dev/zero | tr '\0' x >"$D/big"
code=$(curl -s -o "$D/p.out" -w '%{http_code}' --cacert "$P/ca.pem" -X POST \
	-H "Authorization: Bearer alice-admin-token-000000001" -H 'Content-Type: application/json' \
	--data-binary @"$D/big" "$CASE") || true
if [ "$code" != 413 ] || ! grep -q '^{"error":{"code":"TOO_BIG",' "$D/p.out"; then
	fail "a 3 MiB body: $code $(cat "$D/p.out")"
fi

# still serving after the refusals
out=$(curl -s --cacert "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key" "$U") ||
	fail "curl with client.pem after the refusals failed"
[ "$out" = '{"name":"client","role":"analyst"}' ] || fail "after the refusals: $out"

kill -TERM "$PID"
wait "$PID" || fail "vigil-console exited with status $? after SIGTERM"
PID=
echo "https: ok"
