#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/server/stages.sh - where a request's time goes inside vigild, stage
# by stage, beside the echo's send (docs/BENCHMARKS.md, "Where a score's
# CPU goes"): runs vigil-loadgen (ipc, c=32) against vigild serving a copy
# of a data directory with a trained model, then against vigil-echo, and
# prints the mean of each stage each server timed. The build must be
# configured with -Dstage_timing=true (common/stages.h); a build without it
# times nothing and this script says so.
#
#   bench/server/stages.sh BUILD_DIR [SECONDS]
#
# Environment: PIN (default 0: the servers on CPU 0, the load generator on
# the others; empty: nothing pinned), MODEL_DATA (a data directory built
# before by bench/server/modeldata.sh; unset: one is built, a few minutes),
# RULES, ECHO_WORK_US (a microsecond count: the echo's callback also spins
# that long, so that it runs at about vigild's rate: what its send costs
# when the load generator waits for it).
# Stages are wall time (TSC) of intervals under 100 µs, so a thread
# preempted in one does not count; on one pinned CPU that is nearly all.
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"
BUILD=${1:?usage: stages.sh BUILD_DIR [SECONDS]}
SECS=${2:-5}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
RULES=${RULES:-$SRC/rules/default.rules}
PIN=${PIN-0}
. "$SRC/bench/server/pin.sh"
[ -f "$BUILD/vigil_config.h" ] || { echo "stages.sh: $BUILD is not a configured build directory" >&2; exit 2; }
grep -q 'define VIGIL_STAGE_TIMING 1' "$BUILD/vigil_config.h" || {
	echo "stages.sh: $BUILD was not configured with -Dstage_timing=true" >&2
	exit 2
}
# shellcheck source=bench/server/serve.sh
. "$SRC/bench/server/serve.sh"
bench_tmp stages
if [ -n "${MODEL_DATA:-}" ]; then
	cp -a "$MODEL_DATA" "$TMP/data"
else
	. "$SRC/bench/server/modeldata.sh"
	model_data "$BUILD" "$RULES" "$TMP/data"
fi
settle_archive "$BUILD" "$TMP/data" "$RULES"

# run LABEL LOADGEN_FLAGS SERVER...: serves, loads, stops, prints the stages.
run() {
	label=$1 lgflags=$2
	shift 2
	url="ipc://$TMP/$label.sock"
	# shellcheck disable=SC2086
	$SRV_PIN "$@" --listen "$url" 2>"$TMP/$label.log" &
	SPID=$!
	i=0
	# shellcheck disable=SC2086
	until "$BUILD/bench/server/vigil-loadgen" --url "$url" $lgflags --requests 1 --warmup 0 \
		>/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "stages.sh: $label not up" >&2; cat "$TMP/$label.log" >&2; exit 1; }
		sleep 0.1
	done
	# shellcheck disable=SC2086
	$LG_PIN "$BUILD/bench/server/vigil-loadgen" --url "$url" $lgflags -c 32 --duration "$SECS" \
		--warmup 0.5 --json >"$TMP/lg.json"
	kill -TERM "$SPID"
	wait "$SPID" || true
	SPID=
	rate=$(sed -n 's/.*"rate":\([0-9.]*\).*/\1/p' "$TMP/lg.json")
	echo "$label: $rate replies/s"
	grep '^stage ' "$TMP/$label.log" | sed 's/^/  /'
}

echo "# $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg); ipc c=32, ${SECS}s; $PIN_DESC$MEM_DESC"
run vigild "" "$BUILD/server/vigild" --data "$TMP/data" --admin off --rules "$RULES"
run echo --echo "$BUILD/bench/server/vigil-echo"
if [ -n "${ECHO_WORK_US:-}" ]; then
	run "echo+${ECHO_WORK_US}us" --echo "$BUILD/bench/server/vigil-echo" --work-us "$ECHO_WORK_US"
fi
