#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/loadgen.sh - the benchmark's load generator against the bare
# echo: closed loop and open loop (--rate) send exactly the requests asked
# for and exit 0; an error reply would be exit 1; a bad --rate or
# --step-us is a usage error (exit 2), and so is a bad vigil-echo
# --work-us or --reply-bytes; an echo spending CPU per request (--work-us)
# answers them all, one padding replies (--reply-bytes) pads the short ones
# only; bench/server/pin.sh splits the CPUs between servers and load
# generator. No timing is checked.
set -eu

B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
LG="$B/bench/server/vigil-loadgen"
ECHO="$B/bench/server/vigil-echo"
D=$(mktemp -d /tmp/vigil-lg-XXXXXX)
PID=
cleanup() {
	if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$D"
}
trap cleanup EXIT INT TERM
fail() { echo "loadgen: $*" >&2; exit 1; }
field() { # json key
	echo "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"
}

# echo_start NAME ARGS...: stops the echo running (if any), starts one on
# URL=ipc://$D/NAME.sock with ARGS and waits until it answers.
echo_start() {
	if [ -n "$PID" ]; then kill -TERM "$PID"; wait "$PID" || true; PID=; fi
	URL="ipc://$D/$1.sock"
	shift
	"$ECHO" --listen "$URL" "$@" 2>"$D/echo.log" &
	PID=$!
	i=0
	until "$LG" --url "$URL" --echo --requests 1 --warmup 0 >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "echo $* not up: $(cat "$D/echo.log")"
		sleep 0.1
	done
}

echo_start echo --contexts 16

out=$("$LG" --url "$URL" --echo -c 4 --requests 200 --warmup 0 --json) || fail "closed loop: $out"
[ "$(field "$out" replies)" = 200 ] || fail "closed loop: expected 200 replies: $out"
[ "$(field "$out" lost)" = 0 ] || fail "closed loop: lost replies: $out"

# --connections: that many pipes are connected (counted from nng's pipe
# events, not from the flag) and the requests spread over them all arrive;
# more connections than contexts is capped at the concurrency.
out=$("$LG" --url "$URL" --echo -c 8 --connections 4 --requests 200 --warmup 0 --json) ||
	fail "4 connections: $out"
[ "$(field "$out" pipes)" = 4 ] || fail "4 connections: expected 4 pipes: $out"
[ "$(field "$out" replies)" = 200 ] || fail "4 connections: expected 200 replies: $out"
[ "$(field "$out" lost)" = 0 ] || fail "4 connections: lost replies: $out"
out=$("$LG" --url "$URL" --echo -c 2 --connections 5 --requests 50 --warmup 0 --json) ||
	fail "5 connections, 2 contexts: $out"
[ "$(field "$out" connections)" = 2 ] || fail "connections not capped at -c 2: $out"
[ "$(field "$out" pipes)" = 2 ] || fail "5 connections, 2 contexts: expected 2 pipes: $out"

out=$("$LG" --url "$URL" --echo -c 8 --rate 2000 --requests 300 --warmup 0 --json) ||
	fail "open loop: $out"
[ "$(field "$out" replies)" = 300 ] || fail "open loop: expected 300 replies: $out"
[ "$(field "$out" target_rate)" = 2000.0 ] || fail "open loop: target rate not reported: $out"
out=$("$LG" --url "$URL" --echo -c 2 --rate 500 --duration 0.2 --warmup 0.1 --json) ||
	fail "open loop with duration: $out"
[ "$(field "$out" lost)" = 0 ] || fail "open loop with duration: lost replies: $out"

set +e
"$LG" --url "$URL" --echo --rate -1 --requests 1 >"$D/out" 2>&1
rv=$?
set -e
[ $rv -eq 2 ] || fail "--rate -1: exit $rv, expected 2: $(cat "$D/out")"
grep -q -- '^vigil-loadgen: --rate: -1: not a number of at least 0 (see --help)$' "$D/out" ||
	fail "--rate -1: unexpected message: $(cat "$D/out")"
set +e
"$LG" --url "$URL" --echo --connections 0 --requests 1 >"$D/out" 2>&1
rv=$?
set -e
[ $rv -eq 2 ] || fail "--connections 0: exit $rv, expected 2: $(cat "$D/out")"
grep -q -- '^vigil-loadgen: --connections: 0: not a whole number in \[1, ' "$D/out" ||
	fail "--connections 0: unexpected message: $(cat "$D/out")"
for bad in 0 3600000001; do
	set +e
	"$LG" --url "$URL" --echo --step-us "$bad" --requests 1 >"$D/out" 2>&1
	rv=$?
	set -e
	[ $rv -eq 2 ] || fail "--step-us $bad: exit $rv, expected 2: $(cat "$D/out")"
	grep -q -- "^vigil-loadgen: --step-us: $bad: not a whole number in \\[1, 3600000000\\]" "$D/out" ||
		fail "--step-us $bad: unexpected message: $(cat "$D/out")"
