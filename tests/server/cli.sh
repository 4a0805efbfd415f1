#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/cli.sh - vigild's command line as scripts see it: --help and
# --version exit 0; a bad flag, a bad INI value or a bad rule file is one
# "vigild: ..." line naming the place and exit 2 (a listen URL nng would
# refuse too); --check-config; a second
# vigild on a locked data directory exits 1 with the reason.
set -eu

B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
S=${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}
V="$B/server/vigild"
R="$S/tests/server/rules/velocity.rules"
D=$(mktemp -d /tmp/vigil-cli-XXXXXX)
PID=
cleanup() {
	if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$D"
}
trap cleanup EXIT INT TERM
fail() { echo "cli: $*" >&2; exit 1; }

# expect STATUS PATTERN cmd...: runs cmd, checks exit status and that
# stdout+stderr match the grep pattern.
expect() {
	want=$1 pat=$2
	shift 2
	set +e
	"$@" >"$D/out" 2>&1
	got=$?
	set -e
	[ "$got" -eq "$want" ] || fail "$*: exit $got, expected $want: $(cat "$D/out")"
	grep -q -- "$pat" "$D/out" || fail "$*: output does not match '$pat': $(cat "$D/out")"
}

expect 0 '^usage: vigild' "$V" --help
expect 0 '^vigild [0-9]' "$V" --version
expect 2 '^vigild: --workers: 0 is outside \[1, 256\] (see --help)$' "$V" --rules "$R" --workers 0
expect 2 '^vigild: --bogus: unknown option' "$V" --bogus
expect 2 '^vigild: no rule file: set \[rules\] path or --rules$' "$V"

printf '[server]\nworkers = 2\nmax_inflight = lots\n' >"$D/bad.ini"
expect 2 "^vigild: config $D/bad.ini:3: max_inflight: \"lots\" is not a non-negative integer\$" \
	"$V" --config "$D/bad.ini" --rules "$R"

# A listen URL that nng would refuse at start is refused by --check-config.
expect 2 '^vigild: --listen: "tcp://" has no port (tcp://HOST:PORT) (see --help)$' \
	"$V" --rules "$R" --listen tcp:// --check-config
printf '[server]\nlisten = ipc://%s/a.sock, gopher://x:70\n' "$D" >"$D/badurl.ini"
expect 2 "^vigild: config $D/badurl.ini:2: listen: \"gopher://x:70\" is not a URL vigild listens on: write tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///PATH\$" \
	"$V" --config "$D/badurl.ini" --rules "$R" --check-config

# Settings that disagree: one line at the place of the one to change, naming
# the other and its place (FILE:LINE, --flag or default).
I="$D/cross.ini"
printf '[server]\nadmin = 127.0.0.1:9101\n[health]\nlisten = 127.0.0.1:9101\n' >"$I"
expect 2 "^vigild: config $I:4: \\[health\\] listen \"127.0.0.1:9101\" is the same address as \\[server\\] admin ($I:2): the probes' listener needs an address of its own\$" \
	"$V" --config "$I" --rules "$R" --check-config
expect 2 "^vigild: --health-listen: \\[health\\] listen \"127.0.0.1:9101\" is the same address as \\[server\\] admin ($I:2): " \
	"$V" --config "$I" --health-listen 127.0.0.1:9101 --rules "$R" --check-config
printf '[server]\nadmin = off\n[health]\nlisten = 127.0.0.1:9102\n' >"$I"
expect 2 "^vigild: config $I:4: \\[health\\] listen is set but \\[server\\] admin is off ($I:2): the probes' listener runs beside the admin endpoint\$" \
	"$V" --config "$I" --rules "$R" --check-config
printf '[cluster]\nname = c\nnats = nats://127.0.0.1:4222\n' >"$I"
expect 2 "^vigild: config $I:3: \\[cluster\\] nats is set but not this replica's name: set \\[cluster\\] replica or --replica\$" \
	"$V" --config "$I" --rules "$R" --check-config
printf '[cluster]\n\nreplica = r1\n' >"$I"
expect 2 "^vigild: config $I:3: \\[cluster\\] replica is set but no NATS server: set \\[cluster\\] nats or --nats\$" \
	"$V" --config "$I" --rules "$R" --check-config
printf '[server]\nlisten = tls+tcp://127.0.0.1:9103\n[tls]\ncert = c.pem\n' >"$I"
expect 2 "^vigild: config $I:2: listen tls+tcp://127.0.0.1:9103: a tls+tcp:// URL needs \\[tls\\] cert and key (--tls-cert, --tls-key)\$" \
	"$V" --config "$I" --rules "$R" --check-config
