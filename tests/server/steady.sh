#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/steady.sh - vigild reaches a steady state: under a stream
# whose event time runs far past the live state's retention (100,000
# requests two minutes of event time apart, 139 days, over 100 cards:
# vigil-loadgen --step-us), the live windows hold the last 14 days of
# events (10,080 requests' worth, not 100,000) and the idempotency records
# stay at their 8-day horizon (5,760, plus at most the commits since the
# expiry's last walk and the requests in flight; not one per request). After a restart the live
# state replayed from the archive is bounded the same way. Counts come from
# /metrics; no timing is checked. Usage: steady.sh (VIGIL_BUILD_ROOT and
# VIGIL_SOURCE_ROOT set by meson).
set -eu

VT_NAME=steady
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
LG="$B/bench/server/vigil-loadgen"
N=100000
STEP_US=120000000 # two minutes
KEEP=10080        # requests in 14 days (store/live.h, LIVE_RETAIN_MS)
HORIZON=5760      # requests in 8 days (the default dedupe horizon)

start() {
	"$B/server/vigild" --data "$D/data" --listen "ipc://$D/vigild.sock" \
		--admin "unix:$D/admin.sock" --rules "$S/rules/default.rules" 2>>"$D/vigild.log" &
	PID=$!
	vt_wait_ready "$D/admin.sock"
}
stop() {
	kill -TERM "$PID"
	wait "$PID" || fail "vigild exited with status $?"
	PID=
}
metric() { # name: its value
	curl -s --unix-socket "$D/admin.sock" http://vigild/metrics |
		awk -v m="$1" '$1 == m { print $2; found = 1 } END { exit !found }' ||
		fail "no $1 in /metrics"
}
field() { # json key
	echo "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"
}
# between lo and hi inclusive, or fail naming what
within() { # what value lo hi
	[ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || fail "$1: $2, expected $3 to $4"
}

mkdir "$D/data"
start
out=$("$LG" --url "ipc://$D/vigild.sock" -c 8 --requests "$N" --warmup 0 --cards 100 \
	--merchants 10 --step-us "$STEP_US" --json) || fail "loadgen: $out"
[ "$(field "$out" replies)" = "$N" ] || fail "expected $N replies: $out"
[ "$(metric vigil_live_cards)" = 100 ] || fail "live cards $(metric vigil_live_cards), expected 100"
# The cards' windows: every request of the last 14 days, each card trimmed
# when its next event comes (one in 100), so a few over KEEP at most.
ev=$(metric vigil_live_events)
within "live events after $N requests" "$ev" "$KEEP" $((KEEP + 200))
# Idempotency: the horizon's records; expiry walks them in arrival order
# every 64 commits (store/live.h), so at most that many more wait for it.
dd=$(metric vigil_dedupe_entries)
within "idempotency records after $N requests" "$dd" "$HORIZON" $((HORIZON + 100))
stop

# The archive holds all N; the live state rebuilt from it keeps 14 days.
start
ev2=$(metric vigil_live_events)
within "live events replayed from the archive" "$ev2" "$KEEP" $((KEEP + 200))
stop
vt_done "$N requests over 139 days: $ev live events ($ev2 after a restart), $dd idempotency records"
