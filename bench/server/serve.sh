# SPDX-License-Identifier: MIT
# shellcheck shell=sh
# bench/server/serve.sh - sourced by the bench/server scripts that run a
# server in the background (cpu.sh, idle.sh, profile.sh, stages.sh):
#   bench_tmp NAME    makes TMP, a new directory /tmp/vigil-NAME-XXXXXX, and
#                     at exit (or INT, TERM) stops the server whose pid is
#                     in SPID, if any, and removes TMP
#   ticks PID         the process's utime + stime, in clock ticks (TCK a
#                     second)
#   field JSON KEY    the number KEY holds in a one-line JSON object (the
#                     load generator's --json summary)
bench_tmp() {
	TMP=$(mktemp -d "/tmp/vigil-$1-XXXXXX")
	SPID=
	trap bench_cleanup EXIT INT TERM
}
bench_cleanup() {
	if [ -n "$SPID" ]; then kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
# shellcheck disable=SC2034 # read by the scripts that source this
TCK=$(getconf CLK_TCK)
ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
field() {
	echo "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"
}
