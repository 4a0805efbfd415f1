#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/admin_unix.sh - vigild's admin endpoint on a local socket
# (`--admin unix:/PATH`, issue 17: the admin listener nobody off the host
# can reach): the socket is created 0660, curl --unix-socket gets /healthz
# and scores through /v1/score (local: no token needed, as on loopback), a
# stale socket of a previous run is replaced, a regular file at the path is
# refused at start-up with a line naming it, and --check-config refuses a
# relative path. Usage: admin_unix.sh (VIGIL_BUILD_ROOT and
# VIGIL_SOURCE_ROOT set by meson).
set -eu

VT_NAME=admin_unix
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
V="$B/server/vigild"
R="$S/tests/server/rules/velocity.rules"

start() { # the admin socket path
	"$V" --data "$D/data" --listen "ipc://$D/vigild.sock" --admin "unix:$1" --rules "$R" \
		2>"$D/vigild.log" &
	PID=$!
	vt_wait_ready "$1"
}
stop() {
	kill -TERM "$PID"
	wait "$PID" || fail "vigild exited with status $?"
	PID=
}

mkdir -p "$D/data"
start "$D/admin.sock"
mode=$(stat -c %a "$D/admin.sock")
[ "$mode" = 660 ] || fail "admin socket mode $mode, expected 660"
curl -s --unix-socket "$D/admin.sock" http://vigild/healthz | grep -q '"server_version"' ||
	fail "no /healthz over the socket"
out=$(curl -s --unix-socket "$D/admin.sock" -X POST http://vigild/v1/score \
	-d '{"txn_id":"u1","card_id":"card-1","merchant_id":"m1","amount":"12.50","currency":"EUR","event_time_ms":'"$(date +%s)000"'}')
echo "$out" | grep -q '"status": *"OK"' || fail "/v1/score over the socket: $out"
stop
# the previous run's socket file is replaced
start "$D/admin.sock"
stop
# anything else at the path is refused, with a line naming it
: > "$D/not-a-socket"
set +e
"$V" --data "$D/data" --listen "ipc://$D/vigild.sock" --admin "unix:$D/not-a-socket" \
	--rules "$R" 2>"$D/err"
st=$?
set -e
[ "$st" -ne 0 ] || fail "vigild started with a regular file as its admin socket"
grep -q "$D/not-a-socket exists and is not a socket" "$D/err" || fail "no line naming it: $(cat "$D/err")"
set +e
"$V" --check-config --admin unix:relative.sock --data "$D/data" --rules "$R" >"$D/out" 2>&1
st=$?
set -e
[ "$st" -eq 2 ] || fail "--check-config accepted a relative socket path (exit $st): $(cat "$D/out")"
grep -q "absolute path" "$D/out" || fail "no reason for the relative path: $(cat "$D/out")"
echo "admin_unix: ok"
