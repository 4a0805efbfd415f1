#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/protoc_nngcat.sh - talks to a real vigild with tools nobody
# here wrote: Google's protoc encodes vigil.v1.Request text into protobuf
# bytes, nngcat (nng-utils) sends them over REQ/REP, protoc decodes the
# vigil.v1.Reply. Proves the wire schema works for any implementation.
# Usage: protoc_nngcat.sh (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
set -eu

VT_NAME=protoc_nngcat
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
URL="ipc://$D/vigild.sock"

encode() { protoc --proto_path="$S/proto" --encode=vigil.v1.Request vigil.proto; }
decode() { protoc --proto_path="$S/proto" --decode=vigil.v1.Reply vigil.proto; }
# call NAME: sends $D/NAME.bin, leaves the decoded reply in $D/NAME.txt
call() {
	nngcat --req --dial "$URL" --file "$D/$1.bin" --raw --recv-timeout 5 >"$D/$1.out" \
		|| fail "$1: nngcat failed"
	decode <"$D/$1.out" >"$D/$1.txt" || fail "$1: reply is not a vigil.v1.Reply"
}

"$B/server/vigild" --data "$D" --listen "$URL" --admin off \
	--rules "$S/tests/server/rules/velocity.rules" 2>"$D/vigild.log" &
PID=$!

echo 'health {}' | encode >"$D/health.bin"
i=0
until nngcat --req --dial "$URL" --file "$D/health.bin" --raw --recv-timeout 1 \
	>"$D/health.out" 2>/dev/null && decode <"$D/health.out" | grep -q 'ready: true'; do
	i=$((i + 1))
	[ "$i" -lt 300 ] || fail "vigild not ready after 30 s"
	kill -0 "$PID" 2>/dev/null || fail "vigild exited during start-up"
	sleep 0.1
done

encode >"$D/score.bin" <<'TXT'
score {
  txn {
    txn_id: "nngcat-1"
    event_time_ms: 1763700000000
    card_id: "card-nngcat"
    merchant_id: "m-1"
    amount_minor: 250000
    currency: "EUR"
    mcc: 5411
    country: "FR"
    channel: ECOM
    location { latitude: 48.85 longitude: 2.35 }
  }
}
TXT
call score
grep -q 'txn_id: "nngcat-1"' "$D/score.txt" || fail "score: no txn_id in reply: $(cat "$D/score.txt")"
grep -q 'decision: DECLINE' "$D/score.txt" || fail "score: expected DECLINE: $(cat "$D/score.txt")"
grep -q 'rule: "big_amount"' "$D/score.txt" || fail "score: expected big_amount hit"
grep -q 'status:' "$D/score.txt" && fail "score: status is not OK: $(cat "$D/score.txt")"

call score # the same bytes again: a retry
grep -q 'duplicate: true' "$D/score.txt" || fail "retry: expected duplicate: true"

encode >"$D/bad.bin" <<'TXT'
score { txn { txn_id: "nngcat-2" event_time_ms: 1763700000000 card_id: "c" merchant_id: "m" amount_minor: 1 currency: "EUX" } }
TXT
call bad
grep -q 'status: STATUS_INVALID' "$D/bad.txt" || fail "bad currency: expected STATUS_INVALID"
grep -q 'field: "txn.currency"' "$D/bad.txt" || fail "bad currency: expected field txn.currency"

echo 'label { label { txn_id: "nngcat-1" fraud: true source: "chargeback" } }' | encode >"$D/label.bin"
call label
grep -q 'txn_id: "nngcat-1"' "$D/label.txt" || fail "label: no txn_id in reply"

printf 'not a protobuf message' >"$D/garbage.bin"
call garbage
grep -q 'status: STATUS_MALFORMED' "$D/garbage.txt" || fail "garbage: expected STATUS_MALFORMED"

echo 'rules_info {}' | encode >"$D/rules.bin"
call rules
grep -q 'version: "test-velocity-1"' "$D/rules.txt" || fail "rules_info: wrong version"

kill -TERM "$PID"
wait "$PID" || fail "vigild exited with status $? after SIGTERM"
PID=
echo "protoc_nngcat: ok"
