#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/tls_expiry.sh - the dates of vigild's TLS material seen
# before they stop the service (issue 28, row 1): with a server
# certificate, a CA and a CRL, /readyz carries a "tls" section with the
# seconds left to each, /metrics the gauge vigil_tls_expiry_seconds, and
# the log a warning for each within its window (the test PKI lives 2
# days). A CRL whose next update is 5 s away is loaded by SIGHUP; once it
# is past, without any request or reload, /readyz turns 503 saying why,
# the log says so once ([tls] check_interval_s = 1), the gauge is
# negative, and a valid client is indeed refused; a fresh CRL and SIGHUP
# make it ready again and the client scores. Certificates and lists made
# at test time (tests/lib/mkpki.sh, openssl ca -gencrl -crlsec).
# Usage: tls_expiry.sh (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
set -eu

VT_NAME=tls_expiry
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
V="$B/server/vigild"
SC="$B/tools/score/vigil-score"
R="$S/tests/server/rules/velocity.rules"

mkdir "$D/pki"
sh "$S/tests/lib/mkpki.sh" "$D/pki" || fail "mkpki.sh failed"
P="$D/pki"
gencrl() { # openssl ca -gencrl options: a new list of the CA into current-crl.pem
	(cd "$P" && openssl ca -config ca.cnf -gencrl "$@" -out current-crl.pem 2>/dev/null) ||
		fail "openssl ca -gencrl $* failed"
}
(
	cd "$P"
	mkdir cadb
	: >cadb/index.txt
	echo 1000 >cadb/crlnumber
	printf '[ca]\ndefault_ca = d\n[d]\ndatabase = cadb/index.txt\ncrlnumber = cadb/crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\ncertificate = ca.pem\nprivate_key = ca.key\n' >ca.cnf
) || fail "openssl ca set-up failed"
gencrl
PORT=$(vt_free_port)
APORT=$(vt_free_port)
URL="tls+tcp://127.0.0.1:$PORT"
printf '[tls]\ncheck_interval_s = 1\n' >"$D/vigild.ini"

health() { # vigil-score health with the client certificate
	"$SC" --server "$URL" --tls-ca "$P/ca.pem" --tls-cert "$P/client.pem" --tls-key "$P/client.key" \
		--timeout 10000 --attempts 1 health
}
get() { # PATH: the body, status line last ("HTTP 200")
	curl -s -w '\nHTTP %{http_code}\n' "http://127.0.0.1:$APORT$1"
}

"$V" --config "$D/vigild.ini" --rules "$R" --data "$D/data" --admin "127.0.0.1:$APORT" \
	--listen "$URL" --tls-cert "$P/server.pem" --tls-key "$P/server.key" --tls-ca "$P/ca.pem" \
	--tls-crl "$P/current-crl.pem" 2>"$D/vigild.log" &
PID=$!
vt_wait_log 'vigild: ready' "readiness"

# before: ready, with the dates; warned about each (2 days left)
out=$(get /readyz)
echo "$out" | grep -q '^HTTP 200$' || fail "/readyz not 200 at start: $out"
for f in cert ca crl; do
	echo "$out" | grep -q "\"$f\":{\"expires_in_s\":[0-9]" || fail "/readyz: no tls $f date: $out"
	get /metrics | grep -q "^vigil_tls_expiry_seconds{file=\"$f\"} [0-9]" ||
		fail "/metrics: no vigil_tls_expiry_seconds for $f"
done
echo "$out" | grep -q '"expired":false' || fail "/readyz: tls not said unexpired: $out"
grep -q "vigild: tls: warning: \[tls\] crl $P/current-crl.pem: next update .*, in [0-9]* s" \
	"$D/vigild.log" || fail "no warning about the CRL's next update"
grep -q "vigild: tls: warning: \[tls\] cert $P/server.pem: expires on " "$D/vigild.log" ||
	fail "no warning about the server certificate"
expect 0 '"ready":true' health

# a list due in 5 s, loaded; then past it with nothing else happening
gencrl -crlsec 5
kill -HUP "$PID"
vt_wait_log "crl $P/current-crl.pem reloaded (SIGHUP)" "reload line after SIGHUP"
i=0
until get /readyz | grep -q '^HTTP 503$'; do
	i=$((i + 1))
	[ "$i" -lt 300 ] || fail "/readyz still not 503 30 s after the CRL's next update"
	sleep 0.1
done
out=$(get /readyz)
echo "$out" | grep -q '"reason":"tls: \[tls\] crl [^"]* past its next update since ' ||
	fail "/readyz 503 without the CRL as its reason: $out"
echo "$out" | grep -q '"crl":{"expires_in_s":-[0-9]' || fail "/readyz: crl not negative: $out"
echo "$out" | grep -q '"expired":true' || fail "/readyz: tls not said expired: $out"
get /metrics | grep -q '^vigil_tls_expiry_seconds{file="crl"} -[0-9]' ||
	fail "/metrics: the crl gauge is not negative"
vt_wait_log "vigild: tls: error: \[tls\] crl $P/current-crl.pem: past its next update since" \
	"error line for the expired CRL"
[ "$(grep -c 'tls: error: \[tls\] crl' "$D/vigild.log")" -eq 1 ] ||
	fail "the expired CRL logged more than once"
# what /readyz says is so: a valid client is refused (mbedTLS compares whole
# seconds and calls a list out of date one second after vigild does)
i=0
until health 2>&1 | grep -q '"client_error":"EUNREACHABLE"'; do
	i=$((i + 1))
	[ "$i" -lt 10 ] || fail "a valid client still scores 10 tries after the CRL's next update"
	sleep 0.5
done

# a fresh list and SIGHUP: ready again
gencrl
kill -HUP "$PID"
i=0
until get /readyz | grep -q '^HTTP 200$'; do
	i=$((i + 1))
	[ "$i" -lt 300 ] || fail "/readyz not 200 again after a fresh CRL and SIGHUP"
	sleep 0.1
done
expect 0 '"ready":true' health
kill -0 "$PID" || fail "vigild died"
kill -TERM "$PID"
wait "$PID" || fail "vigild exited with status $?"
PID=
echo "tls_expiry: ok"
