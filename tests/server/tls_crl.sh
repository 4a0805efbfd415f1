#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/tls_crl.sh - certificate revocation on vigild's mutual TLS
# socket: with [tls] crl (--tls-crl) a client certificate the CA revoked is
# refused while the others score; without it the same certificate scores
# (the control); --check-config refuses a file that is no CRL, a CRL of
# another CA and a CRL without a CA, one line each, and warns when the
# list's next update is near (past it every client would be refused);
# SIGHUP rereads the list, so revoking a second certificate takes effect
# without a restart. The PKI is made at
# test time with openssl (tests/lib/mkpki.sh, openssl ca for the lists).
# Usage: tls_crl.sh (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
set -eu

VT_NAME=tls_crl
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
V="$B/server/vigild"
SC="$B/tools/score/vigil-score"
R="$S/tests/server/rules/velocity.rules"

mkdir "$D/pki"
sh "$S/tests/lib/mkpki.sh" "$D/pki" || fail "mkpki.sh failed"
P="$D/pki"
# a second client of the same CA, to revoke; and openssl ca's database
(
	cd "$P"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout lost.key \
		-out lost.csr -subj "/CN=lost-client" 2>/dev/null
	printf 'subjectAltName=DNS:payments-client\nextendedKeyUsage=clientAuth\n' >lost.ext
	openssl x509 -req -in lost.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile lost.ext -out lost.pem 2>/dev/null
	mkdir cadb evildb
	: >cadb/index.txt
	: >evildb/index.txt
	echo 1000 >cadb/crlnumber
	echo 1000 >evildb/crlnumber
	for c in ca evil; do
		key=ca
		[ "$c" = evil ] && key=evil-ca
		printf '[ca]\ndefault_ca = d\n[d]\ndatabase = %sdb/index.txt\ncrlnumber = %sdb/crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\ncertificate = %s.pem\nprivate_key = %s.key\n' \
			"$c" "$c" "$key" "$key" >"$c.cnf"
	done
	openssl ca -config ca.cnf -revoke lost.pem 2>/dev/null
	openssl ca -config ca.cnf -gencrl -out crl.pem 2>/dev/null
	openssl ca -config evil.cnf -gencrl -out evil-crl.pem 2>/dev/null
) || fail "openssl ca failed"
PORT=$(vt_free_port)
URL="tls+tcp://127.0.0.1:$PORT"
TLS="--tls-cert $P/server.pem --tls-key $P/server.key --tls-ca $P/ca.pem"
COMMON="--rules $R --data $D/data --admin off --listen $URL"

# --check-config
expect 0 'vigild: configuration ok' "$V" $COMMON $TLS --tls-crl "$P/crl.pem" --check-config
grep -q "tls crl  *$P/crl.pem\$" "$D/out" || fail "check-config: no tls crl line: $(cat "$D/out")"
# its next update is 2 days away: past it every client would be refused
grep -q "^vigild: warning: \[tls\] crl $P/crl.pem is due for its next update on " "$D/out" ||
	fail "check-config: no next-update warning: $(cat "$D/out")"
printf 'not a list\n' >"$D/junk.pem"
expect 2 "^vigild: \[tls\] crl $D/junk.pem: not a PEM file" \
	"$V" $COMMON $TLS --tls-crl "$D/junk.pem" --check-config
printf -- '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n' >"$D/bad.pem"
expect 2 "^vigild: \[tls\] crl $D/bad.pem: not a PEM certificate revocation list" \
	"$V" $COMMON $TLS --tls-crl "$D/bad.pem" --check-config
expect 2 "^vigild: \[tls\] crl $P/evil-crl.pem: issued by none of the CAs of \[tls\] ca\$" \
	"$V" $COMMON $TLS --tls-crl "$P/evil-crl.pem" --check-config
expect 2 "^vigild: --tls-crl: \[tls\] crl is set without ca" \
	"$V" $COMMON --tls-cert "$P/server.pem" --tls-key "$P/server.key" --tls-crl "$P/crl.pem" --check-config
expect 2 "^vigild: \[tls\] crl $D/none.pem: cannot open: No such file or directory\$" \
	"$V" $COMMON $TLS --tls-crl "$D/none.pem" --check-config

health() { # CERT: vigil-score health with that client certificate
	"$SC" --server "$URL" --tls-ca "$P/ca.pem" --tls-cert "$P/$1.pem" --tls-key "$P/$1.key" \
		--timeout 2000 --attempts 1 health
}
start() { # extra vigild options
	: >"$D/vigild.log"
	# shellcheck disable=SC2086
	"$V" $COMMON $TLS "$@" 2>"$D/vigild.log" &
	PID=$!
	vt_wait_log 'vigild: ready' "readiness"
}
stop() {
	kill -TERM "$PID"
	wait "$PID" || true
	PID=
}

# control: without a CRL the lost certificate is as good as any
start
expect 0 '"ready":true' health client
expect 0 '"ready":true' health lost
stop

# with the CRL: refused; the other client scores
cp "$P/crl.pem" "$P/current-crl.pem"
start --tls-crl "$P/current-crl.pem"
expect 0 '"ready":true' health client
expect 1 '"client_error":"EUNREACHABLE"' health lost

# revoke the other one too and SIGHUP: the new list is read, no restart
(cd "$P" && openssl ca -config ca.cnf -revoke client.pem 2>/dev/null &&
	openssl ca -config ca.cnf -gencrl -out current-crl.pem 2>/dev/null) || fail "openssl ca failed"
kill -HUP "$PID"
vt_wait_log "crl $P/current-crl.pem reloaded (SIGHUP)" "reload line after SIGHUP"
expect 1 '"client_error":"EUNREACHABLE"' health client
kill -0 "$PID" || fail "vigild died"
stop
echo "tls_crl: ok"
