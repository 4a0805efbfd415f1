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
#   settle_archive BUILD DIR RULES
#                     runs BUILD's vigild on DIR, with no load, until its
#                     housekeeping has compressed every closed segment of
#                     DIR's archive (at most 60 s), as a running vigild
#                     keeps it: modeldata.sh's directory is written by
#                     vigil-replay, closed segments uncompressed, and a
#                     vigild started on a copy compresses them all (46 MB,
#                     about 0.3 s of CPU) just after it is ready, in a
#                     round's warm-up and measured window
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
settle_archive() {
	sa_left=0
	"$1/server/vigild" --data "$2" --listen "ipc://$TMP/settle.sock" --admin off --rules "$3" \
		--max-future-skew 0 2>"$TMP/settle.log" &
	SPID=$!
	sa_i=0
	while [ $sa_i -lt 600 ]; do
		sa_left=0
		for sa_idx in "$2"/archive/seg-*.idx; do
			[ -e "$sa_idx" ] || break
			[ -e "${sa_idx%.idx}.log.zst" ] || sa_left=$((sa_left + 1))
		done
		[ $sa_left -eq 0 ] && break
		kill -0 "$SPID" 2>/dev/null || break
		sa_i=$((sa_i + 1))
		sleep 0.1
	done
	kill -TERM "$SPID" 2>/dev/null || true
	wait "$SPID" 2>/dev/null || true
	SPID=
	[ $sa_left -eq 0 ] || echo "serve.sh: $sa_left closed segment(s) of $2/archive still uncompressed" \
		"(vigild: $(tail -n 1 "$TMP/settle.log"))" >&2
}
