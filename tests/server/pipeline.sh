#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/pipeline.sh - bench-pipeline scores what vigild scores: the
# same rule file and data, and the same transactions vigil-loadgen sends
# (bench/server/txngen.h): vigild's archive after N loadgen requests and
# bench-pipeline's after N transactions hold the same cards, merchants,
# terminals, amounts, event times and countries in the same order
# (--alert-every 4: every 4th from a sanctioned country, declined by the
# rule file's hard stop; without it, none). A timed run
# archives every transaction it scored (warm-up included) and prints its
# figures as JSON; with --dry-run only the warm-up is archived; a bad
# flag, a missing --data and a rule file that does not load are usage
# errors (exit 2).
# No timing is checked.
set -eu

B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
S=${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}
PL="$B/bench/server/bench-pipeline"
LG="$B/bench/server/vigil-loadgen"
AR="$B/tools/archive/vigil-archive"
RULES="$S/rules/default.rules"
D=$(mktemp -d /tmp/vigil-pl-XXXXXX)
PID=
cleanup() {
	if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$D"
}
trap cleanup EXIT INT TERM
fail() { echo "pipeline: $*" >&2; exit 1; }
field() { # json key
	echo "$1" | sed -n "s/.*\"$2\":\([0-9.a-z]*\).*/\1/p"
}
# the transaction fields of an archive's score records, one line each, in order
txns() {
	"$AR" dump "$1" | grep '"type":"score"' |
		sed -E 's/.*"amount_minor":([0-9]+).*"card_id":"([^"]*)".*"event_time_ms":([0-9]+).*"merchant_id":"([^"]*)","terminal_id":"([^"]*)".*/\2 \4 \5 \1 \3/'
}

# the country, decision and rule hits of an archive's score records, one line each
countries() {
	"$AR" dump "$1" | grep '"type":"score"' |
		sed -E 's/^\{"decision":"([a-z]*)".*"hits":\[([^]]*)\].*"country":"([A-Z]*)".*/\3 \1 \2/'
}

# vigild: one request to see it up (its own stream, n = 0), then 40 in order
mkdir "$D/v"
URL="ipc://$D/v.sock"
"$B/server/vigild" --data "$D/v" --listen "$URL" --admin off --rules "$RULES" 2>"$D/v.log" &
PID=$!
i=0
until "$LG" --url "$URL" --requests 1 --warmup 0 >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 300 ] || fail "vigild not up: $(cat "$D/v.log")"
	sleep 0.1
done
out=$("$LG" --url "$URL" -c 1 --requests 40 --warmup 0 --alert-every 4 --json) || fail "loadgen: $out"
[ "$(field "$out" replies)" = 40 ] || fail "loadgen: expected 40 replies: $out"
kill -TERM "$PID"; wait "$PID" || fail "vigild did not stop cleanly: $(tail -3 "$D/v.log")"
PID=

# bench-pipeline: 10 warm-up + 3 runs of 10, the same 40 transactions
mkdir "$D/p"
out=$("$PL" --data "$D/p" --rules "$RULES" --warmup 10 --txns 10 --runs 3 --alert-every 4 --json) ||
	fail "bench-pipeline: $out"
[ "$(field "$out" runs)" = 3 ] || fail "runs not reported: $out"
[ "$(field "$out" model)" = false ] || fail "an empty directory has no model: $out"
[ "$(field "$out" dry_run)" = false ] || fail "not a dry run: $out"
awk -v c="$(field "$out" cpu_ns)" 'BEGIN { exit !(c > 0) }' || fail "no CPU figure: $out"
# of the timed runs' 30 transactions (n = 10..39), 7 are sanctioned (n % 4 = 3)
awk -v a="$(field "$out" alert_share)" 'BEGIN { exit !(a >= 7 / 30 - 1e-4 && a <= 1) }' ||
	fail "alert share below the 7 of 30 sanctioned: $out"

txns "$D/v/archive" | tail -n +2 >"$D/v.txns"
txns "$D/p/archive" >"$D/p.txns"
[ "$(wc -l <"$D/v.txns")" -eq 40 ] || fail "vigild archived $(wc -l <"$D/v.txns") of 40"
[ "$(wc -l <"$D/p.txns")" -eq 40 ] || fail "bench-pipeline archived $(wc -l <"$D/p.txns") of 40"
grep -q '^card-[0-9]* m-[0-9]* t-m-[0-9]*-[0-3] [0-9][0-9]* [0-9][0-9]*$' "$D/p.txns" ||
	fail "archive dump not parsed: $(head -1 "$D/p.txns")"
cmp -s "$D/v.txns" "$D/p.txns" ||
	fail "bench-pipeline scored other transactions than vigil-loadgen sent: $(diff "$D/v.txns" "$D/p.txns" | head -4)"
countries "$D/v/archive" | tail -n +2 >"$D/v.cty"
countries "$D/p/archive" >"$D/p.cty"
cmp -s "$D/v.cty" "$D/p.cty" ||
	fail "countries or decisions differ: $(diff "$D/v.cty" "$D/p.cty" | head -4)"
awk 'NR % 4 == 0 { if (!($1 == "IR" && $2 == "decline" && $3 ~ /"rule":"sanctioned_country"/)) exit 1; next }
    { if ($1 != "FR") exit 1 } END { if (NR != 40) exit 1 }' "$D/p.cty" ||
	fail "--alert-every 4: not every 4th sanctioned and declined: $(head -4 "$D/p.cty")"

# --dry-run: the warm-up scores (and archives), the timed dry runs do not
mkdir "$D/dry"
out=$("$PL" --data "$D/dry" --rules "$RULES" --warmup 5 --txns 7 --runs 2 --dry-run --json) ||
	fail "dry run: $out"
[ "$(field "$out" dry_run)" = true ] || fail "dry run not reported: $out"
n=$(txns "$D/dry/archive" | wc -l)
[ "$n" -eq 5 ] || fail "dry runs after 5 scored: $n records archived, expected 5"
[ "$(countries "$D/dry/archive" | grep -cv '^FR ')" -eq 0 ] ||
	fail "without --alert-every, a transaction not from FR: $(countries "$D/dry/archive" | head -2)"

# usage errors: exit 2, one line naming the program
set +e
"$PL" --rules "$RULES" >/dev/null 2>"$D/err"
[ $? -eq 2 ] || fail "no --data: not exit 2"
grep -q '^bench-pipeline: .*--data' "$D/err" || fail "no --data: $(cat "$D/err")"
"$PL" --data "$D/p" --rules "$RULES" --txns 0 >/dev/null 2>"$D/err"
[ $? -eq 2 ] || fail "--txns 0: not exit 2"
grep -q -- '--txns: 0' "$D/err" || fail "--txns 0: $(cat "$D/err")"
printf 'rule broken {\n' >"$D/bad.rules"
"$PL" --data "$D/p" --rules "$D/bad.rules" >/dev/null 2>"$D/err"
[ $? -eq 2 ] || fail "a bad rule file: not exit 2"
grep -q 'bad.rules:1:' "$D/err" || fail "a bad rule file: no file:line: $(cat "$D/err")"
"$PL" --help >/dev/null || fail "--help failed"
set -e
echo "pipeline: ok"
