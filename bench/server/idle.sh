#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/server/idle.sh - the CPU an idle server burns: start vigil-echo, then
# vigild (default rules, ipc, no admin), send nothing, and read the process's
# utime+stime from /proc/PID/stat over SECONDS (after a second to settle).
# Prints one line per server and run: its CPU in % of one CPU, and the
# busiest thread by name (docs/BENCHMARKS.md, "vigild end to end").
#
#   bench/server/idle.sh BUILD_DIR [SECONDS] [RUNS]
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"
BUILD=${1:?usage: idle.sh BUILD_DIR [SECONDS] [RUNS]}
SECS=${2:-20}
RUNS=${3:-3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/server/serve.sh
. "$SRC/bench/server/serve.sh"
bench_tmp idle

measure() { # NAME
	sleep 1
	a=$(ticks "$SPID")
	for t in /proc/"$SPID"/task/*; do echo "$(basename "$t") $(ticks "$SPID/task/$(basename "$t")")"; done > "$TMP/t0"
	sleep "$SECS"
	b=$(ticks "$SPID")
	top=$(for t in /proc/"$SPID"/task/*; do
		n=$(basename "$t")
		echo "$(($(ticks "$SPID/task/$(basename "$t")") - $(awk -v n="$n" '$1 == n { print $2 }' "$TMP/t0" || echo 0))) $(cat "$t"/comm)"
	done | sort -n | tail -1)
	awk -v n="$1" -v d=$((b - a)) -v s="$SECS" -v k="$TCK" -v top="$top" \
		'BEGIN { split(top, f, " "); printf "%-8s idle CPU %5.2f%% of one CPU (busiest thread: %s, %.2f%%)\n", n, 100 * d / k / s, f[2], 100 * f[1] / k / s }'
	kill -TERM "$SPID"
	wait "$SPID" 2>/dev/null || true
	SPID=
}

for _ in $(seq "$RUNS"); do
	"$BUILD/bench/server/vigil-echo" --listen "ipc://$TMP/echo.sock" 2>/dev/null &
	SPID=$!
	measure echo
	rm -rf "$TMP/data"
	mkdir "$TMP/data"
	"$BUILD/server/vigild" --data "$TMP/data" --listen "ipc://$TMP/vigild.sock" \
		--rules "$SRC/rules/default.rules" --admin off 2>/dev/null &
	SPID=$!
	measure vigild
done
