#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/lib/mkpki.sh DIR - a throwaway PKI for the TLS tests, made with
# openssl (P-256 keys, valid 2 days): ca.pem/ca.key; server.pem/.key signed
# by it for localhost and 127.0.0.1; client.pem/.key signed by it; and
# evil-ca.pem/.key with evil.pem/.key signed by that other CA. The server's
# subjectAltName carries 127.0.0.1 as a DNS name too: mbedTLS 2.28 (Debian
# 12's, under nng) matches the name it verifies only against DNS entries.
# ipsan.pem/.key, signed by ca, carries DNS:vigil.test and IP:127.0.0.1 only,
# as most certificates for an address do: dialled as tls+tcp://127.0.0.1 it
# fails unless the client names the server (tls_server_name vigil.test).
set -eu
D=${1:?usage: mkpki.sh DIR}
cd "$D"
ca() { # name subject
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$1.key" -out "$1.pem" -subj "/CN=$2" 2>/dev/null
}
leaf() { # name ca subjectAltName
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
		-days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}
ca ca "vigil test CA"
ca evil-ca "another CA"
leaf server ca "DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1"
leaf ipsan ca "DNS:vigil.test,IP:127.0.0.1"
leaf client ca "DNS:payments-client"
leaf evil evil-ca "DNS:payments-client"
chmod 600 ./*.key
