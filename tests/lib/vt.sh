# SPDX-License-Identifier: MIT
# tests/lib/vt.sh - the common part of the shell integration tests that
# run vigil's programs, most of them a server in the background (`grep -l
# tests/lib/vt.sh tests` lists them), sourced after
# setting VT_NAME, the name their errors begin with, and optionally VT_LOG,
# the server's log file in $D that a failure prints (default vigild.log). Sets B and S (the build and
# source roots, from meson's environment), D (a new temporary directory,
# removed at exit) and PID (a vigild the test starts in the background,
# stopped at exit; empty when none runs), and defines:
#   fail MSG...             print "VT_NAME: MSG" and $D/$VT_LOG, exit 1;
#                           with VT_KEEP_GOING=1 set before sourcing, print
#                           "FAIL: MSG", count it in $fails and go on (a
#                           test that checks many things reports them all,
#                           then calls vt_done)
#   vt_done SUMMARY         exit 1 with the count of failures if any, else
#                           print "VT_NAME: SUMMARY"
#   vt_prog NAME            the path of the program NAME (vigild, vigil-score,
#                           ...) in the build tree; $VT_PROGS lists them all
#   expect STATUS PATTERN cmd...
#                           run cmd; fail unless it exits STATUS and a line
#                           of its stdout+stderr matches PATTERN (in $D/out)
#   vt_wait_log PATTERN WHAT
#                           wait (up to 30 s) for a line of $D/$VT_LOG
#                           matching PATTERN (grep); fail "no WHAT" after
#                           that, or at once if the server $PID exited
#   vt_free_port            a TCP port to listen on, that no other test
#                           running now is given (tests/lib/vt_port.py)
#   vt_wait_ready SOCKET    wait (up to 60 s) until the vigild $PID answers
#                           /readyz ready on its admin endpoint at the local
#                           socket SOCKET (--admin unix:SOCKET; needs curl);
#                           fail at once if it exited
# shellcheck shell=sh
# B and S are for the test that sources this file
# shellcheck disable=SC2034
B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
# shellcheck disable=SC2034
S=${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}
D=$(mktemp -d "/tmp/vigil-${VT_NAME:?VT_NAME not set}-XXXXXX")
PID=
VT_LOG=${VT_LOG:-vigild.log}

fails=0
if [ "${VT_KEEP_GOING:-0}" = 1 ]; then
	fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
else
	fail() {
		echo "$VT_NAME: $*" >&2
		[ -f "$D/$VT_LOG" ] && sed "s/^/  $VT_LOG: /" "$D/$VT_LOG" >&2
		exit 1
	}
fi
vt_done() {
	if [ "$fails" -ne 0 ]; then
		echo "$VT_NAME: $fails failure(s)" >&2
		exit 1
	fi
	echo "$VT_NAME: $*"
}

# shellcheck disable=SC2034
VT_PROGS="vigild vigil-rebuild vigil-archive vigil-replay vigil-gen vigil-score vigil-rules vigil-console"
vt_prog() {
	case "$1" in
	vigild) echo "$B/server/vigild" ;;
	vigil-rebuild) echo "$B/batch/vigil-rebuild" ;;
	vigil-archive) echo "$B/tools/archive/vigil-archive" ;;
	vigil-replay) echo "$B/tools/replay/vigil-replay" ;;
	vigil-gen) echo "$B/tools/gen/vigil-gen" ;;
	vigil-score) echo "$B/tools/score/vigil-score" ;;
	vigil-rules) echo "$B/tools/rulestool/vigil-rules" ;;
	vigil-console) echo "$B/console/vigil-console" ;;
	*) echo "vt_prog: no program $1" >&2; echo /nonexistent ;;
	esac
}
vt_cleanup() {
	if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$D"
}
trap vt_cleanup EXIT INT TERM

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

vt_free_port() {
	python3 "$S/tests/lib/vt_port.py"
}

vt_wait_ready() {
	i=0
	until curl -s --unix-socket "$1" http://vigild/readyz 2>/dev/null | grep -q '"ready": *true'; do
		i=$((i + 1))
		[ "$i" -lt 600 ] || fail "vigild not ready on $1 after 60 s"
		kill -0 "$PID" 2>/dev/null || fail "vigild exited"
		sleep 0.1
	done
}

vt_wait_log() {
	i=0
	until grep -q -- "$1" "$D/$VT_LOG" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || fail "no $2 after 30 s"
		if [ -n "$PID" ] && ! kill -0 "$PID" 2>/dev/null; then
			fail "the server exited before $2"
		fi
		sleep 0.1
	done
}