done
# vigil-echo --work-us: an echo that spends CPU per request still answers
# every request; a --work-us that is not a number of microseconds is a
# usage error (exit 2) naming the flag and the value.
echo_start echo-work --contexts 4 --work-us 3
out=$("$LG" --url "$URL" --echo -c 4 --requests 100 --warmup 0 --json) || fail "--work-us 3: $out"
[ "$(field "$out" replies)" = 100 ] || fail "--work-us 3: expected 100 replies: $out"
for bad in abc -1 2000000 3us; do
	set +e
	"$ECHO" --listen "ipc://$D/bad.sock" --work-us "$bad" >"$D/out" 2>&1
	rv=$?
	set -e
	[ $rv -eq 2 ] || fail "--work-us $bad: exit $rv, expected 2: $(cat "$D/out")"
	grep -q -- "--work-us: \"$bad\" is not a number of microseconds" "$D/out" ||
		fail "--work-us $bad: unexpected message: $(cat "$D/out")"
done
# vigil-echo --reply-bytes N: a shorter request comes back padded with
# zeros to N bytes (nngcat, nng's own client, sees the reply), a longer
# one as it came; a value past 65536 is a usage error.
echo_start echo-pad --contexts 4 --reply-bytes 292
printf 'ping' >"$D/short.bin"
head -c 300 /dev/zero | tr '\0' 'x' >"$D/long.bin"
for f in short long; do
	nngcat --req --dial "$URL" --file "$D/$f.bin" --raw --recv-timeout 5 >"$D/$f.out" ||
		fail "--reply-bytes 292: nngcat $f failed"
done
[ "$(wc -c <"$D/short.out")" -eq 292 ] || fail "--reply-bytes 292: a 4-byte request came back as $(wc -c <"$D/short.out") bytes"
[ "$(head -c 4 "$D/short.out")" = ping ] || fail "--reply-bytes 292: the reply does not start with the request"
[ "$(tail -c 288 "$D/short.out" | tr -d '\0' | wc -c)" -eq 0 ] || fail "--reply-bytes 292: the padding is not zeros"
cmp -s "$D/long.bin" "$D/long.out" || fail "--reply-bytes 292: a 300-byte request did not come back as it was"
set +e
"$ECHO" --listen "ipc://$D/bad.sock" --reply-bytes 65537 >"$D/out" 2>&1
rv=$?
set -e
[ $rv -eq 2 ] || fail "--reply-bytes 65537: exit $rv, expected 2: $(cat "$D/out")"
grep -q -- '--reply-bytes: "65537" is not a whole number in \[0, 65536\]' "$D/out" ||
	fail "--reply-bytes 65537: unexpected message: $(cat "$D/out")"
# bench/server/pin.sh: unset PIN pins nothing; PIN=0 puts the servers on CPU 0
# and the load generator on all the others; a PIN that leaves no CPU fails.
SRC=${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}
got=$(env -u PIN sh -c '. "$1/bench/server/pin.sh"; echo "[$SRV_PIN|$LG_PIN]"' sh "$SRC") ||
	fail "pin.sh without PIN failed: $got"
[ "$got" = "[|]" ] || fail "pin.sh without PIN pinned: $got"
n=$(getconf _NPROCESSORS_ONLN)
if [ "$n" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
	want="[taskset -c 0|taskset -c $(seq -s, 1 $((n - 1)))]"
	got=$(PIN=0 sh -c '. "$1/bench/server/pin.sh"; echo "[$SRV_PIN|$LG_PIN]"' sh "$SRC") ||
		fail "pin.sh PIN=0 failed: $got"
	[ "$got" = "$want" ] || fail "pin.sh PIN=0: got $got, expected $want"
	if PIN="0-$((n - 1))" sh -c '. "$1/bench/server/pin.sh"' sh "$SRC" 2>"$D/out"; then
		fail "pin.sh PIN=0-$((n - 1)) left the load generator no CPU but did not fail"
	fi
	grep -q "leaves no CPU" "$D/out" || fail "pin.sh: unexpected message: $(cat "$D/out")"
fi
# The header names the kernel's free page reporting where it has one (a VM
# that hands free memory back to its host; docs/vigild.md, "Memory").
got=$(env -u PIN sh -c '. "$1/bench/server/pin.sh"; echo "[$PIN_DESC|$MEM_DESC]"' sh "$SRC")
fpr=/sys/module/page_reporting/parameters/page_reporting_order
if [ -r "$fpr" ]; then
	[ "$got" = "[not pinned|; free page reporting order $(cat "$fpr")]" ] ||
		fail "pin.sh MEM_DESC: got $got, expected the reporting order $(cat "$fpr")"
else
	[ "$got" = "[not pinned|]" ] || fail "pin.sh MEM_DESC without page reporting: got $got"
fi
echo "loadgen: ok"