printf '[server]\nworkers = 2\n[tls]\nca = ca.pem\n' >"$I"
expect 2 "^vigild: config $I:4: \\[tls\\] ca is set without cert and key: set cert and key together (--tls-cert, --tls-key)\$" \
	"$V" --config "$I" --rules "$R" --check-config
printf '[tls]\ncert = c.pem\nkey = k.pem\ncrl = crl.pem\n' >"$I"
expect 2 "^vigild: config $I:4: \\[tls\\] crl is set without ca: a revocation list needs the CA whose client certificates it revokes (--tls-ca)\$" \
	"$V" --config "$I" --rules "$R" --check-config
printf '[server]\nlisten = tcp://127.0.0.1:9104\n[tls]\ncert = c.pem\nkey = k.pem\n' >"$I"
expect 2 "^vigild: config $I:4: \\[tls\\] cert is set but no \\[server\\] listen URL ($I:2) is tls+tcp://: the scoring socket would not be encrypted\$" \
	"$V" --config "$I" --rules "$R" --check-config

printf 'version "x"\nrule r {\n  when amount > > 5\n}\n' >"$D/bad.rules"
expect 2 "$D/bad.rules:3:" "$V" --rules "$D/bad.rules" --check-config
expect 2 "rules: rejected $D/bad.rules (startup): $D/bad.rules:3:" \
	"$V" --rules "$D/bad.rules" --data "$D/data" --listen "ipc://$D/x.sock" --admin off

# A rule file that compiles but that vigild cannot serve (tuned thresholds
# on more features than an archive record holds) fails --check-config as it
# fails the start, not one and not the other.
{
	echo 'version "x"'
	n=0
	for f in amount card.count_7d card.count_30d card.count_90d card.amount_sum_7d \
	    card.amount_sum_30d card.amount_sum_90d card.amount_mean_7d card.amount_mean_30d \
	    card.amount_mean_90d card.amount_std_30d card.amount_std_90d card.amount_p50_90d \
	    card.amount_p95_90d card.amount_p99_90d card.amount_max_90d card.amount_zscore \
	    card.distinct_merchants_90d card.distinct_countries_90d card.age_days \
	    card.fraud_count_90d card.hour_share card.amount_to_mean_30d \
	    card.top_merchant_share_90d merchant.count_7d merchant.count_30d \
	    merchant.amount_mean_30d merchant.fraud_count_30d merchant.fraud_rate_7d \
	    merchant.fraud_rate_30d merchant.fraud_rate_90d merchant.fraud_count_mature_30d \
	    merchant.fraud_rate_mature_7d; do
		n=$((n + 1))
		echo "threshold t$n = percentile($f, 99) fallback 1"
	done
	printf 'rule r {\n  when amount > t1\n  score 10\n  reason "x"\n}\n'
} >"$D/wide.rules"
expect 2 "^$D/wide.rules: tuned thresholds read more than 32 distinct features" \
	"$V" --rules "$D/wide.rules" --check-config
expect 2 "rules: rejected $D/wide.rules (startup): tuned thresholds read more than 32" \
	"$V" --rules "$D/wide.rules" --data "$D/data" --listen "ipc://$D/x.sock" --admin off

printf '[server]\nlisten = ipc://%s/a.sock\nadmin = off\n[store]\ndata_dir = %s/data\n[rules]\npath = %s\n' \
	"$D" "$D" "$R" >"$D/good.ini"
expect 0 'vigild: configuration ok' "$V" --config "$D/good.ini" --check-config

# One vigild per data directory: the second one says why and exits 3 (busy).
"$V" --config "$D/good.ini" 2>"$D/first.log" &
PID=$!
i=0
until grep -q 'vigild: ready' "$D/first.log"; do
	i=$((i + 1))
	[ "$i" -lt 300 ] || fail "first vigild not ready: $(cat "$D/first.log")"
	kill -0 "$PID" 2>/dev/null || fail "first vigild exited: $(cat "$D/first.log")"
	sleep 0.1
done
# busy (3, docs/tools.md): another vigild holds the data directory
expect 3 "vigild: store $D/data:" "$V" --config "$D/good.ini" --listen "ipc://$D/b.sock"
kill -TERM "$PID"
wait "$PID" || fail "first vigild exited with status $? after SIGTERM"
PID=
grep -q 'vigild: stopped' "$D/first.log" || fail "no 'stopped' line: $(cat "$D/first.log")"
echo "cli: ok"
