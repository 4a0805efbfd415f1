#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/nodump.sh - vigild is not dumpable (issue 28, row 5): a
# process of vigild's own user cannot reach vigild's files through
# /proc/PID/root (list them, or create one in the data directory) nor read
# its memory's environment (/proc/PID/environ, what ptrace's read checks
# guard); with VIGIL_DUMPABLE=1 it can (the debugging escape hatch, said in
# the log). vigild runs as an unprivileged user (nobody) started directly,
# as systemd's User= starts it: root bypasses these checks, and a switch of
# user (--user) already resets the flag. Needs root (to become that user)
# and setpriv(1): skipped (exit 77) with a message otherwise.
set -eu

VT_NAME=nodump
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
V="$B/server/vigild"
R="$S/tests/server/rules/velocity.rules"
U=65534

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: not root: cannot run vigild and the probe as another user"
	exit 77
fi
if ! command -v setpriv >/dev/null 2>&1; then
	echo "SKIP: setpriv(1) not installed (util-linux)"
	exit 77
fi
as_user() {
	setpriv --reuid=$U --regid=$U --clear-groups -- "$@"
}

chmod 0711 "$D"
mkdir "$D/data"
chown $U:$U "$D/data"
start() { # extra environment, e.g. VIGIL_DUMPABLE=1
	env "$@" setpriv --reuid=$U --regid=$U --clear-groups -- "$V" --data "$D/data" \
		--listen "ipc://$D/data/vigild.sock" --admin "unix:$D/data/admin.sock" --rules "$R" \
		2>"$D/vigild.log" &
	PID=$!
	vt_wait_ready "$D/data/admin.sock"
}
stop() {
	kill -TERM "$PID"
	wait "$PID" || fail "vigild exited with status $?"
	PID=
}

start
if as_user ls "/proc/$PID/root$D/data/" >"$D/out" 2>&1; then
	fail "a process of vigild's user lists vigild's data directory through /proc/$PID/root"
fi
grep -q "Permission denied" "$D/out" || fail "ls /proc/$PID/root...: $(cat "$D/out")"
if as_user touch "/proc/$PID/root$D/data/planted" 2>"$D/out"; then
	fail "a process of vigild's user created a file through /proc/$PID/root"
fi
[ ! -e "$D/data/planted" ] || fail "planted exists"
if as_user cat "/proc/$PID/environ" >/dev/null 2>"$D/out"; then
	fail "a process of vigild's user reads /proc/$PID/environ"
fi
# the same user's own files are still its own: not a permission problem of the test
as_user ls "$D/data/" >/dev/null || fail "the probe cannot list the data directory directly"
stop

start VIGIL_DUMPABLE=1
as_user ls "/proc/$PID/root$D/data/" >/dev/null 2>&1 ||
	fail "VIGIL_DUMPABLE=1: the probe still cannot reach /proc/$PID/root"
grep -q "dumpable (VIGIL_DUMPABLE=1)" "$D/vigild.log" || fail "no warning for VIGIL_DUMPABLE=1"
stop
echo "ok: vigild not dumpable: /proc/PID/root and environ refused to its own user"
